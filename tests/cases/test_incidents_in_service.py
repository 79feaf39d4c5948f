"""End to end through a real ``mamori serve`` child: ingested events raise an alert, the grouping worker
opens an incident visible at /api/v1/incidents, and a status change made with PATCH shows in its
timeline beside the alert and the stored events, in the audit log and in the MTTA figures."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from service_testing import Running, process_event, running_service, wait_for, whoami_rule
from sqlalchemy import select

from mamori.config import load_settings
from mamori.store.db import make_engine, session_factory
from mamori.store.records import AuditEntry

RULE_ID = "0c1a0000-0000-4000-8000-0000000000c1"


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The child with the Whoami rule loaded, shared by this module."""
    with running_service(tmp_path_factory.mktemp("cases-service"), {"whoami.yml": whoami_rule(RULE_ID)}) as running:
        yield running


def event(seq: int, command: str, host: str) -> dict[str, Any]:
    """A process-creation event by hanako."""
    return process_event(seq, command, host, "hanako")


def test_ingested_events_become_an_incident_whose_status_change_shows_in_the_timeline(child: Running) -> None:
    with child.client("analyst") as client, child.client("viewer") as viewer:
        accepted = client.post("/api/v1/ingest", json=[event(1, "cmd /c whoami", "WS-CASE1"),
                                                      event(2, "whoami /groups", "WS-CASE1")])
        assert accepted.status_code == 202
        listed = wait_for(lambda: viewer.get("/api/v1/incidents", params={"status": "new"}).json()["incidents"])
        assert len(listed) == 1
        summary = listed[0]
        assert summary["severity"] == "high"
        assert summary["entities"]["host"] == ["ws-case1"]
        assert summary["tactics"] == ["discovery"] and summary["techniques"] == ["T1033"]
        assert summary["sla"]["acknowledge_breached"] is False
        incident_id = summary["id"]

        detail = viewer.get(f"/api/v1/incidents/{incident_id}").json()
        assert [a["rule_title"] for a in detail["alerts"]] == ["Whoami Execution"]
        event_uids = detail["alerts"][0]["event_uids"]
        assert len(event_uids) == 2

        assert viewer.patch(f"/api/v1/incidents/{incident_id}", json={"status": "investigating"}).status_code == 403
        refused = client.patch(f"/api/v1/incidents/{incident_id}", json={"status": "false_positive"})
        assert refused.status_code == 409
        assert "needs a reason" in refused.json()["detail"]
        changed = client.patch(f"/api/v1/incidents/{incident_id}",
                               json={"status": "investigating", "owner": "analyst-user"})
        assert changed.status_code == 200
        assert (changed.json()["status"], changed.json()["owner"]) == ("investigating", "analyst-user")
        assert changed.json()["acknowledged_at"] is not None

        entries = viewer.get(f"/api/v1/incidents/{incident_id}/timeline").json()["entries"]
        kinds = [e["kind"] for e in entries]
        assert kinds.count("alert") == 1
        assert {e["detail"]["_uid"] for e in entries if e["kind"] == "event"} == set(event_uids)
        status_lines = [e for e in entries if e["kind"] == "change" and e["detail"]["field"] == "status"]
        assert [(e["detail"]["actor"], e["detail"]["old"], e["detail"]["new"]) for e in status_lines] == [
            ("analyst-user", "new", "investigating")]
        assert "new → investigating" in status_lines[0]["summary"]

        note = client.post(f"/api/v1/incidents/{incident_id}/notes", json={"text": "whoami run from a script"})
        assert note.status_code == 201
        content = b"suspicious script\x00\x01"
        uploaded = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                               files={"file": ("../../etc/run.ps1", content, "text/plain")})
        assert uploaded.status_code == 201
        assert uploaded.json()["sha256"] == hashlib.sha256(content).hexdigest()
        assert uploaded.json()["filename"] == "run.ps1"
        download = viewer.get(f"/api/v1/incidents/{incident_id}/evidence/{uploaded.json()['id']}")
        assert download.content == content
        assert download.headers["x-content-sha256"] == hashlib.sha256(content).hexdigest()
        assert (child.data_dir / "evidence" / hashlib.sha256(content).hexdigest()).read_bytes() == content

        entries = viewer.get(f"/api/v1/incidents/{incident_id}/timeline", params={"events": "false"}).json()
        assert [e["summary"] for e in entries["entries"] if e["kind"] == "note"] == [
            "analyst-user: whoami run from a script"]

        figures = viewer.get("/api/v1/incidents/metrics").json()
        assert figures["overall"]["acknowledged"] == 1
        assert figures["by_severity"]["high"]["mtta_seconds"] >= 0
        assert figures["overall"]["mttr_seconds"] is None
        grouped = [line for line in viewer.get("/metrics").text.splitlines()
                   if line.startswith("mamori_cases_alerts_grouped_total ")]
        assert len(grouped) == 1 and float(grouped[0].split()[1]) >= 1

    engine = make_engine(load_settings(None, env={}, data_dir=child.data_dir).db_url)  # read only: no migration
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target == f"incident {incident_id}"))
            assert set(actions) >= {"incident.status", "incident.assign", "incident.note", "incident.evidence"}
    finally:
        engine.dispose()
