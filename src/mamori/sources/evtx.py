"""Windows event log files (``.evtx``) through the ``evtx`` package (a Rust parser).

A truncated or corrupted file yields every record that can be read, plus a problem naming the file
and the record where reading failed. Records from many small files are gathered into one batch, as
building a batch has a fixed cost that would otherwise dominate on folders of small files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from mamori.sources.base import ReadOptions, ReadProblem, ReadResult, SourceSpec
from mamori.sources.windows_event import FlatEvent, flatten_xml_json
from mamori.sources.windows_frame import windows_frame

EVTX_MAGIC = b"ElfFile\x00"
MAX_CONSECUTIVE_ERRORS = 1000
SOURCE = "evtx"


@dataclass
class _Pending:
    """Records parsed but not yet turned into a batch."""

    events: list[FlatEvent] = field(default_factory=list)
    times: list[str | None] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    def flush(self) -> ReadResult:
        frame = windows_frame(self.events, self.times, source=SOURCE, origin=self.origins,
                              offsets=self.offsets, raws=self.raws)
        result = ReadResult(frame, self.problems)
        self.__init__()  # type: ignore[misc]
        return result


def _parse_into(path: Path, pending: _Pending, batch_rows: int) -> Iterator[None]:
    """Parse one file into ``pending``; yields whenever ``pending`` holds ``batch_rows`` events, so the
    caller can flush a full batch."""
    from evtx import PyEvtxParser

    origin = str(path)
    truncation = _truncation(path)
    if truncation:
        pending.problems.append(ReadProblem(origin, truncation))
    try:
        parser = PyEvtxParser(origin)
    except (OSError, RuntimeError) as exc:
        pending.problems.append(ReadProblem(origin, f"not a readable EVTX file: {exc}", fatal=True))
        return
    iterator = parser.records_json()
    errors_in_row = 0
    position = 0
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # the parser reports a damaged record or chunk and moves on
            errors_in_row += 1
            pending.problems.append(ReadProblem(f"{origin}@record {position + 1}",
                                                f"unreadable EVTX record: {exc}"))
            if errors_in_row >= MAX_CONSECUTIVE_ERRORS:
                pending.problems.append(ReadProblem(origin, "too many damaged records in a row; rest skipped",
                                                    fatal=True))
                return
            continue
        if not isinstance(item, dict):
            continue
        record: dict[str, Any] = item
        errors_in_row = 0
        position = int(record.get("event_record_id") or position + 1)
        data = record["data"]
        try:
            flat, time_text = flatten_xml_json(orjson.loads(data))
        except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
            pending.problems.append(ReadProblem(f"{origin}@record {position}", f"record not decodable: {exc}",
                                                data[:2000]))
            continue
        pending.events.append(flat)
        pending.times.append(time_text or str(record.get("timestamp") or "").removesuffix(" UTC"))
        pending.origins.append(origin)
        pending.offsets.append(position)
        pending.raws.append(data)
        if len(pending.events) >= batch_rows:
            yield None


HEADER_BLOCK = 4096
CHUNK_SIZE = 65536


def _truncation(path: Path) -> str | None:
    """Say so when a file is shorter than its header's chunk count (a copy cut short): what can be read
    is still read, but the loss must be reported."""
    try:
        with path.open("rb") as handle:
            header = handle.read(128)
        size = path.stat().st_size
    except OSError:
        return None
    if len(header) < 44 or not header.startswith(EVTX_MAGIC):
        return None
    chunks = int.from_bytes(header[42:44], "little")
    expected = HEADER_BLOCK + chunks * CHUNK_SIZE
    if size >= expected:
        return None
    whole = max(0, (size - HEADER_BLOCK) // CHUNK_SIZE)
    return (f"file truncated at byte offset {size}: the header declares {chunks} chunks ({expected} bytes); "
            f"records after chunk {whole} (offset {HEADER_BLOCK + whole * CHUNK_SIZE}) are lost")


def read_evtx_files(paths: Iterable[Path], options: ReadOptions | None = None, *,
                    ocsf: bool = False) -> Iterator[ReadResult]:
    """Stream many EVTX files as batches of up to ``options.batch_rows`` events gathered across files.

    With ``ocsf`` each batch also gets the OCSF fields (``events/ocsf/windows.yaml``, shared with the
    JSON reader). They are off by default: `mamori hunt` reads through here and its Sigma rules address
    the original fields only, and the file tail hands the events to the service, which adds them on
    ingest (as ``winjson`` events)."""
    options = options or ReadOptions()
    pending = _Pending()
    for path in paths:
        for _ in _parse_into(path, pending, options.batch_rows):
            yield _with_ocsf(pending.flush(), ocsf)
    if pending.events or pending.problems:
        yield _with_ocsf(pending.flush(), ocsf)


def _with_ocsf(result: ReadResult, ocsf: bool) -> ReadResult:
    if ocsf:
        from mamori.events.ocsf import normalise  # imported when asked for: it loads the mapping files

        result.frame = normalise(result.frame, SOURCE)
    return result


def read_evtx(path: Path, options: ReadOptions | None = None, *, ocsf: bool = False) -> Iterator[ReadResult]:
    """Stream one EVTX file as event batches; bad records become problems, never a stop."""
    return read_evtx_files([path], options, ocsf=ocsf)


def read_evtx_source(path: Path, options: ReadOptions | None = None) -> Iterator[ReadResult]:
    """The registered EVTX reader: events with their OCSF fields, as every source's reader gives them
    (for inspection and any caller of the source registry)."""
    return read_evtx_files([path], options, ocsf=True)


def empty_evtx_frame() -> pl.DataFrame:
    """An EVTX batch with no rows (the core columns only)."""
    return windows_frame([], [], source=SOURCE, origin=[], offsets=[], raws=[])


def sniff_evtx(head: bytes, name: str) -> bool:
    """An EVTX file starts with the ``ElfFile`` signature."""
    return head.startswith(EVTX_MAGIC) or name.lower().endswith(".evtx")


SPECS = [SourceSpec(SOURCE, "Windows event log files (.evtx)", read_evtx_source, sniff_evtx, priority=90)]
