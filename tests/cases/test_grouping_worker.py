"""The grouping worker over a real records database: alerts become incidents, the watermark survives a
restart without losing or double-counting alerts, and every change is published on the case bus."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cases_testing import T0
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseBus, CaseEvent
from mamori.cases.grouping import load_rules
from mamori.cases.records import Incident, IncidentAlert, IncidentChange
from mamori.cases.timeline import change_summary
from mamori.cases.worker import GroupingWorker
from mamori.cases.workflow import TransitionRefused, set_status
from mamori.store.lake import Lake
from mamori.store.records import Alert, utcnow

AddAlert = Callable[..., int]


def make_worker(sessions: sessionmaker[Session], root: Path) -> tuple[GroupingWorker, list[CaseEvent]]:
    bus = CaseBus()
    seen: list[CaseEvent] = []
    bus.subscribe(seen.append)
    return GroupingWorker(sessions, Lake(root / "lake"), bus, load_rules()), seen


def incidents_of(sessions: sessionmaker[Session]) -> dict[int, list[int]]:
    with sessions() as session:
        rows = session.execute(select(IncidentAlert.incident_id, IncidentAlert.alert_id)
                               .order_by(IncidentAlert.alert_id)).all()
    out: dict[int, list[int]] = {}
    for incident_id, alert_id in rows:
        out.setdefault(incident_id, []).append(alert_id)
    return out


def test_alerts_sharing_a_host_become_one_incident_and_others_their_own(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    first = add_alert(host="WS01", user="alice", minutes=0)
    second = add_alert(host="ws01", user="SYSTEM", minutes=30, level="medium")
    elsewhere = add_alert(host="WS09", user="SYSTEM", minutes=31)
    worker, seen = make_worker(case_sessions, tmp_path)
    assert worker.run_once() == 3
    groups = sorted(incidents_of(case_sessions).values())
    assert groups == [[first, second], [elsewhere]]
    kinds = [e.kind for e in seen]
    assert kinds.count("alert.created") == 3
    assert kinds.count("incident.created") == 2
    assert kinds.count("incident.updated") == 1
    joined = next(e for e in seen if e.kind == "incident.updated")
    assert joined.incident is not None and joined.incident["alert_count"] == 2
    assert "host=ws01" in joined.changes["reason"]
    with case_sessions() as session:
        change = session.scalars(select(IncidentChange).where(IncidentChange.field == "alert")).one()
        assert (change.actor, change.new_value, change.reason) == ("system", str(second), "shares host=ws01")
        assert change_summary(change) == f"system: alert {second} joined (shares host=ws01)"


def test_a_low_alert_alone_opens_nothing_but_is_still_published(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    add_alert(level="low", host="WS05")
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert incidents_of(case_sessions) == {}
    assert [e.kind for e in seen] == ["alert.created"]
    assert seen[0].incident is None


def test_a_restart_neither_loses_nor_double_counts_alerts(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    add_alert(host="WS01", minutes=0)
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.run_once()
    add_alert(host="WS01", minutes=5)
    restarted, seen_after = make_worker(case_sessions, tmp_path)
    assert restarted.run_once() == 1
    assert restarted.run_once() == 0
    assert [e.kind for e in seen_after] == ["alert.created", "incident.updated"]
    with case_sessions() as session:
        incident = session.scalars(select(Incident)).one()
        assert incident.alert_count == 2
        assert session.scalar(select(IncidentAlert.id).where(IncidentAlert.alert_id == 2)) is not None


def test_an_alert_that_grows_updates_its_incident(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    alert_id = add_alert(level="medium", host="WS01")
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.run_once()
    with case_sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id == alert_id).values(level="critical", updated_at=utcnow()))
    seen.clear()
    assert worker.run_once() == 1
    assert [e.kind for e in seen] == ["alert.updated", "incident.updated"]
    assert seen[1].changes["severity"] == {"old": "medium", "new": "critical"}
    with case_sessions() as session:
        change = session.scalars(select(IncidentChange).where(IncidentChange.field == "severity")).one()
        assert (change.actor, change.old_value, change.new_value) == ("system", "medium", "critical")


def test_alerts_of_one_incident_changing_together_refresh_it_once(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    ids = [add_alert(level="medium", host="WS01") for _ in range(3)]
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert list(incidents_of(case_sessions).values()) == [ids]
    with case_sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id.in_(ids)).values(level="high", updated_at=utcnow()))
    seen.clear()
    assert worker.run_once() == 3
    assert [e.kind for e in seen] == ["alert.updated"] * 3 + ["incident.updated"]
    assert {e.alert["id"] for e in seen[:3] if e.alert is not None} == set(ids)
    assert seen[3].changes["severity"] == {"old": "medium", "new": "high"}
    assert seen[3].changes["reason"] == f"alerts {ids[0]}, {ids[1]}, {ids[2]} changed"


def test_a_full_round_of_updates_alone_waits_for_the_next_poll_while_new_alerts_go_on_at_once(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    # alerts hit by every batch change all the time: rounds of updates only must not spin the worker
    ids = [add_alert(level="medium", host="WS01") for _ in range(3)]
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.batch = 3
    assert worker.run_once() == 3 and worker.new_in_last_round == 3  # a full round of new alerts: go on
    with case_sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id.in_(ids)).values(level="high", updated_at=utcnow()))
    assert worker.run_once() == 3 and worker.new_in_last_round == 0  # a full round of updates: wait


def test_alerts_do_not_join_a_resolved_incident(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    add_alert(host="WS01")
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.run_once()
    with case_sessions.begin() as session:
        set_status(session, 1, "resolved", "alice")
    add_alert(host="WS01", minutes=1)
    worker.run_once()
    assert sorted(incidents_of(case_sessions).values()) == [[1], [2]]


def test_an_alert_bridging_two_new_incidents_merges_them(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    add_alert(host="WS01", user="alice", minutes=0)
    add_alert(host="WS02", user="bob", minutes=5)
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert len(incidents_of(case_sessions)) == 2
    bridge = add_alert(host="WS02", user="alice", minutes=10)
    worker.run_once()
    assert incidents_of(case_sessions) == {1: [1, 2, bridge]}
    with case_sessions() as session:
        merged = session.get(Incident, 2)
        assert merged is not None
        assert (merged.status, merged.merged_into) == ("resolved", 1)
        assert merged.status_reason == "merged into incident 1"
        target = session.get(Incident, 1)
        assert target is not None and target.entities["host"] == ["ws01", "ws02"]
        assert target.entities["user"] == ["alice", "bob"]
    with pytest.raises(TransitionRefused, match="merged into incident 1"), case_sessions.begin() as session:
        set_status(session, 2, "investigating", "alice")


def test_an_alert_changing_again_does_not_read_its_first_events_from_the_lake_again(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mamori.cases import worker as worker_module
    from mamori.cases.event_lookup import events_by_uid as real

    lookups: list[list[str]] = []

    def counted(lake: Lake, uids: list[str], *args: object, **kwargs: object) -> list[dict[str, object]]:
        lookups.append(list(uids))
        return real(lake, uids, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_module, "events_by_uid", counted)
    first = add_alert(host="WS01", event_uids=["u-1"])
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert lookups and all(uids == ["u-1"] for uids in lookups)
    read_for_first = len(lookups)
    for level in ("high", "critical"):
        with case_sessions.begin() as session:
            session.execute(update(Alert).where(Alert.id == first).values(level=level, updated_at=utcnow()))
        assert worker.run_once() == 1
    assert len(lookups) == read_for_first  # the changes read nothing
    add_alert(host="WS02", event_uids=["u-2"])
    worker.run_once()
    assert all(uids == ["u-2"] for uids in lookups[read_for_first:])


def test_alerts_on_a_parent_and_its_child_process_are_linked_through_the_lake(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    import polars as pl

    lake = Lake(tmp_path / "lake", fsync=False)
    later = T0 + timedelta(hours=3)  # beyond the host window (2 h), within the process-tree window (4 h)
    frame = pl.DataFrame({
        "_time": [T0, later], "_source": ["sysmon", "sysmon"], "_host": ["WS01", "WS01"],
        "_uid": ["u-parent", "u-child"], "_origin": ["test", "test"], "_offset": [1, 2], "_raw": ["{}", "{}"],
        "ProcessGuid": ["{11111111-aaaa-0000-0000-000000000001}", "{11111111-aaaa-0000-0000-000000000002}"],
        "ParentProcessGuid": ["{11111111-aaaa-0000-0000-000000000000}", "{11111111-aaaa-0000-0000-000000000001}"],
    }).with_columns(pl.col("_time").dt.cast_time_unit("ns"))
    lake.write(frame, 0, 2)
    parent = add_alert(host="WS01", user="SYSTEM", event_uids=["u-parent"])
    child = add_alert(host="WS01", user="SYSTEM", minutes=180, event_uids=["u-child"])
    worker = GroupingWorker(case_sessions, lake, CaseBus(), load_rules())
    worker.run_once()
    assert sorted(incidents_of(case_sessions).values()) == [[parent, child]]
    with case_sessions() as session:
        link = session.scalars(select(IncidentAlert).where(IncidentAlert.alert_id == child)).one()
        # the host is outside its window, so the process tree alone links them
        assert link.link_reason == "shares process_tree=guid:11111111-aaaa-0000-0000-000000000001"
        incident = session.get(Incident, link.incident_id)
        assert incident is not None
        assert len(incident.entities["process_tree"]) == 3


def test_an_alert_that_cannot_be_grouped_is_passed_over_without_blocking_the_others(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    poisoned = add_alert(host="WS01")
    with case_sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id == poisoned).values(tags=5))  # not a list: grouping fails
    healthy = add_alert(host="WS02")
    worker, seen = make_worker(case_sessions, tmp_path)
    assert worker.run_once() == 2
    assert (worker.failed, list(incidents_of(case_sessions).values())) == (1, [[healthy]])
    assert [e.alert["id"] for e in seen if e.alert is not None] == [healthy]
    assert worker.run_once() == 0


def test_a_new_alert_committed_with_an_old_timestamp_is_still_found(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    add_alert(host="WS01")
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.run_once()
    late = add_alert(host="WS01", minutes=1)
    with case_sessions.begin() as session:  # as a pipeline batch whose time was taken long before its commit
        stamp = utcnow() - timedelta(minutes=10)
        session.execute(update(Alert).where(Alert.id == late).values(created_at=stamp, updated_at=stamp))
    seen.clear()
    assert worker.run_once() == 1
    assert [e.kind for e in seen] == ["alert.created", "incident.updated"]
    assert incidents_of(case_sessions) == {1: [1, late]}


def test_a_low_alert_seen_before_the_incident_is_pulled_in_when_one_opens_on_its_host(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    early = add_alert(level="low", host="WS01", user="SYSTEM", minutes=0)
    too_early = add_alert(level="low", host="WS01", user="SYSTEM", minutes=-180)
    common_user_only = add_alert(level="low", host="WS07", user="SYSTEM", minutes=1)
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert incidents_of(case_sessions) == {}
    seen.clear()
    opener = add_alert(level="high", host="ws01", user="SYSTEM", minutes=5)
    worker.run_once()
    assert incidents_of(case_sessions) == {1: [early, opener]}
    assert [e.kind for e in seen] == ["alert.created", "incident.created", "alert.updated"]
    created = seen[1].incident
    assert created is not None and created["alert_count"] == 2
    pulled = seen[2]
    assert pulled.alert is not None and pulled.alert["id"] == early
    assert pulled.changes == {"incident_id": 1, "reason": "shares host=ws01"}
    assert too_early not in incidents_of(case_sessions)[1] and common_user_only not in incidents_of(case_sessions)[1]


def test_alerts_older_than_the_first_start_are_grouped_without_being_published(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path) -> None:
    old = add_alert(host="WS01")
    worker, seen = make_worker(case_sessions, tmp_path)
    worker.start()
    try:
        fresh = add_alert(host="WS01", minutes=1)
        deadline = time.monotonic() + 30
        while worker.handled < 2:
            assert time.monotonic() < deadline, "the worker did not handle both alerts"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert incidents_of(case_sessions) == {1: [old, fresh]}
    assert [(e.kind, e.alert["id"] if e.alert else None) for e in seen] == [("alert.created", fresh),
                                                                         ("incident.updated", None)]


def test_an_alert_that_grew_reads_only_its_new_first_events_from_the_files_stored_since_its_update(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mamori.cases import worker as worker_module

    calls: list[tuple[list[str], object]] = []

    def recorded(lake: Lake, uids: list[str], *args: object, **kwargs: object) -> list[dict[str, object]]:
        calls.append((list(uids), kwargs.get("stored_since")))
        return [{"_uid": u} for u in uids]

    monkeypatch.setattr(worker_module, "events_by_uid", recorded)
    grown = add_alert(host="WS01", event_uids=["u-1"])
    with case_sessions.begin() as session:  # made an hour ago
        session.execute(update(Alert).where(Alert.id == grown).values(created_at=utcnow() - timedelta(hours=1)))
    worker, _ = make_worker(case_sessions, tmp_path)
    worker.run_once()
    assert [uids for uids, _ in calls] == [["u-1"]]
    updated = utcnow()
    with case_sessions.begin() as session:  # a later batch adds an event to it
        session.execute(update(Alert).where(Alert.id == grown).values(event_uids=["u-1", "u-2"], updated_at=updated))
    worker.run_once()
    uids, stored_since = calls[-1]
    assert uids == ["u-2"]  # u-1 was read before
    assert isinstance(stored_since, datetime)
    assert stored_since.replace(tzinfo=None) >= (updated - worker_module.RECENT_FILES).replace(tzinfo=None)


def test_a_round_longer_than_a_chunk_commits_chunk_by_chunk_with_the_same_incidents(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # short transactions leave the database to the pipeline between chunks; the grouping is the same
    monkeypatch.setattr("mamori.cases.worker.CHUNK_ALERTS", 2)
    same_host = [add_alert(host="WS01", minutes=n) for n in range(4)]
    elsewhere = add_alert(host="WS09", user="bob", minutes=5)
    worker, seen = make_worker(case_sessions, tmp_path)
    assert worker.run_once() == 5
    assert sorted(incidents_of(case_sessions).values()) == [same_host, [elsewhere]]
    assert [e.kind for e in seen].count("alert.created") == 5
    assert worker.run_once() == 0  # the watermark moved past every chunk
