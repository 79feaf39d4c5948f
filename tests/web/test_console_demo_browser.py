"""The same analyst walk on the demo: ``mamori demo``'s service with SigmaHQ's rules and its intrusion
scenario, plus a playbook that waits for approval, in a real browser. Skips without ../shared data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_flow import CHROMIUM, Scene, browser_page, pending_incident, walk
from mamori_testing import shared_data
from web_fixtures import APPROVAL_PLAYBOOK

from mamori.demo.run import DemoOptions, RunningDemo, start_demo

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDemo, Path]]:
    rules = shared_data("sigmahq", "rules")
    root = tmp_path_factory.mktemp("console-demo")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "watch-host.yaml").write_text(APPROVAL_PLAYBOOK, encoding="utf-8")
    data = root / "mamori-demo"
    running = start_demo(DemoOptions(data_dir=data, rules=(rules,), lang="en", timeout=300,
                                     extra_env={"MAMORI_PLAYBOOKS": str(root / "playbooks")}), lambda line: None)
    try:
        yield running, data
    finally:
        running.stop()


def test_an_analyst_works_the_demo_incident_from_login_to_pdf_report(demo: tuple[RunningDemo, Path]) -> None:
    running, data = demo
    result = running.result
    assert result.console_url is not None
    demo_incident = int(result.console_url.rsplit("/", 1)[1])
    scene = Scene(result.api_url, result.user, result.password, result.token, data, "demo")
    pending_incident(scene, demo_incident)
    with browser_page() as page:
        walk(page, scene, demo_incident)
