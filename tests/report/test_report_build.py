"""Building a report from a real records database: an incident opened on alerts through the cases
workflow, assigned, moved to investigating, with a note, an evidence file and a playbook action run."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from report_fixtures import EVIDENCE_BYTES, HOSTILE_NOTE, T0, write_lake_events
from sqlalchemy.orm import Session, sessionmaker

from mamori.errors import MamoriError
from mamori.report import build, render_html
from mamori.report.build import MAX_TIMELINE_ALERTS, alert_lines
from mamori.report.model import AlertFacts

Db = tuple[sessionmaker[Session], int]


def test_report_holds_the_incident_its_alerts_and_its_trail(report_db: Db) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "ja")
    assert data.incident.id == incident_id
    assert (data.incident.status, data.incident.owner) == ("investigating", "sato")
    assert data.incident.first_seen == T0
    assert [a.rule_title for a in data.alerts][1] == "LSASS Memory Dump via Procdump"
    kinds = [item.kind for item in data.timeline]
    assert kinds.count("alert") == 3 and kinds.count("note") == 1 and "action" in kinds
    assert [i.time for i in data.timeline] == sorted(i.time for i in data.timeline)
    changed = {(i.change_field, i.new) for i in data.timeline if i.kind == "change"}
    assert ("status", "investigating") in changed and ("owner", "sato") in changed
    assert not [i for i in data.timeline if i.kind == "change" and i.change_field == "note"]  # the note itself shows
    assert next(i.text for i in data.timeline if i.kind == "note") == HOSTILE_NOTE


def test_actions_taken_list_workflow_changes_and_playbook_runs(report_db: Db) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "en")
    fields = [a.change_field for a in data.actions if a.kind == "change"]
    assert {"status", "owner", "evidence"} <= set(fields)
    assert "created" not in fields and "note" not in fields
    run = next(a for a in data.actions if a.kind == "playbook")
    assert (run.playbook, run.action, run.result, run.decided_by) == ("isolate-host", "block source ip", "succeeded",
                                                                        "sato")
    html = render_html(data, "ja")
    assert "プレイブック isolate-host：アクション block source ip（list）" in html
    assert "成功 (sato が承認)" in html


def test_evidence_entities_and_attack_come_from_the_records(report_db: Db) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "ja")
    assert [(e.filename, e.sha256, e.size) for e in data.evidence] == [
        ("lsass-dump-抜粋.txt", hashlib.sha256(EVIDENCE_BYTES).hexdigest(), len(EVIDENCE_BYTES))]
    hosts = {r.value.lower(): r.alert_count for r in data.entities if r.kind == "host"}
    assert hosts == {"ws01": 2, "fs02": 1}
    assert [m.tag for m in data.attack] == ["execution", "credential_access", "lateral_movement"]
    assert [t.id for m in data.attack for t in m.techniques] == ["T1059.001", "T1003.001", "T1021.002"]
    html = render_html(data, "ja")
    assert hashlib.sha256(EVIDENCE_BYTES).hexdigest() in html
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_unknown_incident_is_an_error_naming_it(report_db: Db) -> None:
    sessions, _ = report_db
    with sessions() as session, pytest.raises(MamoriError, match="no incident 999"):
        build(session, None, 999, "ja")


def test_timeline_carries_the_stored_events_behind_the_alerts(report_db: Db, tmp_path: Path) -> None:
    sessions, incident_id = report_db
    lake = write_lake_events(tmp_path / "lake")
    with sessions() as session:
        full = build(session, lake, incident_id, "ja")
        capped = build(session, lake, incident_id, "ja", max_events=1)
    events = [i for i in full.timeline if i.kind == "event"]
    assert len(events) == 3 and full.omitted_events == 0
    assert any("procdump.exe -ma lsass.exe" in e.text for e in events)
    assert any("請求書.ps1" in e.text for e in events)
    assert [i.kind for i in capped.timeline].count("event") == 1 and capped.omitted_events == 2
    assert "ほか 2 件のイベントは省略しています" in render_html(capped, "ja")


def test_sla_clocks_follow_the_incident_severity(report_db: Db) -> None:
    sessions, incident_id = report_db
    with sessions() as session:
        data = build(session, None, incident_id, "en")
    clocks = {c.kind: c for c in data.sla}
    assert set(clocks) == {"acknowledge", "resolve"}
    assert clocks["acknowledge"].met_at is not None and clocks["resolve"].met_at is None
    assert clocks["acknowledge"].target_seconds < clocks["resolve"].target_seconds
    summary = render_html(data, "en").split('id="summary"')[1].split("</section>")[0]
    assert "SLA: acknowledgement met" in summary and "SLA: resolution" in summary


def test_many_alerts_become_one_timeline_line_per_rule() -> None:
    facts = [AlertFacts(i, f"Rule {i % 3}", "high" if i % 3 else "critical", T0 + timedelta(minutes=i),
                        T0 + timedelta(minutes=i), f"WS{i % 7:02d}", "alice", None, 2) for i in range(1, 101)]
    assert len(alert_lines(facts[:MAX_TIMELINE_ALERTS])) == MAX_TIMELINE_ALERTS
    lines = alert_lines(facts)
    assert [line.text.split(" ×")[0] for line in lines] == ["Rule 1", "Rule 2", "Rule 0"]
    first = lines[0]
    assert first.time == T0 + timedelta(minutes=1) and first.level == "high"
    assert first.text.startswith("Rule 1 ×68 (WS01, alice, WS04, WS00, …)")
    assert lines[2].level == "critical"
