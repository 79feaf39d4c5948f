"""Juniper SRX / Junos syslog: ``RT_FLOW_SESSION_CLOSE: ...``, structured ``TAG [junos@2636... k="v"]``,
``mgd[pid]: UI_LOGIN_EVENT: User 'jdoe' login ...``.

Fields: ``program``, ``pid``, ``event_tag``, ``message``, the structured pairs under Junos names
(``source-address``, ``destination-address``, ``source-port``, ``destination-port``, ``attack-name``...),
the flow of ``RT_FLOW`` text lines under the same names, and ``username`` from ``User 'x'``.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import groups, head_text, hstack, text_source
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts

SOURCE = "juniper"
EVENT = r"(?s)^\s*(?:(?P<program>[\w.\-/]+)(?:\[(?P<pid>\d+)\])?: )?(?P<event_tag>[A-Z][A-Z0-9_]{3,})(?::| \[|$)"
FLOW = (r"(?P<source_address>[0-9a-fA-F.:]+)/(?P<source_port>\d+)->(?P<destination_address>[0-9a-fA-F.:]+)/"
        r"(?P<destination_port>\d+)")
SD_PAIR = r'[a-z][\w\-]*="(?:[^"\\]|\\.)*"'


def parse_juniper(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Junos records."""
    header = syslog_parts(texts, options)
    full = texts.str.strip_chars()
    event = groups(full, EVENT)
    flow = groups(full, FLOW)
    flow.columns = [c.replace("_", "-") for c in flow.columns]
    frame = pl.concat([header.select("syslog_pri", "timestamp", "hostname"), event,
                       header["message"].alias("message").to_frame()], how="horizontal")
    frame = frame.with_columns(
        pl.coalesce(frame["program"], header["program"], full.str.extract(r"^([\w.\-/]+): ", 1)).alias("program"),
        pl.coalesce(frame["pid"], header["pid"]).alias("pid"),
        full.str.extract(r"[Uu]ser '([^']+)'", 1).alias("username"),
        pl.coalesce(frame["event_tag"], header["msgid"].str.extract(r"^([A-Z][A-Z0-9_]{3,})$", 1)).alias("event_tag"),
    )
    sd = pairs_frame(full.str.extract_all(SD_PAIR))
    if sd.width == 0:
        sd = flow
    for name in flow.columns:
        if name in sd.columns:
            sd = sd.with_columns(pl.coalesce(sd[name], flow[name]).alias(name))
        else:
            sd = sd.with_columns(flow[name].alias(name))
    frame = hstack(frame, sd.select([c for c in sd.columns if c not in frame.columns]))
    return frame.with_columns(header[schema.TIME].alias(schema.TIME), header["hostname"].alias(schema.HOST))


def sniff_juniper(head: bytes, name: str) -> bool:
    """Claim files whose first line carries a Junos ``RT_FLOW``/``UI_``/``junos@2636`` mark."""
    lines = head_text(head).split("\n")[:5]
    return any("RT_FLOW" in x or "junos@2636" in x or "RT_SCREEN" in x or ": UI_" in x or "L2ALD_" in x
               for x in lines)


SPECS = [text_source(SOURCE, "Juniper SRX / Junos syslog (RT_FLOW, RT_SCREEN, UI_ events)", parse_juniper,
                     sniff_juniper, priority=65)]
