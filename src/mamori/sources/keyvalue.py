"""Generic ``key=value`` device logs (Sophos Firewall / UTM and other appliances that write
``key="value"`` pairs), bare or over syslog. Keys are kept as sent; time from ``date`` + ``time``
(with ``timezone`` when it is an offset), ``timestamp`` (ISO 8601 or epoch), else the syslog header.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, head_text, text_source
from mamori.sources.kv import parse_kv
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_auto, with_formats

SOURCE = "keyvalue"


def parse_keyvalue(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse ``key=value`` records; a record with no pair at all gets an ``_error``."""
    header = syslog_parts(texts, options)
    frame = parse_kv(header["message"])
    if frame.width == 0:
        return pl.DataFrame({ERROR: ["no key=value pairs"] * len(texts)})
    times = header[schema.TIME]
    if "timestamp" in frame.columns:
        stamp = frame["timestamp"].str.replace(r"([+-]\d\d)(\d\d)$", "${1}:${2}")
        times = parse_auto(stamp, options.default_timezone).fill_null(times)
    if "date" in frame.columns and "time" in frame.columns:
        local = pl.select(frame["date"] + " " + frame["time"]).to_series()
        times = times.fill_null(with_formats(local, (), ("%Y-%m-%d %H:%M:%S",), options.default_timezone))
    any_pair = frame.select(pl.any_horizontal([pl.col(c).is_not_null() for c in frame.columns])).to_series()
    error = pl.select(pl.when(any_pair).then(None).otherwise(pl.lit("no key=value pairs"))).to_series()
    host = frame["device_name"] if "device_name" in frame.columns else header["hostname"]
    return frame.with_columns(times.alias(schema.TIME), host.alias(schema.HOST), error.alias(ERROR))


def sniff_keyvalue(head: bytes, name: str) -> bool:
    """Claim files whose first line is mostly ``key=value`` pairs (a low-priority catch-all)."""
    import re

    first = head_text(head).split("\n", 1)[0]
    return len(re.findall(r'\b[a-z_]+="?[^\s"]*"?(?:\s|$)', first)) >= 5


SPECS = [text_source(SOURCE, "Generic key=value appliance logs (Sophos Firewall / UTM and similar)",
                     parse_keyvalue, sniff_keyvalue, priority=10)]
