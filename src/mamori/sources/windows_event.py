"""Flatten one Windows event, in any of its JSON shapes, into the flat fields Sigma rules address.

Shapes: the evtx parser's rendering (``{"Event": {"System": ..., "EventData": ...}}``), Winlogbeat
(``{"winlog": {"event_data": ...}}``), NXLog and the flat form (``{"EventID": 4688, "Image": ...}``).
Field names follow SigmaHQ's Windows taxonomy: System fields by name (``EventID``, ``Channel``,
``Computer``, ``Provider_Name``, ``Security_UserID``), EventData and UserData fields by their own
names.
"""

from __future__ import annotations

from typing import Any

FlatEvent = dict[str, str | None]


def scalar_text(value: Any) -> str | None:
    """Render a JSON leaf as the text Sigma compares: ints in decimal, booleans lower-case, lists joined."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if "#text" in value:
            return scalar_text(value["#text"])
        return None
    if isinstance(value, list):
        parts = [scalar_text(v) for v in value]
        return "\n".join(p for p in parts if p is not None)
    return str(value)


def _flatten_data(section: Any, out: FlatEvent) -> None:
    """Flatten EventData / UserData: named leaves by name, the unnamed ``Data`` list joined."""
    if not isinstance(section, dict):
        text = scalar_text(section)
        if text is not None:
            out["Data"] = text
        return
    for key, value in section.items():
        if key == "#attributes":
            continue
        if isinstance(value, dict) and "#text" not in value:
            _flatten_data(value, out)
        else:
            out[key] = scalar_text(value)


def _attributes(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict):
            return attrs
    return {}


def flatten_xml_json(event: dict[str, Any]) -> tuple[FlatEvent, str | None]:
    """Flatten the evtx parser's rendering of an event; return the fields and the SystemTime text."""
    root = event.get("Event", event)
    system = root.get("System") or {}
    out: FlatEvent = {}
    for key, value in system.items():
        if key == "Provider":
            for attr, v in _attributes(value).items():
                out[f"Provider_{attr}"] = scalar_text(v)
        elif key == "TimeCreated":
            out["TimeCreated_SystemTime"] = scalar_text(_attributes(value).get("SystemTime"))
        elif key in {"Execution", "Security", "Correlation"}:
            for attr, v in _attributes(value).items():
                out[f"{key}_{attr}"] = scalar_text(v)
        elif key != "#attributes":
            out[key] = scalar_text(value)
    for section in ("EventData", "UserData"):
        if section in root and root[section] is not None:
            _flatten_data(root[section], out)
    for key, value in root.items():
        if key not in {"System", "EventData", "UserData", "#attributes"} and not isinstance(value, dict):
            out[key] = scalar_text(value)
    return out, out.get("TimeCreated_SystemTime")


_WINLOG_SYSTEM = {
    "channel": "Channel",
    "event_id": "EventID",
    "computer_name": "Computer",
    "provider_name": "Provider_Name",
    "provider_guid": "Provider_Guid",
    "record_id": "EventRecordID",
    "task": "Task",
    "opcode": "Opcode",
    "version": "Version",
    "keywords": "Keywords",
}


def flatten_winlogbeat(event: dict[str, Any]) -> tuple[FlatEvent, str | None]:
    """Flatten a Winlogbeat / Elastic document: ``winlog.*`` system fields and ``winlog.event_data``."""
    winlog = event.get("winlog") or {}
    out: FlatEvent = {}
    for key, name in _WINLOG_SYSTEM.items():
        if key in winlog:
            out[name] = scalar_text(winlog[key])
    user = winlog.get("user") or {}
    if isinstance(user, dict) and user.get("identifier"):
        out["Security_UserID"] = scalar_text(user["identifier"])
    process = winlog.get("process") or {}
    if isinstance(process, dict):
        if "pid" in process:
            out["Execution_ProcessID"] = scalar_text(process["pid"])
        thread = process.get("thread") or {}
        if isinstance(thread, dict) and "id" in thread:
            out["Execution_ThreadID"] = scalar_text(thread["id"])
    for section in ("event_data", "user_data"):
        if isinstance(winlog.get(section), dict):
            _flatten_data(winlog[section], out)
    if "Computer" not in out:
        host = event.get("host") or {}
        if isinstance(host, dict) and host.get("name"):
            out["Computer"] = scalar_text(host["name"])
    if "level" in winlog:
        out["Level"] = scalar_text(winlog["level"])
    message = event.get("message")
    if isinstance(message, str):
        out["Message"] = message
    return out, scalar_text(event.get("@timestamp"))


_NXLOG_RENAMES = {
    "Hostname": "Computer",
    "SourceName": "Provider_Name",
    "ProviderGuid": "Provider_Guid",
    "RecordNumber": "EventRecordID",
    "ProcessID": "Execution_ProcessID",
    "ThreadID": "Execution_ThreadID",
    "UserID": "Security_UserID",
}
_TIME_KEYS = ("TimeCreated_SystemTime", "SystemTime", "EventTime", "TimeCreated", "@timestamp", "timestamp",
              "UtcTime", "EventReceivedTime")


def flatten_flat(event: dict[str, Any]) -> tuple[FlatEvent, str | None]:
    """Flatten the flat form (NXLog, Sysmon JSON exports): top-level keys are the fields already."""
    out: FlatEvent = {}
    for key, value in event.items():
        if isinstance(value, dict) and "#text" not in value:
            for sub, inner in value.items():
                if not isinstance(inner, dict | list):
                    out[f"{key}_{sub}" if key in {"Provider", "Execution", "Security"} else sub] = scalar_text(inner)
            continue
        out[_NXLOG_RENAMES.get(key, key)] = scalar_text(value)
    if "EventData" in event and isinstance(event["EventData"], dict):
        _flatten_data(event["EventData"], out)
    time_text = next((out[k] for k in _TIME_KEYS if out.get(k)), None)
    return out, time_text


def flatten_any(event: dict[str, Any]) -> tuple[FlatEvent, str | None]:
    """Flatten a Windows event in whichever JSON shape it comes: evtx rendering, Winlogbeat, NXLog or flat."""
    if isinstance(event.get("Event"), dict) and "System" in event["Event"]:
        return flatten_xml_json(event)
    if "System" in event and isinstance(event["System"], dict):
        return flatten_xml_json({"Event": event})
    if isinstance(event.get("winlog"), dict):
        return flatten_winlogbeat(event)
    return flatten_flat(event)


def looks_like_windows_event(event: Any) -> bool:
    """Tell whether a decoded JSON object is a Windows event in one of the shapes we read."""
    if not isinstance(event, dict):
        return False
    if isinstance(event.get("Event"), dict) and "System" in event["Event"]:
        return True
    if isinstance(event.get("System"), dict) or isinstance(event.get("winlog"), dict):
        return True
    return "EventID" in event and ("Channel" in event or "Computer" in event or "Hostname" in event
                                   or "SourceName" in event or "Provider_Name" in event)
