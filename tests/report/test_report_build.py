"""Building a report from a real records database: an incident opened on alerts through the cases
workflow, assigned, moved to investigating, with a note, an evidence file and a playbook action run."""

from __future__ import annotations

import hashlib

import pytest
from report_fixtures import EVIDENCE_BYTES, HOSTILE_NOTE, T0
from sqlalchemy.orm import Session, sessionmaker

from mamori.errors import MamoriError
from mamori.report import build, render_html

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
