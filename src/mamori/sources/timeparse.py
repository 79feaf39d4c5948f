"""Turn the many ways logs write time into one: UTC nanoseconds, in bulk over a column.

Each function takes a Utf8 Series and returns a ``Datetime("ns", "UTC")`` Series of the same
length (null where the text is not a time). Times that carry no zone are read in a default zone
(``Asia/Tokyo`` for JST devices); syslog times without a year take the current year, or the year
before when that would put them more than a day in the future (year rollover).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

UTC_NS = pl.Datetime("ns", "UTC")

ISO_ZONED = ("%Y-%m-%dT%H:%M:%S%.f%#z",)
ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f",)
# ISO 8601 text as services write it: ``T`` or a space, at most nine fraction digits, ``Z``, an offset or no
# zone, no other blank
_PLAIN_ISO = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?$"


def _empty(values: pl.Series) -> pl.Series:
    return pl.Series(values.name, [None] * len(values), dtype=UTC_NS)


def _naive_to_utc(parsed: pl.Series, default_tz: str) -> pl.Series:
    return (
        parsed.cast(pl.Datetime("ns"))
        .dt.replace_time_zone(default_tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def with_formats(values: pl.Series, zoned: Sequence[str], naive: Sequence[str], default_tz: str) -> pl.Series:
    """Parse ``values`` with the first format that fits each one: zone-aware formats first, then
    zone-less ones read in ``default_tz``."""
    result = _empty(values)
    text = values.cast(pl.Utf8)
    for fmt in zoned:
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="ns", time_zone="UTC")
        result = result.fill_null(parsed.cast(UTC_NS))
    for fmt in naive:
        if result.null_count() == 0:
            break
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="ns")
        result = result.fill_null(_naive_to_utc(parsed, default_tz))
    return result.alias(values.name)


def parse_epoch(values: pl.Series) -> pl.Series:
    """Parse epoch numbers in seconds, milliseconds, microseconds or nanoseconds (told apart by size)."""
    text = values.cast(pl.Utf8).str.strip_chars()
    frame = pl.DataFrame({"t": text})
    t = pl.col("t")
    # whole-text tests, not extracts: a regex that captures costs far more than one that only matches
    integer = pl.when(t.str.contains(r"^\d{9,19}$")).then(t)
    digits = integer.str.len_chars()
    as_int = integer.cast(pl.Int64, strict=False)
    ns = (
        pl.when(digits <= 11).then(as_int * 1_000_000_000)
        .when(digits <= 14).then(as_int * 1_000_000)
        .when(digits <= 17).then(as_int * 1_000)
        .otherwise(as_int)
    )
    out = frame.select(ns.cast(UTC_NS).alias("t")).to_series()
    if out.null_count() > text.null_count():  # decimal seconds (never all digits, so never an integer above)
        decimal = pl.when(t.str.contains(r"^\d{9,11}\.\d+$")).then(t)
        from_decimal = (decimal.cast(pl.Float64, strict=False) * 1e6).round(0).cast(pl.Int64) * 1000
        out = out.fill_null(frame.select(from_decimal.cast(UTC_NS).alias("t")).to_series())
    return out.alias(values.name)


def parse_iso(values: pl.Series, default_tz: str = "UTC") -> pl.Series:
    """Parse ISO 8601 times (``T`` or space, any fraction, ``Z``/``+09:00``/``+0900`` or no zone)."""
    text = values.cast(pl.Utf8)
    if text.str.contains(_PLAIN_ISO).all():  # of the rewrites below, only the first would change a thing
        text = text.str.replace(" ", "T", literal=True)
        return with_formats(text, ISO_ZONED, (*ISO_NAIVE, "%Y-%m-%dT%H:%M", "%Y-%m-%d"), default_tz).alias(values.name)
    text = text.str.strip_chars().str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
    text = text.str.replace(r"(\.\d{9})\d+", "${1}").str.replace(r" ?(UTC|GMT)$", "Z")
    return with_formats(text, ISO_ZONED, (*ISO_NAIVE, "%Y-%m-%dT%H:%M", "%Y-%m-%d"), default_tz).alias(values.name)


def parse_auto(values: pl.Series, default_tz: str = "UTC") -> pl.Series:
    """Parse a column that may hold ISO 8601 text or epoch numbers."""
    iso = parse_iso(values, default_tz)
    if iso.null_count() == values.null_count():
        return iso
    return iso.fill_null(parse_epoch(values))


def roll_back_future(times: pl.Series, now: dt.datetime | None = None) -> pl.Series:
    """Move times more than a day ahead of ``now`` one year back: a December line read in January."""
    reference = now or dt.datetime.now(dt.UTC)
    limit = pl.lit(reference + dt.timedelta(days=1)).cast(UTC_NS)
    frame = pl.DataFrame({"t": times})
    out = frame.select(
        pl.when(pl.col("t") > limit).then(pl.col("t").dt.offset_by("-1y")).otherwise(pl.col("t")).alias("t")
    )
    return out.to_series().alias(times.name)


def parse_yearless(
    values: pl.Series,
    fmt: str = "%b %d %H:%M:%S%.f",
    default_tz: str = "UTC",
    year: int | None = None,
    now: dt.datetime | None = None,
) -> pl.Series:
    """Parse times that carry no year (``Jun 14 15:16:01``, RFC 3164): the year is ``year`` or the
    current one with rollover, the zone ``default_tz``."""
    reference = now or dt.datetime.now(dt.UTC)
    chosen = year or reference.year
    text = values.cast(pl.Utf8).str.replace_all(r"\s+", " ").str.strip_chars()
    dated = pl.Series(values.name, [None] * len(values), dtype=pl.Utf8) if text.len() == 0 else (
        pl.DataFrame({"t": text}).select(pl.lit(f"{chosen} ") + pl.col("t")).to_series()
    )
    parsed = with_formats(dated, (), (f"%Y {fmt}",), default_tz)
    if year is None:
        parsed = roll_back_future(parsed, reference)
    return parsed.alias(values.name)
