"""Windows events as Winlogbeat ships them (``winlog.*`` plus ECS ``@timestamp``/``host``/``event``).

The demo writes every event in this shape because it is what most small Windows estates forward
(Winlogbeat or Elastic Agent), and Mamori reads it unchanged (``mamori.sources.winjson``).
Sysmon, Security, System and PowerShell events differ only in channel, provider and ``event_data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
SYSTEM_SCM = ("System", "Service Control Manager")
POWERSHELL = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")

WINLOGBEAT_VERSION = "8.15.3"
_ACTIONS = {
    ("sysmon", 1): "Process Create (rule: ProcessCreate)",
    ("sysmon", 3): "Network connection detected (rule: NetworkConnect)",
    ("sysmon", 10): "Process accessed (rule: ProcessAccess)",
    ("sysmon", 11): "File created (rule: FileCreate)",
    ("sysmon", 13): "Registry value set (rule: RegistryEvent)",
    ("sysmon", 17): "Pipe Created (rule: PipeEvent)",
    ("sysmon", 22): "Dns query (rule: DnsQuery)",
    ("security", 4624): "logged-in",
    ("security", 4634): "logged-out",
    ("security", 4672): "logged-in-special",
    ("security", 4698): "scheduled-task-created",
    ("security", 4768): "kerberos-authentication-ticket-requested",
    ("security", 4769): "kerberos-service-ticket-requested",
    ("security", 4776): "credential-validated",
    ("security", 5140): "network-share-object-accessed",
    ("security", 5145): "network-share-object-access-checked",
    ("system", 7045): "Service installed",
    ("powershell", 4104): "Execute a Remote Command",
}


@dataclass(frozen=True)
class WinEvent:
    """One Windows event before rendering: when, where, which channel and id, and its EventData."""

    time: datetime
    computer: str
    channel: str
    provider: str
    event_id: int
    data: Mapping[str, str]
    record_id: int
    pid: int = 4
    thread: int = 88


def iso_z(moment: datetime) -> str:
    """The UTC time in the form Winlogbeat writes (``2026-11-29T05:12:33.123Z``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def sysmon_time(moment: datetime) -> str:
    """The UTC time in the form Sysmon writes in ``UtcTime`` (``2026-11-29 05:12:33.123``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def _family(channel: str) -> str:
    if channel == SYSMON[0]:
        return "sysmon"
    if channel == POWERSHELL[0]:
        return "powershell"
    return channel.lower()


def winlogbeat(event: WinEvent) -> dict[str, Any]:
    """Render an event as the JSON document Winlogbeat 8 sends to its output."""
    family = _family(event.channel)
    action = _ACTIONS.get((family, event.event_id), str(event.event_id))
    return {
        "@timestamp": iso_z(event.time),
        "agent": {"type": "winlogbeat", "version": WINLOGBEAT_VERSION, "name": event.computer.split(".")[0]},
        "ecs": {"version": "8.0.0"},
        "host": {"name": event.computer, "hostname": event.computer.split(".")[0].lower(),
                 "os": {"family": "windows", "platform": "windows"}},
        "event": {"code": str(event.event_id), "provider": event.provider, "kind": "event",
                  "action": action, "created": iso_z(event.time)},
        "log": {"level": "information"},
        "winlog": {
            "channel": event.channel,
            "provider_name": event.provider,
            "event_id": str(event.event_id),
            "computer_name": event.computer,
            "record_id": event.record_id,
            "api": "wineventlog",
            "process": {"pid": event.pid, "thread": {"id": event.thread}},
            "event_data": dict(event.data),
        },
    }
