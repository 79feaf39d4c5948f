"""Stored events read back by id: every day partition the range touches, or only the files written
since a given time when the caller knows its events are recent."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from mamori.cases.event_lookup import events_by_uid
from mamori.store.lake import Lake

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def _batch(uid: str, image: str) -> pl.DataFrame:
    return pl.DataFrame({
        "_time": [T0], "_source": ["sysmon"], "_host": ["WS01"], "_uid": [uid], "_origin": ["test"],
        "_offset": [1], "_raw": ["{}"], "Image": [image],
    }).with_columns(pl.col("_time").dt.cast_time_unit("ns"))


def test_only_files_written_since_the_given_time_are_read(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    old_file, = lake.write(_batch("u-old", "a.exe"), 0, 1)
    lake.write(_batch("u-new", "b.exe"), 1, 2)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    os.utime(old_file, (an_hour_ago.timestamp() - 60,) * 2)
    every = events_by_uid(lake, ["u-old", "u-new"], T0, T0, columns=["Image"])
    assert {e["_uid"] for e in every} == {"u-old", "u-new"}
    recent = events_by_uid(lake, ["u-old", "u-new"], T0, T0, columns=["Image"], stored_since=an_hour_ago)
    assert [(e["_uid"], e["Image"]) for e in recent] == [("u-new", "b.exe")]
    naive = events_by_uid(lake, ["u-old", "u-new"], T0, T0, stored_since=an_hour_ago.replace(tzinfo=None))
    assert [e["_uid"] for e in naive] == ["u-new"]  # a time without zone is UTC, as the records keep it
