"""Turn flattened Windows events into an event batch (shared by the EVTX and JSON readers)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from mamori.events import schema
from mamori.events.frame import build_frame
from mamori.sources.windows_event import FlatEvent


def parse_times(texts: Sequence[str | None]) -> pl.Series:
    """Parse ISO 8601 / Windows time texts (``2020-10-05T20:43:58.351744Z``, ``2020-10-05 20:43:58.350``,
    with or without a zone) into UTC nanosecond datetimes; unparsable ones become null."""
    series = pl.Series(schema.TIME, texts, dtype=pl.Utf8)
    fast = series.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ns", time_zone="UTC", strict=False)
    if fast.null_count() == series.null_count():
        return fast
    cleaned = series.str.strip_chars().str.replace(r"\s*UTC$", "").str.replace(" ", "T").str.replace(r"Z$", "+00:00")
    zoned = cleaned.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="ns", time_zone="UTC", strict=False)
    naive = cleaned.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="ns", strict=False).dt.replace_time_zone("UTC")
    return fast.fill_null(zoned).fill_null(naive).alias(schema.TIME)


def windows_frame(
    events: Sequence[FlatEvent],
    times: Sequence[str | None],
    *,
    source: str,
    origin: str | Sequence[str],
    offsets: Sequence[int],
    raws: Sequence[str],
) -> pl.DataFrame:
    """Build a batch from flattened Windows events: host from ``Computer``, time from the event."""
    frame = build_frame(
        events,
        source=source,
        origin=origin,
        offsets=offsets,
        times_ns=[None] * len(events),
        hosts=[e.get("Computer") for e in events],
        raws=raws,
    )
    return frame.with_columns(parse_times(times))
