"""Linux syslog and auth logs (RFC 3164, RFC 5424, and bare messages): sshd, PAM, sudo, cron,
postfix, iptables/netfilter, macOS system.log.

Fields: ``syslog_pri``, ``facility``, ``severity``, ``timestamp``, ``hostname``, ``program``, ``pid``,
``msgid``, ``structured_data``, ``message``; netfilter lines add their ``SRC``, ``DST``, ``PROTO``,
``SPT``, ``DPT``, ``IN``, ``OUT`` pairs. Sigma's Linux rules search ``message`` by keyword.
"""

from __future__ import annotations

import re

import polars as pl

from mamori.sources.base import ReadOptions
from mamori.sources.batch import head_text, hstack, text_source
from mamori.sources.kv import parse_kv
from mamori.sources.syslog_header import syslog_parts

SOURCE = "syslog"
NETFILTER_KEYS = ("IN", "OUT", "MAC", "SRC", "DST", "LEN", "PROTO", "SPT", "DPT", "TTL", "ID")
_HEADER = re.compile(
    r"^(?:<\d{1,3}>)?(?:1 \d{4}-\d\d-\d\dT|[A-Z][a-z]{2} [ \d]\d (?:\d{4} )?\d\d:\d\d:\d\d |"
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S* \S+ \S+?(?:\[\d+\])?: )"
)


def parse_syslog(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse syslog lines into the syslog fields (see the module docstring)."""
    frame = syslog_parts(texts, options)
    message = frame["message"]
    netfilter = message.str.contains(r"\bSRC=\S+ DST=\S+").fill_null(False)
    if netfilter.any():
        pairs = parse_kv(pl.select(pl.when(netfilter).then(message).otherwise(None)).to_series(), commas=False)
        keep = [c for c in NETFILTER_KEYS if c in pairs.columns]
        frame = hstack(frame, pairs.select(keep))
    return frame


def sniff_syslog(head: bytes, name: str) -> bool:
    """Claim text files whose first line starts with a syslog header."""
    first = head_text(head).split("\n", 1)[0]
    return bool(_HEADER.match(first)) or name.endswith(("auth.log", "secure", "messages", "syslog"))


SPECS = [text_source(SOURCE, "Linux/Unix syslog and auth logs (RFC 3164 / RFC 5424): sshd, PAM, sudo, "
                     "cron, postfix, netfilter", parse_syslog, sniff_syslog, priority=20)]
