"""Linux audit daemon logs (``/var/log/audit/audit.log``, raw or ENRICHED format, or over syslog):
``type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 ... exe="/usr/bin/cat" key="x"``.

Fields: ``type``, ``audit_event`` (the serial that ties a SYSCALL to its EXECVE, PATH, CWD records),
and every ``key=value`` of the record as sent (``a0``..., ``exe``, ``comm``, ``key``, ``name``,
``nametype``); ENRICHED names after the ``\\x1d`` separator (``SYSCALL``, ``UID``, ``AUID``...) keep their
upper-case names as SigmaHQ rules use them. EXECVE arguments and PROCTITLE written in hex are decoded.
EXECVE records also get ``CommandLine`` (the arguments joined) and ``Image`` (the ``exe`` of the SYSCALL
record of the same event in the batch), so Linux ``process_creation`` rules apply.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, error_where, groups_rest, head_text, hstack, text_source
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch

SOURCE = "auditd"
RECORD = r"(?:^|\s)type=(?P<type>\S+) msg=audit\((?P<ts>\d+\.\d+):(?P<serial>\d+)\):\s?"  # then the body
PAIR = r"""[A-Za-z_][\w\-]*=(?:"[^"]*"|'[^']*'|[^\s\x1d]*)"""
HEX = r"^(?:[0-9A-F]{2})+$"


def _unhex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value).replace(b"\x00", b" ").decode("utf-8", errors="replace").rstrip()
    except ValueError:
        return value


def parse_auditd(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse audit records (see the module docstring); lines with no ``type=... msg=audit(...)`` are errors."""
    header = syslog_parts(texts, options)
    record = groups_rest(texts, RECORD, "body")
    body = record["body"].fill_null("")
    halves = body.str.splitn("\x1d", 2)
    plain, enriched = halves.struct.field("field_0"), halves.struct.field("field_1")
    pairs = pairs_frame(plain.str.extract_all(PAIR), unquote=True)
    upper = pairs_frame(enriched.fill_null("").str.extract_all(PAIR), unquote=True)
    # msg='op=... ' inside USER_* records carries its own pairs
    inner_text = pairs["msg"] if "msg" in pairs.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
    inner = pairs_frame(inner_text.fill_null("").str.strip_chars("'").str.extract_all(PAIR), unquote=True)
    frame = pl.DataFrame([record["type"], record["serial"].alias("audit_event"), record["ts"].alias("audit_time")])
    for extra in (pairs, inner, upper):
        shared = [c for c in extra.columns if c in frame.columns and c != "type"]
        if shared:
            frame = frame.with_columns([pl.coalesce(frame[c], extra[c]).alias(c) for c in shared])
        keep = [c for c in extra.columns if c not in frame.columns]
        if keep:
            frame = hstack(frame, extra.select(keep))
    is_execve = (frame["type"] == "EXECVE").fill_null(False)
    args = sorted([c for c in frame.columns if c.startswith("a") and c[1:].isdigit()], key=lambda c: int(c[1:]))
    decode = [c for c in [*args, "proctitle"] if c in frame.columns]
    if decode:
        frame = frame.with_columns([
            pl.when((is_execve | (pl.col("type") == "PROCTITLE")) & pl.col(c).str.contains(HEX))
            .then(pl.col(c).map_elements(_unhex, return_dtype=pl.Utf8)).otherwise(pl.col(c)).alias(c)
            for c in decode
        ])
    if is_execve.any() and args:
        command = pl.concat_str([pl.col(c) for c in args], separator=" ", ignore_nulls=True)
        frame = frame.with_columns(pl.when(is_execve).then(command).otherwise(None).alias("CommandLine"))
        if "exe" in frame.columns:
            exes = frame.filter(pl.col("type") == "SYSCALL").select(
                "audit_event", pl.col("exe").alias("_image")).unique("audit_event", keep="first")
            frame = frame.join(exes, on="audit_event", how="left", maintain_order="left").with_columns(
                pl.when(is_execve).then(pl.col("_image")).otherwise(None).alias("Image")).drop("_image")
    times = parse_epoch(record["ts"]).fill_null(header[schema.TIME])
    error = error_where(record["type"].is_null(), "no type=... msg=audit(time:serial) record")
    host = frame["node"] if "node" in frame.columns else header["hostname"]
    return frame.with_columns(times.alias(schema.TIME), host.alias(schema.HOST), error.alias(ERROR))


def sniff_auditd(head: bytes, name: str) -> bool:
    """Claim audit logs: ``type=... msg=audit(`` in the first line."""
    first = head_text(head).split("\n", 1)[0]
    return "msg=audit(" in first and "type=" in first


SPECS = [text_source(SOURCE, "Linux auditd log (raw or enriched)", parse_auditd, sniff_auditd, priority=80)]
