"""The runner subscribed to a CaseBus: it never blocks the publisher, changes incidents through the
cases workflow, tells the bus, and does not loop on its own changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from playbook_testing import HttpSink
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases import workflow
from mamori.cases.events import CaseBus, CaseEvent
from mamori.cases.playbooks import list_entries, list_runs
from mamori.cases.playbooks.model import Library
from mamori.cases.playbooks.runner import PlaybookRunner
from mamori.cases.records import Incident, IncidentChange
from mamori.store.records import Alert


def _open_incident(sessions: sessionmaker[Session]) -> dict[str, object]:
    when = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    with sessions.begin() as session:
        alert = Alert(rule_id="0d894093-71bc-43c3-8c4d-ecfc28dcf5d9", rule_title="LSASS Memory Dump", level="high",
                      tags=["attack.credential_access", "attack.t1003.001"], first_seen=when, last_seen=when,
                      host="WS-HR-07", user="tanaka", ip="203.0.113.45", dedup_key="lsass-ws-hr-07")
        session.add(alert)
        session.flush()
        incident = workflow.open_incident(session, [alert.id], "analyst-sato", title="LSASS のダンプ")
        return workflow.incident_dict(incident)


def _wait(done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_runner_on_the_bus_escalates_once_and_only_opted_in_playbooks_see_its_change(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(
        escalate=f"""
            name: escalate
            trigger: {{events: [incident.created, incident.updated], level: {{at_least: high}},
                      rule_ids: [0d894093-71bc-43c3-8c4d-ecfc28dcf5d9]}}
            actions:
              - {{name: page, type: webhook, url: "{http_sink.url}/page"}}
              - {{name: raise, type: set_severity, severity: critical}}
            """,
        watch=f"""
            name: watch-escalated
            trigger: {{events: [incident.updated], on_playbook_changes: true}}
            conditions: {{all: [{{path: changes.severity.new, equals: critical}}]}}
            actions:
              - {{name: watch, type: add_to_list, list: watchlist, entity_kind: host,
                 value: "{{{{ incident.entities.host | first }}}}", reason: "自動エスカレーション"}}
              - {{name: tell, type: webhook, url: "{http_sink.url}/watch",
                 body: {{changes: "{{{{ event.changes.severity.old }}}}->{{{{ event.changes.severity.new }}}}"}}}}
            """,
        ignore="""
            name: ignores-playbook-changes
            trigger: {events: [incident.updated]}
            actions:
              - {name: mark, type: set_status, status: investigating}
            """)
    bus = CaseBus()
    runner = PlaybookRunner(sessions, library, poll_seconds=0.05)
    runner.subscribe(bus)
    runner.start()
    http_sink.gate = threading.Event()  # the webhook server holds its answers until released
    try:
        incident = _open_incident(sessions)
        bus.publish(CaseEvent(kind="incident.created", incident=incident, actor="analyst-sato"))

        def escalation_waits_on_the_server() -> bool:
            with sessions() as session:
                runs = list_runs(session, playbook="escalate")
            return len(runs) == 1 and runs[0]["actions"][0]["started_at"] is not None

        _wait(escalation_waits_on_the_server)
        # the worker is stuck inside the webhook; publishing still returns at once (queued)
        bus.publish(CaseEvent(kind="alert.updated", alert={"id": 1, "level": "low"}))
        assert http_sink.received == []
        http_sink.gate.set()

        def settled() -> bool:
            with sessions() as session:
                runs = list_runs(session)
            return len(runs) == 2 and all(r["status"] == "succeeded" for r in runs) and runner.idle()

        _wait(settled)
        time.sleep(0.3)  # room for any (wrong) further run to start
        with sessions() as session:
            runs = list_runs(session)
            watched = list_entries(session, "watchlist")
            stored = session.get(Incident, incident["id"])
            trail = session.scalars(select(IncidentChange).where(IncidentChange.field == "severity")).all()
    finally:
        runner.stop()
    assert len(runs) == 2, [(r["playbook"], r["event_kind"], r["event_actor"]) for r in runs]
    assert {(r["playbook"], r["event_kind"], r["event_actor"]) for r in runs} == {
        ("escalate", "incident.created", "analyst-sato"),
        ("watch-escalated", "incident.updated", "playbook:escalate")}
    assert stored is not None and stored.severity == "critical" and stored.status == "new"
    assert [(c.actor, c.old_value, c.new_value) for c in trail] == [("playbook:escalate", "high", "critical")]
    assert [(e["entity_kind"], e["value"], e["added_by"]) for e in watched] == [
        ("host", "ws-hr-07", "playbook:watch-escalated")]  # the cases room keeps host names lower-cased
    assert sorted(r.path for r in http_sink.received) == ["/page", "/watch"]
    assert next(r.body for r in http_sink.received if r.path == "/watch") == {"changes": "high->critical"}


def test_open_incident_and_set_status_actions_go_through_the_workflow(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    when = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    with sessions.begin() as session:
        alert = Alert(rule_id="rule-psexec", rule_title="PsExec サービスのインストール", level="critical",
                      tags=["attack.lateral_movement"], first_seen=when, last_seen=when, host="SRV-FILE-01",
                      dedup_key="psexec-srv-file-01")
        session.add(alert)
        session.flush()
        alert_id = alert.id
    library = write_playbooks(open="""
        name: open-on-critical
        trigger: {events: [alert.created], level: {exact: critical}}
        actions:
          - {name: open, type: open_incident, title: "横展開の疑い: {{ alert.entities.host }}"}
          - {name: investigate, type: set_status, status: investigating,
             incident_id: "{{ steps.open.incident.id }}"}
          - {name: again, type: set_status, status: investigating, incident_id: "{{ steps.open.incident.id }}"}
        """)
    bus = CaseBus()
    seen: list[CaseEvent] = []
    bus.subscribe(seen.append)
    runner = PlaybookRunner(sessions, library)
    runner.subscribe(bus)
    alert_payload = {"id": alert_id, "level": "critical", "rule_id": "rule-psexec",
                     "entities": {"host": "SRV-FILE-01"}}
    (run_id,) = runner.start_runs(CaseEvent(kind="alert.created", alert=alert_payload))
    runner.advance(run_id)
    with sessions() as session:
        (run,) = list_runs(session)
        incident = session.scalars(select(Incident)).one()
        changes = session.scalars(select(IncidentChange).where(IncidentChange.field == "status")).all()
    assert run["status"] == "succeeded", run
    assert incident.title == "横展開の疑い: SRV-FILE-01" and incident.status == "investigating"
    assert [(c.actor, c.old_value, c.new_value) for c in changes] == [("playbook:open-on-critical", "new",
                                                                     "investigating")]
    assert run["actions"][2]["output"]["changed"] is False  # already there: left alone, not a failure
    assert [(e.kind, e.actor) for e in seen] == [("incident.created", "playbook:open-on-critical"),
                                                 ("incident.updated", "playbook:open-on-critical")]
    assert seen[1].changes == {"status": {"old": "new", "new": "investigating"}}
