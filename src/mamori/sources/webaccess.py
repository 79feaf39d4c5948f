"""Web server logs: Apache / nginx access logs (combined, common, with a virtual host in front, an
``X-Forwarded-For`` in brackets, or extra fields behind), the Apache and nginx error logs, and
nginx's JSON access logs.

Access fields: ``vhost``, ``c-ip``, ``x-forwarded-for``, ``ident``, ``cs-username``, ``timestamp``,
``request``, ``cs-method``, ``cs-uri`` (path and query), ``cs-uri-stem``, ``cs-uri-query``,
``cs-version``, ``sc-status``, ``sc-bytes``, ``cs-referer``, ``cs-user-agent`` — the W3C names that
SigmaHQ webserver rules use. Error fields: ``level``, ``module``, ``pid``, ``c-ip``, ``message``.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import dispatch, error_where, finish_json, groups, head_text, json_fields, text_source
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import with_formats

SOURCE = "webaccess"
_Q = r'"((?:[^"\\]|\\.)*)"'
ACCESS = (
    r"(?s)^\s*(?:(?P<vhost>\S+) )??(?P<client>\S+)(?: \((?P<xff>[^)]*)\))? (?P<ident>-|[\w@]+) (?P<user>.+?) "
    r"\[(?P<time>[^\]]+)\] (?:\"(?P<pre>[^\"]*)\" )?" + _Q.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}|-) (?P<bytes>\d+|-)(?: \d+)?"
    r"(?: " + _Q.replace("(", "(?P<referer>", 1) + r" " + _Q.replace("(", "(?P<agent>", 1) + r")?(?P<extra>.*)$"
)
REQUEST = r"(?s)^(?P<method>[A-Z][A-Z_\-]*) (?P<uri>\S+)(?: (?P<version>[A-Z]+/[\d.]+))?$"
APACHE_ERROR = (
    r"(?s)^\s*(?:\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] )?"
    r"\[(?:(?P<module>[\w\-]*):)?(?P<level>[a-z]+\d?)\](?: \[pid (?P<pid>\d+)(?::tid \d+)?\])?"
    r"(?: \[client (?P<client>[^\]]+?)(?::\d+)?\])?\s*(?P<message>.*)$"
)
NGINX_ERROR = (
    r"(?s)^\s*(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>[a-z]+)\] (?P<pid>\d+)#\d+: (?P<message>.*)$"
)
ERROR_START = r"^\s*(?:\[[A-Z][a-z]{2} [A-Z][a-z]{2} |\[[\w\-]*:?[a-z]+\d?\] |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[)"
ACCESS_TIMES = ("%d/%b/%Y:%H:%M:%S %z",)
ACCESS_NAIVE = ("%d/%m/%Y %H:%M:%S", "%d/%b/%Y:%H:%M:%S")


def _none_if_dash(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "-").then(None).otherwise(pl.col(column)).alias(column)


def parse_access(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse access-log lines (combined / common and their common variants)."""
    parts = groups(texts, ACCESS)
    request = pl.DataFrame({"r": parts["request"]}).select(
        pl.col("r").str.extract_groups(REQUEST).alias("g")).unnest("g")
    uri = request["uri"]
    frame = pl.DataFrame({
        "vhost": parts["vhost"],
        "c-ip": parts["client"],
        "x-forwarded-for": parts["xff"],
        "ident": parts["ident"],
        "cs-username": parts["user"],
        "timestamp": parts["time"],
        "request": parts["request"],
        "cs-method": request["method"],
        "cs-uri": uri,
        "cs-uri-stem": uri.str.extract(r"^([^?#]*)", 1),
        "cs-uri-query": uri.str.extract(r"\?([^#]*)", 1),
        "cs-version": request["version"],
        "sc-status": parts["status"],
        "sc-bytes": parts["bytes"],
        "cs-referer": parts["referer"],
        "cs-user-agent": parts["agent"],
        "extra": parts["extra"].str.strip_chars(),
    }).with_columns([_none_if_dash(c) for c in ("x-forwarded-for", "cs-username", "ident", "sc-bytes",
                                                 "cs-referer", "cs-user-agent", "vhost")])
    frame = frame.with_columns(pl.when(pl.col("extra") == "").then(None).otherwise(pl.col("extra")).alias("extra"))
    times = with_formats(parts["time"], ACCESS_TIMES, ACCESS_NAIVE, options.default_timezone)
    error = error_where(parts["client"].is_null(), "not an access-log line")
    return frame.with_columns(times.alias(schema.TIME), parts["vhost"].alias(schema.HOST), error.alias("_error"))


def parse_error_log(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Apache (``[Wed Oct 11 14:32:52 2000] [error] [client ...]``) and nginx error-log lines."""
    apache = groups(texts, APACHE_ERROR)
    nginx = groups(texts, NGINX_ERROR)
    is_nginx = nginx["level"].is_not_null()

    def pick(name: str) -> pl.Series:
        other = apache[name] if name in apache.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
        mine = nginx[name] if name in nginx.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
        return pl.select(pl.when(is_nginx).then(mine).otherwise(other)).to_series().alias(name)

    message = pick("message")
    client = pl.select(pl.when(is_nginx).then(message.str.extract(r"client: ([^,]+)", 1))
                       .otherwise(apache["client"])).to_series()
    frame = pl.DataFrame([pick("time").alias("timestamp"), pick("level"), apache["module"], pick("pid"),
                          client.alias("c-ip"), message,
                          message.str.extract(r'request: "(?:[A-Z]+) ([^" ]+)', 1).alias("cs-uri"),
                          message.str.extract(r"server: ([^,]+)", 1).alias("vhost")])
    stamp = frame["timestamp"].str.replace(r"^[A-Z][a-z]{2} ", "")
    times = with_formats(stamp, (), ("%b %d %H:%M:%S%.f %Y", "%Y/%m/%d %H:%M:%S"), options.default_timezone)
    return frame.with_columns(times.alias(schema.TIME))


def parse_json_access(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse nginx/Apache access logs written as JSON (their own field names are kept)."""
    frame = json_fields(texts.str.extract(r"(?s)(\{.*\})", 1).fill_null(""))
    frame = finish_json(frame, options, ("timestamp", "time_iso8601", "@timestamp"), ("server_name", "host"))
    aliases = {"c-ip": ("remote_addr", "client_address"), "cs-method": ("request_method",),
               "sc-status": ("status", "response_status"), "cs-user-agent": ("http_user_agent",),
               "cs-referer": ("http_referer", "http_referrer"), "cs-uri-query": ("query_string",),
               "cs-username": ("remote_user",), "vhost": ("server_name", "host")}
    if "request" in frame.columns:
        request = pl.DataFrame({"r": frame["request"]}).select(
            pl.col("r").str.extract_groups(REQUEST).alias("g")).unnest("g")
        frame = frame.with_columns(
            pl.coalesce(frame["request_method"] if "request_method" in frame.columns else request["method"],
                        request["method"]).alias("request_method"),
            request["uri"].alias("cs-uri"), request["uri"].str.extract(r"^([^?#]*)", 1).alias("cs-uri-stem"),
            request["uri"].str.extract(r"\?([^#]*)", 1).alias("_query"))
        aliases["cs-uri-query"] = ("query_string", "_query")
    for name, columns in aliases.items():
        present = [c for c in columns if c in frame.columns]
        if present and name not in frame.columns:
            frame = frame.with_columns(pl.coalesce([pl.col(c) for c in present]).alias(name))
    if "_query" in frame.columns:
        frame = frame.drop("_query")
    if "time_local" in frame.columns:
        local = with_formats(frame["time_local"], ACCESS_TIMES, (), options.default_timezone)
        base = frame[schema.TIME] if schema.TIME in frame.columns else local
        frame = frame.with_columns(base.fill_null(local).alias(schema.TIME))
    return frame


def parse_syslog_wrapped(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse web logs that arrive behind a syslog header."""
    header = syslog_parts(texts, options)
    return parse_webaccess(header["message"], options)


def parse_webaccess(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse any web-server log line: access, error or JSON."""
    return dispatch(texts, options, [
        (r"^\s*\{", parse_json_access),
        (r"\] \"", parse_access),
        (ERROR_START, parse_error_log),
        (r"^(?:<\d+>)?[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ", parse_syslog_wrapped),
    ], parse_access)


def sniff_webaccess(head: bytes, name: str) -> bool:
    """Claim files whose first line is an access-log or Apache/nginx error-log line."""
    import re

    first = head_text(head).split("\n", 1)[0]
    return bool(re.search(r'\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "', first)) or bool(
        re.match(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] \[", first)) or bool(
        re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\] \d+#\d+: ", first))


SPECS = [text_source(SOURCE, "Apache / nginx access (combined, common) and error logs, nginx JSON",
                     parse_webaccess, sniff_webaccess, priority=60)]
