"""Gather an incident's report from the records database (and the event lake): ``build(session, lake, id)``.

Reads the incident, its alerts, notes, change trail and evidence (``mamori.cases.records``), its SLA
clocks (``mamori.cases.sla``), the stored events behind its alerts (``mamori.cases.timeline``, when a
lake is given) and the playbook action runs about it when the playbook room is installed (left out,
not faked, when it is not).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mamori.cases.records import Incident, IncidentAlert, IncidentChange, IncidentEvidence, IncidentNote
from mamori.cases.sla import sla_status
from mamori.cases.timeline import event_entries
from mamori.detect.attack import level_rank
from mamori.errors import MamoriError
from mamori.report.attack_map import attack_mapping
from mamori.report.locale import check_language
from mamori.report.model import (
    ActionTaken,
    AlertFacts,
    EntityRow,
    EvidenceItem,
    IncidentFacts,
    ReportData,
    SlaClock,
    TimelineItem,
)
from mamori.store.lake import Lake
from mamori.store.records import Alert

log = logging.getLogger(__name__)

ENTITY_ORDER = ("host", "user", "ip", "email", "process_tree", "file_hash")
MAX_TIMELINE_EVENTS = 40
# above this many alerts, the timeline shows one line per rule (first time, count, where) instead of each alert
MAX_TIMELINE_ALERTS = 60
MAX_PLACES = 4
# trail lines that are the incident's own bookkeeping, not something done about it
_NOT_ACTIONS = frozenset({"created", "alert", "note"})
# trail lines the timeline shows in another form (the alert or the note itself)
_SHOWN_ELSEWHERE = frozenset({"alert", "note"})


def _optional(module: str) -> ModuleType | None:
    """A module of another room when it is installed, else None (the report leaves its part out)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _must_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def incident_facts(incident: Incident) -> IncidentFacts:
    """The incident's own fields as a report value."""
    return IncidentFacts(
        id=incident.id, title=incident.title, severity=incident.severity, status=incident.status,
        status_reason=incident.status_reason or "", owner=incident.owner,
        created_at=_must_utc(incident.created_at), updated_at=_must_utc(incident.updated_at),
        acknowledged_at=_utc(incident.acknowledged_at), resolved_at=_utc(incident.resolved_at),
        first_seen=_must_utc(incident.first_seen), last_seen=_must_utc(incident.last_seen),
        alert_count=incident.alert_count, severity_basis=incident.severity_basis or "",
        messages=dict(incident.messages) if incident.messages else None)


def alert_facts(alert: Alert) -> AlertFacts:
    """An alert as the report lists it."""
    return AlertFacts(id=alert.id, rule_title=alert.rule_title, level=alert.level,
                      first_seen=_must_utc(alert.first_seen), last_seen=_must_utc(alert.last_seen),
                      host=alert.host, user=alert.user, ip=alert.ip, count=alert.count, tags=tuple(alert.tags or ()))


def entity_rows(entities: dict[str, Any], alerts: Sequence[AlertFacts]) -> tuple[EntityRow, ...]:
    """One row per entity value of the incident, with how many of its alerts name it (case-insensitive)."""
    rows = []
    kinds = sorted(entities, key=lambda k: (ENTITY_ORDER.index(k) if k in ENTITY_ORDER else len(ENTITY_ORDER), k))
    for kind in kinds:
        values = entities.get(kind) or []
        for value in (values if isinstance(values, list) else [values]):
            text = str(value)
            wanted = text.casefold()
            count = sum(1 for a in alerts if str(getattr(a, kind, None) or "").casefold() == wanted) \
                if kind in {"host", "user", "ip"} else 0
            rows.append(EntityRow(kind, text, count))
    return tuple(rows)


def _alert_line(alert: AlertFacts) -> str:
    where = ", ".join(f"{k}={v}" for k, v in (("host", alert.host), ("user", alert.user), ("ip", alert.ip)) if v)
    times = f" ×{alert.count}" if alert.count > 1 else ""
    return f"{alert.rule_title}{times}" + (f" ({where})" if where else "")


def alert_lines(alerts: Sequence[AlertFacts], limit: int = MAX_TIMELINE_ALERTS) -> list[TimelineItem]:
    """Timeline lines for the alerts: one per alert up to ``limit``; beyond, one per rule (its first time,
    how many alerts, the hosts and users), so a report on a noisy incident stays readable and quick to print."""
    if len(alerts) <= limit:
        return [TimelineItem(time=a.first_seen, kind="alert", text=_alert_line(a), level=a.level) for a in alerts]
    by_rule: dict[str, list[AlertFacts]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule_title, []).append(alert)
    lines = []
    for title, group in by_rule.items():
        places = list(dict.fromkeys(str(v) for a in group for v in (a.host, a.user) if v))
        where = ", ".join(places[:MAX_PLACES]) + (", …" if len(places) > MAX_PLACES else "")
        hits = sum(a.count for a in group)
        text = f"{title} ×{hits}" + (f" ({where})" if where else "")
        level = max((a.level for a in group), key=level_rank)
        lines.append(TimelineItem(time=min(a.first_seen for a in group), kind="alert", text=text, level=level))
    return lines


def _playbook_actions(session: Session, incident_id: int, alert_ids: Sequence[int]) -> list[ActionTaken]:
    """The playbook action runs started by this incident or its alerts (empty without the playbook room)."""
    records = _optional("mamori.cases.playbooks.records")
    if records is None:
        return []
    run_table: Any = records.PlaybookRun
    action_table: Any = records.ActionRun
    condition = run_table.incident_id == incident_id
    if alert_ids:
        condition = or_(condition, run_table.alert_id.in_(list(alert_ids)))
    runs = {run.id: run for run in session.scalars(select(run_table).where(condition))}
    if not runs:
        return []
    out = []
    for action in session.scalars(select(action_table).where(action_table.run_id.in_(list(runs)))
                                  .order_by(action_table.id)):
        run = runs[action.run_id]
        when = _utc(action.finished_at) or _utc(action.started_at) or _must_utc(run.created_at)
        out.append(ActionTaken(time=when, kind="playbook", actor=action.decided_by or "playbook",
                               playbook=run.playbook, action=action.name, action_type=action.type,
                               result=action.status, approval=action.approval, decided_by=action.decided_by,
                               detail=(action.error or "")[:300]))
    return out


def _lake_events(lake: Lake | None, alerts: list[Alert], limit: int) -> tuple[list[TimelineItem], int]:
    """The stored events behind the alerts (first ``limit`` in time order) and how many were left out."""
    if lake is None or not alerts:
        return [], 0
    try:
        entries = sorted(event_entries(lake, alerts), key=lambda e: e.time)
    except MamoriError:
        raise
    except Exception:  # the lake is a best-effort addition: the report stands on the records alone
        log.exception("reading the events behind alerts %s for a report failed", [a.id for a in alerts])
        return [], 0
    items = [TimelineItem(time=_must_utc(e.time), kind="event", text=e.summary[:500]) for e in entries[:limit]]
    return items, max(0, len(entries) - limit)


def _sla_clocks(incident: Incident, now: datetime) -> tuple[SlaClock, ...]:
    """The acknowledge and resolve clocks of the incident's severity (``mamori.cases.sla`` targets)."""
    status = sla_status(incident, now)
    opened = _must_utc(incident.created_at)
    return (SlaClock("acknowledge", (_must_utc(status.acknowledge_due) - opened).total_seconds(),
                     _must_utc(status.acknowledge_due), _utc(status.acknowledged_at)),
            SlaClock("resolve", (_must_utc(status.resolve_due) - opened).total_seconds(),
                     _must_utc(status.resolve_due), _utc(status.resolved_at)))


def build(session: Session, lake: Lake | None, incident_id: int, lang: str = "en", time_zone: str | None = None,
          now: datetime | None = None, max_events: int = MAX_TIMELINE_EVENTS) -> ReportData:
    """Everything the report of ``incident_id`` shows, read in one session; ``lang`` and ``time_zone`` are
    the reader's defaults (the renderer may override them). An unknown incident is a MamoriError."""
    check_language(lang)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise MamoriError(f"no incident {incident_id}", where=f"incident {incident_id}",
                          hint="list incidents with `mamori incidents list` or GET /api/v1/incidents")
    stamp = _must_utc(now or datetime.now(UTC))
    alert_rows = list(session.scalars(
        select(Alert).join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
        .where(IncidentAlert.incident_id == incident_id).order_by(Alert.first_seen, Alert.id)))
    alerts = [alert_facts(a) for a in alert_rows]
    notes = list(session.scalars(select(IncidentNote).where(IncidentNote.incident_id == incident_id)
                                 .order_by(IncidentNote.time, IncidentNote.id)))
    changes = list(session.scalars(select(IncidentChange).where(IncidentChange.incident_id == incident_id)
                                   .order_by(IncidentChange.time, IncidentChange.id)))
    evidence = list(session.scalars(select(IncidentEvidence).where(IncidentEvidence.incident_id == incident_id)
                                    .order_by(IncidentEvidence.uploaded_at, IncidentEvidence.id)))

    items = alert_lines(alerts)
    items += [TimelineItem(time=_must_utc(c.time), kind="change", text="", actor=c.actor, change_field=c.field,
                           old=c.old_value, new=c.new_value, reason=c.reason or "", messages=c.messages)
              for c in changes if c.field not in _SHOWN_ELSEWHERE]
    items += [TimelineItem(time=_must_utc(n.time), kind="note", text=n.text, actor=n.author) for n in notes]
    actions = [ActionTaken(time=_must_utc(c.time), kind="change", actor=c.actor, change_field=c.field,
                           old=c.old_value, new=c.new_value, reason=c.reason or "", messages=c.messages)
               for c in changes if c.field not in _NOT_ACTIONS]
    playbook_actions = _playbook_actions(session, incident_id, [a.id for a in alerts])
    actions += playbook_actions
    items += [TimelineItem(time=p.time, kind="action", text=f"{p.playbook} / {p.action} ({p.action_type})",
                           actor=p.actor, new=p.result) for p in playbook_actions]
    events, omitted = _lake_events(lake, alert_rows, max_events)
    items += events
    order = {"alert": 0, "event": 1, "change": 2, "action": 3, "note": 4}
    items.sort(key=lambda i: (i.time, order[i.kind]))
    actions.sort(key=lambda a: a.time)

    return ReportData(
        incident=incident_facts(incident), generated_at=stamp, alerts=tuple(alerts), timeline=tuple(items),
        omitted_events=omitted, entities=entity_rows(dict(incident.entities or {}), alerts),
        attack=attack_mapping([a.tags for a in alerts]), actions=tuple(actions),
        evidence=tuple(EvidenceItem(filename=e.filename, sha256=e.sha256, size=e.size, uploaded_by=e.uploaded_by,
                                    uploaded_at=_must_utc(e.uploaded_at)) for e in evidence),
        sla=_sla_clocks(incident, stamp), language=lang, time_zone=time_zone)


__all__ = ["MAX_TIMELINE_ALERTS", "MAX_TIMELINE_EVENTS", "alert_facts", "alert_lines", "build", "entity_rows",
           "incident_facts"]
