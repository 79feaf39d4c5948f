"""The console in a real browser (Debian Chromium through playwright) against a real ``mamori serve`` seeded
with events that fire a test rule and a playbook that waits for approval: the whole analyst walk."""

from __future__ import annotations

import pytest
from browser_flow import CHROMIUM, Scene, browser_page, pending_incident, walk
from web_fixtures import PASSWORDS, Console

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed")


def test_an_analyst_works_an_incident_from_login_to_pdf_report(console: Console) -> None:
    scene = Scene(console.url, "analyst-user", PASSWORDS["analyst"], console.tokens["analyst"], console.data_dir,
                  "seeded")
    incident_id = pending_incident(scene)
    with browser_page() as page:
        walk(page, scene, incident_id)
