"""Live inputs' records for a named source: which sources can be read record by record, and JSON
envelopes opened as the file readers open them.

``mamori hunt`` reads a CloudTrail file's ``{"Records": [...]}`` as one event per record
(``sources.batch.iter_json_values``); a tailed line or an HTTP body holding that envelope is opened
the same way before it is spooled, so each spooled record is one event and its place in the spool
entry is its offset (stable across replays).
"""

from __future__ import annotations

import orjson

from mamori.sources.batch import ENVELOPE_MARKS, PARSERS, envelope_items
from mamori.sources.registry import all_sources

WHOLE_FILE_SOURCES = frozenset({"evtx"})  # binary: read a whole file at a time, never as records
RECORD_SOURCES_WITHOUT_PARSER = frozenset({"winjson"})  # read by the live path's Windows reader


def has_record_reader(name: str) -> bool:
    """Whether the live path can parse records of source ``name`` one by one with the reader
    ``mamori hunt`` uses for it (every line or JSON source; not EVTX, which is binary)."""
    all_sources()  # the source modules register their record readers in PARSERS as they are imported
    return name in PARSERS or name in RECORD_SOURCES_WITHOUT_PARSER


def record_sources() -> list[str]:
    """The sources a live input may name (``tail_source``, ``?source=`` of HTTP ingest), sorted."""
    return [name for name in all_sources() if has_record_reader(name)]


def open_envelopes(lines: list[str]) -> list[str]:
    """JSON lines with every envelope line replaced by its records (one compact JSON text each); other
    lines as they are. A cheap look at each line's start spares the decoding of ordinary lines."""
    if not any(line.lstrip().startswith("{") and any(m in line[:40] for m in ENVELOPE_MARKS) for line in lines):
        return lines
    out: list[str] = []
    for line in lines:
        items = None
        if line.lstrip().startswith("{") and any(m in line[:40] for m in ENVELOPE_MARKS):
            try:
                items = envelope_items(orjson.loads(line))
            except orjson.JSONDecodeError:
                items = None  # left as it is: the reader quarantines it with the reason
        if items is None:
            out.append(line)
        else:
            out.extend(orjson.dumps(item).decode() for item in items)
    return out
