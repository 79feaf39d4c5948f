"""Times from every source become UTC correctly: zone-less times in the configured zone (JST),
syslog lines without a year, year rollover, epochs of any unit, ISO 8601 variants."""

from __future__ import annotations

import datetime as dt

import polars as pl

from mamori.sources.timeparse import parse_auto, parse_epoch, parse_iso, parse_yearless


def _iso(series: pl.Series) -> list[str | None]:
    return [None if v is None else v.strftime("%Y-%m-%dT%H:%M:%S.%f") for v in series.to_list()]


def test_syslog_times_without_year_take_the_year_and_zone_given() -> None:
    out = parse_yearless(pl.Series(["Jun  4 15:16:01", "Dec 31 23:59:59.5"]), default_tz="Asia/Tokyo", year=2024)
    assert _iso(out) == ["2024-06-04T06:16:01.000000", "2024-12-31T14:59:59.500000"]


def test_a_december_line_read_in_january_rolls_back_a_year() -> None:
    now = dt.datetime(2025, 1, 2, 0, 0, tzinfo=dt.UTC)
    out = parse_yearless(pl.Series(["Dec 31 23:59:59", "Jan  1 00:00:01"]), now=now)
    assert _iso(out) == ["2024-12-31T23:59:59.000000", "2025-01-01T00:00:01.000000"]


def test_iso_times_with_and_without_zones() -> None:
    out = parse_iso(pl.Series(["2019-06-24T09:21:27.3694184Z", "2024-01-07T19:54:41.712927+0000",
                               "2024-01-05 10:00:00+09:00", "2020-09-29T08:59:26", "not a time", None]),
                    "Asia/Tokyo")
    assert _iso(out) == ["2019-06-24T09:21:27.369418", "2024-01-07T19:54:41.712927", "2024-01-05T01:00:00.000000",
                         "2020-09-28T23:59:26.000000", None, None]


def test_epochs_in_seconds_milliseconds_microseconds_and_nanoseconds() -> None:
    out = parse_epoch(pl.Series(["1617710462", "1685465626150", "1717200000123456", "1637681708541881380",
                                 "1320279566.452687", "12"]))
    assert out.cast(pl.Int64).to_list()[:4] == [1617710462_000000000, 1685465626150_000000,
                                               1717200000123456_000, 1637681708541881380]
    assert _iso(out)[4] == "2011-11-03T00:19:26.452687"
    assert out[5] is None


def test_mixed_iso_and_epoch_column() -> None:
    assert _iso(parse_auto(pl.Series(["1685465626150", "2020-09-29T08:59:26Z"]))) == [
        "2023-05-30T16:53:46.150000", "2020-09-29T08:59:26.000000"]


def test_a_local_time_that_does_not_exist_is_null_not_an_error() -> None:
    out = parse_iso(pl.Series(["2024-03-10T02:30:00"]), "America/New_York")
    assert out.to_list() == [None]
