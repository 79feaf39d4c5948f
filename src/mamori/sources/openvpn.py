"""OpenVPN server logs: ``Tue Aug 12 08:26:30 2025 us=340080 192.0.2.12:65244 message``,
``2024-09-05 14:39:31 john.doe/1.2.3.4:12399 TLS: ...``, status lines ``client01,10.8.0.4,`` and plugin
messages (LDAP authentication), bare or behind syslog.

Fields: ``timestamp``, ``common_name``, ``src_ip``, ``src_port``, ``virtual_ip``, ``message``, ``user``.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import coalesce, groups, groups_rest, head_text, text_source
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import with_formats

SOURCE = "openvpn"
LINE = (
    r"(?s)^\s*(?:(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
    r"(?: us=\d+)? )?(?:(?:(?P<common_name>[^/\s,][^/,]*?)/)?"
    r"(?P<src_ip>\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+)"
    r":(?P<src_port>\d+) )?"
)  # then the message
STATUS = r"^(?P<cn>[^,\s][^,]*),(?P<vip>\d{1,3}(?:\.\d{1,3}){3}),"
USER = r"(?:user \"([^\"]+)\"|LDAP DN \"CN=([^,\"]+)|username '([^']+)'|user '([^']+)')"


def parse_openvpn(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse OpenVPN log lines; every line is kept with its message."""
    header = syslog_parts(texts, options)
    own = groups_rest(texts, LINE, "message")
    wrapped = groups_rest(header["message"], LINE, "message")
    has_own = own["ts"].is_not_null()
    parts = pl.DataFrame([pl.select(pl.when(has_own).then(own[c]).otherwise(wrapped[c])).to_series().alias(c)
                          for c in own.columns])
    header = header.with_columns([pl.when(has_own).then(None).otherwise(pl.col(c)).alias(c)
                                  for c in ("timestamp", "hostname", schema.TIME)])
    status = groups(parts["message"], STATUS)
    user = pl.DataFrame({"m": parts["message"]}).select(
        pl.coalesce([pl.col("m").str.extract(USER, i) for i in (1, 2, 3, 4)]).alias("user")).to_series()
    frame = pl.DataFrame([
        coalesce(parts["ts"], header["timestamp"]).alias("timestamp"),
        header["hostname"],
        coalesce(parts["common_name"], status["cn"]).alias("common_name"),
        parts["src_ip"], parts["src_port"],
        status["vip"].alias("virtual_ip"),
        parts["message"].alias("message"),
        user,
    ])
    stamp = parts["ts"].str.replace(r"^[A-Z][a-z]{2} ", "").str.replace_all(r"\s+", " ")
    times = with_formats(stamp, (), ("%b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S"), options.default_timezone)
    return frame.with_columns(times.fill_null(header[schema.TIME]).alias(schema.TIME),
                              header["hostname"].alias(schema.HOST))


def sniff_openvpn(head: bytes, name: str) -> bool:
    """Claim files named like OpenVPN logs or whose first lines carry OpenVPN's marks."""
    text = head_text(head)[:4096]
    return "openvpn" in name.lower() or (" us=" in text.split("\n", 1)[0] and "Data Channel" in text)


SPECS = [text_source(SOURCE, "OpenVPN server log", parse_openvpn, sniff_openvpn, priority=55)]
