"""Windows DNS Server debug log (``dns.log``): ``6/5/2013 10:20:46 AM 0E70 PACKET  00000000033397A0 UDP
Rcv 10.161.60.71 5b47   Q [0001   D   NOERROR] A      (7)example(3)com(0)``.

Fields: ``thread``, ``context``, ``packet_id``, ``protocol``, ``direction``, ``remote_ip``, ``xid``,
``response`` (R for a response, empty for a query), ``opcode``, ``flags``, ``flag_chars``, ``rcode``,
``record_type``, ``query`` (the ``(7)example(3)com(0)`` name turned into ``example.com``). The file's
preamble and notes are kept as events with only ``message``. Times are local (the default zone).
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import groups, head_text, text_source
from mamori.sources.timeparse import with_formats

SOURCE = "windns"
PACKET = (
    r"^(?P<date>\d{1,4}[/\-.]\d{1,2}[/\-.]\d{1,4}) (?P<time>\d{1,2}:\d\d:\d\d(?: [AP]M)?) (?P<thread>[0-9A-F]+) "
    r"(?P<context>PACKET)\s+(?P<packet_id>[0-9A-Fa-f]+) (?P<protocol>UDP|TCP) (?P<direction>Snd|Rcv) "
    r"(?P<remote_ip>\S+)\s+(?P<xid>[0-9a-fA-F]{4}) (?P<response>R| ) (?P<opcode>[A-Z?]) "
    r"\[(?P<flags>[0-9a-fA-F]{4})(?P<flag_chars>[A-Z ]*?)\s*(?P<rcode>[A-Z]+)\]\s+(?P<record_type>\S+)\s+(?P<qname>\S+)"
)


def parse_windns(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse DNS debug-log lines."""
    parts = groups(texts, PACKET)
    query = parts["qname"].str.replace_all(r"\(\d+\)", ".").str.strip_chars(".")
    frame = parts.drop("date", "time").with_columns(
        query.alias("query"), parts["flag_chars"].str.strip_chars().alias("flag_chars"),
        pl.when(parts["response"] == " ").then(pl.lit("")).otherwise(parts["response"]).alias("response"),
        pl.when(parts["context"].is_null()).then(texts.str.strip_chars()).otherwise(None).alias("message"),
    )
    stamp = pl.select(parts["date"] + " " + parts["time"]).to_series()
    times = with_formats(stamp, (), ("%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S",
                                     "%d.%m.%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S"), options.default_timezone)
    return frame.with_columns(times.alias(schema.TIME))


def sniff_windns(head: bytes, name: str) -> bool:
    """Claim DNS debug logs by their preamble or a PACKET line."""
    text = head_text(head)
    return "DNS Server log file creation" in text or (" PACKET " in text and " UDP " in text and "[" in text)


SPECS = [text_source(SOURCE, "Windows DNS Server debug log", parse_windns, sniff_windns, priority=70)]
