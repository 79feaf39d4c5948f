"""Alerts' events handed from the pipeline to the grouping worker in memory: only the process-tree
fields are kept, as a lake look-up gives them, the oldest are forgotten beyond the capacity, and the
worker links alerts through them without reading a lake file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from cases_testing import T0
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseBus
from mamori.cases.grouping import load_rules
from mamori.cases.recent_events import RecentEvents
from mamori.cases.records import IncidentAlert
from mamori.cases.worker import GroupingWorker
from mamori.store.lake import Lake

PARENT = "{11111111-aaaa-0000-0000-000000000001}"
CHILD = "{11111111-aaaa-0000-0000-000000000002}"


def _batch(later: datetime) -> pl.DataFrame:
    return pl.DataFrame({
        "_time": [T0, later, T0], "_source": ["sysmon"] * 3, "_host": ["WS01", "WS01", "WS02"],
        "_uid": ["u-parent", "u-child", "u-other"], "_origin": ["test"] * 3, "_offset": [1, 2, 3],
        "_raw": ['{"secret": 1}'] * 3, "CommandLine": ["a.exe", "b.exe", None],
        "ProcessGuid": [PARENT, CHILD, None], "ParentProcessGuid": [None, PARENT, None],
    }).with_columns(pl.col("_time").dt.cast_time_unit("ns").dt.replace_time_zone("UTC"))


def test_a_batch_s_alert_events_are_kept_with_their_process_fields_only_as_a_lookup_gives_them() -> None:
    recent = RecentEvents()
    recent.remember_rows(_batch(T0 + timedelta(minutes=5)), ["u-child", "u-parent", "not-in-batch"])
    found = recent.recall(["u-parent", "u-child", "u-other", "not-in-batch"])
    assert sorted(found) == ["u-child", "u-parent"]
    assert found["u-child"] == {"_uid": "u-child", "_host": "WS01", "ProcessGuid": CHILD, "ParentProcessGuid": PARENT,
                                "_time": (T0 + timedelta(minutes=5)).astimezone(UTC).isoformat().replace("+00:00", "Z")}
    assert "ParentProcessGuid" not in found["u-parent"]  # empty fields left out, as the lake look-up does


def test_the_oldest_events_are_forgotten_beyond_the_capacity() -> None:
    recent = RecentEvents(capacity=2)
    recent.remember({"_uid": f"u-{n}", "_host": "WS01"} for n in range(3))
    recent.remember([{"_uid": "u-1", "_host": "WS01"}])  # remembered again: the newest now
    recent.remember([{"_uid": "u-3", "_host": "WS01"}])
    assert sorted(recent.recall([f"u-{n}" for n in range(4)])) == ["u-1", "u-3"]
    assert len(recent) == 2


def test_the_worker_links_parent_and_child_alerts_through_remembered_events_without_the_lake(
        case_sessions: sessionmaker[Session], add_alert: Callable[..., int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mamori.cases import worker as worker_module

    def no_lake(*args: object, **kwargs: object) -> list[dict[str, object]]:
        raise AssertionError("the lake was read for events the pipeline remembered")

    monkeypatch.setattr(worker_module, "events_by_uid", no_lake)
    recent = RecentEvents()
    recent.remember_rows(_batch(T0 + timedelta(hours=3)), ["u-parent", "u-child"])
    parent = add_alert(host="WS01", user="SYSTEM", event_uids=["u-parent"])
    child = add_alert(host="WS01", user="SYSTEM", minutes=180, event_uids=["u-child"])
    worker = GroupingWorker(case_sessions, Lake(tmp_path / "lake", fsync=False), CaseBus(), load_rules(),
                            recent=recent)
    worker.run_once()
    with case_sessions() as session:
        link = session.scalars(select(IncidentAlert).where(IncidentAlert.alert_id == child)).one()
        first = session.scalars(select(IncidentAlert).where(IncidentAlert.alert_id == parent)).one()
    assert link.incident_id == first.incident_id
    assert link.link_reason == f"shares process_tree=guid:{PARENT[1:-1]}"
