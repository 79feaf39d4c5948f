"""Where detectors find their fields (the first column present among Windows and OCSF names) and what
their values mean: which event IDs are logons or process starts, which user names are people."""

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
# Windows' built-in principals, as the user fields spell them once trimmed, in upper case and without the
# ``NT AUTHORITY\`` domain Sysmon puts before them (the Security log names the domain in another field)
BUILTIN_PRINCIPALS = ("SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE", "ANONYMOUS LOGON", "IUSR")
_BUILTIN_DOMAIN = "NT AUTHORITY\\"
_SESSION_ACCOUNT = r"^(DWM|UMFD)-\d+$"  # the window manager's and font driver's account of each session


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


def person_entity(user: str = "entity") -> pl.Expr:
    """True for user names that are people's: not a machine account (``WS01$``), not one of Windows'
    built-in principals (``SYSTEM``, ``NT AUTHORITY\\LOCAL SERVICE``, in any case) nor a session's
    ``DWM-1``/``UMFD-0``. UEBA baselines people; those accounts act for a machine, everywhere alike, and
    would make every user look like every host. ``user`` is the column holding the name; false for null.
    The names are judged once each, not once per event (a frame of millions of events holds a few
    hundred names: a third of the time of judging every row)."""
    names = pl.col(user).unique(maintain_order=True)
    upper = names.str.strip_chars().str.to_uppercase()
    machine = upper.str.ends_with("$")
    builtin = upper.str.strip_prefix(_BUILTIN_DOMAIN).is_in(BUILTIN_PRINCIPALS) | upper.str.contains(_SESSION_ACCOUNT)
    return pl.col(user).is_in(names.filter(~machine & ~builtin).implode()).fill_null(False)
