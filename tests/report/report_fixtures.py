"""Report test data: a hand-built ReportData, and a real incident written through the cases workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from mamori.report.attack_map import attack_mapping
from mamori.report.model import (
    ActionTaken,
    AlertFacts,
    EntityRow,
    EvidenceItem,
    IncidentFacts,
    ReportData,
    TimelineItem,
)
from mamori.store.lake import Lake
from mamori.store.records import Alert

T0 = datetime(2026, 11, 29, 5, 5, tzinfo=UTC)  # 2026年11月29日 14:05 JST
HOSTILE_NOTE = "LSASS のダンプを確認。<script>alert('x')</script> & 続報待ち"
EVIDENCE_BYTES = "procdump の出力（抜粋）\n".encode() * 50

ALERTS = (
    # (minutes after T0, rule title, level, host, user, ip, tags)
    (0, "Suspicious Encoded PowerShell Command Line", "high", "WS01", "CORP\\tanaka", None,
     ["attack.execution", "attack.t1059.001"]),
    (9, "LSASS Memory Dump via Procdump", "critical", "WS01", "CORP\\tanaka", None,
     ["attack.credential_access", "attack.t1003.001"]),
    (31, "Remote Service Creation via SMB", "high", "FS02", "CORP\\tanaka", "10.0.0.5",
     ["attack.lateral_movement", "attack.t1021.002"]),
)

# events behind the alerts: (uid, minutes after T0 of the alert they belong to, host, command line)
LAKE_EVENTS = (
    ("u-ps-1", 0, "WS01", "powershell.exe -enc SQBFAFgA"),
    ("u-ps-2", 0, "WS01", "powershell.exe -nop -w hidden -c 請求書.ps1"),
    ("u-lsass", 9, "WS01", "procdump.exe -ma lsass.exe C:\\Temp\\l.dmp"),
)


def write_lake_events(root: Path) -> Lake:
    """A lake holding the events behind the sample alerts (Sysmon process creations)."""
    import polars as pl

    lake = Lake(root, fsync=False)
    frame = pl.DataFrame({
        "_time": [T0 + timedelta(minutes=m, seconds=i) for i, (_, m, _, _) in enumerate(LAKE_EVENTS)],
        "_source": ["sysmon"] * len(LAKE_EVENTS), "_host": [h for _, _, h, _ in LAKE_EVENTS],
        "_uid": [u for u, _, _, _ in LAKE_EVENTS], "_origin": ["test"] * len(LAKE_EVENTS),
        "_offset": list(range(len(LAKE_EVENTS))), "_raw": ["{}"] * len(LAKE_EVENTS),
        "EventID": [1] * len(LAKE_EVENTS), "CommandLine": [c for _, _, _, c in LAKE_EVENTS],
    }).with_columns(pl.col("_time").dt.cast_time_unit("ns"))
    lake.write(frame, 0, len(LAKE_EVENTS))
    return lake


def sample_report() -> ReportData:
    """A report built by hand: two alerts, a status change, a note with markup, evidence, ATT&CK rows."""
    alerts = tuple(AlertFacts(i + 1, title, level, T0 + timedelta(minutes=m), T0 + timedelta(minutes=m), host, user,
                              ip, 1, tuple(tags)) for i, (m, title, level, host, user, ip, tags) in enumerate(ALERTS))
    incident = IncidentFacts(id=7, title="LSASS Memory Dump via Procdump on WS01", severity="critical",
                             status="investigating", status_reason="", owner="sato",
                             created_at=T0 + timedelta(minutes=10),
                             updated_at=T0 + timedelta(minutes=40), acknowledged_at=T0 + timedelta(minutes=20),
                             resolved_at=None, first_seen=T0, last_seen=T0 + timedelta(minutes=31), alert_count=3,
                             severity_basis="highest alert level: critical")
    timeline = (
        TimelineItem(T0, "alert", "Suspicious Encoded PowerShell Command Line (host=WS01)", level="high"),
        TimelineItem(T0 + timedelta(minutes=9), "alert", "LSASS Memory Dump via Procdump (host=WS01)",
                     level="critical"),
        TimelineItem(T0 + timedelta(minutes=20), "change", "", "sato", "status", "new", "investigating"),
        TimelineItem(T0 + timedelta(minutes=25), "note", HOSTILE_NOTE, "sato"),
    )
    actions = (ActionTaken(T0 + timedelta(minutes=20), "change", "sato", "status", "new", "investigating"),
               ActionTaken(T0 + timedelta(minutes=22), "playbook", "sato", playbook="isolate-host", action="block ip",
                           action_type="list", result="succeeded", approval="approved", decided_by="sato"))
    entities = (EntityRow("host", "WS01", 2), EntityRow("host", "FS02", 1), EntityRow("user", "CORP\\tanaka", 3),
                EntityRow("ip", "10.0.0.5", 1))
    evidence = (EvidenceItem("lsass-dump-抜粋.txt", "ab" * 32, 123_456, "sato", T0 + timedelta(minutes=30)),)
    return ReportData(incident=incident, generated_at=T0 + timedelta(hours=1), alerts=alerts, timeline=timeline,
                      entities=entities, attack=attack_mapping([a.tags for a in alerts]), actions=actions,
                      evidence=evidence)


def populate_incident(sessions: sessionmaker[Session], evidence_dir: Path) -> int:
    """Write three alerts, open an incident on them, assign it, move it to investigating, add a note, an
    evidence file and a playbook action run; return the incident's id."""
    from mamori.cases import workflow
    from mamori.cases.playbooks.records import ActionRun, PlaybookRun

    with sessions.begin() as session:
        ids = []
        for minutes, title, level, host, user, ip, tags in ALERTS:
            when = T0 + timedelta(minutes=minutes)
            alert = Alert(rule_id=f"rule-{minutes}", rule_title=title, level=level, tags=tags, first_seen=when,
                          last_seen=when, host=host, user=user, ip=ip, dedup_key=f"{title}-{host}",
                          event_uids=[uid for uid, at, *_ in LAKE_EVENTS if at == minutes])
            session.add(alert)
            session.flush()
            ids.append(alert.id)
        incident_id = workflow.open_incident(session, ids, "analyst-user").id
    with sessions.begin() as session:
        workflow.assign(session, incident_id, "sato", "analyst-user")
        workflow.set_status(session, incident_id, "investigating", "sato")
        workflow.add_note(session, incident_id, HOSTILE_NOTE, "sato")
        workflow.add_evidence(session, incident_id, "lsass-dump-抜粋.txt", EVIDENCE_BYTES, "sato", evidence_dir)
        run = PlaybookRun(playbook="isolate-host", event_kind="incident.updated", incident_id=incident_id,
                          status="succeeded")
        session.add(run)
        session.flush()
        session.add(ActionRun(run_id=run.id, position=0, name="block source ip", type="list", status="succeeded",
                              approval="approved", decided_by="sato", started_at=T0 + timedelta(minutes=40),
                              finished_at=T0 + timedelta(minutes=41)))
    return incident_id
