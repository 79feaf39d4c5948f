"""Shared by the service tests: a test rule, and Windows events carried over syslog and HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

WHOAMI_RULE_ID = "0c1a0000-0000-4000-8000-0000000000a1"
WHOAMI_RULE = f"""
title: Whoami Execution
id: {WHOAMI_RULE_ID}
status: test
level: high
author: Mamori tests
tags: [attack.discovery, attack.t1033]
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    CommandLine|contains: whoami
  condition: selection
"""


def windows_event(marker: str, host: str, suspicious: bool) -> dict[str, Any]:
    """A process-creation event (Security 4688) carrying a test marker; suspicious ones run whoami."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"EventTime": now, "Hostname": host, "EventID": 4688, "Channel": "Security",
            "SourceName": "Microsoft-Windows-Security-Auditing", "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": "cmd /c whoami /all" if suspicious else "cmd /c dir", "SubjectUserName": "alice",
            "marker": marker}


def syslog_line(event: dict[str, Any]) -> bytes:
    """An RFC 5424 line whose message is the event as JSON (as NXLog sends it)."""
    return b"<14>1 " + event["EventTime"].encode() + b" " + event["Hostname"].encode() + b" nxlog - - - " + \
        orjson.dumps(event) + b"\n"
