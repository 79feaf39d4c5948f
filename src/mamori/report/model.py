"""What an incident report says, as plain frozen values: built once from the records, rendered in any language.

Every time is a timezone-aware UTC ``datetime``; the renderer shows it in the reader's zone. Texts that
come from people or rules (titles, notes, host names) are kept as they are and escaped when rendered.
Words that depend on the language (status names, tactic names, the summary) are chosen at render time,
so the same ``ReportData`` renders in Japanese or English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

TimelineKind = Literal["alert", "event", "change", "note", "action"]


@dataclass(frozen=True)
class IncidentFacts:
    """The incident's own fields: who, what state, which times."""

    id: int
    title: str
    severity: str
    status: str
    status_reason: str
    owner: str | None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    alert_count: int
    severity_basis: str = ""
    # the cases room's messages behind severity_basis and status_reason (``mamori.cases.messages``)
    messages: dict[str, Any] | None = None


@dataclass(frozen=True)
class AlertFacts:
    """One alert of the incident, as the report lists it."""

    id: int
    rule_title: str
    level: str
    first_seen: datetime
    last_seen: datetime
    host: str | None
    user: str | None
    ip: str | None
    count: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineItem:
    """One line of the timeline: when, what kind, a one-line text, who did it and details.

    For ``change`` items, ``change_field``/``old``/``new``/``reason`` hold the raw values so the renderer
    can word them in the reader's language; for the other kinds ``text`` is shown as it is.
    """

    time: datetime
    kind: TimelineKind
    text: str
    actor: str = ""
    change_field: str = ""
    old: str | None = None
    new: str | None = None
    reason: str = ""
    level: str = ""
    messages: dict[str, Any] | None = None  # a change's reason/new_value as messages of the cases room


@dataclass(frozen=True)
class EntityRow:
    """An entity of the incident (kind and value) and how many of its alerts name it."""

    kind: str
    value: str
    alert_count: int


@dataclass(frozen=True)
class TechniqueRef:
    """An ATT&CK technique: its id (``T1003.001``) and English name ("" when the ATT&CK data is absent)."""

    id: str
    name: str


@dataclass(frozen=True)
class TacticMapping:
    """One ATT&CK tactic of the incident (``tag`` as Sigma writes it, "" when unmapped) and its techniques."""

    tag: str
    tactic_id: str
    name_en: str
    name_ja: str
    techniques: tuple[TechniqueRef, ...]


@dataclass(frozen=True)
class ActionTaken:
    """Something done about the incident: a change by a person or playbook, or a playbook action run.

    ``kind`` is ``change`` (then ``change_field``/``old``/``new``/``reason`` are set) or ``playbook`` (then
    ``playbook``/``action``/``action_type``/``result``/``decided_by``/``approval``/``detail`` are set).
    """

    time: datetime
    kind: Literal["change", "playbook"]
    actor: str
    change_field: str = ""
    old: str | None = None
    new: str | None = None
    reason: str = ""
    playbook: str = ""
    action: str = ""
    action_type: str = ""
    result: str = ""
    approval: str = ""
    decided_by: str | None = None
    detail: str = ""
    messages: dict[str, Any] | None = None  # a change's reason/new_value as messages of the cases room


@dataclass(frozen=True)
class EvidenceItem:
    """An evidence file: its name as uploaded, SHA-256, size, who added it and when."""

    filename: str
    sha256: str
    size: int
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True)
class SlaClock:
    """One SLA target (acknowledge or resolve): its due time and, once met, when it was met."""

    kind: Literal["acknowledge", "resolve"]
    target_seconds: float
    due: datetime
    met_at: datetime | None


@dataclass(frozen=True)
class ReportData:
    """Everything an incident report shows, independent of the language it is rendered in."""

    incident: IncidentFacts
    generated_at: datetime
    alerts: tuple[AlertFacts, ...] = ()
    timeline: tuple[TimelineItem, ...] = ()
    omitted_events: int = 0
    entities: tuple[EntityRow, ...] = ()
    attack: tuple[TacticMapping, ...] = ()
    actions: tuple[ActionTaken, ...] = ()
    evidence: tuple[EvidenceItem, ...] = ()
    sla: tuple[SlaClock, ...] = ()
    language: str = "en"
    time_zone: str | None = None


__all__ = ["ActionTaken", "AlertFacts", "EntityRow", "EvidenceItem", "IncidentFacts", "ReportData", "SlaClock",
           "TacticMapping", "TechniqueRef", "TimelineItem", "TimelineKind"]
