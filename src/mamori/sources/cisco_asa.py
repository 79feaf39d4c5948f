"""Cisco ASA and Secure Firewall (FTD) syslog: ``%ASA-6-302013: Built inbound TCP connection ...``.

Fields: ``device_type`` (ASA, FTD, NGIPS...), ``severity``, ``message_id``, ``message``, and what the
message text carries: ``src_interface``, ``src_ip``, ``src_port``, ``dst_interface``, ``dst_ip``,
``dst_port``, ``protocol``, ``action``, ``user``, ``group``; FTD/NGIPS ``Key: value,`` events keep
their keys (``InitiatorIP``, ``ResponderIP``, ``Protocol``, ``User``...).
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import groups, groups_rest, head_text, hstack, text_source
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts

SOURCE = "cisco_asa"
TAG = r"%(?P<device_type>[A-Z][A-Z0-9_]*)-(?P<severity>\d)-(?P<message_id>\d{6}): ?"  # then the message
_ADDR = (r"(?:(?P<{s}_interface>[\w\-.]+):)?(?P<{s}_ip>\d{{1,3}}(?:\.\d{{1,3}}){{3}}|[0-9a-fA-F]*:[0-9a-fA-F:]+)"
         r"(?:/(?P<{s}_port>\d+))?")
FLOW = (r"(?i)(?:from|for|src|between)\s+" + _ADDR.format(s="src") + r"(?:\s*\([^)]*\))?\s+(?:to|dst|and)\s+"
        + _ADDR.format(s="dst"))
EXTRACT = {
    "protocol": r"\b(TCP|UDP|ICMP|GRE|ESP|IP|tcp|udp|icmp)\b",
    "action": r"(?i)\b(denied|deny|built|teardown|permitted|rejected|succeeded|successful|failed|terminated|dropped"
              r"|discarded)\b",
    "user": r"(?:[Uu]ser(?:name)?\s*(?:=|<|')\s*)([^>',\s]+)",
    "group": r"(?:Group|TunnelGroup)\s*(?:=|<)\s*([^>,]+)",
    "client_ip": r"\bIP\s*(?:=|<)\s*([0-9a-fA-F.:]+)",
}


def parse_asa(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse ASA / FTD records (lines without a ``%ASA-n-nnnnnn`` tag are kept with their message)."""
    header = syslog_parts(texts, options)
    tag = groups_rest(texts, TAG, "message")
    message = tag["message"].fill_null(header["message"])
    flow = groups(message, FLOW)
    extracted = pl.DataFrame({"m": message}).select(
        [pl.col("m").str.extract(pattern, 1).str.strip_chars().alias(name) for name, pattern in EXTRACT.items()])
    frame = pl.concat([header.select("syslog_pri", "timestamp", "hostname"), tag.drop("message"),
                       message.alias("message").to_frame(), flow, extracted], how="horizontal")
    frame = frame.with_columns(pl.coalesce("src_ip", "client_ip").alias("src_ip")).drop("client_ip")
    keyed = message.str.contains(r"\b\w+: [^,]*, \w+: ").fill_null(False)
    if keyed.any():
        pairs = pl.select(pl.when(keyed).then(message).otherwise(None)).to_series().str.extract_all(
            r"[A-Za-z][\w]*: [^,]*").list.eval(pl.element().str.replace(": ", "=", literal=True))
        kv = pairs_frame(pairs, unquote=False)
        frame = hstack(frame, kv.select([c for c in kv.columns if c not in frame.columns]))
    return frame.with_columns(header[schema.TIME].alias(schema.TIME), header["hostname"].alias(schema.HOST))


def sniff_asa(head: bytes, name: str) -> bool:
    """Claim files whose first line carries an ``%ASA-`` or ``%FTD-`` tag."""
    first = head_text(head).split("\n", 1)[0]
    return "%ASA-" in first or "%FTD-" in first


SPECS = [text_source(SOURCE, "Cisco ASA / Secure Firewall (FTD) syslog", parse_asa, sniff_asa, priority=70)]
