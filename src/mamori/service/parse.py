"""Turn spooled entries into one event batch: each payload format maps to a reader function.

Formats: ``syslog`` (lines; a message that is a Windows event in JSON, as NXLog or Winlogbeat send
it, becomes a ``winjson`` event; every other message goes to the reader of the product inside it,
CEF, FortiGate, ASA..., see ``message_routes``, else generic syslog), ``source:<name>`` (records the
named source's reader parses, as ``mamori hunt`` would: tailed files of a sniffed or configured
source, HTTP ingest with ``?source=``), ``json`` (HTTP ingest objects with no source named: Windows
events become ``winjson``, others keep their fields under the sender's label), and ``quarantine``.
Event ids come from the entry's origin and the record's place in the spool, so a replay after a
crash gives the same ids. Records a reader refuses become quarantine records, never lost.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from mamori.collect.spool import SOURCE_FORMAT, Entry
from mamori.events import schema
from mamori.events.frame import build_frame, concat_frames, event_uids
from mamori.service.match_ahead import RuleHits
from mamori.service.message_routes import route_messages
from mamori.sources.base import ReadOptions
from mamori.sources.batch import PARSERS, finish, flatten
from mamori.sources.registry import all_sources
from mamori.sources.windows_event import looks_like_windows_event
from mamori.sources.winjson import records_to_frame
from mamori.sources.zeek import read_zeek_lines
from mamori.store.lake import EncodedPart

RECORDS_PER_ENTRY = 1_000_000  # offsets: seq * this + index, unique within an origin
MAX_QUARANTINE_RAW = 4000


@dataclass(frozen=True)
class Quarantined:
    """A record no reader could use: where it came from, why, its text."""

    where: str
    reason: str
    raw: str


@dataclass
class Parsed:
    """The batch made from some entries, its per-row receive times (ns), and the quarantined records."""

    frame: pl.DataFrame
    received_ns: pl.Series
    quarantined: list[Quarantined] = field(default_factory=list)
    hits: RuleHits | None = None  # the rules' hits, when the parser process matched the batch too
    lake_parts: list[EncodedPart] | None = None  # the lake files' content, when the parser process encoded them


@dataclass
class _Records:
    texts: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # where each entry's records begin


FormatReader = Callable[[_Records, ReadOptions], tuple[pl.DataFrame, list[Quarantined]]]


def _offset(entry: Entry, index: int) -> int:
    # keyed entries (HTTP with an idempotency key) own their origin: offsets count within the entry
    return index if entry.key else entry.seq * RECORDS_PER_ENTRY + index


def _restamp(frame: pl.DataFrame, source: str, origins: Sequence[str], offsets: Sequence[int]) -> pl.DataFrame:
    """Set the core id columns from the spool position (stable across replays)."""
    columns = [
        pl.Series(schema.ORIGIN, list(origins), dtype=pl.Utf8),
        pl.Series(schema.OFFSET, list(offsets), dtype=pl.Int64),
        pl.Series(schema.UID, event_uids(source, origins, offsets),
                  dtype=pl.Utf8),
    ]
    return frame.with_columns(columns)


def _json_payload(text: str) -> dict[str, Any] | None:
    """The Windows event a syslog line carries as JSON after its header, if any."""
    brace = text.find("{")
    if brace < 0 or not text.rstrip().endswith("}"):
        return None
    try:
        value = orjson.loads(text[brace:])
    except orjson.JSONDecodeError:
        return None
    return value if looks_like_windows_event(value) else None


def _read_rows(records: _Records, rows: Sequence[int], source: str, options: ReadOptions,
               texts: pl.Series | None = None) -> tuple[pl.DataFrame, list[Quarantined]]:
    """Parse the records at ``rows`` with the record reader of ``source`` (the parser its file reader
    uses line by line, so the fields, time and OCSF columns are a hunt's); ids from the spool position.
    The frame carries ``_order`` (the rows) for merging; ``texts``: the rows' texts, when at hand."""
    if texts is None:
        texts = pl.Series(schema.RAW, [records.texts[r] for r in rows], dtype=pl.Utf8)
    result = finish(PARSERS[source](texts, options), texts, rows, source=source, origin="")
    problems = []
    for problem in result.problems:
        row = int(problem.where.rsplit(":", 1)[1])
        problems.append(Quarantined(f"{records.origins[row]}#{records.offsets[row]}", problem.reason,
                                    problem.raw[:MAX_QUARANTINE_RAW]))
    kept: list[int] = result.frame.get_column(schema.OFFSET).to_list()
    frame = _restamp(result.frame, source, [records.origins[r] for r in kept], [records.offsets[r] for r in kept])
    return frame.with_columns(pl.Series("_order", kept, dtype=pl.Int64)), problems


def _merged(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Frames carrying ``_order`` as one frame in record order, without ``_order``."""
    if not frames:
        return pl.DataFrame()
    joined = frames[0] if len(frames) == 1 else concat_frames(frames).sort("_order")
    return joined.drop("_order")


def read_syslog(records: _Records, options: ReadOptions) -> tuple[pl.DataFrame, list[Quarantined]]:
    """Syslog lines; Windows events carried as JSON in the message (NXLog, Winlogbeat over syslog) become
    ``winjson`` events and keep the whole line as their raw record; every other message goes to the
    reader of the product it holds (CEF, FortiGate, ASA..., chosen as ``mamori hunt`` chooses, one
    reader call per product), else it is a generic syslog event."""
    events: list[dict[str, Any]] = []
    event_rows: list[int] = []
    plain_rows: list[int] = []
    for index, text in enumerate(records.texts):
        value = _json_payload(text)
        if value is None:
            plain_rows.append(index)
        else:
            events.append(value)
            event_rows.append(index)
    frames: list[pl.DataFrame] = []
    problems: list[Quarantined] = []
    if plain_rows:
        texts = pl.Series(schema.RAW, [records.texts[r] for r in plain_rows], dtype=pl.Utf8)
        routes = route_messages(texts)
        for source, picked in routes.items():
            rows = plain_rows if len(routes) == 1 else [plain_rows[i] for i in picked]
            part = texts if len(routes) == 1 else texts.gather(picked)
            frame, found = _read_rows(records, rows, source, options, part)
            frames.append(frame)
            problems.extend(found)
    if events:
        windows = records_to_frame(events, [records.origins[r] for r in event_rows],
                                   offsets=[records.offsets[r] for r in event_rows],
                                   raws=[records.texts[r] for r in event_rows])
        frames.append(windows.with_columns(pl.Series("_order", event_rows, dtype=pl.Int64)))
    return _merged(frames), problems


def read_source_records(source: str, records: _Records, options: ReadOptions) -> tuple[pl.DataFrame,
                                                                                       list[Quarantined]]:
    """Records of a ``source:<name>`` entry, parsed by that source's record reader: what a tailed file
    of that source or an HTTP body sent with ``?source=`` holds gets the fields a hunt of it gets."""
    frame, problems = _read_rows(records, range(len(records.texts)), source, options)
    return frame.drop("_order"), problems  # a reader keeps its records' order


def read_windows_json(records: _Records, options: ReadOptions) -> tuple[pl.DataFrame, list[Quarantined]]:
    """Records of a ``source:winjson`` entry: Windows events in JSON become ``winjson`` events; any other
    value is quarantined, as the ``winjson`` file reader refuses it."""
    del options
    events: list[dict[str, Any]] = []
    rows: list[int] = []
    problems: list[Quarantined] = []
    for index, text in enumerate(records.texts):
        where = f"{records.origins[index]}#{records.offsets[index]}"
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            problems.append(Quarantined(where, f"not valid JSON: {exc}", text[:MAX_QUARANTINE_RAW]))
            continue
        if not looks_like_windows_event(value):
            problems.append(Quarantined(where, "JSON value is not a Windows event", text[:MAX_QUARANTINE_RAW]))
            continue
        events.append(value)
        rows.append(index)
    if not events:
        return pl.DataFrame(), problems
    return records_to_frame(events, [records.origins[r] for r in rows], offsets=[records.offsets[r] for r in rows],
                            raws=[records.texts[r] for r in rows]), problems


def read_zeek_records(records: _Records, options: ReadOptions) -> tuple[pl.DataFrame, list[Quarantined]]:
    """Records of a ``source:zeek`` entry, read entry by entry by the Zeek file reader itself: TSV needs
    its ``#fields`` header (a tailed chunk carries the file's header lines first), the ``#`` lines set
    the columns and never become events, and the log's kind comes from ``#path`` or the file name."""
    frames: list[pl.DataFrame] = []
    problems: list[Quarantined] = []
    bounds = [*records.starts, len(records.texts)] if records.starts else [0, len(records.texts)]
    for start, end in itertools.pairwise(bounds):
        frame, found = _read_zeek_file(records, start, end, options)
        if frame.height:
            frames.append(frame)
        problems.extend(found)
    return _merged(frames), problems


def _read_zeek_file(records: _Records, start: int, end: int, options: ReadOptions) -> tuple[pl.DataFrame,
                                                                                           list[Quarantined]]:
    """Read records ``start:end`` (one entry's lines) with the Zeek reader, as the file they came from
    (``file:zeek:<path>@<offset>``) would be read; the frame carries ``_order``."""
    name = Path(records.origins[start].split(":", 2)[-1].rsplit("@", 1)[0]).name or "records.log"
    frames: list[pl.DataFrame] = []
    problems: list[Quarantined] = []
    for result in read_zeek_lines(records.texts[start:end], name, options):
        for problem in result.problems:  # ``<name>:<line>``, lines counted from 1
            row = start + int(problem.where.rsplit(":", 1)[1]) - 1
            problems.append(Quarantined(f"{records.origins[row]}#{records.offsets[row]}", problem.reason,
                                        problem.raw[:MAX_QUARANTINE_RAW]))
        if result.frame.height:
            rows = [start + line - 1 for line in result.frame.get_column(schema.OFFSET).to_list()]
            frames.append(_restamp(result.frame, "zeek", [records.origins[r] for r in rows],
                                   [records.offsets[r] for r in rows])
                          .with_columns(pl.Series("_order", rows, dtype=pl.Int64)))
    if not frames:
        return pl.DataFrame(), problems
    return (frames[0] if len(frames) == 1 else concat_frames(frames)), problems


def read_json(records: _Records, options: ReadOptions) -> tuple[pl.DataFrame, list[Quarantined]]:
    """JSON objects from HTTP ingest (already checked at the door); the origin names the sender's source
    as ``http:<source>:...``. Windows events become ``winjson``."""
    del options
    windows: list[tuple[int, dict[str, Any]]] = []
    other: dict[str, list[tuple[int, dict[str, str | None], str | None]]] = {}
    problems: list[Quarantined] = []
    for index, text in enumerate(records.texts):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            problems.append(Quarantined(f"{records.origins[index]}#{records.offsets[index]}",
                                        f"not valid JSON: {exc}", text[:MAX_QUARANTINE_RAW]))
            continue
        if looks_like_windows_event(value):
            windows.append((index, value))
            continue
        flat: dict[str, str | None] = {}
        flatten(value, "", flat)
        source = records.origins[index].split(":", 2)[1] if records.origins[index].count(":") >= 2 else "json"
        other.setdefault(source or "json", []).append((index, flat, _time_of(value)))
    frames: list[pl.DataFrame] = []
    order: list[int] = []
    if windows:
        rows = [i for i, _ in windows]
        frames.append(records_to_frame([v for _, v in windows], [records.origins[r] for r in rows],
                                       offsets=[records.offsets[r] for r in rows],
                                       raws=[records.texts[r] for r in rows]))
        order.extend(rows)
    for source, items in other.items():
        rows = [i for i, _, _ in items]
        times = pl.Series([t for _, _, t in items], dtype=pl.Utf8).str.to_datetime(
            time_unit="ns", time_zone="UTC", strict=False)
        frame = build_frame([f for _, f, _ in items], source=source, origin=[records.origins[r] for r in rows],
                            offsets=[records.offsets[r] for r in rows], times_ns=[None] * len(rows),
                            hosts=[f.get("host") or f.get("hostname") for _, f, _ in items],
                            raws=[records.texts[r] for r in rows])
        frames.append(frame.with_columns(times.alias(schema.TIME)))
        order.extend(rows)
    if not frames:
        return pl.DataFrame(), problems
    joined = concat_frames(frames)
    return joined.with_columns(pl.Series("_order", order)).sort("_order").drop("_order"), problems


def _time_of(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("@timestamp", "timestamp", "time", "_time", "eventTime", "TimeCreated"):
            found = value.get(key)
            if isinstance(found, str):
                return found
    return None


READERS: dict[str, FormatReader] = {"syslog": read_syslog, "json": read_json}
SOURCE_READERS: dict[str, FormatReader] = {"winjson": read_windows_json, "zeek": read_zeek_records}


def reader_for(fmt: str) -> FormatReader | None:
    """The reader of an entry format: ``syslog``, ``json``, or ``source:<name>`` for any source with a
    record reader; None when there is none (an unknown source: the records are quarantined)."""
    found = READERS.get(fmt)
    if found is not None or not fmt.startswith(SOURCE_FORMAT):
        return found
    name = fmt[len(SOURCE_FORMAT):]
    if name in SOURCE_READERS:
        return SOURCE_READERS[name]
    all_sources()  # the source modules register their record readers in PARSERS as they are imported
    if name in PARSERS:
        return functools.partial(read_source_records, name)
    return None


def parse_entries(entries: Sequence[Entry], options: ReadOptions) -> Parsed:
    """Parse spooled entries, grouped by format, into one batch with per-row receive times."""
    groups: dict[str, _Records] = {}
    quarantined: list[Quarantined] = []
    for entry in entries:
        if entry.fmt == "quarantine":
            for text in entry.records:
                data = orjson.loads(text)
                quarantined.append(Quarantined(str(data.get("where", entry.origin)), str(data.get("reason", "")),
                                               str(data.get("raw", ""))[:MAX_QUARANTINE_RAW]))
            continue
        if reader_for(entry.fmt) is None:
            quarantined.extend(Quarantined(entry.origin, f"no reader for payload format {entry.fmt!r}",
                                           text[:MAX_QUARANTINE_RAW]) for text in entry.records)
            continue
        group = groups.setdefault(entry.fmt, _Records())
        group.starts.append(len(group.texts))
        for index, text in enumerate(entry.records):
            group.texts.append(text)
            group.origins.append(entry.origin)
            group.offsets.append(_offset(entry, index))
            group.received.append(entry.received_ns)
    frames: list[pl.DataFrame] = []
    received: list[pl.Series] = []
    for fmt, records in groups.items():
        reader = reader_for(fmt)
        assert reader is not None  # entries without one were quarantined above
        frame, problems = reader(records, options)
        quarantined.extend(problems)
        if frame.height == 0:
            continue
        by_offset = pl.DataFrame({"o": records.origins, "n": records.offsets, "t": records.received})
        times = frame.select(pl.col(schema.ORIGIN).alias("o"), pl.col(schema.OFFSET).alias("n")).join(
            by_offset, on=["o", "n"], how="left", maintain_order="left").get_column("t")
        frames.append(frame)
        received.append(times)
    if not frames:
        return Parsed(pl.DataFrame(), pl.Series("received", [], dtype=pl.Int64), quarantined)
    return Parsed(concat_frames(frames), pl.concat(received).alias("received"), quarantined)
