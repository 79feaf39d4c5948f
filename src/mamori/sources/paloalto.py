"""Palo Alto Networks NGFW logs: the PAN-OS syslog CSV (TRAFFIC, THREAT, SYSTEM, CONFIG, USERID, AUTH,
GLOBALPROTECT, DECRYPTION...), the JSON of HTTPS forwarding / Strata Logging Service, and CEF.

CSV columns take PAN-OS's syslog field names (``src``, ``dst``, ``rule``, ``srcuser``, ``app``,
``from``, ``to``, ``sport``, ``dport``, ``proto``, ``action``, ``misc``, ``threatid``, ``eventid``,
``description``...). Generated time is device-local (the default zone of the options).
"""

from __future__ import annotations

import csv
import io

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import (
    ERROR,
    columns_frame,
    dispatch,
    finish_json,
    head_text,
    joined_lines,
    json_fields,
    text_source,
)
from mamori.sources.cef import CEF_MARKS, parse_cef
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import with_formats

SOURCE = "paloalto"
_HEAD = ("future_use1", "receive_time", "serial", "type", "subtype", "future_use2", "time_generated")
_NET = ("src", "dst", "natsrc", "natdst", "rule", "srcuser", "dstuser", "app", "vsys", "from", "to",
        "inbound_if", "outbound_if", "logset", "future_use3", "sessionid", "repeatcnt", "sport", "dport",
        "natsport", "natdport", "flags", "proto", "action")
COLUMNS: dict[str, tuple[str, ...]] = {
    "TRAFFIC": (*_HEAD, *_NET, "bytes", "bytes_sent", "bytes_received", "packets", "start", "elapsed",
                "category", "future_use4", "seqno", "actionflags", "srcloc", "dstloc", "future_use5",
                "pkts_sent", "pkts_received", "session_end_reason"),
    "THREAT": (*_HEAD, *_NET, "misc", "threatid", "category", "severity", "direction", "seqno", "actionflags",
               "srcloc", "dstloc", "future_use4", "contenttype", "pcap_id", "filedigest", "cloud", "url_idx",
               "user_agent", "filetype", "xff", "referer", "sender", "subject", "recipient", "reportid"),
    "DECRYPTION": (*_HEAD, *_NET),
    "SYSTEM": (*_HEAD, "vsys", "eventid", "object", "future_use3", "future_use4", "module", "severity",
               "description", "seqno", "actionflags"),
    "CONFIG": (*_HEAD, "host", "vsys", "cmd", "admin", "client", "result", "path", "before_change_detail",
               "after_change_detail", "seqno", "actionflags"),
    "USERID": (*_HEAD, "vsys", "ip", "user", "datasourcename", "eventid", "repeatcnt", "timeout", "beginport",
               "endport", "datasource", "datasourcetype", "seqno", "actionflags"),
    "AUTH": (*_HEAD, "vsys", "ip", "user", "normalize_user", "object", "authpolicy", "repeatcnt", "authid",
             "vendor", "logproto", "serverprofile", "desc", "clienttype", "event", "factorno", "seqno",
             "actionflags"),
    "GLOBALPROTECT": (*_HEAD, "vsys", "eventid", "stage", "auth_method", "tunnel_type", "srcuser", "srcregion",
                      "machinename", "public_ip", "public_ipv6", "private_ip", "private_ipv6", "hostid",
                      "serialnumber", "client_ver", "client_os", "client_os_ver", "repeatcnt", "reason",
                      "error", "opaque", "status", "location", "login_duration", "connect_method",
                      "error_code", "portal", "seqno", "actionflags"),
}
CSV_START = r"\d,\d{1,4}/\d{1,2}/\d{1,4} \d\d:\d\d(?::\d\d)?,[^,]*,[A-Z]+,"
TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M")
JSON_TIMES = ("TimeGenerated", "time_generated", "EventTime", "LogTime", "TimeReceived", "ReceiveTime")


def _csv_rows_python(bodies: list[str]) -> pl.DataFrame:
    rows: list[dict[str, str | None]] = []
    for body in bodies:
        values = next(csv.reader([body]), [])
        names = COLUMNS.get(values[3] if len(values) > 3 else "", _HEAD)
        row: dict[str, str | None] = {}
        for i, value in enumerate(values):
            name = names[i] if i < len(names) else f"field_{i}"
            if not name.startswith("future_use") and value != "":
                row[name] = value
        if not values:
            row[ERROR] = "no PAN-OS CSV record"
        rows.append(row)
    return columns_frame(rows)


def _csv_rows_bulk(bodies: pl.Series, log_type: str) -> pl.DataFrame:
    """Split CSV records of one log type with Polars' CSV reader (quotes and doubled quotes handled)."""
    names = COLUMNS.get(log_type, _HEAD)
    width = max(len(names), int(bodies.str.count_matches(",").max() or 0) + 1)  # type: ignore[arg-type]
    data = ("," * (width - 1) + "\n").encode() + joined_lines(bodies)  # no Python string per record
    frame = pl.read_csv(io.BytesIO(data), has_header=False, infer_schema=False, truncate_ragged_lines=True,
                        quote_char='"').slice(1)
    frame.columns = [names[i] if i < len(names) else f"field_{i}" for i in range(frame.width)]
    frame = frame.drop([c for c in frame.columns if c.startswith("future_use")])
    return frame.select([c for c in frame.columns if frame[c].null_count() < frame.height])


def _bodies(texts: pl.Series) -> pl.Series:
    """Each record from its CSV start on (null where it has none): the whole text when the record starts
    with it (the usual case, told by an anchored regex), else the start's match and the text cut off after it
    (capturing the rest would cost a regex step per character)."""
    at_start = texts.str.contains("^" + CSV_START).fill_null(False)
    if at_start.all():
        return texts
    start = texts.str.extract(CSV_START, 0)
    rest = texts.str.replace(f"^(?s:.*?)(?:{CSV_START})", "")
    return pl.select(pl.when(start.is_not_null()).then(start + rest)).to_series()


def parse_csv(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse PAN-OS syslog CSV records, naming columns by log type (extra columns are ``field_N``);
    each log type is split in bulk by Polars' CSV reader, with Python's csv module as the fallback
    for a batch whose quoting that reader refuses."""
    header = syslog_parts(texts, options)
    bodies = _bodies(texts).fill_null("").str.replace_all("\n", " ", literal=True)
    types = bodies.str.extract(r"^[^,]*,[^,]*,[^,]*,([A-Z]+),", 1).fill_null("")
    parts: list[pl.DataFrame] = []
    for log_type in types.unique(maintain_order=True).to_list():  # first met first: the same column order every run
        mask = types == log_type
        index = mask.arg_true()
        subset = bodies.filter(mask)
        try:
            part = _csv_rows_bulk(subset, log_type) if log_type else _csv_rows_python(subset.to_list())
        except pl.exceptions.PolarsError:
            part = _csv_rows_python(subset.to_list())
        parts.append(part.with_columns(index.alias("_i")))
    frame = parts[0].drop("_i") if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed").sort("_i").drop("_i")
    stamp = frame["time_generated"] if "time_generated" in frame.columns else pl.Series(
        [None] * len(texts), dtype=pl.Utf8)
    times = with_formats(stamp, (), TIME_FORMATS, options.default_timezone).fill_null(header[schema.TIME])
    host = frame["serial"] if "serial" in frame.columns else header["hostname"]
    return frame.with_columns(times.alias(schema.TIME), host.alias(schema.HOST))


def parse_json(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse the JSON forms (HTTPS log forwarding, Strata Logging Service)."""
    body = texts.str.extract(r"(?s)(\{.*\})", 1).fill_null("")
    return finish_json(json_fields(body), options, JSON_TIMES, ("DeviceName", "DeviceSN", "LogSourceID"))


def parse_paloalto(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Palo Alto records: CSV, JSON or CEF."""
    return dispatch(texts, options, [(CEF_MARKS, parse_cef), (r"^\s*\{", parse_json),
                                     (("^" + CSV_START, CSV_START), parse_csv)])  # at the start, as a rule


def sniff_paloalto(head: bytes, name: str) -> bool:
    """Claim files whose first line is a PAN-OS CSV record or Palo Alto CEF."""
    import re

    first = head_text(head).split("\n", 1)[0]
    return bool(re.search(CSV_START.replace(r"[A-Z]+", "(?:TRAFFIC|THREAT|SYSTEM|CONFIG|USERID|AUTH|GLOBALPROTECT|"
                                                      "DECRYPTION|HIPMATCH|CORRELATION)"), first)) or (
        "|Palo Alto Networks|" in first) or '"palo alto networks"' in first.lower()


SPECS = [text_source(SOURCE, "Palo Alto Networks NGFW (PAN-OS syslog CSV, JSON forwarding, CEF)",
                     parse_paloalto, sniff_paloalto, priority=70)]
