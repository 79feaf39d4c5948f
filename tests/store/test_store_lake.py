"""The event lake and the records database: partitions, exactly-once recovery, search, retention, migrations."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import inspect

from mamori.errors import MamoriError
from mamori.events.frame import build_frame
from mamori.store.db import make_engine, migrate
from mamori.store.lake import Lake, decode_parts, encode_parts
from mamori.store.query import EventQuery, search_events, stored_uids


def _frame(source: str, count: int, day: datetime, start: int = 0, **fields: str) -> pl.DataFrame:
    return build_frame([{"n": str(start + i), **fields} for i in range(count)], source=source, origin="o",
                       offsets=list(range(start, start + count)),
                       times_ns=[int(day.timestamp() * 1e9) + i for i in range(count)],
                       hosts=["h"] * count, raws=[f"raw text {start + i} {source}" for i in range(count)])


def test_batches_land_in_day_and_source_partitions_with_differing_columns(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    today = datetime.now(UTC)
    batch = pl.concat([_frame("winjson", 3, today, Image="a.exe"), _frame("syslog", 2, today - timedelta(days=1),
                                                                          program="sshd")], how="diagonal")
    lake.write(batch, 0, 5)
    assert sorted((f.day, f.source) for f in lake.files()) == [
        ((today - timedelta(days=1)).date().isoformat(), "syslog"), (today.date().isoformat(), "winjson")]
    page = search_events(lake, EventQuery(limit=10))
    assert page.total == 5
    assert {e.get("Image") for e in page.events} == {"a.exe", None}
    assert search_events(lake, EventQuery(fields={"program": "sshd"})).total == 2
    assert search_events(lake, EventQuery(text="3 WINJSON")).total == 0
    assert search_events(lake, EventQuery(text="2 winjson")).total == 1
    assert search_events(lake, EventQuery(source="syslog", since=today - timedelta(hours=1))).total == 0
    with pytest.raises(MamoriError, match="no stored event has a field"):
        search_events(lake, EventQuery(fields={"Nope": "1"}))


def test_a_batch_encoded_elsewhere_is_stored_as_the_same_files_with_rows_regrouped_by_partition(
        tmp_path: Path) -> None:
    today = datetime.now(UTC)
    batch = pl.concat([_frame("winjson", 2, today, Image="a.exe"), _frame("syslog", 2, today, program="sshd"),
                       _frame("winjson", 1, today, start=2, Image="b.exe")], how="diagonal")
    encoded = encode_parts(batch)
    assert encoded.order is not None and encoded.order.tolist() == [0, 1, 4, 2, 3]
    assert encoded.frame.get_column("_source").to_list() == ["winjson"] * 3 + ["syslog"] * 2
    assert [(p.day, p.source) for p in encoded.parts] == [(today.date().isoformat(), "winjson"),
                                                           (today.date().isoformat(), "syslog")]
    back = decode_parts(encoded.parts)
    assert back.get_column("_uid").to_list() == encoded.frame.get_column("_uid").to_list()
    assert "program" not in pl.read_parquet(io.BytesIO(encoded.parts[0].data)).columns  # empty there: left out
    here, there = Lake(tmp_path / "here", fsync=False), Lake(tmp_path / "there", fsync=False)
    here.write(batch, 0, 5)
    there.write_parts(encoded.parts, 0, 5)
    for mine, theirs in zip(here.files(), there.files(), strict=True):
        assert (mine.day, mine.source, mine.start, mine.end) == (theirs.day, theirs.source, theirs.start, theirs.end)
        assert pl.read_parquet(mine.path).equals(pl.read_parquet(theirs.path))


def test_a_batch_of_one_partition_keeps_its_row_order() -> None:
    encoded = encode_parts(_frame("syslog", 3, datetime.now(UTC)))
    assert encoded.order is None and len(encoded.parts) == 1


def test_files_of_an_uncommitted_range_are_discarded_so_a_replay_stores_once(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    now = datetime.now(UTC)
    lake.write(_frame("winjson", 3, now), 0, 4)
    lake.write(_frame("winjson", 3, now, start=3), 4, 9)  # written, then a crash before the commit
    assert lake.discard_from(4) == 1
    lake.write(_frame("winjson", 3, now, start=3), 4, 9)  # the replay
    uids = stored_uids(lake)
    assert len(uids) == len(set(uids)) == 6


def test_retention_removes_old_days_stored_long_ago_and_the_oldest_data_above_the_size_limit(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    now = datetime.now(UTC)
    lake.write(_frame("syslog", 5, now - timedelta(days=40)), 0, 1)
    lake.write(_frame("syslog", 5, now - timedelta(days=2)), 1, 2)
    lake.write(_frame("syslog", 5, now), 2, 3)
    old = next(f for f in lake.files() if f.start == 0).path
    stored_long_ago = (now - timedelta(days=31)).timestamp()
    os.utime(old, (stored_long_ago, stored_long_ago))
    assert lake.apply_retention(30) == 1
    assert len(lake.files()) == 2
    assert not old.parent.exists()  # the emptied partition folders go too
    newest = max(lake.files(), key=lambda f: f.start)
    assert lake.apply_retention(30, bytes_per_source=newest.path.stat().st_size) == 1
    assert [f.start for f in lake.files()] == [2]


def test_retention_keeps_old_events_stored_recently_until_their_own_retention_runs_out(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    now = datetime.now(UTC)
    lake.write(_frame("winevtx", 5, now - timedelta(days=2000)), 0, 1)  # a forensic import of 2021 logs
    assert lake.apply_retention(30) == 0
    assert lake.apply_retention(30, now=(now + timedelta(days=29)).timestamp()) == 0
    assert len(stored_uids(lake)) == 5
    assert lake.apply_retention(30, now=(now + timedelta(days=31)).timestamp()) == 1
    assert lake.files() == []


def test_a_source_keeps_its_own_retention_over_the_default(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    now = datetime.now(UTC)
    lake.write(_frame("fortigate", 5, now - timedelta(days=10)), 0, 1)
    lake.write(_frame("winevtx", 5, now - timedelta(days=100)), 1, 2)
    lake.write(_frame("syslog", 5, now - timedelta(days=100)), 2, 3)
    stored_long_ago = (now - timedelta(days=200)).timestamp()
    for item in lake.files():
        os.utime(item.path, (stored_long_ago, stored_long_ago))
    assert lake.apply_retention(30, days_by_source={"fortigate": 7, "winevtx": 365}) == 2
    assert {f.source for f in lake.files()} == {"winevtx"}


def test_migrations_create_every_table_and_run_again_harmlessly(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"users", "api_tokens", "alerts", "rule_settings", "quarantine", "service_state", "audit_log",
            "alembic_version"} <= tables
    engine.dispose()
