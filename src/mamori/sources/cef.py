"""ArcSight Common Event Format (CEF), bare or inside syslog: Trend Micro, Check Point, FortiGate,
Palo Alto, Cisco ESA, Cybereason and any other device that speaks it.

Fields: ``cef_version``, ``deviceVendor``, ``deviceProduct``, ``deviceVersion``,
``deviceEventClassId``, ``name``, ``severity`` (header, ``\\|`` unescaped) and the extension's keys as
sent (``src``, ``dst``, ``suser``, ``act``, ``cs1Label``/``cs1``...); syslog header fields when present.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, UTC_NS, groups_rest, head_text, hstack, nulls, text_source
from mamori.sources.kv import parse_cef_extension
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch, with_formats

SOURCE = "cef"
HEADER_NAMES = ("cef_version", "deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId",
                "name", "severity", "extension")
_FIELD = r"((?:[^|\\]|\\.)*)"
CEF = r"(?s)(?:CEF: ?)?(\d{1,2})\|" + r"\|".join([_FIELD] * 6) + r"\|"  # then the extension
CEF_MARKS = (r"CEF: ?\d", r"^\s*\d\|[^|]*\|[^|]*\|")  # a CEF record: either one matches (see batch.contains_any)
CEF_MARK = "(?:" + "|".join(CEF_MARKS) + ")"
CEF_TIME_FORMATS = ("%b %d %Y %H:%M:%S%.f", "%b %d %H:%M:%S%.f %Y", "%Y-%m-%dT%H:%M:%S%.f")


def cef_time(frame: pl.DataFrame, options: ReadOptions) -> pl.Series:
    """Event time of CEF records: ``rt`` (epoch ms or text), else ``end``/``start``, else the syslog header."""
    result = nulls(frame.height, schema.TIME, UTC_NS)
    for name in ("rt", "end", "start", "deviceReceiptTime", "FTNTFGTeventtime", "FortinetFortiGateeventtime"):
        if name not in frame.columns or not result.null_count():
            continue  # each form only fills the times still missing: none left, nothing to parse
        result = result.fill_null(parse_epoch(frame[name]))
        if result.null_count():
            text = frame[name].str.replace(r"\s*(?:GMT|UTC)([+-]\d\d:?\d\d)?$", "${1}")
            result = result.fill_null(with_formats(text, ("%b %d %Y %H:%M:%S%.f%#z",), (), options.default_timezone))
            result = result.fill_null(with_formats(text, (), CEF_TIME_FORMATS, options.default_timezone))
    return result


def parse_cef(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse CEF records (see the module docstring); records with no CEF header get an ``_error``."""
    header = syslog_parts(texts, options)
    body = texts.str.replace(r"CEF:(\s?\d+)\|\|", "CEF:$1|")
    parts = groups_rest(body, CEF, "extension")
    parts.columns = list(HEADER_NAMES)
    escaped = parts.select(pl.col(HEADER_NAMES[:-1]).str.contains("\\", literal=True).any()).row(0)
    parts = parts.with_columns([pl.col(c).str.replace_all(r"\\([|\\])", "$1")
                                for c, has_escape in zip(HEADER_NAMES[:-1], escaped, strict=True) if has_escape])
    extension = parse_cef_extension(parts["extension"].fill_null(""))
    keep_header = header.select([c for c in ("syslog_pri", "timestamp", "hostname", "program") if c in header.columns])
    extension = extension.select([c for c in extension.columns if c not in HEADER_NAMES])
    frame = hstack(keep_header, parts.drop("extension"), extension)
    times = cef_time(frame, options).fill_null(header[schema.TIME])
    hosts = frame.select(pl.coalesce([pl.col(c) for c in ("dvchost", "deviceHostName", "hostname", "dvc")
                                      if c in frame.columns] or [pl.lit(None, dtype=pl.Utf8)])).to_series()
    error = pl.select(pl.when(parts["cef_version"].is_null()).then(pl.lit("no CEF header (CEF:Version|Vendor|"
                      "Product|Version|ID|Name|Severity|Extension)")).otherwise(None)).to_series()
    return frame.with_columns(times.alias(schema.TIME), hosts.alias(schema.HOST), error.alias(ERROR))


def sniff_cef(head: bytes, name: str) -> bool:
    """Claim files whose first line carries a CEF header."""
    return "CEF:" in head_text(head).split("\n", 1)[0]


SPECS = [text_source(SOURCE, "ArcSight CEF (bare or over syslog)", parse_cef, sniff_cef, priority=60)]
