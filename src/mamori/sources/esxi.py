"""VMware ESXi syslog (hostd, vpxa, vobd, sshd, fdm, rhttpproxy...): ``info hostd[2099656]
[Originator@6876 sub=Vimsvc.ha-eventmgr opID=...] Event 975279 : User root@127.0.0.1 logged in``.

Fields: ``level``, ``program``, ``pid``, ``sub``, ``opID``, ``vob`` (``vob.user.ssh.session.failed``),
``message``, and ``user``/``src_ip`` where the text names them (logins, SSH sessions).
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import coalesce, groups_rest, head_text, text_source
from mamori.sources.syslog_header import syslog_parts

SOURCE = "esxi"
BODY = (
    r"(?s)^\s*(?:(?P<prefix>[\w\-]+): )?"
    r"(?:(?P<level>verbose|info|warning|error|debug|trivia|critical|panic|In\(\d+\)|Wa\(\d+\)|Er\(\d+\)|Db\(\d+\)) )?"
    r"(?:(?P<program>[\w\-.]+)\[(?P<pid>\d+)\]:? )?"
    r"(?:\[(?:Originator|vSAN|\w+)@\d+ (?P<meta>[^\]]*)\] )?"
)  # then the message
USER = (r"(?:[Uu]ser '?([\w.\-\\]+)(?:@|'| from| logged|\s)|for '?(?:invalid user )?([\w.\-\\]+)@|user ([\w.\-\\]+) "
        r"|[Ll]ogin '?([\w.\-\\]+)@)")
IP = r"(?:@|from |user \S+ )(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+:[0-9a-fA-F]+)"


def parse_esxi(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse ESXi log lines; every line is kept with its message."""
    header = syslog_parts(texts, options)
    body = groups_rest(header["message"], BODY, "message")
    message = body["message"]
    # the four ways of naming the user are groups of one regex: one pass gives them all
    found = pl.DataFrame({"g": message.str.extract_groups(USER)}).unnest("g")
    user = found.select(pl.coalesce(pl.all()).alias("user")).to_series()
    frame = pl.DataFrame([
        header["syslog_pri"], header["timestamp"], header["hostname"],
        body["level"],
        coalesce(body["program"], header["program"], body["prefix"]).alias("program"),
        coalesce(body["pid"], header["pid"]).alias("pid"),
        body["meta"].str.extract(r"sub=(\S+)", 1).alias("sub"),
        body["meta"].str.extract(r"opID=(\S+)", 1).alias("opID"),
        message.str.extract(r"\[(vob\.[\w.]+)\]", 1).alias("vob"),
        message.alias("message"),
        user,
        message.str.extract(IP, 1).alias("src_ip"),
    ])
    return frame.with_columns(header[schema.TIME].alias(schema.TIME), header["hostname"].alias(schema.HOST))


def sniff_esxi(head: bytes, name: str) -> bool:
    """Claim files whose first lines carry ESXi's ``[Originator@6876`` or ``vob.`` marks."""
    text = head_text(head)[:4096]
    return "[Originator@6876" in text or "[vob." in text


SPECS = [text_source(SOURCE, "VMware ESXi syslog (hostd, vpxa, vobd, sshd...)", parse_esxi, sniff_esxi, priority=65)]
