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
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_iso

SOURCE = "sysmon_linux"
ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def unescape_xml(column: pl.Expr) -> pl.Expr:
    """Decode the five XML entities in a text column."""
    for entity, char in ENTITIES:
        column = column.str.replace_all(entity, char, literal=True)
    return column


def parse_sysmon_linux(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Sysmon for Linux XML events; lines with no ``<Event>`` are errors."""
    header = syslog_parts(texts, options)
    data = texts.str.extract_all(r'<Data Name="[^"]+">[^<]*</Data>').list.eval(
        pl.element().str.replace(r'^<Data Name="([^"]+)">([^<]*)</Data>$', "${1}=${2}"))
    frame = pairs_frame(data, unquote=False)
    frame = frame.with_columns([unescape_xml(pl.col(c)).alias(c) for c in frame.columns])
    system = pl.DataFrame({
        "EventID": texts.str.extract(r"<EventID>(\d+)</EventID>", 1),
        "Computer": texts.str.extract(r"<Computer>([^<]*)</Computer>", 1),
        "Channel": texts.str.extract(r"<Channel>([^<]*)</Channel>", 1),
        "ProcessID": texts.str.extract(r'<Execution ProcessID="(\d+)"', 1),
        "SystemTime": texts.str.extract(r'SystemTime="([^"]+)"', 1),
    })
    frame = hstack(system, frame.select([c for c in frame.columns if c not in system.columns]))
    utc = frame["UtcTime"] if "UtcTime" in frame.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
    times = parse_iso(utc, "UTC").fill_null(parse_iso(frame["SystemTime"], "UTC")).fill_null(header[schema.TIME])
    error = error_where(frame["EventID"].is_null(), "no Sysmon <Event> XML")
    return frame.with_columns(times.alias(schema.TIME), frame["Computer"].alias(schema.HOST), error.alias(ERROR))


def sniff_sysmon_linux(head: bytes, name: str) -> bool:
    """Claim syslog files holding Sysmon for Linux XML events."""
    text = head_text(head)
    return "<Event>" in text and "Linux-Sysmon" in text


SPECS = [text_source(SOURCE, "Sysmon for Linux (XML events in syslog)", parse_sysmon_linux, sniff_sysmon_linux,
                     priority=85)]
