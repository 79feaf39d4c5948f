"""An incident's timeline merges its alerts, the stored events behind them (read from the lake by id),
its changes and its notes, in time order with readable summaries."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases import workflow
from mamori.cases.timeline import RAW_LIMIT, entry_dict, timeline
from mamori.store.lake import Lake

AddAlert = Callable[..., int]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def stored_lake(root: Path) -> Lake:
    lake = Lake(root / "lake", fsync=False)
    frame = pl.DataFrame({
        "_time": [T0 - timedelta(seconds=30), T0 - timedelta(seconds=10), T0],
        "_source": ["winjson"] * 3, "_host": ["WS01"] * 3, "_uid": ["e1", "e2", "unrelated"],
        "_origin": ["t"] * 3, "_offset": [1, 2, 3], "_raw": ["{...}", "x" * (RAW_LIMIT + 50), "{}"],
        "EventID": ["4688", "4688", "4624"], "CommandLine": ["cmd /c whoami", None, None],
    }).with_columns(pl.col("_time").dt.cast_time_unit("ns"))
    lake.write(frame, 0, 3)
    return lake


def test_the_timeline_holds_events_alerts_changes_and_notes_in_time_order(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    lake = stored_lake(tmp_path)
    alert_id = add_alert(rule="Whoami Execution", event_uids=["e1", "e2"])
    with case_sessions.begin() as session:
        incident_id = workflow.open_incident(session, [alert_id], "alice").id
        workflow.set_status(session, incident_id, "investigating", "bob")
        workflow.add_note(session, incident_id, "talked to the user", "bob")
    with case_sessions() as session:
        entries = timeline(session, lake, incident_id)
    assert [e.kind for e in entries] == ["event", "event", "alert", "change", "change", "note"]
    first_event = entries[0]
    assert first_event.summary == "winjson on WS01 EventID 4688: cmd /c whoami"
    assert first_event.detail["alert_id"] == alert_id
    assert entries[1].detail["_raw"].endswith("…") and len(entries[1].detail["_raw"]) == RAW_LIMIT + 1
    assert entries[2].summary == "[high] Whoami Execution on WS01"
    assert entries[3].summary == "alice: opened the incident with 1 alert(s) (opened by alice)"
    assert entries[4].summary == "bob: status new → investigating"
    assert entries[5].summary == "bob: talked to the user"
    assert entry_dict(entries[4])["detail"]["field"] == "status"
    assert all(a.time <= b.time for a, b in itertools.pairwise(entries))


def test_the_timeline_can_leave_the_events_out(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    lake = stored_lake(tmp_path)
    alert_id = add_alert(event_uids=["e1"])
    with case_sessions.begin() as session:
        incident_id = workflow.open_incident(session, [alert_id], "alice").id
    with case_sessions() as session:
        assert [e.kind for e in timeline(session, lake, incident_id, with_events=False)] == ["alert", "change"]
