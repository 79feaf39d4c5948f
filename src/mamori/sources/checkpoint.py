"""Check Point firewall logs: CEF (Log Exporter), the ``syslog[key:"value"; ...]`` Log Exporter form,
and the OPSEC LEA export of space-separated quoted columns.

Fields keep Check Point's names (``src``, ``dst``, ``s_port``, ``service``, ``proto``, ``action``,
``rule``, ``rule_name``, ``ifname``, ``origin``, ``product``...); CEF records keep CEF names.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, dispatch, error_where, head_text, text_source
from mamori.sources.cef import CEF_MARKS, parse_cef
from mamori.sources.kv import widen
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch, with_formats

SOURCE = "checkpoint"
LEA_COLUMNS = ("loc", "date", "time", "ifname", "origin", "type", "action", "service", "s_port", "src", "dst",
               "proto", "rule", "rule_name", "layer_name", "user", "information", "product", "src_user_name",
               "dst_user_name")
PAIR = r'[A-Za-z_][\w\-]*::?"(?:[^"\\]|\\.)*"'


def parse_exporter(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse ``syslog[key:"value"; ...]`` records (``time`` is epoch seconds)."""
    header = syslog_parts(texts, options)
    pairs = pl.DataFrame({"p": texts.str.extract_all(PAIR)}).with_row_index("_r").explode("p").drop_nulls("p")
    split = pairs["p"].str.splitn(":", 2)  # key:"value" or key::"value"; a key holds no colon
    value = split.struct.field("field_1").str.strip_prefix(":").str.replace("\\]", "]", literal=True)
    frame = widen(pl.DataFrame({"_r": pairs["_r"], "key": split.struct.field("field_0"), "value": value}), len(texts))
    if frame.width == 0:
        return pl.DataFrame({ERROR: ['no key:"value" pairs'] * len(texts)})
    times = parse_epoch(frame["time"]) if "time" in frame.columns else header[schema.TIME]
    host = frame["origin"] if "origin" in frame.columns else header["hostname"]
    return frame.with_columns(times.fill_null(header[schema.TIME]).alias(schema.TIME), host.alias(schema.HOST))


def parse_lea(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse the OPSEC LEA export: ``"num" "20Dec2019" "12:04:05" "eth1" ...`` (device time, default zone)."""
    values = texts.str.replace(r"#013$", "").str.extract_all(r'"(?:[^"\\]|\\.)*"')
    frame = pl.DataFrame({"v": values}).select([
        pl.col("v").list.get(i, null_on_oob=True).str.strip_chars('"').alias(name)
        for i, name in enumerate(LEA_COLUMNS)
    ])
    frame = frame.with_columns([pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in LEA_COLUMNS])
    stamp = frame.select(pl.col("date") + " " + pl.col("time")).to_series()
    times = with_formats(stamp, (), ("%d%b%Y %H:%M:%S",), options.default_timezone)
    error = error_where(values.list.len() < 7, "fewer than 7 quoted columns")
    return frame.with_columns(times.alias(schema.TIME), frame["origin"].alias(schema.HOST), error.alias(ERROR))


def parse_checkpoint(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Check Point records in any of the three forms."""
    return dispatch(texts, options, [(CEF_MARKS, parse_cef), (r'\w+\[\w[\w\-]*:"', parse_exporter),
                                     (r'^\s*"[^"]*" "\d{1,2}[A-Z][a-z]{2}\d{4}"', parse_lea)])


def sniff_checkpoint(head: bytes, name: str) -> bool:
    """Claim Check Point Log Exporter and CEF files."""
    first = head_text(head).split("\n", 1)[0]
    return "|Check Point|" in first or ('[action:"' in first and "origin:" in first)


SPECS = [text_source(SOURCE, "Check Point firewall (Log Exporter syslog/CEF, OPSEC LEA export)",
                     parse_checkpoint, sniff_checkpoint, priority=70)]
