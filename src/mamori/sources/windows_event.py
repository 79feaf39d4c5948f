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
    kind = value.__class__
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return None
    if kind is int:
        return str(value)
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
    """Flatten EventData / UserData: named leaves by name, the unnamed ``Data`` list joined.

    Written for speed (it runs for every field of every event): the common leaves (text, integers) are
    told apart by their exact class; anything else goes through ``scalar_text``."""
    if section.__class__ is not dict and not isinstance(section, dict):
        text = scalar_text(section)
        if text is not None:
            out["Data"] = text
        return
    if "#attributes" in section:
        section = {k: v for k, v in section.items() if k != "#attributes"}
    for key, value in section.items():
        kind = value.__class__
        if kind is str:
            out[key] = value
        elif kind is int:
            out[key] = str(value)
        elif isinstance(value, dict) and "#text" not in value:
            _flatten_data(value, out)
        else:
            out[key] = scalar_text(value)


def _attributes(node: Any) -> dict[str, Any]:
    """The ``#attributes`` of an element (its XML attributes), or an empty map."""
    if node.__class__ is dict or isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict):
            return attrs
    return {}


# System elements whose XML attributes become ``<element>_<attribute>`` fields (``Provider_Name``), with
# the field name of each attribute met so far (names are built once, not once per event).
_ATTRIBUTE_NAMES: dict[str, dict[str, str]] = {e: {} for e in ("Provider", "Execution", "Security", "Correlation")}
# Every System element read apart from the plain leaves: the four above, ``TimeCreated`` (its
# ``SystemTime`` attribute) and the element's own ``#attributes`` (skipped).
_SYSTEM_SPECIAL: dict[str, dict[str, str] | None] = {**_ATTRIBUTE_NAMES, "TimeCreated": None, "#attributes": None}
_LEAF: dict[str, str] = {}  # what ``_SYSTEM_SPECIAL`` gives for any other element: a plain leaf
_ROOT_SECTIONS = frozenset({"System", "EventData", "UserData", "#attributes"})
MAX_REMEMBERED_NAMES = 64


def _attribute_fields(element: str, names: dict[str, str], attrs: dict[str, Any], out: FlatEvent) -> None:
    """Set ``<element>_<attribute>`` for each XML attribute of a System element."""
    for attr, value in attrs.items():
        name = names.get(attr) or _attribute_name(element, names, attr)
        out[name] = value if value.__class__ is str else scalar_text(value)


def _attribute_name(element: str, names: dict[str, str], attr: str) -> str:
    """``Provider`` + ``Name`` -> ``Provider_Name``, remembered in ``names`` (up to a bound: events
    received over the network may carry any attribute names)."""
    name = f"{element}_{attr}"
    if len(names) < MAX_REMEMBERED_NAMES:
        names[attr] = name
    return name


def flatten_xml_json(event: dict[str, Any]) -> tuple[FlatEvent, str | None]:
    """Flatten the evtx parser's rendering of an event; return the fields and the SystemTime text.

    It runs for every event of every EVTX file, so the common shapes take the shortest path: System
    leaves that are text or integers, attribute-only elements (``Provider``, ``Execution``), flat
    ``EventData``."""
    root = event.get("Event", event)
    system = root.get("System") or {}
    out: FlatEvent = {}
    for key, value in system.items():
        names = _SYSTEM_SPECIAL.get(key, _LEAF)
        if names is _LEAF:
            if value.__class__ is str:
                out[key] = value
            elif value.__class__ is int:
                out[key] = str(value)
            else:
                out[key] = scalar_text(value)
        elif names is not None:  # Provider, Execution, Security, Correlation
            attrs = value.get("#attributes") if value.__class__ is dict else None
            if attrs.__class__ is dict:  # the usual shape, inline: this runs three times an event
                for attr, text in attrs.items():
                    name = names.get(attr) or _attribute_name(key, names, attr)
                    out[name] = text if text.__class__ is str else scalar_text(text)
            elif value is not None:
                _attribute_fields(key, names, _attributes(value), out)
        elif key == "TimeCreated":
            text = _attributes(value).get("SystemTime")
            out["TimeCreated_SystemTime"] = text if text.__class__ is str else scalar_text(text)
    for section in ("EventData", "UserData"):
        data = root.get(section)
        if data is not None:
            _flatten_data(data, out)
    if not _ROOT_SECTIONS.issuperset(root):
        for key, value in root.items():
            if key not in _ROOT_SECTIONS and not isinstance(value, dict):
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
    """Flatten the flat form (NXLog, Sysmon JSON exports): top-level keys are the fields already.

    Text and integer leaves (nearly all of them) take the shortest path: this runs for every event
    the service receives as JSON."""
    out: FlatEvent = {}
    renames = _NXLOG_RENAMES
    for key, value in event.items():
        name = renames.get(key)  # NXLog's name of a system field (``Hostname``: ``Computer``), unless the
        if name is None or name in event:  # event holds that name already: then ``key`` is an event-data
            name = key  # field of its own (5156's ``ProcessID`` in a flat export of EVTX records)
        kind = value.__class__
        if kind is str:
            out[name] = value
        elif kind is int:
            out[name] = str(value)
        elif isinstance(value, dict) and "#text" not in value:
            for sub, inner in value.items():
                if not isinstance(inner, dict | list):
                    out[f"{key}_{sub}" if key in {"Provider", "Execution", "Security"} else sub] = scalar_text(inner)
        else:
            out[name] = scalar_text(value)
    if "EventData" in event and isinstance(event["EventData"], dict):
        _flatten_data(event["EventData"], out)
    for name in _TIME_KEYS:
        time_text = out.get(name)
        if time_text:
            return out, time_text
    return out, None


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
