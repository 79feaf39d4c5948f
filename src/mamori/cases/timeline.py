"""An incident's timeline: its alerts, the stored events behind them, every change and every note, in
time order, each with a one-line summary a person can read and the details as JSON.

Events are read from the lake by the ``event_uids`` the alerts carry (at most ``MAX_EVENTS``); an
event no longer in the lake (retention) is simply absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mamori.cases import workflow
from mamori.cases.event_lookup import events_by_uid
from mamori.cases.messages import Message, label, message, render_message
from mamori.cases.records import IncidentChange, IncidentNote
from mamori.events import schema
from mamori.store.lake import Lake
from mamori.store.records import Alert

EntryKind = Literal["alert", "event", "change", "note"]
KIND_ORDER = {"event": 0, "alert": 1, "change": 2, "note": 3}
MAX_EVENTS = 500
SUMMARY_FIELDS = ("CommandLine", "Image", "message", "Message", "eventName", "query", "url", "TargetFilename")
RAW_LIMIT = 4000


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: when, what kind, a readable summary, the details."""

    time: datetime
    kind: EntryKind
    summary: str
    detail: dict[str, Any]
    message: Message | None = None  # the summary as a message, when the cases room words it (alerts, changes)


def _short(text: object, limit: int = 200) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _event_time(event: dict[str, Any], fallback: datetime) -> datetime:
    value = event.get(schema.TIME)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return fallback
    return fallback


def event_summary(event: dict[str, Any]) -> str:
    """A one-line description of a stored event: source, host, event id and its most telling field."""
    parts = [str(event.get(schema.SOURCE) or "event")]
    if event.get(schema.HOST):
        parts.append(f"on {event[schema.HOST]}")
    if event.get("EventID") is not None:
        parts.append(f"EventID {event['EventID']}")
    telling = next((event[f] for f in SUMMARY_FIELDS if event.get(f)), None)
    if telling is None:
        telling = event.get(schema.RAW) or ""
    return _short(" ".join(parts) + (f": {telling}" if telling else ""))


def alert_entries(alerts: list[Alert]) -> list[TimelineEntry]:
    """The alerts of an incident as timeline entries (at their first sighting)."""
    out = []
    for alert in alerts:
        where = alert.host or alert.user or alert.ip
        said = message("timeline.alert_on", level=label("level", alert.level), title=alert.rule_title, where=where) \
            if where else message("timeline.alert", level=label("level", alert.level), title=alert.rule_title)
        if alert.count > 1:
            said = message("timeline.detections", text=said, count=alert.count)
        detail = {"alert_id": alert.id, "rule_id": alert.rule_id, "level": alert.level, "tags": alert.tags,
                  "count": alert.count, "last_seen": alert.last_seen.isoformat(), "explanation": alert.explanation,
                  "entities": {"host": alert.host, "user": alert.user, "ip": alert.ip, "process": alert.process,
                               "file_hash": alert.file_hash}}
        out.append(TimelineEntry(alert.first_seen, "alert", _short(render_message(said, "en")), detail, said))
    return out


def event_entries(lake: Lake, alerts: list[Alert]) -> list[TimelineEntry]:
    """The stored events behind some alerts as timeline entries (raw text cut to ``RAW_LIMIT``)."""
    uids: list[str] = []
    alert_of: dict[str, int] = {}
    for alert in alerts:
        for uid in alert.event_uids or []:
            alert_of.setdefault(uid, alert.id)
            uids.append(uid)
    if not uids:
        return []
    since = min(a.first_seen for a in alerts) - timedelta(days=1)
    until = max(a.last_seen for a in alerts) + timedelta(days=1)
    out = []
    for event in events_by_uid(lake, uids, since, until, limit=MAX_EVENTS):
        detail = dict(event)
        raw = detail.get(schema.RAW)
        if isinstance(raw, str) and len(raw) > RAW_LIMIT:
            detail[schema.RAW] = raw[:RAW_LIMIT] + "…"
        detail["alert_id"] = alert_of.get(str(event.get(schema.UID)))
        fallback = next(a.first_seen for a in alerts if a.id == detail["alert_id"]) if detail["alert_id"] else since
        out.append(TimelineEntry(_event_time(event, fallback), "event", event_summary(event), detail))
    return out


def _value(change: IncidentChange, column: str, value: str | None) -> object:
    stored = (change.messages or {}).get(column)
    if stored:
        return stored
    if change.field in {"status", "severity"} and value:
        return label(change.field, value)
    return value


def change_message(change: IncidentChange) -> Message:
    """A change as a message, e.g. ``alice: status new → investigating (reason)`` in English."""
    new = _value(change, "new_value", change.new_value)
    if change.field == "created":
        said = message("timeline.created", actor=change.actor, new=new)
    elif change.field == "alert":
        said = message("timeline.alert_joined", actor=change.actor, new=new)
    elif change.old_value is None:
        said = message("timeline.set", actor=change.actor, field=label("field", change.field), new=new)
    else:
        said = message("timeline.changed", actor=change.actor, field=label("field", change.field),
                       old=_value(change, "old_value", change.old_value), new=new)
    if change.reason:
        said = message("timeline.with_reason", text=said, reason=_value(change, "reason", change.reason))
    return said


def change_summary(change: IncidentChange) -> str:
    """A change in English words, e.g. ``alice: status new → investigating (reason)``."""
    return _short(render_message(change_message(change), "en"))


def timeline(session: Session, lake: Lake, incident_id: int, with_events: bool = True) -> list[TimelineEntry]:
    """Everything that happened in an incident, oldest first: alerts, their events (``with_events``), changes
    and notes; ``IncidentNotFound`` for an unknown id."""
    workflow.get_incident(session, incident_id)
    alerts = workflow.linked_alerts(session, incident_id)
    entries = alert_entries(alerts)
    if with_events:
        entries += event_entries(lake, alerts)
    for change in session.scalars(select(IncidentChange).where(IncidentChange.incident_id == incident_id)):
        if change.field == "note":  # the note itself is an entry
            continue
        entries.append(TimelineEntry(change.time, "change", change_summary(change), workflow.change_dict(change),
                                     change_message(change)))
    for note in session.scalars(select(IncidentNote).where(IncidentNote.incident_id == incident_id)):
        entries.append(TimelineEntry(note.time, "note", _short(f"{note.author}: {note.text}"),
                                     workflow.note_dict(note)))
    entries.sort(key=lambda e: (e.time, KIND_ORDER[e.kind]))
    return entries


def entry_dict(entry: TimelineEntry) -> dict[str, Any]:
    """A timeline entry as JSON."""
    return {"time": entry.time.isoformat(), "kind": entry.kind, "summary": entry.summary, "detail": entry.detail}
