"""systemd journal exported as JSON (``journalctl -o json``): ``MESSAGE``, ``_HOSTNAME``,
``SYSLOG_IDENTIFIER``, ``_PID``, ``_COMM``, ``_EXE``, ``_CMDLINE``, ``PRIORITY``...

Time from ``__REALTIME_TIMESTAMP`` (epoch microseconds). ``message`` (the ``MESSAGE``) and
``program`` (the ``SYSLOG_IDENTIFIER``) serve SigmaHQ's Linux rules as syslog lines do. A ``MESSAGE``
written as a byte array (non UTF-8 text) is decoded.
"""

from __future__ import annotations

import orjson
import polars as pl

from mamori.sources.base import ReadOptions
from mamori.sources.batch import json_head_has, json_parser, json_source

SOURCE = "journald"


def _message(frame: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    if "MESSAGE" not in frame.columns:
        return frame

    def as_text(value: str | None) -> str | None:
        if value is None or not value.startswith("["):
            return value
        try:
            data = bytes(orjson.loads(value))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return value
        from mamori.sources.text import decode

        return decode(data, options.encoding)

    decoded = frame["MESSAGE"].map_elements(as_text, return_dtype=pl.Utf8) if frame["MESSAGE"].str.starts_with(
        "[").any() else frame["MESSAGE"]
    program = frame["SYSLOG_IDENTIFIER"] if "SYSLOG_IDENTIFIER" in frame.columns else pl.lit(None, dtype=pl.Utf8)
    return frame.with_columns(decoded.alias("MESSAGE"), decoded.alias("message"), pl.lit(program).alias("program"))


parse_journald = json_parser(("__REALTIME_TIMESTAMP", "_SOURCE_REALTIME_TIMESTAMP"), ("_HOSTNAME",), extra=_message)


def sniff_journald(head: bytes, name: str) -> bool:
    """Claim journal JSON: ``__REALTIME_TIMESTAMP`` with ``MESSAGE`` or ``__CURSOR``."""
    return json_head_has(head, '"__REALTIME_TIMESTAMP"') and json_head_has(head, '"MESSAGE"', '"__CURSOR"')


SPECS = [json_source(SOURCE, "systemd journal JSON export (journalctl -o json)", parse_journald,
                     sniff_journald, priority=75)]
