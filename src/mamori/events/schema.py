"""Names of the columns every event batch carries, whatever its source.

An event batch is a Polars DataFrame. Core columns carry a leading underscore (as Splunk's ``_time``
and ``_raw``) so they never collide with a source's own fields (Zeek's ``uid`` and ``host``).
Besides these core columns it holds the original fields of
the record under their own names (``Image``, ``CommandLine``, ``EventID``: Sigma rules address
those) as strings, and OCSF-aligned normalised fields under dotted names (``src_endpoint.ip``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

TIME = "_time"  # event time, UTC, nanoseconds
SOURCE = "_source"  # log format that produced the event: evtx, winjson, syslog, cloudtrail, ...
HOST = "_host"  # the host the event is about (Computer for Windows)
UID = "_uid"  # stable id: hash of source, origin and offset, so replays are idempotent
ORIGIN = "_origin"  # where the event came from: file path, listener address, ingest token name
OFFSET = "_offset"  # position in the origin: record number, byte offset or line number
RAW = "_raw"  # the original record as text, so nothing is lost in translation

CORE_COLUMNS: tuple[str, ...] = (TIME, SOURCE, HOST, UID, ORIGIN, OFFSET, RAW)

CORE_SCHEMA: dict[str, pl.DataType] = {
    TIME: pl.Datetime("ns", "UTC"),
    SOURCE: pl.Utf8(),
    HOST: pl.Utf8(),
    UID: pl.Utf8(),
    ORIGIN: pl.Utf8(),
    OFFSET: pl.Int64(),
    RAW: pl.Utf8(),
}


# OCSF's top-level event attributes (names from the OCSF schema) that the shipped mapping tables
# (``events/ocsf``) can fill; a test keeps this in step with the tables. Here, rather than worked out
# from the tables, so the rule engine can tell such a column from an event's own field without parsing
# every table. Deeper OCSF names are dotted (``src_endpoint.ip``).
OCSF_TOP_LEVEL: frozenset[str] = frozenset({
    "activity_id", "activity_name", "answers", "app_name", "auth_protocol", "auth_protocol_id", "category_uid",
    "class_uid", "count", "disposition", "disposition_id", "duration", "end_time", "log_name", "logon_type",
    "logon_type_id", "message", "privileges", "rcode", "rcode_id", "severity", "severity_id", "share",
    "share_type", "start_time", "status", "status_code", "status_detail", "status_id", "time", "type_uid",
})


def is_core_column(name: str) -> bool:
    """Tell whether a column is one of the core columns (not an original or normalised field)."""
    return name in CORE_SCHEMA


def time_ns(when: datetime) -> int:
    """A moment as ``TIME`` holds it: nanoseconds since the epoch, UTC, exact (a naive moment is UTC, as
    the lake stores it, never the machine's local time as ``datetime.timestamp`` would read it)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
