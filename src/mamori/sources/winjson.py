"""Windows events exported as JSON: a JSON array, one object, JSON Lines, or concatenated objects.

Shapes: the evtx parser's rendering, Winlogbeat, NXLog and the flat form (see ``windows_event``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from mamori.sources.base import ReadOptions, ReadProblem, ReadResult, SourceSpec
from mamori.sources.windows_event import flatten_any, looks_like_windows_event
from mamori.sources.windows_frame import windows_frame

SOURCE = "winjson"


def _dumps(event: dict[str, Any]) -> str:
    """The raw text of an event; plain ``json`` for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(event).decode()
    except TypeError:
        return json.dumps(event, ensure_ascii=False, default=str)


def records_to_frame(events: Sequence[dict[str, Any]], origin: str | Sequence[str], first_offset: int = 1, *,
                     offsets: Sequence[int] | None = None, raws: Sequence[str] | None = None,
                     ocsf: bool = True) -> pl.DataFrame:
    """Build a batch from decoded Windows event objects (any supported shape). ``offsets`` are the
    events' places in ``origin`` (one for all, or one per event; by default record numbers from
    ``first_offset``); ``raws`` their
    original texts (by default each event serialised again). Used by the JSON file reader and by
    network ingest, so both give the OCSF fields (``events/ocsf/windows.yaml``) unless ``ocsf`` is off."""
    flats, times = [], []
    for event in events:
        flat, time_text = flatten_any(event)
        flats.append(flat)
        times.append(time_text)
    if offsets is None:
        offsets = range(first_offset, first_offset + len(flats))
    if raws is None:
        raws = [_dumps(event) for event in events]
    frame = windows_frame(flats, times, source=SOURCE, origin=origin, offsets=list(offsets), raws=raws)
    if not ocsf:
        return frame
    from mamori.events.ocsf import normalise  # imported when needed, as in ``batch.finish``

    return normalise(frame, SOURCE)


def _decode_text(text: str, origin: str) -> Iterator[tuple[int, Any | None, str, str | None]]:
    """Yield (line, object, raw text, error) for every JSON value in ``text``, whatever the framing."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            values = orjson.loads(text)
        except orjson.JSONDecodeError:
            values = None
        if isinstance(values, list):
            for value in values:
                yield 1, value, _dumps(value) if isinstance(value, dict) else json.dumps(value, default=str), None
            return
    decoder = json.JSONDecoder()
    position, length = 0, len(text)
    line, counted = 1, 0  # lines are counted on from the last value, not from the start each time
    while position < length:
        while position < length and text[position] in " \t\r\n\ufeff":
            position += 1
        if position >= length:
            break
        line += text.count("\n", counted, position)
        counted = position
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            newline = text.find("\n", position)
            end = length if newline < 0 else newline + 1
            yield line, None, text[position:end].strip(), f"not valid JSON: {exc.msg} (column {exc.colno})"
            position = end
            continue
        yield line, value, text[position:end], None
        position = end


def read_winjson(path: Path, options: ReadOptions | None = None) -> Iterator[ReadResult]:
    """Read Windows events from a JSON / JSONL file; undecodable or non-event values become problems.

    As in the other JSON readers, an event's ``_offset`` is the line it starts on (several events on
    one line, as in a JSON array, take the next free numbers) and its ``_raw`` is its text as written
    (re-serialised only for the items of a JSON array)."""
    options = options or ReadOptions()
    origin = str(path)
    data = path.read_bytes()
    text = data.decode(options.encoding or "utf-8", errors="replace")
    events: list[dict[str, Any]] = []
    offsets: list[int] = []
    raws: list[str] = []
    problems: list[ReadProblem] = []
    last = 0
    for line, value, raw, error in _decode_text(text, origin):
        if error is not None:
            problems.append(ReadProblem(f"{origin}:{line}", error, raw[:2000]))
            continue
        if not isinstance(value, dict) or not looks_like_windows_event(value):
            problems.append(ReadProblem(f"{origin}:{line}", "JSON value is not a Windows event", raw[:2000]))
            continue
        last = line if line > last else last + 1
        events.append(value)
        offsets.append(last)
        raws.append(raw)
        if len(events) >= options.batch_rows:
            yield ReadResult(records_to_frame(events, origin, offsets=offsets, raws=raws), problems)
            events, offsets, raws, problems = [], [], [], []
    if events or problems:
        yield ReadResult(records_to_frame(events, origin, offsets=offsets, raws=raws), problems)


def sniff_winjson(head: bytes, name: str) -> bool:
    """Claim JSON files whose first value looks like a Windows event."""
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if not text.startswith(("{", "[")):
        return False
    markers = ('"EventID"', '"winlog"', '"System"', '"event_id"')
    return any(m in text for m in markers) and ('"Channel"' in text or '"channel"' in text
                                                 or '"Computer"' in text or '"Hostname"' in text)


SPECS = [SourceSpec(SOURCE, "Windows events as JSON / JSONL (evtx rendering, Winlogbeat, NXLog, flat)",
                    read_winjson, sniff_winjson, priority=60)]
