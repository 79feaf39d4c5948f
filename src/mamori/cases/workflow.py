"""The incident workflow: status moves (allowed ones are data, ``data/workflow.yaml``), severity, owner,
notes, evidence, opening an incident from alerts, and the JSON shape of an incident.

Every function works inside the caller's transaction and writes an ``IncidentChange`` row for each
field it changes (who, when, old, new, why): that is the incident's audit trail. Publishing the
change on the case bus is the caller's job, after its commit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mamori.cases.evidence import MAX_EVIDENCE_BYTES, clean_filename, store_evidence
from mamori.cases.grouping import GroupingRules, alert_entities, load_rules, severity_message, union_entities
from mamori.cases.messages import Message, label, message, render_message
from mamori.cases.records import Incident, IncidentAlert, IncidentChange, IncidentEvidence, IncidentNote
from mamori.detect.attack import LEVELS, level_rank, tactics_of, techniques_of
from mamori.detect.attack import tactics as all_tactics
from mamori.errors import MamoriError
from mamori.store.records import INGEST_ROLE, Alert, User, utcnow

STATUSES = ("new", "investigating", "contained", "resolved", "false_positive")
SEVERITIES = LEVELS
WORKFLOW_FILE = "mamori/cases/data/workflow.yaml"


class IncidentNotFound(MamoriError):
    """No incident has the id asked for."""


class TransitionRefused(MamoriError):
    """The workflow does not allow this status move (or it lacks its mandatory reason); ``refusal`` is the
    message (``mamori.cases.messages``) a console shows in its reader's language."""

    def __init__(self, refusal: Message, *, where: str | None = None, hint: str | None = None) -> None:
        self.refusal = refusal
        super().__init__(render_message(refusal, "en"), where=where, hint=hint)


class UnknownAlert(MamoriError):
    """An incident was asked for with an alert id that does not exist."""


class NoSuchOwner(MamoriError):
    """Work given to a name no enabled, non-ingest user has (the message names the field and the name)."""


def assignable(session: Session, name: str | None, field: str) -> str | None:
    """The user name an alert or incident may be given to (None: nobody, for null or empty): an existing,
    enabled user who is not a log shipper, so a typo never leaves work with someone who cannot see it;
    otherwise NoSuchOwner naming ``field`` and the name."""
    value = (name or "").strip() or None
    if value is None:
        return None
    user = session.scalar(select(User).where(User.name == value))
    if user is None:
        raise NoSuchOwner(f"{field}: no user {value!r} (`mamori users list` shows them; `mamori users add` "
                          "creates one)")
    if user.disabled:
        raise NoSuchOwner(f"{field}: user {value!r} is disabled")
    if user.role == INGEST_ROLE:
        raise NoSuchOwner(f"{field}: user {value!r} is an ingest account (a log shipper), which cannot work on "
                          "alerts")
    return value


class AlertTaken(MamoriError):
    """An alert asked for is already in an incident (an alert belongs to one incident)."""


@dataclass(frozen=True)
class WorkflowRules:
    """Which status may follow which, which moves need a reason, which statuses are closed."""

    transitions: Mapping[str, tuple[str, ...]]
    reason_required: frozenset[str]
    closed: frozenset[str]


@functools.cache
def workflow_rules() -> WorkflowRules:
    """The workflow rules of ``data/workflow.yaml`` (checked: every status named must be known)."""
    document = yaml.safe_load((resources.files("mamori.cases") / "data" / "workflow.yaml").read_text("utf-8"))
    transitions = {str(k): tuple(str(s) for s in v or ()) for k, v in (document.get("transitions") or {}).items()}
    named = set(transitions) | {s for v in transitions.values() for s in v}
    named |= set(document.get("reason_required") or ()) | set(document.get("closed") or ())
    unknown = named - set(STATUSES)
    if unknown:
        raise MamoriError(f"unknown statuses {sorted(unknown)}", where=WORKFLOW_FILE,
                          hint=f"statuses: {', '.join(STATUSES)}")
    return WorkflowRules(transitions, frozenset(document.get("reason_required") or ()),
                         frozenset(document.get("closed") or ()))


def closed_statuses() -> frozenset[str]:
    """Statuses in which an incident takes no new alerts and its SLA clock stops."""
    return workflow_rules().closed


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident with this id; ``IncidentNotFound`` when there is none."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}", where=f"incident {incident_id}")
    return incident


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def record_change(session: Session, incident: Incident, actor: str, field: str, old: object, new: object,
                  reason: str | Message = "", when: datetime | None = None,
                  new_message: Message | None = None) -> IncidentChange:
    """Write one line of the incident's audit trail and touch its ``updated_at``; a reason (or new value) the
    cases room words itself is a message, kept beside its English text for the reader's language."""
    stamp = when or utcnow()
    messages: dict[str, Any] = {}
    if isinstance(reason, dict):
        messages["reason"], reason = reason, render_message(reason, "en")
    if new_message is not None:
        messages["new_value"], new = new_message, render_message(new_message, "en")
    change = IncidentChange(incident_id=incident.id, time=stamp, actor=actor, field=field, old_value=_text(old),
                            new_value=_text(new), reason=reason, messages=messages or None)
    session.add(change)
    incident.updated_at = stamp
    return change


def set_message(row: Incident, column: str, value: Message | None) -> None:
    """Keep (or, with None, drop) the message behind an incident's text column, e.g. ``severity_basis``."""
    messages = dict(row.messages or {})
    if value is None:
        messages.pop(column, None)
    else:
        messages[column] = value
    row.messages = messages or None


def _acknowledge(incident: Incident, when: datetime) -> None:
    if incident.acknowledged_at is None:
        incident.acknowledged_at = when


def set_status(session: Session, incident_id: int, status: str, actor: str, reason: str | None = None) -> Incident:
    """Move an incident to ``status`` if the workflow allows it; a move to false_positive needs a reason.

    Leaving ``new`` acknowledges the incident (the SLA's time to acknowledge); entering a closed status
    sets ``resolved_at``; reopening clears it.
    """
    rules = workflow_rules()
    if status not in STATUSES:
        raise MamoriError(f"unknown status {status!r}", where="status", hint=f"statuses: {', '.join(STATUSES)}")
    incident = get_incident(session, incident_id)
    current = incident.status
    if incident.merged_into is not None:
        raise TransitionRefused(message("refused.merged", id=incident_id, target=incident.merged_into),
                                where="status", hint=f"work on incident {incident.merged_into}")
    if status == current:
        raise TransitionRefused(message("refused.same", id=incident_id, status=label("status", status)),
                                where="status")
    allowed = rules.transitions.get(current, ())
    if status not in allowed:
        raise TransitionRefused(message("refused.move", id=incident_id, old=label("status", current),
                                        new=label("status", status)), where="status",
                                hint=f"from {current} it may go to: {', '.join(allowed) or 'nothing'}")
    text = (reason or "").strip()
    if status in rules.reason_required and not text:
        raise TransitionRefused(message("refused.reason_needed", id=incident_id, status=label("status", status)),
                                where="reason", hint="say why, e.g. 'admin script run by the IT team'")
    now = utcnow()
    incident.status = status
    incident.status_reason = text
    set_message(incident, "status_reason", None)
    if current == "new":
        _acknowledge(incident, now)
    if status in rules.closed:
        incident.resolved_at = now
    elif current in rules.closed:
        incident.resolved_at = None
    record_change(session, incident, actor, "status", current, status, text, now)
    session.flush()
    return incident


def set_severity(session: Session, incident_id: int, severity: str, actor: str, reason: str = "") -> Incident:
    """Set an incident's severity by hand; from then on new alerts no longer change it."""
    if severity not in SEVERITIES:
        raise MamoriError(f"unknown severity {severity!r}", where="severity",
                          hint=f"severities: {', '.join(SEVERITIES)}")
    incident = get_incident(session, incident_id)
    old = incident.severity
    incident.severity_pinned = True
    if old != severity:
        incident.severity = severity
        basis = message("severity.set_by_reason", actor=actor, reason=reason) if reason else message(
            "severity.set_by", actor=actor)
        incident.severity_basis = render_message(basis, "en")
        set_message(incident, "severity_basis", basis)
        record_change(session, incident, actor, "severity", old, severity, reason)
    session.flush()
    return incident


def assign(session: Session, incident_id: int, owner: str | None, actor: str) -> Incident:
    """Give an incident to ``owner`` (None or empty takes it back); assigning acknowledges it."""
    incident = get_incident(session, incident_id)
    value = (owner or "").strip() or None
    if value is not None and len(value) > 200:
        raise MamoriError("an owner name has at most 200 characters", where="owner")
    if value != incident.owner:
        now = utcnow()
        old = incident.owner
        incident.owner = value
        if value is not None:
            _acknowledge(incident, now)
        record_change(session, incident, actor, "owner", old, value, when=now)
    session.flush()
    return incident


def add_note(session: Session, incident_id: int, text: str, actor: str) -> IncidentNote:
    """Add a note to an incident (it appears in the timeline and the trail)."""
    body = (text or "").strip()
    if not body:
        raise MamoriError("a note needs some text", where="text")
    if len(body) > 100_000:
        raise MamoriError("a note has at most 100,000 characters", where="text", hint="attach long text as evidence")
    incident = get_incident(session, incident_id)
    now = utcnow()
    note = IncidentNote(incident_id=incident.id, time=now, author=actor, text=body)
    session.add(note)
    session.flush()
    record_change(session, incident, actor, "note", None, None, when=now,
                  new_message=message("workflow.note_ref", id=note.id))
    session.flush()
    return note


def add_evidence(session: Session, incident_id: int, filename: str, data: bytes, actor: str, evidence_dir: Path,
                 content_type: str = "application/octet-stream",
                 max_bytes: int = MAX_EVIDENCE_BYTES) -> IncidentEvidence:
    """Attach a file to an incident: stored once by SHA-256 under ``evidence_dir``, recorded with its name and size."""
    incident = get_incident(session, incident_id)
    stored = store_evidence(evidence_dir, data, max_bytes)
    now = utcnow()
    row = IncidentEvidence(incident_id=incident.id, filename=clean_filename(filename), sha256=stored.sha256,
                           size=stored.size, content_type=(content_type or "application/octet-stream")[:200],
                           stored_path=stored.relative_path, uploaded_by=actor, uploaded_at=now)
    session.add(row)
    session.flush()
    record_change(session, incident, actor, "evidence", None, f"{row.filename} sha256:{stored.sha256}", when=now)
    session.flush()
    return row


def alert_tactics(alerts: Iterable[Alert], tactics: Iterable[str] = (),
                  techniques: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """The ATT&CK tactic tags (kill-chain order) and technique ids named by some alerts' tags, added to
    the ``tactics`` and ``techniques`` already known."""
    found = set(tactics)
    found_techniques = set(techniques)
    for alert in alerts:
        found.update(tactic.tag for tactic in tactics_of(alert.tags or []))
        found_techniques.update(techniques_of(alert.tags or []))
    order = {tactic.tag: rank for rank, tactic in enumerate(all_tactics())}
    return sorted(found, key=lambda tag: (order.get(tag, len(order)), tag)), sorted(found_techniques)


def alert_entity_values(alert: Alert) -> dict[str, list[object]]:
    """An alert's own entity values by kind (before normalisation)."""
    return {"host": [alert.host], "user": [alert.user], "ip": [alert.ip], "file_hash": [alert.file_hash]}


def linked_alerts(session: Session, incident_id: int) -> list[Alert]:
    """The alerts of an incident, oldest first."""
    return list(session.scalars(select(Alert).join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
                                .where(IncidentAlert.incident_id == incident_id)
                                .order_by(Alert.first_seen, Alert.id)))


def refresh_summary(session: Session, incident: Incident, rules: GroupingRules, alerts: Iterable[Alert] = (),
                    extra_entities: Mapping[str, Iterable[str]] | None = None, actor: str = "system") -> Incident:
    """Bring what an incident says about its alerts up to date after ``alerts`` joined or changed: times,
    count and levels from the database, entities, tactics and techniques added from ``alerts`` (they only
    grow), and (unless a person set it) the severity; a severity change is written to the trail."""
    alerts = list(alerts)
    entities: dict[str, list[str]] = dict(incident.entities or {})
    for alert in alerts:
        own = {k: sorted(v) for k, v in alert_entities(alert_entity_values(alert), rules).items()}
        entities = union_entities(entities, own)
    if extra_entities:
        entities = union_entities(entities, {k: list(v) for k, v in extra_entities.items()})
    incident.entities = entities
    session.flush()
    linked = select(Alert).join(IncidentAlert, IncidentAlert.alert_id == Alert.id).where(
        IncidentAlert.incident_id == incident.id).subquery()
    count, first, last = session.execute(select(func.count(), func.min(linked.c.first_seen),
                                                func.max(linked.c.last_seen))).one()
    levels = list(session.scalars(select(linked.c.level).distinct()))
    incident.alert_count = int(count or 0)
    if first is not None and last is not None:
        incident.first_seen, incident.last_seen = first, last
    incident.tactics, incident.techniques = alert_tactics(alerts, incident.tactics or [], incident.techniques or [])
    if not incident.severity_pinned:
        severity, basis = severity_message(levels, len(entities.get("host", [])), len(incident.tactics), rules)
        if severity != incident.severity and incident.severity:
            record_change(session, incident, actor, "severity", incident.severity, severity, basis)
        incident.severity, incident.severity_basis = severity, render_message(basis, "en")
        set_message(incident, "severity_basis", basis)
    session.flush()
    return incident


def title_for(alerts: Sequence[Alert]) -> str:
    """A title naming the most severe alert's rule and where it fired."""
    top = max(alerts, key=lambda a: (level_rank(a.level), -a.id))
    where = top.host or top.user or top.ip
    return (top.rule_title + (f" on {where}" if where else ""))[:500]


def link_alert(session: Session, incident: Incident, alert_id: int, reason: str) -> None:
    """Put an alert into an incident (an alert is in at most one incident)."""
    session.add(IncidentAlert(incident_id=incident.id, alert_id=alert_id, link_reason=reason[:2000]))


def new_incident(session: Session, alerts: Sequence[Alert], actor: str, rules: GroupingRules,
                 title: str | None = None, reason: str | Message = "",
                 extra_entities: Mapping[str, Iterable[str]] | None = None) -> Incident:
    """Create an incident holding ``alerts`` (none of them in another incident), with its summary and a
    'created' line in its trail."""
    now = utcnow()
    incident = Incident(title=(title or title_for(alerts))[:500], severity="", status="new", created_at=now,
                        updated_at=now, first_seen=min(a.first_seen for a in alerts),
                        last_seen=max(a.last_seen for a in alerts), entities={}, tactics=[], techniques=[],
                        created_by=actor)
    session.add(incident)
    session.flush()
    for alert in alerts:
        link_alert(session, incident, alert.id, reason if isinstance(reason, str) else render_message(reason, "en"))
    session.flush()
    refresh_summary(session, incident, rules, alerts, extra_entities, actor)
    record_change(session, incident, actor, "created", None, None, reason, now,
                  new_message=message("workflow.alert_count", count=len(alerts)))
    session.flush()
    return incident


def open_incident(session: Session, alert_ids: Sequence[int], actor: str, title: str | None = None,
                  rules: GroupingRules | None = None) -> Incident:
    """Open an incident by hand from some alerts; an unknown alert, or one already in an incident, is an error."""
    wanted = list(dict.fromkeys(int(a) for a in alert_ids))
    if not wanted:
        raise MamoriError("an incident needs at least one alert", where="alert_ids")
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(wanted))))
    missing = sorted(set(wanted) - {a.id for a in alerts})
    if missing:
        raise UnknownAlert(f"no alert {', '.join(map(str, missing))}", where="alert_ids")
    taken = session.execute(select(IncidentAlert.alert_id, IncidentAlert.incident_id)
                            .where(IncidentAlert.alert_id.in_(wanted))).all()
    if taken:
        listed = ", ".join(f"alert {r.alert_id} is in incident {r.incident_id}" for r in taken)
        raise AlertTaken(listed, where="alert_ids", hint="an alert belongs to one incident")
    return new_incident(session, alerts, actor, rules or load_rules(), title,
                        reason=message("workflow.opened_by", actor=actor))


def alert_ids_of(session: Session, incident_id: int) -> list[int]:
    """The ids of an incident's alerts, in the order they were added."""
    return list(session.scalars(select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident_id)
                                .order_by(IncidentAlert.id)))


def count_open(session: Session) -> int:
    """How many incidents are not closed."""
    return int(session.scalar(select(func.count()).select_from(Incident)
                              .where(Incident.status.not_in(closed_statuses()))) or 0)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def incident_dict(incident: Incident) -> dict[str, Any]:
    """An incident as the API, the bus and the playbooks see it (plain JSON values)."""
    return {
        "id": incident.id, "title": incident.title, "severity": incident.severity,
        "severity_basis": incident.severity_basis, "severity_pinned": incident.severity_pinned,
        "status": incident.status, "status_reason": incident.status_reason, "owner": incident.owner,
        "created_at": _iso(incident.created_at), "updated_at": _iso(incident.updated_at),
        "acknowledged_at": _iso(incident.acknowledged_at), "resolved_at": _iso(incident.resolved_at),
        "first_seen": _iso(incident.first_seen), "last_seen": _iso(incident.last_seen),
        "entities": dict(incident.entities or {}), "tactics": list(incident.tactics or []),
        "techniques": list(incident.techniques or []), "alert_count": incident.alert_count,
        "created_by": incident.created_by, "merged_into": incident.merged_into,
    }


def change_dict(change: IncidentChange) -> dict[str, Any]:
    """One line of the audit trail as JSON."""
    return {"id": change.id, "time": change.time.isoformat(), "actor": change.actor, "field": change.field,
            "old": change.old_value, "new": change.new_value, "reason": change.reason}


def note_dict(note: IncidentNote) -> dict[str, Any]:
    """A note as JSON."""
    return {"id": note.id, "time": note.time.isoformat(), "author": note.author, "text": note.text}


def evidence_dict(row: IncidentEvidence) -> dict[str, Any]:
    """An evidence file's record as JSON (never its content)."""
    return {"id": row.id, "filename": row.filename, "sha256": row.sha256, "size": row.size,
            "content_type": row.content_type, "uploaded_by": row.uploaded_by,
            "uploaded_at": row.uploaded_at.isoformat()}

