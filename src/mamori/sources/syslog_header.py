"""Split syslog framing (RFC 5424, RFC 3164 and the forms devices really send) from the message, in bulk.

Used by the syslog reader and by every vendor format that arrives over syslog (FortiGate, ASA,
Palo Alto, ...). A line without a recognisable header is kept whole as the message. Each regex runs
only on the lines that can match it (a cheap prefix test picks them), so bare vendor messages cost
almost nothing here.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import UTC_NS, nulls
from mamori.sources.timeparse import parse_iso, parse_yearless, with_formats

# Each pattern matches a header; the message is the rest of the line. A regex's groups cost time over
# every character they span, so the message is cut off by length rather than captured.
RFC5424 = (
    r"(?s)^(?P<_head>(?:<(?P<pri>\d{1,3})>)1 (?P<ts>\S+) (?P<hostname>\S+) (?P<program>\S+) (?P<pid>\S+) "
    r"(?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?)"
)
RFC3164 = (
    r"(?s)^(?P<_head>(?:<(?P<pri>\d{1,3})>)?(?:\d+ )?(?P<ts>[A-Z][a-z]{2} {1,2}\d{1,2}(?: \d{4})? "
    r"\d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)(?: [A-Z]{3})?:? "
    r"(?:(?P<hostname>[\w.\-:%]*[\w.\-%]) )?(?:(?P<program>[^\s\[\]:]+)(?:\[(?P<pid>[^\]]*)\])?: ?)?)"
)
BARE_TAG = r"(?s)^(?P<_head>\s*(?P<program>[\w.\-/()]+)\[(?P<pid>\d+)\]: ?)"
SYSLOG_COLUMNS = ("syslog_pri", "timestamp", "hostname", "program", "pid", "msgid", "structured_data", "message")
_MAY_5424 = r"^<\d{1,3}>1 "
_MAY_3164 = r"^(?:<\d{1,3}>)?(?:\d+ )?(?:[A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]\d)"
_MAY_BARE = r"^\s*[\w.\-/()]+\[\d+\]: "


def _subset(texts: pl.Series, mask: pl.Series, pattern: str, names: tuple[str, ...]) -> dict[str, pl.Series]:
    """Run the header ``pattern`` on the rows of ``mask`` only; return full-height columns of its groups
    and the ``message`` after the header (null where it does not match)."""
    n = len(texts)
    empty = nulls(n)
    out = {name: empty.alias(name) for name in names}
    if not mask.any():
        return out
    every = bool(mask.all())  # every row (a file of one kind): no rows to pick or put back
    found = pl.DataFrame({"t": texts if every else texts.filter(mask)}).select(
        pl.col("t"), pl.col("t").str.extract_groups(pattern).alias("g")).unnest("g")
    found = found.with_columns(pl.col("t").str.slice(pl.col("_head").str.len_chars()).alias("message"))
    index = None if every else mask.arg_true()
    for name in names:
        if name in found.columns:
            out[name] = found[name].alias(name) if index is None else out[name].scatter(index, found[name])
    return out


def syslog_parts(texts: pl.Series, options: ReadOptions, now: dt.datetime | None = None) -> pl.DataFrame:
    """Return, per line: ``syslog_pri``, ``timestamp``, ``hostname``, ``program``, ``pid``, ``msgid``,
    ``structured_data``, ``message`` (all text), ``facility``/``severity`` and ``_time``/``_host``."""
    texts = texts.cast(pl.Utf8).fill_null("")
    may5424 = texts.str.contains(_MAY_5424)
    may3164 = texts.str.contains(_MAY_3164) & ~may5424
    f5424 = _subset(texts, may5424, RFC5424, ("pri", "ts", "hostname", "program", "pid", "msgid", "sd", "message"))
    f3164 = _subset(texts, may3164, RFC3164, ("pri", "ts", "hostname", "program", "pid", "message"))
    got5424 = f5424["ts"].is_not_null()
    got3164 = f3164["ts"].is_not_null()
    headerless = ~(got5424 | got3164)
    bare = _subset(texts, headerless & texts.str.contains(_MAY_BARE), BARE_TAG, ("program", "pid", "message"))

    any5424, any3164 = bool(got5424.any()), bool(got3164.any())

    def pick(name: str, third: pl.Series | None = None) -> pl.Series:
        other = third if third is not None else nulls(len(texts))
        if not (any5424 or any3164):  # no header in the batch (bare vendor messages): nothing to choose
            return other.alias(name)
        return pl.select(pl.when(got5424).then(f5424[name]).when(got3164).then(f3164[name])
                         .otherwise(other)).to_series().alias(name)

    hostname = pick("hostname")
    program = pick("program", bare["program"])
    pid = pick("pid", bare["pid"])
    message = pick("message", bare["message"])
    if message.null_count() == len(message):
        message = texts.str.strip_chars().alias("message")
    elif message.null_count():
        message = message.fill_null(texts.str.strip_chars())
    frame = pl.DataFrame([
        pick("pri").alias("syslog_pri"),
        pick("ts").alias("timestamp"),
        hostname, program, pid,
        f5424["msgid"].alias("msgid"),
        f5424["sd"].alias("structured_data"),
        message.alias("message"),
    ]).with_columns([pl.when(pl.col(c) == "-").then(None).otherwise(pl.col(c)).alias(c)
                     for c in ("hostname", "program", "pid", "msgid")])
    pri_int = frame["syslog_pri"].cast(pl.Int64, strict=False)
    return frame.with_columns(
        (pri_int // 8).cast(pl.Utf8).alias("facility"),
        (pri_int % 8).cast(pl.Utf8).alias("severity"),
        syslog_time(frame["timestamp"], options, now).alias(schema.TIME),
        frame["hostname"].alias(schema.HOST),
    )


def syslog_time(stamps: pl.Series, options: ReadOptions, now: dt.datetime | None = None) -> pl.Series:
    """Parse syslog timestamps: ISO 8601 (RFC 5424), ``Jun 14 15:16:01`` (year and zone from the options,
    with rollover) and ``Jun 07 2025 17:31:57`` (Cisco); each form only on the rows that have it."""
    n = len(stamps)
    result = nulls(n, schema.TIME, UTC_NS)
    present = stamps.is_not_null()
    if not present.any():
        return result
    iso = present & stamps.str.contains(r"^\d{4}-").fill_null(False)
    with_year = present & stamps.str.contains(r"^[A-Z][a-z]{2} +\d+ \d{4} ").fill_null(False)
    yearless = present & ~iso & ~with_year

    def from_iso(s: pl.Series) -> pl.Series:
        return parse_iso(s, options.default_timezone)

    def from_with_year(s: pl.Series) -> pl.Series:
        return with_formats(s.str.replace_all(r"\s+", " "), (), ("%b %d %Y %H:%M:%S%.f",), options.default_timezone)

    def from_yearless(s: pl.Series) -> pl.Series:
        return parse_yearless(s, "%b %d %H:%M:%S%.f", options.default_timezone, options.default_year, now)

    for mask, parse in ((iso, from_iso), (with_year, from_with_year), (yearless, from_yearless)):
        if mask.all():  # one form on every row
            return parse(stamps).cast(UTC_NS).alias(schema.TIME)
        if mask.any():
            result = result.scatter(mask.arg_true(), parse(stamps.filter(mask)))
    return result
