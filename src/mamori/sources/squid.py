"""Squid proxy access logs: the native format (``1564655684.277 3387 192.168.0.1 TCP_TUNNEL/200 19131
CONNECT host:443 - HIER_DIRECT/host -``, optionally with quoted referer and user agent behind) and the
common/combined format Squid also writes.

Fields keep Squid's meaning under plain names: ``elapsed``, ``client_ip``, ``result_code``, ``status``,
``bytes``, ``method``, ``url``, ``user``, ``hierarchy``, ``peer_host``, ``content_type``, ``referer``,
``user_agent``; and ``url_host``, ``url_path``, ``url_query``, ``url_extension`` split from ``url`` (the
proxy log-source mapping aliases Sigma's ``c-uri``, ``cs-host``, ``c-uri-query`` to them).
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import dispatch, error_where, groups, head_text, text_source
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch, with_formats

SOURCE = "squid"
NATIVE = (
    r"(?s)^\s*(?P<ts>\d{9,11}\.\d{3})\s+(?P<elapsed>-?\d+) (?P<client_ip>\S+) "
    r"(?P<result_code>[A-Z_]+)/(?P<status>\d{3}) "
    r"(?P<bytes>\d+|-) (?P<method>\S+) (?P<url>\S+) (?P<user>\S+) (?P<hierarchy>[A-Z_]+)/(?P<peer_host>\S+)"
    r"(?: (?P<content_type>\S+))?(?: \"(?P<referer>[^\"]*)\" \"(?P<user_agent>[^\"]*)\")?(?P<extra>.*)$"
)
COMMON = (
    r"(?s)^\s*(?P<client_ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] \"(?P<method>\S+) (?P<url>\S+)"
    r"(?: (?P<version>[^\"]+))?\" (?P<status>\d{3}) (?P<bytes>\d+|-)"
    r"(?: (?P<result_code>[A-Z_]+):(?P<hierarchy>[A-Z_]+))?(?P<extra>.*)$"
)


def _url_parts(frame: pl.DataFrame) -> pl.DataFrame:
    url = pl.col("url")
    host = url.str.extract(r"^(?:[a-zA-Z][\w+.\-]*://)?(?:[^@/]*@)?(\[[^\]]+\]|[^/:?#]+)", 1)
    path = url.str.extract(r"^(?:[a-zA-Z][\w+.\-]*://[^/]*)?(/[^?#]*)", 1)
    return frame.with_columns(
        pl.when((pl.col("method") == "CONNECT") & ~url.str.contains("://"))
        .then(url.str.extract(r"^([^:/]+)", 1)).otherwise(host).alias("url_host"),
        path.alias("url_path"),
        url.str.extract(r"\?([^#]*)", 1).alias("url_query"),
        path.str.extract(r"\.([A-Za-z0-9]{1,8})$", 1).alias("url_extension"),
    ).with_columns([pl.when(pl.col(c) == "-").then(None).otherwise(pl.col(c)).alias(c)
                    for c in ("user", "content_type", "referer", "user_agent") if c in frame.columns])


def parse_native(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse native Squid access-log lines (time is epoch seconds with milliseconds)."""
    header = syslog_parts(texts, options)
    body = header["message"]
    parts = groups(body, NATIVE)
    times = parse_epoch(parts["ts"]).fill_null(header[schema.TIME])
    error = error_where(parts["ts"].is_null(), "not a Squid access-log line")
    frame = _url_parts(parts.rename({"ts": "timestamp"}))
    return frame.with_columns(times.alias(schema.TIME), header["hostname"].alias(schema.HOST), error.alias("_error"))


def parse_common(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Squid's common / combined format (``[05/02/2025 11:30:29]`` or ``[10/Oct/2000:13:55:36 -0700]``)."""
    parts = groups(texts, COMMON)
    times = with_formats(parts["time"], ("%d/%b/%Y:%H:%M:%S %z",), ("%d/%m/%Y %H:%M:%S",), options.default_timezone)
    error = error_where(parts["time"].is_null(), "not a Squid access-log line")
    frame = _url_parts(parts.rename({"time": "timestamp"}))
    return frame.with_columns(times.alias(schema.TIME), error.alias("_error"))


def parse_squid(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Squid access-log lines, native or common."""
    return dispatch(texts, options, [(r"\d{9,11}\.\d{3}\s+-?\d+ \S+ [A-Z_]+/\d{3} ", parse_native),
                                     (r"\] \"\S+ \S+", parse_common)])


def sniff_squid(head: bytes, name: str) -> bool:
    """Claim files whose first line is a native Squid access-log line."""
    import re

    first = head_text(head).split("\n", 1)[0]
    return bool(re.match(r"^\d{9,11}\.\d{3}\s+-?\d+ \S+ [A-Z_]+/\d{3} ", first)) or bool(
        re.search(r'\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d\] "[A-Z]+ (?:https?://|\S+:\d+ )', first))


SPECS = [text_source(SOURCE, "Squid proxy access log (native and common formats)", parse_squid, sniff_squid,
                     priority=70)]
