"""Sysmon for Linux: the XML events it writes to syslog (``<Event><System>...<EventID>1</EventID>...
<EventData><Data Name="Image">/usr/bin/curl</Data>...``), with or without the syslog header.

Fields: ``EventID``, ``Computer``, ``Channel`` (``Linux-Sysmon/Operational``), ``ProcessID`` and every
``<Data Name=...>`` under its name (``Image``, ``CommandLine``, ``ParentImage``, ``User``,
``TargetFilename``, ``DestinationIp``...), XML entities decoded. Time from ``UtcTime`` (UTC), else the
``SystemTime`` attribute.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, error_where, head_text, hstack, text_source
from mamori.sources.kv import pairs_frame, widen
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_iso

SOURCE = "sysmon_linux"
DATA_START = '<Data Name="'
DATA_REST = r'^[^"]+">[^<]*</Data>'
DATA = DATA_START + DATA_REST[1:]  # an element: r'<Data Name="[^"]+">[^<]*</Data>'
ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def unescape_xml(column: pl.Expr) -> pl.Expr:
    """Decode the five XML entities in a text column."""
    for entity, char in ENTITIES:
        column = column.str.replace_all(entity, char, literal=True)
    return column


def data_fields(texts: pl.Series) -> pl.DataFrame:
    """The ``<Data Name="K">V</Data>`` elements of each event as columns, as ``pairs_frame`` reads ``K=V``.

    Every element starts with ``<Data Name="``, so the texts are cut there with a plain split and the pieces
    that go on like an element (``K">V</Data>``, checked by an anchored regex) are the elements the element
    regex finds (but for the odd cases read by that regex): cheaper than searching each text with that regex
    and rewriting what it finds."""
    pieces = (pl.DataFrame({"p": texts.str.split(DATA_START)}).with_row_index("_r")
              .with_columns(pl.col("p").list.slice(1)).explode("p").drop_nulls("p"))
    pieces = pieces.filter(pieces["p"].str.contains(DATA_REST))
    split = pieces["p"].str.splitn('">', 2)  # a name holds no quote: the first ``">`` ends it
    names = split.struct.field("field_0")
    # Read by the element regex itself: names holding "=" (``K=V`` is cut there) and texts where an element
    # may span a cut (its name ending with ``<Data Name=`` and the next cut's quote closing it).
    if names.str.contains("=", literal=True).any() or texts.str.contains(DATA_START + ">", literal=True).any():
        return pairs_frame(texts.str.extract_all(DATA).list.eval(
            pl.element().str.replace(r'^<Data Name="([^"]+)">([^<]*)</Data>$', "${1}=${2}")), unquote=False)
    values = split.struct.field("field_1").str.splitn("</Data>", 2).struct.field("field_0")  # V holds no "<"
    return widen(pl.DataFrame({"_r": pieces["_r"], "key": names, "value": values}), len(texts), unquote=False)


def parse_sysmon_linux(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Sysmon for Linux XML events; lines with no ``<Event>`` are errors."""
    header = syslog_parts(texts, options)
    frame = data_fields(texts)
    entities = frame.select(pl.all().str.contains("&", literal=True).any()).row(0) if frame.width else ()
    frame = frame.with_columns([unescape_xml(pl.nth(i)) for i, has in enumerate(entities) if has])
    system = pl.DataFrame({
        "EventID": texts.str.extract(r"<EventID>(\d+)</EventID>", 1),
        "Computer": texts.str.extract(r"<Computer>([^<]*)</Computer>", 1),
        "Channel": texts.str.extract(r"<Channel>([^<]*)</Channel>", 1),
        "ProcessID": texts.str.extract(r'<Execution ProcessID="(\d+)"', 1),
        "SystemTime": texts.str.extract(r'SystemTime="([^"]+)"', 1),
    })
    frame = hstack(system, frame.select([c for c in frame.columns if c not in system.columns]))
    utc = frame["UtcTime"] if "UtcTime" in frame.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
    times = parse_iso(utc, "UTC")
    if times.null_count():
        times = times.fill_null(parse_iso(frame["SystemTime"], "UTC"))
    times = times.fill_null(header[schema.TIME])
    error = error_where(frame["EventID"].is_null(), "no Sysmon <Event> XML")
    return frame.with_columns(times.alias(schema.TIME), frame["Computer"].alias(schema.HOST), error.alias(ERROR))


def sniff_sysmon_linux(head: bytes, name: str) -> bool:
    """Claim syslog files holding Sysmon for Linux XML events."""
    text = head_text(head)
    return "<Event>" in text and "Linux-Sysmon" in text


SPECS = [text_source(SOURCE, "Sysmon for Linux (XML events in syslog)", parse_sysmon_linux, sniff_sysmon_linux,
                     priority=85)]
