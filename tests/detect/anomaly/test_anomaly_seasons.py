"""Seasons on the organisation's clock: local office hours and workdays (Asia/Tokyo unless set) in the
volume and off-hours baselines, and explanations that give local times with the zone named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from mamori.detect.anomaly.off_hours import OffHoursDetector
from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.volume import PROCESSES_PER_HOST, VolumeDetector

TOKYO = ZoneInfo("Asia/Tokyo")
MONDAY = datetime(2026, 3, 2, tzinfo=TOKYO)  # local midnight


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(
        pl.col("_time").cast(pl.Datetime("ns", "UTC")), pl.Series("_uid", [f"e{i}" for i in range(len(rows))])
    )


def _processes(host: str, hour_start: datetime, n: int) -> list[dict[str, object]]:
    return [{"_time": hour_start + timedelta(seconds=10 * i), "_host": host, "EventID": "1",
             "Image": r"C:\Windows\System32\svchost.exe"} for i in range(n)]


def _logon(user: str, at: datetime) -> dict[str, object]:
    return {"_time": at, "_host": "ws01", "EventID": "4624", "TargetUserName": user}


def test_the_calendar_reads_utc_times_on_the_local_clock() -> None:
    calendar = Calendar()
    assert calendar.timezone == "Asia/Tokyo"
    frame = pl.DataFrame({"t": [datetime(2026, 3, 2, 0, 30, tzinfo=UTC), datetime(2026, 3, 6, 16, 0, tzinfo=UTC)]})
    seen = frame.select(
        calendar.hour(pl.col("t")).alias("hour"),
        calendar.office_hours(pl.col("t")).alias("office"),
        calendar.workday(pl.col("t")).alias("workday"),
    )
    # 00:30 UTC Monday is 09:30 in Tokyo; 16:00 UTC Friday is 01:00 on Saturday
    assert seen.rows() == [(9, True, True), (1, False, False)]
    utc = frame.select(Calendar("UTC").office_hours(pl.col("t"))).to_series().to_list()
    assert utc == [False, True]
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Tokio'"):
        Calendar("Asia/Tokio")


def test_volume_baselines_keep_weekends_apart_from_workdays() -> None:
    rows: list[dict[str, object]] = []
    for day in range(21):
        date = MONDAY + timedelta(days=day)
        busy = date.weekday() < 5
        for hour in range(9, 18):
            rows += _processes("ws01", date + timedelta(hours=hour), 150 if busy else 20)
    detector = VolumeDetector(PROCESSES_PER_HOST)
    detector.fit(_frame(rows))
    saturday = MONDAY + timedelta(days=26, hours=10)  # a workday's load on a Saturday morning
    found = detector.score(_frame(_processes("ws01", saturday, 150)))
    assert [(a.entity, a.observed, a.typical) for a in found] == [("ws01", 150.0, 20.0)]
    assert "weekends 08:00-19:00 Asia/Tokyo" in found[0].explanation.en
    assert "週末 8時〜19時（Asia/Tokyo）" in found[0].explanation.ja
    monday = MONDAY + timedelta(days=28, hours=10)
    assert detector.score(_frame(_processes("ws01", monday, 150))) == []


def test_off_hours_logons_are_judged_per_kind_of_day_and_explained_in_local_time() -> None:
    rows = []
    for day in range(21):
        date = MONDAY + timedelta(days=day)
        if date.weekday() < 5:
            rows.append(_logon("taro", date + timedelta(hours=9)))
            rows.append(_logon("hanako", date + timedelta(hours=9)))
        else:  # hanako also works weekend evenings, taro came in on one Saturday morning only
            rows += [_logon("hanako", date + timedelta(hours=22, minutes=m)) for m in (0, 10)]
    rows.append(_logon("taro", MONDAY + timedelta(days=5, hours=10)))
    detector = OffHoursDetector(min_logons=5)
    detector.fit(_frame(rows))
    saturday = MONDAY + timedelta(days=26)
    tuesday = MONDAY + timedelta(days=22)
    batch = [
        _logon("taro", saturday + timedelta(hours=9, minutes=30)),  # thin weekends: judged on all days: fine
        _logon("taro", saturday + timedelta(hours=3, minutes=12)),  # 03:12 in Tokyo: off hours
        _logon("hanako", saturday + timedelta(hours=22)),  # her weekend evenings
        _logon("hanako", tuesday + timedelta(hours=22)),  # not on a workday
    ]
    found = {(a.entity, int(a.observed)): a for a in detector.score(_frame(batch))}
    assert sorted(found) == [("hanako", 22), ("taro", 3)]
    assert "03:00-03:59 Asia/Tokyo" in found[("taro", 3)].explanation.en
    assert "03時台（Asia/Tokyo）" in found[("taro", 3)].explanation.ja
    assert "of their logons on workdays" in found[("hanako", 22)].explanation.en
    assert "平日の" in found[("hanako", 22)].explanation.ja
    detector.learn_benign(found[("taro", 3)])
    assert [a.entity for a in detector.score(_frame(batch))] == ["hanako"]
