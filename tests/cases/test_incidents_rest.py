"""The incidents REST API served by uvicorn in this process (the real application and service over a
temporary data folder, so the test can listen on the service's case bus):
filters and paging, roles, opening an incident from alerts, error codes, and every change published on
the case bus with the caller as actor."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from mamori.api.app import create_app
from mamori.cases.events import CaseEvent
from mamori.config import Settings
from mamori.service.launch import seed_tokens
from mamori.service.runtime import Service
from mamori.store.records import Alert


@dataclass
class Api:
    client: httpx.Client
    service: Service
    tokens: dict[str, str]
    published: list[CaseEvent]

    def as_role(self, role: str) -> dict[str, str]:
        """The authorization header of a role's token."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def alert(self, host: str, level: str = "low") -> int:
        """A committed alert nobody groups (low level, its own host)."""
        when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with self.service.sessions.begin() as session:
            alert = Alert(rule_id="r", rule_title=f"Odd logon on {host}", level=level, tags=[], first_seen=when,
                          last_seen=when, host=host, user=None, event_uids=[], dedup_key=host)
            session.add(alert)
            session.flush()
            return alert.id


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    data = tmp_path / "data"
    tokens = seed_tokens(data)
    settings = Settings(data_dir=data, port=0, syslog_udp_port=-1, syslog_tcp_port=-1, print_token=False)
    app = create_app(settings)
    service: Service = app.state.service
    published: list[CaseEvent] = []
    service.cases_bus.subscribe(published.append)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Api(client, service, tokens, published)
    finally:
        server.should_exit = True
        thread.join(60)


def test_an_analyst_opens_an_incident_from_alerts_and_it_is_published(api: Api) -> None:
    first, second = api.alert("WS-A"), api.alert("WS-B", level="medium")
    answer = api.client.post("/api/v1/incidents", json={"alert_ids": [first, second], "title": "Odd logons"},
                             headers=api.as_role("analyst"))
    assert answer.status_code == 201
    body = answer.json()
    assert (body["title"], body["severity"], body["alert_count"]) == ("Odd logons", "medium", 2)
    assert [a["id"] for a in body["alerts"]] == [first, second]
    created = [e for e in api.published if e.kind == "incident.created" and e.actor == "analyst-user"]
    assert len(created) == 1 and created[0].incident is not None and created[0].incident["id"] == body["id"]
    again = api.client.post("/api/v1/incidents", json={"alert_ids": [first]}, headers=api.as_role("analyst"))
    assert again.status_code == 409
    assert f"alert {first} is in incident {body['id']}" in again.json()["detail"]
    unknown = api.client.post("/api/v1/incidents", json={"alert_ids": [9999]}, headers=api.as_role("analyst"))
    assert unknown.status_code == 404
    viewer = api.client.post("/api/v1/incidents", json={"alert_ids": [first]}, headers=api.as_role("viewer"))
    assert viewer.status_code == 403


def test_a_patch_is_published_with_the_user_as_actor_and_the_changes(api: Api) -> None:
    opened = api.client.post("/api/v1/incidents", json={"alert_ids": [api.alert("WS-C")]},
                             headers=api.as_role("analyst")).json()
    api.published.clear()
    answer = api.client.patch(f"/api/v1/incidents/{opened['id']}",
                              json={"status": "false_positive", "reason": "backup job", "severity": "informational"},
                              headers=api.as_role("analyst"))
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["severity"]) == ("false_positive", "informational")
    [event] = [e for e in api.published if e.actor == "analyst-user"]  # the worker publishes as "system"
    assert (event.kind, event.actor) == ("incident.updated", "analyst-user")
    assert event.changes["status"] == {"old": "new", "new": "false_positive"}
    assert event.changes["severity"] == {"old": "low", "new": "informational"}
    assert event.changes["reason"] == "backup job"
    assert event.incident is not None and event.incident["status_reason"] == "backup job"
    assert [c["field"] for c in answer.json()["changes"]] == ["created", "severity", "status"]


def test_a_refused_patch_changes_nothing_and_says_what_is_allowed(api: Api) -> None:
    opened = api.client.post("/api/v1/incidents", json={"alert_ids": [api.alert("WS-D")]},
                             headers=api.as_role("analyst")).json()
    api.published.clear()
    refused = api.client.patch(f"/api/v1/incidents/{opened['id']}", json={"owner": "viewer-user", "status": "new"},
                               headers=api.as_role("analyst"))
    assert refused.status_code == 409
    assert "already new" in refused.json()["detail"]
    after = api.client.get(f"/api/v1/incidents/{opened['id']}", headers=api.as_role("viewer")).json()
    assert after["owner"] is None
    assert [e for e in api.published if e.actor == "analyst-user"] == []
    empty = api.client.patch(f"/api/v1/incidents/{opened['id']}", json={}, headers=api.as_role("analyst"))
    assert empty.status_code == 422


def test_lists_filter_by_status_severity_and_owner_and_page(api: Api) -> None:
    ids = [api.client.post("/api/v1/incidents", json={"alert_ids": [api.alert(f"WS-L{n}")]},
                           headers=api.as_role("analyst")).json()["id"] for n in range(3)]
    api.client.patch(f"/api/v1/incidents/{ids[0]}", json={"owner": "analyst-user", "status": "investigating"},
                     headers=api.as_role("analyst"))
    viewer = api.as_role("viewer")
    def listed(**params: str) -> list[int]:
        return [i["id"] for i in api.client.get("/api/v1/incidents", params=params, headers=viewer).json()["incidents"]]
    assert listed(status="investigating") == [ids[0]]
    assert listed(owner="analyst-user") == [ids[0]]
    assert listed(status="new") == [ids[2], ids[1]]
    assert listed(severity="low") == [ids[2], ids[1], ids[0]]
    assert listed(status="new,investigating") == [ids[2], ids[1], ids[0]]
    api.client.patch(f"/api/v1/incidents/{ids[1]}", json={"status": "resolved"}, headers=api.as_role("analyst"))
    assert listed(status="open") == [ids[2], ids[0]]
    assert listed(severity="high,critical") == []
    page = api.client.get("/api/v1/incidents", params={"limit": 1, "offset": 1}, headers=viewer).json()
    assert (page["total"], [i["id"] for i in page["incidents"]]) == (3, [ids[1]])
    assert listed(since="2030-01-01T00:00:00Z") == []
    assert api.client.get("/api/v1/incidents", params={"since": "yesterday"}, headers=viewer).status_code == 422
    assert api.client.get("/api/v1/incidents", headers={}).status_code == 401


def test_unknown_incidents_and_evidence_of_another_incident_are_not_found(api: Api) -> None:
    first = api.client.post("/api/v1/incidents", json={"alert_ids": [api.alert("WS-E1")]},
                            headers=api.as_role("analyst")).json()["id"]
    second = api.client.post("/api/v1/incidents", json={"alert_ids": [api.alert("WS-E2")]},
                             headers=api.as_role("analyst")).json()["id"]
    evidence = api.client.post(f"/api/v1/incidents/{first}/evidence", files={"file": ("a.txt", b"a")},
                               headers=api.as_role("analyst")).json()
    viewer = api.as_role("viewer")
    assert api.client.get(f"/api/v1/incidents/{second}/evidence/{evidence['id']}", headers=viewer).status_code == 404
    assert api.client.get("/api/v1/incidents/999", headers=viewer).status_code == 404
    assert api.client.get("/api/v1/incidents/999/timeline", headers=viewer).status_code == 404
    assert api.client.patch("/api/v1/incidents/999", json={"owner": "x"},
                            headers=api.as_role("analyst")).status_code == 404
    assert api.client.post(f"/api/v1/incidents/{first}/notes", json={"text": "hi"}, headers=viewer).status_code == 403
