"""Build event batches (Polars DataFrames) from parsed records, the one shape every source yields."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl

from mamori.events import schema


def event_uid(source: str, origin: str, offset: int) -> str:
    """Return the stable id of an event: a hash of its source, origin and offset (idempotent replays)."""
    digest = hashlib.blake2b(f"{source}\x1f{origin}\x1f{offset}".encode(), digest_size=12)
    return digest.hexdigest()


def build_frame(
    records: Sequence[dict[str, str | None]],
    *,
    source: str,
    origin: str | Sequence[str],
    offsets: Sequence[int],
    times_ns: Sequence[int | None],
    hosts: Sequence[str | None],
    raws: Sequence[str],
) -> pl.DataFrame:
    """Turn parsed records (flat field -> string maps) into one event batch with the core columns.

    Fields missing from a record are null; every original field is a string column, as Sigma
    compares text. Core columns come first, in ``schema.CORE_COLUMNS`` order. ``origin`` is one
    origin for all records or one per record (a batch gathered from many files).
    """
    n = len(records)
    origins = [origin] * n if isinstance(origin, str) else list(origin)
    columns: dict[str, list[str | None]] = {}
    for i, record in enumerate(records):
        for key, value in record.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * n
            column[i] = value
    core = {
        schema.TIME: pl.Series(schema.TIME, times_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        schema.SOURCE: pl.Series(schema.SOURCE, [source] * n, dtype=pl.Utf8),
        schema.HOST: pl.Series(schema.HOST, hosts, dtype=pl.Utf8),
        schema.UID: pl.Series(
            schema.UID, [event_uid(source, g, o) for g, o in zip(origins, offsets, strict=True)], dtype=pl.Utf8
        ),
        schema.ORIGIN: pl.Series(schema.ORIGIN, origins, dtype=pl.Utf8),
        schema.OFFSET: pl.Series(schema.OFFSET, offsets, dtype=pl.Int64),
        schema.RAW: pl.Series(schema.RAW, raws, dtype=pl.Utf8),
    }
    fields = [pl.Series(name, values, dtype=pl.Utf8) for name, values in columns.items() if name not in core]
    return pl.DataFrame([*core.values(), *fields])


def empty_frame() -> pl.DataFrame:
    """Return an event batch with the core columns and no rows."""
    return pl.DataFrame(schema=schema.CORE_SCHEMA)


def concat_frames(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Stack batches whose field columns differ into one (missing fields become null)."""
    frames = [f for f in frames if f.height]
    if not frames:
        return empty_frame()
    return pl.concat(frames, how="diagonal_relaxed")
