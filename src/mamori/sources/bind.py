"""ISC BIND logs: query logs (``client @0x... 10.0.0.1#5353 (name): query: name IN A +E(0) (10.0.0.2)``),
answer logs (``answer: ... -> NOERROR ...``) and general messages, bare or behind a syslog or BIND
``29-Jan-2024 10:00:00.123`` header.

Fields: ``client_ip``, ``client_port``, ``query``, ``query_class``, ``record_type``, ``flags``,
``server_ip``, ``rcode``, ``answer``, ``log_category`` (``queries``, ``client``...), ``message``.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import coalesce, groups, head_text, text_source
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import with_formats

SOURCE = "bind"
BIND_TIME = r"^\s*(?P<bind_time>\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?) (?P<rest>(?s:.*))$"
QUERY = (
    r"client (?:@\S+ )?(?P<client_ip>[0-9a-fA-F.:]+)#(?P<client_port>\d+)(?: \([^)]*\))?: (?:view \S+: )?"
    r"(?P<kind>query|answer): (?P<query>\S+) (?P<query_class>[A-Z]+\d*) (?P<record_type>[A-Z0-9]+) "
    r"(?P<flags>\S*)(?: \((?P<server_ip>[^)]+)\))?(?: -> (?P<rcode>[A-Z]+)(?: (?P<answer>.*))?)?"
)

CLIENT = r"client (?:@\S+ )?(?P<cip>[0-9a-fA-F.:]+)#(?P<cport>\d+)(?: \((?P<qname>[^)]*)\))?"


def parse_bind(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse BIND log lines; every line is kept, query fields filled where the line is a query."""
    header = syslog_parts(texts, options)
    lead = groups(header["message"], BIND_TIME)
    message = lead["rest"].fill_null(header["message"])
    category = message.str.extract(r"^(?:(\w[\w\-]*): (?:(?:info|notice|warning|error|debug \d+|critical): )?)", 1)
    query = groups(message, QUERY)
    client = groups(message, CLIENT)
    query = query.with_columns(coalesce(query["client_ip"], client["cip"]),
                               coalesce(query["client_port"], client["cport"]),
                               coalesce(query["query"], client["qname"]))
    rpz = message.str.extract(r": rpz \w+ (\w+) rewrite", 1).alias("rpz_action")
    frame = pl.concat([header.select("syslog_pri", "timestamp", "hostname", "program", "pid"), rpz.to_frame(),
                       pl.DataFrame([message.alias("message"), category.alias("log_category")]),
                       query], how="horizontal")
    frame = frame.with_columns(pl.when(pl.col("log_category").is_null() & pl.col("kind").is_not_null())
                               .then(pl.lit("queries")).otherwise(pl.col("log_category")).alias("log_category"))
    times = with_formats(lead["bind_time"], (), ("%d-%b-%Y %H:%M:%S%.f",), options.default_timezone)
    return frame.with_columns(times.fill_null(header[schema.TIME]).alias(schema.TIME),
                              header["hostname"].alias(schema.HOST))


def sniff_bind(head: bytes, name: str) -> bool:
    """Claim files whose first line is a BIND query or answer log line."""
    import re

    first = head_text(head).split("\n", 1)[0]
    return bool(re.search(r"client (?:@\S+ )?[0-9a-fA-F.:]+#\d+ .*: (?:query|answer): ", first))


SPECS = [text_source(SOURCE, "ISC BIND query / answer and general logs", parse_bind, sniff_bind, priority=70)]
