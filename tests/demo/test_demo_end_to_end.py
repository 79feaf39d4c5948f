"""``mamori demo`` against a real ``mamori serve`` child with SigmaHQ's rules: the intrusion's alerts end up
in at most three incidents, no background alert is in any incident, and the console shows the incident."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mamori_testing import shared_data

from mamori.demo.run import DemoOptions, RunningDemo, console_shows, start_demo
from mamori.demo.scenario import STAGES


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDemo, list[str]]]:
    rules = shared_data("sigmahq", "rules")
    root = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    running = start_demo(DemoOptions(data_dir=root / "mamori-demo", rules=(rules,), lang="en", timeout=300),
                         lines.append)
    try:
        yield running, lines
    finally:
        running.stop()


def _get(running: RunningDemo, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {running.result.token}"}
    response = httpx.get(running.result.api_url + path, params=params, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def _alerts(running: RunningDemo) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = _get(running, "/api/v1/alerts", limit=1000, offset=len(out))
        out += page["alerts"]
        if len(out) >= page["total"]:
            return out


def _incident_of_alert(running: RunningDemo) -> dict[int, int]:
    """Alert id -> the (unmerged) incident holding it."""
    out: dict[int, int] = {}
    for incident in _get(running, "/api/v1/incidents", limit=1000)["incidents"]:
        if incident.get("merged_into"):
            continue
        for alert in _get(running, f"/api/v1/incidents/{incident['id']}")["alerts"]:
            assert alert["id"] not in out
            out[alert["id"]] = incident["id"]
    return out


def test_the_intrusion_is_in_at_most_three_incidents_and_the_background_in_none(
        demo: tuple[RunningDemo, list[str]]) -> None:
    running, _ = demo
    fed = running.result.fed
    alerts = _alerts(running)
    holder = _incident_of_alert(running)
    attack_incidents: set[int] = set()
    stages_seen: set[str] = set()
    assert alerts
    for alert in alerts:
        uids = set(alert["event_uids"])
        assert uids and uids <= fed.attack | fed.background, alert["rule_title"]
        if uids <= fed.background:
            assert alert["id"] not in holder, f"background alert {alert['rule_title']} is in an incident"
            continue
        assert uids <= fed.attack, f"alert {alert['rule_title']} mixes intrusion and background events"
        assert alert["id"] in holder, f"intrusion alert {alert['rule_title']} ({alert['level']}) is in no incident"
        attack_incidents.add(holder[alert["id"]])
        stages_seen |= {fed.stage_of[u] for u in uids}
    assert 1 <= len(attack_incidents) <= 3
    assert stages_seen == set(STAGES)
    assert running.result.loose_alerts == 0  # what the demo told its user agrees


def test_the_demo_says_where_to_look_and_the_console_shows_the_incident(
        demo: tuple[RunningDemo, list[str]]) -> None:
    running, lines = demo
    result = running.result
    assert result.console_url is not None and "/console/incidents/" in result.console_url
    incident_id = int(result.console_url.rsplit("/", 1)[1])
    top = _get(running, f"/api/v1/incidents/{incident_id}")
    assert console_shows(result.api_url, result.user, result.password, incident_id, top["title"]) is True
    assert console_shows(result.api_url, result.user, "wrong-password", incident_id, top["title"]) is False
    text = "\n".join(lines)
    assert "Incident visible in the console" in text
    hosts = set(top["entities"].get("host", []))
    assert "ws-sato01.corp.example.jp" in hosts
    assert top["severity"] in ("high", "critical")
    assert any(t.endswith("credential_access") for t in top["tactics"])

