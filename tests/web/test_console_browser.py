"""The console in a real browser (Debian Chromium through playwright) against a real ``mamori serve``: log in,
look at every page, open the incident, change its status, add a note, approve the pending action, switch
to Japanese, download the PDF report. Screenshots go to build/test-artifacts/web/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_fixtures import PASSWORDS, Console, wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None,
                                reason="Debian chromium (/usr/bin/chromium) is not installed")


@pytest.fixture(scope="module")
def page(console: Console) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 1000},
                                      accept_downloads=True, extra_http_headers={"Accept-Language": "en-US,en"})
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _incident_id(console: Console) -> int:
    import sqlite3

    def found() -> int | None:
        with sqlite3.connect(console.data_dir / "mamori.db") as db:
            row = db.execute("SELECT r.incident_id FROM playbook_action_runs a JOIN playbook_runs r "
                             "ON r.id = a.run_id WHERE a.approval = 'pending' ORDER BY a.id LIMIT 1").fetchone()
        return int(row[0]) if row and row[0] else None

    return wait_for(found, timeout=90)


def test_an_analyst_works_an_incident_from_login_to_pdf_report(console: Console, page: Any) -> None:
    incident_id = _incident_id(console)
    url = console.url

    page.goto(f"{url}/console/")
    assert "/console/login" in page.url
    assert page.locator("button[type=submit]").inner_text() == "Log in"
    _shot(page, "01-login-en")
    page.fill("input[name=username]", "analyst-user")
    page.fill("input[name=password]", PASSWORDS["analyst"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/")
    page.click("[data-testid=lang-en]")  # the users are shared with other tests: start from English
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.locator("h1").first.inner_text() == "Dashboard"
    assert page.locator("svg.chart").count() >= 5
    _shot(page, "02-dashboard-en")

    page.click("nav.side >> text=Alerts")
    page.wait_for_url(f"{url}/console/alerts")
    assert page.locator("table.list tbody tr").count() >= 2
    _shot(page, "03-alerts-en")
    page.select_option("select[name=level]", "high")
    page.wait_for_url("**/console/alerts?*level=high*")
    assert "Whoami Execution" in page.locator("#alert-table").inner_text()

    page.goto(f"{url}/console/events?run=1&q=whoami")
    assert "events found" in page.locator("main").inner_text()
    _shot(page, "04-events-en")

    page.goto(f"{url}/console/rules")
    page.click("details.inline-test summary")
    page.click("details.inline-test button.primary")
    page.wait_for_selector(".test-result .flash.ok")
    assert "matching events" in page.locator(".test-result").inner_text()
    _shot(page, "05-rules-test-en")

    page.goto(f"{url}/console/incidents")
    _shot(page, "06-incidents-en")
    page.click(f"a[href='/console/incidents/{incident_id}'] >> nth=0")
    page.wait_for_url(f"{url}/console/incidents/{incident_id}")
    assert page.locator("svg.graph circle").count() >= 3
    _shot(page, "07-incident-en")

    status_form = page.locator("[data-testid=status-form]")
    status_form.locator("select[name=value]").select_option("investigating")
    status_form.locator("input[name=reason]").fill("looking at WS-CONSOLE1")
    status_form.locator("button").click()
    page.wait_for_url(f"**/console/incidents/{incident_id}?done=status")
    assert page.locator("[data-testid=incident-status]").inner_text() == "Investigating"

    note = page.locator("[data-testid=note-form]")
    note.locator("textarea").fill("whoami /all run by tanaka; checking with the owner of WS-CONSOLE1")
    note.locator("button").click()
    page.wait_for_url(f"**/console/incidents/{incident_id}?done=note")
    assert "checking with the owner of WS-CONSOLE1" in page.locator("article.note").last.inner_text()

    page.goto(f"{url}/console/playbooks")
    assert page.locator("button[data-testid^=approve-]").count() == 1
    _shot(page, "08-approvals-pending-en")
    page.goto(f"{url}/console/incidents/{incident_id}")
    approve = page.locator("button[data-testid^=approve-]").first
    approve.click()
    page.wait_for_url("**done=approve")
    assert "The action was approved." in page.locator(".flash.ok").inner_text()
    with console.api("analyst") as api:
        wait_for(lambda: any(e["value"].lower() == "ws-console1" for e in api.get("/api/v1/lists/watchlist").json()
                             ["entries"]), timeout=60)

    page.click("[data-testid=lang-ja]")
    page.wait_for_function("document.documentElement.lang === 'ja'")
    assert page.locator("[data-testid=incident-status]").inner_text() == "調査中"
    assert "インシデント" in page.locator("nav.side").inner_text()
    assert "JST" in page.locator("main").inner_text()
    _shot(page, "09-incident-ja")
    page.goto(f"{url}/console/")
    assert page.locator("h1").first.inner_text() == "ダッシュボード"
    _shot(page, "10-dashboard-ja")
    page.goto(f"{url}/console/playbooks")
    _shot(page, "11-playbooks-ja")

    page.goto(f"{url}/console/incidents/{incident_id}")
    with page.expect_download() as download_info:
        page.click("[data-testid=report-pdf-ja]")
    download = download_info.value
    target = ARTIFACTS / f"incident-{incident_id}-ja.pdf"
    download.save_as(str(target))
    assert target.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    text = "".join(p.extract_text() or "" for p in PdfReader(str(target)).pages)
    assert "WS-CONSOLE1" in text
