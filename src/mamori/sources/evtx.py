"""Windows event log files (``.evtx``) through the ``evtx`` package (a Rust parser).

A truncated or corrupted file yields every complete record that can be read (``evtx_repair`` rebuilds
damaged chunks in memory), plus problems naming the file, the chunk and the byte offset where reading
stopped or resumed, and how many records were lost. Records from many small files are gathered into one
batch, as building a batch has a fixed cost that would otherwise dominate on folders of small files.
"""

from __future__ import annotations

import bisect
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from mamori.sources.base import ReadOptions, ReadProblem, ReadResult, SourceSpec
from mamori.sources.evtx_repair import (
    CHUNK_HEADER,
    CHUNK_SIZE,
    FILE_HEADER,
    FILE_MAGIC,
    FILLER_ID,
    MAX_RECORDS,
    ChunkInfo,
    Layout,
    Repair,
    file_image,
    read_layout,
    repair_chunk,
)
from mamori.sources.windows_event import FlatEvent, flatten_xml_json
from mamori.sources.windows_frame import windows_frame

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


@dataclass
class _FileRead:
    """What parsing one file has given so far: the record ids read, the parser errors reported, and the
    chunks the parser refused (by a failed checksum, or as unreadable)."""

    origin: str
    layout: Layout
    seen: set[int] = field(default_factory=set)
    records: int = 0  # records parsed, repeated ids included
    reported: set[str] = field(default_factory=set)
    bad_checksum: set[int] = field(default_factory=set)
    refused: set[int] = field(default_factory=set)
    image_chunks: list[int] = field(default_factory=list)  # file chunk index of each rebuilt chunk
    rebuilt_ids: dict[int, int] = field(default_factory=dict)  # record id -> file chunk index, rebuilt chunks
    undecodable: dict[int | None, list[str]] = field(default_factory=dict)  # rebuilt chunk -> parser errors


def _parse_into(path: Path, pending: _Pending, batch_rows: int) -> Iterator[None]:
    """Parse one file into ``pending``; yields whenever ``pending`` holds ``batch_rows`` events, so the
    caller can flush a full batch.

    The file is parsed as it is, checking chunk CRCs unless its header says it was copied while open;
    only when its chunk headers account for records the parser did not give (a file cut short, a damaged
    chunk or record) are the damaged chunks rebuilt in memory and parsed again, so an intact file costs a
    read of its chunk headers and nothing more."""
    from evtx import PyEvtxParser

    origin = str(path)
    try:
        layout = read_layout(path)
    except OSError as exc:
        pending.problems.append(ReadProblem(origin, f"not a readable EVTX file: {exc}", fatal=True))
        return
    if not layout.chunks:
        pending.problems.append(ReadProblem(origin, _no_chunks(layout), fatal=True))
        return
    if not layout.header_ok and not any(c.signed for c in layout.chunks):
        pending.problems.append(ReadProblem(origin, "not a readable EVTX file: no ElfFile signature and no "
                                                    "ElfChnk chunk", fatal=True))
        return
    state = _FileRead(origin, layout)
    header_error = "" if layout.header_ok else "no ElfFile signature"
    if layout.header_ok:
        try:
            parser = PyEvtxParser(origin, validate_checksums=not layout.dirty)
        except (OSError, RuntimeError) as exc:
            header_error = str(exc)
        else:
            yield from _consume(parser.records_json(), state, pending, batch_rows, again=False)
    if (not header_error and not state.reported and not state.bad_checksum and not layout.cut_short
            and state.records == layout.expected_records):
        return
    if header_error:
        pending.problems.append(ReadProblem(origin, f"damaged EVTX file header ({header_error}); its chunks "
                                                    "are read without it"))
    yield from _salvage(path, state, pending, batch_rows)


def _consume(records: Iterator[Any], state: _FileRead, pending: _Pending, batch_rows: int, *,
             again: bool) -> Iterator[None]:
    """Turn parsed records into pending events (``again``, parsing rebuilt chunks: skipping the ids read
    before and the fillers); parser errors become problems naming the record or chunk and its offset."""
    origin = state.origin
    errors_in_row = 0
    while True:
        try:
            item = next(records)
        except StopIteration:
            return
        except Exception as exc:  # the parser reports a damaged record or chunk and moves on
            errors_in_row += 1
            _note_error(str(exc), state, pending, again=again)
            if errors_in_row >= MAX_CONSECUTIVE_ERRORS:
                pending.problems.append(ReadProblem(origin, "too many damaged records in a row; rest skipped",
                                                    fatal=True))
                return
            continue
        if not isinstance(item, dict):
            continue
        record: dict[str, Any] = item
        errors_in_row = 0
        position = int(record.get("event_record_id") or 0)
        if again and (position == FILLER_ID or position in state.seen):
            continue
        state.seen.add(position)
        state.records += 1
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


def _note_error(text: str, state: _FileRead, pending: _Pending, *, again: bool) -> None:
    """Record a parser error: a chunk failing its CRC is noted for salvage (reported with what it gave), an
    error in a rebuilt chunk is counted for that chunk's report, any other error is reported once at
    ``path@record N (chunk C, byte offset O)`` or ``path@chunk C (byte offset O)``."""
    origin, layout = state.origin, state.layout
    if again:
        index: int | None = None
        if found := re.search(r"chunk number (\d+)", text):
            at = int(found.group(1))
            index = state.image_chunks[at] if at < len(state.image_chunks) else None
        elif found := re.search(r"record number (\d+)", text):
            index = state.rebuilt_ids.get(int(found.group(1)))
        state.undecodable.setdefault(index, []).append(text)
        return
    if found := re.search(r"chunk number (\d+)", text):
        index = int(found.group(1))
        if "CRC32" in text:
            state.bad_checksum.add(index)
            return
        state.refused.add(index)
        where = f"{origin}@chunk {index} (byte offset {FILE_HEADER + index * CHUNK_SIZE})"
    elif found := re.search(r"record number (\d+)", text):
        number = int(found.group(1))
        chunk = next((c for c in layout.chunks if c.holds(number)), None)
        where = f"{origin}@record {number}" + (f" (chunk {chunk.index}, byte offset {chunk.offset})" if chunk else "")
    else:
        where = origin
    if text not in state.reported:
        state.reported.add(text)
        pending.problems.append(ReadProblem(where, f"unreadable EVTX record: {text}"))


def _no_chunks(layout: Layout) -> str:
    """Why a file with no chunk at all yields nothing."""
    if layout.size == 0:
        return "not a readable EVTX file: it is empty (0 bytes), so there are no records to read"
    return (f"not a readable EVTX file: truncated at byte offset {layout.size}, inside its {FILE_HEADER}-byte "
            "file header, so there are no records to read")


def _salvage(path: Path, state: _FileRead, pending: _Pending, batch_rows: int) -> Iterator[None]:
    """Rebuild the chunks that lost records (or that the file cuts short, or the parser refused) in memory,
    parse them, and report per chunk where reading stopped or resumed and how many records were lost."""
    from evtx import PyEvtxParser

    layout = state.layout
    read_per_chunk = _count_per_chunk(layout.chunks, state.seen)
    repairs: list[Repair] = []
    with path.open("rb") as handle:
        for chunk in layout.chunks:
            expected = chunk.expected
            if (chunk.length < CHUNK_SIZE or chunk.index in state.bad_checksum or chunk.index in state.refused
                    or (not chunk.signed and expected is not None) or (expected or 0) > read_per_chunk[chunk.index]):
                handle.seek(chunk.offset)
                repairs.append(repair_chunk(handle.read(chunk.length), chunk))
    rebuilt = [r for r in repairs if r.data is not None and not state.seen.issuperset(r.ids)]
    if rebuilt:
        state.image_chunks = [r.chunk.index for r in rebuilt]
        state.rebuilt_ids = {i: r.chunk.index for r in rebuilt for i in r.ids}
        image = file_image([r.data for r in rebuilt if r.data is not None],
                           max((i for r in repairs for i in r.ids), default=0) + 1)
        records = PyEvtxParser(io.BytesIO(image), validate_checksums=False).records_json()
        yield from _consume(records, state, pending, batch_rows, again=True)
    read_per_chunk = _count_per_chunk(layout.chunks, state.seen)
    for repair in repairs:
        read = read_per_chunk[repair.chunk.index] if repair.chunk.expected is not None \
            else len(state.seen.intersection(repair.ids))
        pending.problems.extend(_repair_problems(state, repair, read))
    if stray := state.undecodable.get(None):
        pending.problems.append(ReadProblem(state.origin, f"{len(stray)} records of rebuilt chunks could not be "
                                                          f"decoded, first: {stray[0]}"))
    if layout.header_ok and layout.declared_chunks > len(layout.chunks):
        cut = " (the last cut short)" if layout.chunks[-1].length < CHUNK_SIZE else ""
        pending.problems.append(ReadProblem(
            f"{state.origin}@offset {layout.size}",
            f"file truncated at byte offset {layout.size}: its header declares {layout.declared_chunks} chunks, "
            f"the file holds {len(layout.chunks)}{cut}; the records of the missing chunks are lost"
            f"{_missing(layout, state.seen)}"))
    if not state.seen:
        pending.problems.append(ReadProblem(state.origin, "no readable EVTX record in the file", fatal=True))


def _missing(layout: Layout, seen: set[int]) -> str:
    """How many records a file cut short lost in all, going by its header's next record id."""
    last = max(seen, default=0)
    if layout.next_id <= last + 1:
        return ""
    return f": {layout.next_id - 1 - last} in all after record {last}, going by the header's next record id"


def _count_per_chunk(chunks: tuple[ChunkInfo, ...], seen: set[int]) -> dict[int, int]:
    """How many of the ids read fall in each chunk's id range."""
    counts = dict.fromkeys((c.index for c in chunks), 0)
    ranged = sorted((c.first_id, c.last_id, c.index) for c in chunks
                    if c.first_id is not None and c.last_id is not None)
    starts = [first for first, _, _ in ranged]
    for record_id in seen:
        at = bisect.bisect_right(starts, record_id) - 1
        if at >= 0 and record_id <= ranged[at][1]:
            counts[ranged[at][2]] += 1
    return counts


def _neighbour_gap(chunks: tuple[ChunkInfo, ...], index: int) -> int | None:
    """How many record ids lie between the chunks either side of a chunk whose header is unreadable."""
    before = chunks[index - 1].last_id if index > 0 else None
    after = chunks[index + 1].first_id if index + 1 < len(chunks) else None
    if before is None or after is None or not 0 < after - before - 1 < MAX_RECORDS:
        return None
    return after - before - 1


def _repair_problems(state: _FileRead, repair: Repair, read: int) -> list[ReadProblem]:
    """The problems one rebuilt chunk leaves: where the file was cut or the chunk damaged, where reading
    stopped or resumed, and how many records were lost."""
    origin, layout, chunk = state.origin, state.layout, repair.chunk
    name = f"chunk {chunk.index} (byte offset {chunk.offset})"
    if chunk.length < CHUNK_HEADER:
        lost = f"its {chunk.expected} records are lost" if chunk.expected else "its records are lost"
        return [ReadProblem(f"{origin}@offset {layout.size}",
                            f"file truncated at byte offset {layout.size}, inside the header of {name}: {lost}")]
    flagged = chunk.index in state.bad_checksum or chunk.index in state.refused or not chunk.signed
    if not (flagged or repair.gaps or repair.mended or chunk.length < CHUNK_SIZE
            or chunk.expected is None or read < chunk.expected):
        return []  # rebuilt only because the file header was damaged: nothing of it was lost
    if chunk.expected is None:
        guess = _neighbour_gap(layout.chunks, chunk.index)
        summary = f"its header is damaged; {read} records read, " + (
            f"{guess - read} lost going by the chunks either side" if guess is not None and guess >= read
            else "an unknown number lost")
    elif read >= chunk.expected:
        summary = f"all {chunk.expected} of its records read"
    else:
        summary = f"{read} of its {chunk.expected} records read, {chunk.expected - read} lost"
    if errors := state.undecodable.get(chunk.index):
        summary += f" ({len(errors)} found but not decodable, first: {errors[0]})"
    problems: list[ReadProblem] = []
    if not chunk.signed and chunk.expected is not None:
        problems.append(ReadProblem(f"{origin}@offset {chunk.offset}",
                                    f"{name}: chunk signature damaged; read by rebuilding the chunk"))
    if chunk.index in state.bad_checksum:
        problems.append(ReadProblem(f"{origin}@offset {chunk.offset}",
                                    f"{name}: its records fail their CRC32 checksum (damaged or changed after "
                                    "they were written); read anyway, so values may be wrong"))
    for start, part in repair.mended:
        problems.append(ReadProblem(f"{origin}@offset {start}",
                                    f"{name}: record at byte offset {start} has a damaged {part}; read anyway"))
    for start, resume in repair.gaps:
        problems.append(ReadProblem(f"{origin}@offset {start}",
                                    f"{name}: damaged record at byte offset {start}; reading resumed at byte "
                                    f"offset {resume}"))
    if chunk.length < CHUNK_SIZE:
        problems.append(ReadProblem(f"{origin}@offset {repair.end}",
                                    f"file truncated at byte offset {layout.size}, inside {name}: reading "
                                    f"stopped at byte offset {repair.end} after its last complete record; "
                                    f"{summary}"))
    else:
        stop = f"reading stopped at byte offset {repair.end}; " if repair.stopped else ""
        problems.append(ReadProblem(f"{origin}@offset {repair.end}", f"{name}: {stop}{summary}"))
    return problems


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
    return head.startswith(FILE_MAGIC) or name.lower().endswith(".evtx")


SPECS = [SourceSpec(SOURCE, "Windows event log files (.evtx)", read_evtx_source, sniff_evtx, priority=90)]
