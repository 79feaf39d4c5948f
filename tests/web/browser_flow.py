"""The analyst's walk through the console in a real browser, shared by the seeded-service test and the
demo test: log in, look at every page, open the incident, change its status, add a note, approve the
pending action, switch to Japanese, download the PDF report. Screenshots go to build/test-artifacts/web/."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from web_fixtures import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass(frozen=True)
class Scene:
    """Where the walk happens: the service, a console login (an analyst or more) and an API token."""

    url: str
    user: str
    password: str
    token: str
    data_dir: Path
    name: str  # prefix of the screenshot files

    def api(self) -> httpx.Client:
        """An API client with the scene's token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh Chromium page (English browser, 1440 px wide) that accepts downloads."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 1000},
                                      accept_downloads=True, extra_http_headers={"Accept-Language": "en-US,en"})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def pending_incident(scene: Scene, incident_id: int | None = None, timeout: float = 120.0) -> int:
    """An incident (``incident_id``, or the first) whose playbook action waits for approval; waits for it."""
    def found() -> int | None:
        with sqlite3.connect(scene.data_dir / "mamori.db") as db:
            rows = db.execute("SELECT r.incident_id FROM playbook_action_runs a JOIN playbook_runs r "
                              "ON r.id = a.run_id WHERE a.approval = 'pending' AND r.incident_id IS NOT NULL "
                              "ORDER BY a.id").fetchall()
        waiting = [int(row[0]) for row in rows]
        if incident_id is not None:
            return incident_id if incident_id in waiting else None
        return waiting[0] if waiting else None

    return wait_for(found, timeout=timeout)


def switch_language(page: Any, language: str) -> None:
    """Press the language button and wait for the page it posts back to: the button submits a form,
    so the old page (already in that language, or torn down mid-navigation) must not be read."""
    with page.expect_navigation():
        page.click(f"[data-testid=lang-{language}]")
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == language


def walk(page: Any, scene: Scene, incident_id: int) -> None:
    """The whole walk; asserts what a person would check on each page."""
    url = scene.url
    errors: list[str] = []  # the browser's console errors (a refused script or style would show here)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{scene.name}-{name}.png"), full_page=True)

    with scene.api() as api:
        incident = api.get(f"/api/v1/incidents/{incident_id}").json()
    hosts = {str(h).lower() for h in incident["entities"]["host"]}
    host = sorted(hosts)[0]

    page.goto(f"{url}/console/")
    assert "/console/login" in page.url
    assert page.locator("button[type=submit]").inner_text() == "Log in"
    shot("01-login-en")
    page.fill("input[name=username]", scene.user)
    page.fill("input[name=password]", scene.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/")
    switch_language(page, "en")  # users may be shared with other tests: start from English
    assert page.locator("h1").first.inner_text() == "Dashboard"
    assert page.locator("svg.chart").count() >= 5
    shot("02-dashboard-en")

    page.click("nav.side >> text=Alerts")
    page.wait_for_url(f"{url}/console/alerts")
    assert page.locator("table.list tbody tr").count() >= 2
    shot("03-alerts-en")
    level = page.locator("table.list tbody .badge").first.get_attribute("class").split("lvl-")[1]
    page.select_option("select[name=level]", level)
    page.wait_for_url(f"**/console/alerts?*level={level}*")
    first_alert = page.locator("#alert-table tbody tr a").first
    first_alert.click()
    page.wait_for_url("**/console/alerts/*")
    assert page.locator("pre.explain").inner_text().strip()
    shot("04-alert-en")

    page.goto(f"{url}/console/events?run=1&q={host.split('.')[0]}")
    assert "events found" in page.locator("main").inner_text()
    shot("05-events-en")

    page.goto(f"{url}/console/rules?q=")
    page.locator("details.inline-test summary").first.click()
    page.locator("details.inline-test button.primary").first.click()
    page.wait_for_selector(".test-result .flash.ok", timeout=120_000)
    assert "matching events" in page.locator(".test-result").first.inner_text()
    shot("06-rules-test-en")

    page.goto(f"{url}/console/incidents")
    shot("07-incidents-en")
    page.click(f"a[href='/console/incidents/{incident_id}'] >> nth=0")
    page.wait_for_url(f"{url}/console/incidents/{incident_id}")
    assert page.locator("svg.graph circle").count() >= 3
    shot("08-incident-en")

    status_form = page.locator("[data-testid=status-form]")
    status_form.locator("select[name=value]").select_option("investigating")
    status_form.locator("input[name=reason]").fill(f"looking at {host}")
    status_form.locator("button").click()
    page.wait_for_url(f"**/console/incidents/{incident_id}?done=status")
    assert page.locator("[data-testid=incident-status]").inner_text() == "Investigating"

    note = page.locator("[data-testid=note-form]")
    note.locator("textarea").fill(f"checking with the owner of {host}")
    note.locator("button").click()
    page.wait_for_url(f"**/console/incidents/{incident_id}?done=note")
    assert f"checking with the owner of {host}" in page.locator("article.note").last.inner_text()

    page.goto(f"{url}/console/playbooks")
    waiting = page.locator("button[data-testid^=approve-]").count()
    assert waiting >= 1 and page.locator("[data-testid=pending-count]").inner_text() == str(waiting)
    shot("09-approvals-pending-en")
    page.goto(f"{url}/console/incidents/{incident_id}")
    page.locator("button[data-testid^=approve-]").first.click()
    page.wait_for_url("**done=approve")
    assert "The action was approved." in page.locator(".flash.ok").inner_text()
    with scene.api() as api:
        # the playbook watches the incident's first host as it was when the incident opened
        wait_for(lambda: any(e["value"].lower() in hosts for e in api.get("/api/v1/lists/watchlist").json()
                             ["entries"]), timeout=60)

    switch_language(page, "ja")
    assert page.locator("[data-testid=incident-status]").inner_text() == "調査中"
    assert "インシデント" in page.locator("nav.side").inner_text()
    assert "JST" in page.locator("main").inner_text()
    shot("10-incident-ja")
    page.goto(f"{url}/console/")
    assert page.locator("h1").first.inner_text() == "ダッシュボード"
    shot("11-dashboard-ja")
    page.goto(f"{url}/console/playbooks")
    shot("12-playbooks-ja")

    page.goto(f"{url}/console/incidents/{incident_id}")
    with page.expect_download(timeout=120_000) as download_info:
        page.click("[data-testid=report-pdf-ja]")
    target = ARTIFACTS / f"{scene.name}-incident-{incident_id}-ja.pdf"
    download_info.value.save_as(str(target))
    assert target.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    text = "".join(p.extract_text() or "" for p in PdfReader(str(target)).pages)
    assert any(h in text.lower() for h in hosts)
    assert "インシデント" in text

    page.click("nav.side button.link")  # log out
    page.wait_for_url("**/console/login")
    assert page.locator("button[type=submit]").inner_text() == "Log in"
    japanese = page.context.browser.new_context(locale="ja-JP", viewport={"width": 1440, "height": 900},
                                                extra_http_headers={"Accept-Language": "ja-JP,ja;q=0.9"})
    try:  # before login, the page follows the browser's language
        other = japanese.new_page()
        other.goto(f"{url}/console/incidents/{incident_id}")
        assert "/console/login" in other.url
        assert other.locator("button[type=submit]").inner_text() == "ログイン"
        other.screenshot(path=str(ARTIFACTS / f"{scene.name}-13-login-ja.png"), full_page=True)
    finally:
        japanese.close()
    assert not errors, errors
