"""Where detectors find their fields: the first column present among Windows and OCSF names."""

from __future__ import annotations

import polars as pl

USER = ("TargetUserName", "actor.user.name", "user.name", "User")
SOURCE_IP = ("IpAddress", "src_endpoint.ip", "SourceIp")
DEST_IP = ("dst_endpoint.ip", "DestinationIp")
DEST_PORT = ("dst_endpoint.port", "DestinationPort")
BYTES_OUT = ("traffic.bytes_out", "BytesOut")
IMAGE = ("Image", "NewProcessName", "process.file.path")
PARENT_IMAGE = ("ParentImage", "ParentProcessName", "process.parent.file.path")
PROCESS_USER = ("User", "SubjectUserName", "actor.user.name")
LOGON_TYPE = ("LogonType", "logon_type_id", "logon_type")
LOGON_SUCCESS = ("4624",)
LOGON_FAILURE = ("4625", "4771", "4776")
PROCESS_CREATION = ("1", "4688")


def pick(frame: pl.DataFrame, candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` that is a column of ``frame``, or None."""
    return next((c for c in candidates if c in frame.columns), None)


def column(frame: pl.DataFrame, candidates: tuple[str, ...]) -> pl.Expr:
    """An expression for the first present column among ``candidates`` (null when none is present)."""
    name = pick(frame, candidates)
    return pl.col(name).cast(pl.Utf8) if name else pl.lit(None, dtype=pl.Utf8)


def event_id_in(frame: pl.DataFrame, ids: tuple[str, ...]) -> pl.Expr:
    """True for events whose ``EventID`` is one of ``ids`` (false when the column is absent)."""
    if "EventID" not in frame.columns:
        return pl.lit(False)
    return pl.col("EventID").cast(pl.Utf8).is_in(list(ids)).fill_null(False)
