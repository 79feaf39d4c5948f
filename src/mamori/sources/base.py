"""What every log-source reader gives back: event batches, plus the records it could not read.

A reader is a plain function ``read(path, options) -> Iterator[ReadResult]``: it streams the file
in batches (bounded memory), never stops on a bad record, and reports each bad record as a
``ReadProblem`` naming the file and the line or offset, so it can be quarantined and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

BATCH_ROWS = 50_000  # rows per batch a reader yields: big enough for vector work, small enough for memory


@dataclass(frozen=True)
class ReadOptions:
    """Settings a reader may honour: text encoding, the zone of times that carry none, the year of
    syslog lines that carry none, and the batch size."""

    encoding: str | None = None  # None: detect (UTF-8, then Shift_JIS/CP932)
    default_timezone: str = "UTC"
    default_year: int | None = None
    batch_rows: int = BATCH_ROWS


@dataclass(frozen=True)
class ReadProblem:
    """A record a reader could not use: where it is (``path:line`` or ``path@offset``), why, and its text."""

    where: str
    reason: str
    raw: str = ""
    fatal: bool = False  # True when the rest of the file could not be read either (truncated EVTX)


@dataclass
class ReadResult:
    """One batch of events from a reader, and the problems met while reading it."""

    frame: pl.DataFrame
    problems: list[ReadProblem] = field(default_factory=list)


Reader = Callable[[Path, ReadOptions], Iterator[ReadResult]]
Sniffer = Callable[[bytes, str], bool]  # (first bytes of the file, file name) -> is it mine?


@dataclass(frozen=True)
class SourceSpec:
    """A log source Mamori reads: its name (the ``_source`` value), a one-line description, a sniffer
    for auto-detection, the reader, and how sure a positive sniff is (higher wins)."""

    name: str
    description: str
    read: Reader
    sniff: Sniffer
    priority: int = 50
