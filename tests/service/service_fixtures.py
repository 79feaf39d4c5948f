"""Shared by the service tests: a test rule, and Windows events carried over syslog and HTTP."""

from __future__ import annotations

from typing import Any

import orjson
from service_testing import process_event, whoami_rule

WHOAMI_RULE_ID = "0c1a0000-0000-4000-8000-0000000000a1"
WHOAMI_RULE = whoami_rule(WHOAMI_RULE_ID)


def windows_event(marker: str, host: str, suspicious: bool) -> dict[str, Any]:
    """A process-creation event (Security 4688) carrying a test marker; suspicious ones run whoami."""
    return process_event(None, "cmd /c whoami /all" if suspicious else "cmd /c dir", host, "alice", marker=marker)


def syslog_line(event: dict[str, Any]) -> bytes:
    """An RFC 5424 line whose message is the event as JSON (as NXLog sends it)."""
    return b"<14>1 " + event["EventTime"].encode() + b" " + event["Hostname"].encode() + b" nxlog - - - " + \
        orjson.dumps(event) + b"\n"
