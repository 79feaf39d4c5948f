"""Fortinet FortiGate logs: ``key=value`` (space or comma separated, quoted values) over syslog or
bare, and the CEF form FortiGate also sends.

Fields keep FortiGate's names (``srcip``, ``dstip``, ``dstport``, ``action``, ``user``, ``logid``,
``type``, ``subtype``, ``logdesc``, ``msg``...). Time: ``eventtime`` (epoch s/ms/us/ns, UTC), else
``date`` + ``time`` in the zone ``tz`` gives, else the device's zone from the options.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, UTC_NS, dispatch, head_text, nulls, text_source
from mamori.sources.cef import CEF_MARKS, parse_cef
from mamori.sources.kv import parse_kv
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch, with_formats

SOURCE = "fortigate"


def _local_time(frame: pl.DataFrame, options: ReadOptions) -> pl.Series:
    if "date" not in frame.columns or "time" not in frame.columns:
        return pl.Series([None] * frame.height, dtype=pl.Datetime("ns", "UTC"))
    stamp = frame.select(pl.col("date") + " " + pl.col("time")).to_series()
    if "tz" in frame.columns:
        zone = frame["tz"].str.replace(r"^(?:UTC|GMT)?([+-])(\d)$", "${1}0${2}00").str.replace(
            r"^(?:UTC|GMT)?([+-]\d\d)$", "${1}00").str.replace(r"^(?:UTC|GMT)?([+-]\d\d):?(\d\d)$", "${1}${2}")
        zoned_text = frame.select(stamp + " " + zone.fill_null("")).to_series()
        zoned = with_formats(zoned_text, ("%Y-%m-%d %H:%M:%S %z",), (), options.default_timezone)
    else:
        zoned = pl.Series([None] * frame.height, dtype=pl.Datetime("ns", "UTC"))
    return zoned.fill_null(with_formats(stamp, (), ("%Y-%m-%d %H:%M:%S",), options.default_timezone))


def parse_fortigate_kv(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse FortiGate ``key=value`` records."""
    header = syslog_parts(texts, options)
    keys = "(?:logver|timestamp|date|time|devname|devid|eventtime|type|itime|logid|tz)="
    prefixed = ~texts.str.contains(r"^" + keys)
    body = texts
    if prefixed.any():
        body = body.scatter(prefixed.arg_true(), texts.filter(prefixed).str.replace(r"^.*?(" + keys + ")", "$1"))
    frame = parse_kv(body)
    if frame.width == 0:
        return pl.DataFrame({ERROR: ["no key=value pairs"] * len(texts)})
    times = nulls(frame.height, dtype=UTC_NS)
    for name in ("eventtime", "timestamp", "itime"):
        if name in frame.columns and times.null_count():  # each form only fills the times still missing
            times = times.fill_null(parse_epoch(frame[name]))
    if times.null_count():
        times = times.fill_null(_local_time(frame, options))
    times = times.fill_null(header[schema.TIME])
    host = frame["devname"] if "devname" in frame.columns else header["hostname"]
    known = frame.select(pl.any_horizontal([pl.col(c).is_not_null() for c in frame.columns])).to_series()
    error = pl.select(pl.when(known).then(None).otherwise(pl.lit("no key=value pairs"))).to_series()
    return frame.with_columns(times.alias(schema.TIME), host.alias(schema.HOST), error.alias(ERROR))


def parse_fortigate(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse FortiGate records, key=value or CEF."""
    return dispatch(texts, options, [(CEF_MARKS, parse_cef)], parse_fortigate_kv)


def sniff_fortigate(head: bytes, name: str) -> bool:
    """Claim files whose first line has FortiGate's ``devid=``/``logid=`` pairs."""
    first = head_text(head).split("\n", 1)[0]
    return ("logid=" in first and ("devid=" in first or "type=" in first)) or "|Fortinet|Fortigate|" in first


SPECS = [text_source(SOURCE, "Fortinet FortiGate key=value logs (and FortiGate CEF)", parse_fortigate,
                     sniff_fortigate, priority=70)]
