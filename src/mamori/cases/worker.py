"""The grouping worker: a thread of the service that turns new and changed alerts into incidents.

Every ``poll_seconds`` it reads the alerts created or updated since a watermark, decides with
``mamori.cases.grouping`` where each goes, writes the incidents, and commits the new watermark in the
same transaction (``service_state`` row ``cases.grouping.watermark``): after a restart nothing is lost
and nothing counted twice. New alerts are found by id (SQLite writers are serialised, so ids commit in
order); updated ones by ``updated_at``, which the pipeline takes before its commit, so each poll looks
back ``OVERLAP`` and skips the (alert, updated_at) pairs it already handled. After the
commit it publishes ``alert.created``/``alert.updated`` and ``incident.created``/``incident.updated``
on the case bus (a crash between the commit and the publication loses those notifications, not data).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases import workflow
from mamori.cases.event_lookup import events_by_uid
from mamori.cases.events import CaseBus, CaseEvent
from mamori.cases.grouping import (
    PROCESS_FIELDS,
    AlertFacts,
    GroupingRules,
    OpenCase,
    alert_entities,
    decide,
    process_tree_values,
    shared_entities,
    shares_message,
    union_entities,
)
from mamori.cases.messages import Message, message, render_message
from mamori.cases.recent_events import RecentEvents
from mamori.cases.records import Incident, IncidentAlert
from mamori.store.lake import Lake
from mamori.store.records import Alert, ServiceState, utcnow

log = logging.getLogger("mamori.cases")

WATERMARK_KEY = "cases.grouping.watermark"
OVERLAP = timedelta(seconds=30)
UIDS_PER_ALERT = 50
CHUNK_ALERTS = 50  # alerts grouped per transaction: the database is locked for writes meanwhile


@dataclass
class Watermark:
    """How far the worker got: the highest alert id, the latest ``updated_at`` handled and the
    (id -> updated_at) pairs near it."""

    time: datetime | None = None
    seen: dict[int, str] = field(default_factory=dict)
    last_id: int = 0

    def fresh(self, alert_id: int, updated_at: datetime) -> bool:
        """True when this version of the alert has not been handled yet."""
        return self.seen.get(alert_id) != updated_at.isoformat()

    def advance(self, handled: Iterable[tuple[int, datetime]]) -> None:
        """Note alerts as handled and forget the pairs too old to come back."""
        for alert_id, updated_at in handled:
            self.seen[alert_id] = updated_at.isoformat()
            self.last_id = max(self.last_id, alert_id)
            if self.time is None or updated_at > self.time:
                self.time = updated_at
        if self.time is not None:
            floor = (self.time - OVERLAP).isoformat()
            self.seen = {k: v for k, v in self.seen.items() if v >= floor}


def load_watermark(session: Session) -> Watermark:
    """The stored watermark (an empty one on a first start: every alert is handled)."""
    row = session.get(ServiceState, WATERMARK_KEY)
    if row is None:
        return Watermark()
    data = orjson.loads(row.value)
    time = datetime.fromisoformat(data["time"]) if data.get("time") else None
    return Watermark(time, {int(k): str(v) for k, v in (data.get("seen") or {}).items()}, int(data.get("last_id", 0)))


def save_watermark(session: Session, mark: Watermark) -> None:
    """Store the watermark in the caller's transaction."""
    value = orjson.dumps({"time": mark.time.isoformat() if mark.time else None,
                          "seen": {str(k): v for k, v in mark.seen.items()}, "last_id": mark.last_id})
    row = session.get(ServiceState, WATERMARK_KEY)
    if row is None:
        session.add(ServiceState(key=WATERMARK_KEY, value=value))
    else:
        row.value = value


@dataclass(frozen=True)
class Pending:
    """An alert version to handle, as read in the first short transaction."""

    alert_id: int
    updated_at: datetime
    created_at: datetime
    first_seen: datetime
    last_seen: datetime
    host: str | None
    event_uids: tuple[str, ...]


def _open_cases(session: Session, facts: AlertFacts, rules: GroupingRules) -> list[OpenCase]:
    widest = max((link.window for link in rules.links), default=timedelta(0))
    rows = session.scalars(select(Incident).where(
        Incident.status.not_in(workflow.closed_statuses()), Incident.merged_into.is_(None),
        Incident.last_seen >= facts.first_seen - widest, Incident.first_seen <= facts.last_seen + widest))
    return [OpenCase(i.id, i.first_seen, i.last_seen,
                     {k: frozenset(v) for k, v in (i.entities or {}).items()},
                     untouched=i.status == "new" and i.owner is None) for i in rows]


def merge_into(session: Session, target: Incident, other_id: int, actor: str, reason: str | Message) -> Incident:
    """Move every alert of incident ``other_id`` into ``target`` and close ``other_id`` as merged (the reason
    may be a message of ``mamori.cases.messages``; the trail keeps it for the reader's language)."""
    other = workflow.get_incident(session, other_id)
    why = message("workflow.merged_into_because", id=target.id, reason=reason)
    merged = message("workflow.merged_into", id=target.id)
    reason_text = reason if isinstance(reason, str) else render_message(reason, "en")
    for link in session.scalars(select(IncidentAlert).where(IncidentAlert.incident_id == other_id)):
        link.incident_id = target.id
        link.link_reason = f"merged from incident {other_id}: {reason_text}"[:2000]
    now = utcnow()
    old_status = other.status
    other.status, other.status_reason, other.merged_into, other.resolved_at = (
        "resolved", render_message(merged, "en"), target.id, now)
    workflow.set_message(other, "status_reason", merged)
    other.alert_count = 0
    workflow.record_change(session, other, actor, "status", old_status, "resolved", why, now)
    workflow.record_change(session, target, actor, "merged", None, None, reason, now,
                           new_message=message("workflow.incident_ref", id=other_id))
    target.entities = union_entities(target.entities or {}, other.entities or {})
    target.tactics, target.techniques = workflow.alert_tactics((), [*target.tactics, *other.tactics],
                                                               [*target.techniques, *other.techniques])
    session.flush()
    return other


ENTITY_COLUMNS = {"host": Alert.host, "user": Alert.user, "ip": Alert.ip, "file_hash": Alert.file_hash}


def earlier_alerts(session: Session, incident: Incident, rules: GroupingRules, up_to_id: int,
                   limit: int = 1000) -> list[tuple[Alert, Message]]:
    """Alerts (id at most ``up_to_id``) in no incident that share one of the incident's host, user, IP or file
    hash values within that entity's window, each with the shared entities as a message."""
    entities = incident.entities or {}
    conditions = [func.lower(func.trim(column)).in_(entities[kind]) for kind, column in ENTITY_COLUMNS.items()
                  if entities.get(kind) and rules.window(kind) is not None]
    if not conditions:
        return []
    widest = max((link.window for link in rules.links), default=timedelta(0))
    reach = widest + (rules.max_span or timedelta(days=1))
    in_incident = select(IncidentAlert.id).where(IncidentAlert.alert_id == Alert.id).exists()
    query = select(Alert).where(or_(*conditions), Alert.id <= up_to_id, ~in_incident,
                                Alert.first_seen >= incident.first_seen - reach,
                                Alert.first_seen <= incident.last_seen + widest).order_by(Alert.id).limit(limit)
    case = OpenCase(incident.id, incident.first_seen, incident.last_seen,
                    {k: frozenset(v) for k, v in entities.items()})
    out: list[tuple[Alert, Message]] = []
    for alert in session.scalars(query):
        facts = AlertFacts(alert.id, alert.level, alert.first_seen, alert.last_seen,
                           alert_entities(workflow.alert_entity_values(alert), rules))
        shared = shared_entities(facts, case, rules)
        if shared:
            out.append((alert, shares_message(shared)))
    return out


class GroupingWorker:
    """Polls the alerts table and groups alerts into incidents (one thread, started with the service)."""

    def __init__(self, sessions: sessionmaker[Session], lake: Lake, bus: CaseBus, rules: GroupingRules,
                 poll_seconds: float = 1.0, batch: int = 500, recent: RecentEvents | None = None) -> None:
        self.sessions = sessions
        self.lake = lake
        self.recent = recent if recent is not None else RecentEvents(0)  # the alerts' events the pipeline remembered
        self.bus = bus
        self.rules = rules
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0
        self.failed = 0
        self.new_in_last_round = 0  # alerts never handled before among the last round's
        self.history_before: datetime | None = None
        self._trees: dict[tuple[int, tuple[str, ...], str | None], set[str]] = {}  # see _process_trees
        self._first_events: dict[int, dict[str, dict[str, object]]] = {}  # alert id -> its first events read

    def start(self) -> None:
        """Start polling in a background thread. On the very first start (no watermark yet) the alerts
        created before it are history: they are grouped, but nothing is published for them, so playbooks
        do not act on old alerts when the cases room is added to a running SOC."""
        with self.sessions() as session:
            if session.get(ServiceState, WATERMARK_KEY) is None:
                self.history_before = utcnow()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cases-grouping", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the current round to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:  # a full round of new alerts goes on at once; a round of updates only waits its turn (a
                # busy incident's alerts change with every batch: refreshing them once a poll is enough)
                busy = self.run_once() >= self.batch and self.new_in_last_round > 0
            except Exception:  # a bad round is logged and retried; the watermark did not move
                log.exception("grouping alerts into incidents failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)

    def _pending(self) -> tuple[Watermark, list[Pending]]:
        with self.sessions() as session:
            mark = load_watermark(session)
            columns = select(Alert.id, Alert.updated_at, Alert.created_at, Alert.first_seen, Alert.last_seen,
                             Alert.host, Alert.event_uids)
            rows = list(session.execute(columns.where(Alert.id > mark.last_id).order_by(Alert.id).limit(self.batch)))
            if mark.time is not None and len(rows) < self.batch:
                changed = columns.where(Alert.id <= mark.last_id, Alert.updated_at >= mark.time - OVERLAP)
                fresh = (r for r in session.execute(changed.order_by(Alert.updated_at, Alert.id))
                         if mark.fresh(r.id, r.updated_at))
                rows += list(itertools.islice(fresh, self.batch - len(rows)))
            pending = [Pending(r.id, r.updated_at, r.created_at, r.first_seen, r.last_seen, r.host,
                               tuple(r.event_uids or ())[:UIDS_PER_ALERT]) for r in rows]
        return mark, pending

    def _process_trees(self, pending: Sequence[Pending]) -> dict[int, set[str]]:
        """The process-tree values of each alert's first events, looked up only for the alerts whose first
        events this worker has not read yet: an alert changes with every batch that hits it, its first
        events do not. The events the pipeline left in ``recent`` are taken from there; only the others
        are read from the lake, where a look-up scans every file of the days concerned."""
        if self.rules.window("process_tree") is None or not pending:
            return {}
        unknown = [p for p in pending if _tree_key(p) not in self._trees]
        if unknown:
            # only the events not read before: an alert that grew since has new first events, stored
            # just before its update, not at its creation (minutes or hours of lake files ago)
            uids = list(dict.fromkeys(u for p in unknown for u in p.event_uids
                                      if u not in self._first_events.get(p.alert_id, {})))
            since, until = min(p.first_seen for p in unknown), max(p.last_seen for p in unknown)
            stored = min(p.updated_at if p.alert_id in self._first_events else p.created_at for p in unknown)
            columns = (*PROCESS_FIELDS, "_host")
            remembered = self.recent.recall(uids)
            events: list[dict[str, object]] = list(remembered.values())
            uids = [u for u in uids if u not in remembered]
            try:  # the files written since the alerts were made first, the whole days for what they lack
                if uids:
                    events += events_by_uid(self.lake, uids, since, until, columns, len(uids),
                                            stored_since=stored - RECENT_FILES)
                missing = set(uids) - {str(e.get("_uid")) for e in events}
                if missing:
                    events += events_by_uid(self.lake, sorted(missing), since, until, columns, len(missing))
            except Exception:  # the lake is an aid here; grouping by the other entities goes on
                log.exception("cannot read the alerts' events for their process trees")
                return {}
            by_uid = {str(e.get("_uid")): e for e in events}
            if len(self._trees) + len(unknown) > TREES_KEPT:
                self._trees.clear()
                self._first_events.clear()
            for p in unknown:
                known = self._first_events.setdefault(p.alert_id, {})
                known.update((u, by_uid[u]) for u in p.event_uids if u in by_uid)
                self._trees[_tree_key(p)] = process_tree_values([known[u] for u in p.event_uids if u in known],
                                                                p.host)
        return {p.alert_id: self._trees[_tree_key(p)] for p in pending}

    def run_once(self) -> int:
        """Handle the alerts changed since the watermark; return how many alert versions were handled."""
        mark, pending = self._pending()
        if not pending:
            return 0
        trees = self._process_trees(pending)
        self.new_in_last_round = sum(p.alert_id > mark.last_id for p in pending)
        handled = 0
        for start in range(0, len(pending), CHUNK_ALERTS):
            chunk = pending[start:start + CHUNK_ALERTS]
            published = self._handle_chunk(chunk, trees, mark)
            if published is None:
                break
            for event in published:
                self.bus.publish(event)
            handled += len(chunk)
        self.handled += handled
        return handled

    def _handle_chunk(self, pending: Sequence[Pending], trees: Mapping[int, set[str]],
                      mark: Watermark) -> list[CaseEvent] | None:
        """Group a few of the round's alerts in one transaction and advance ``mark`` past them; return
        the events to publish (None when another worker moved the watermark: start over). Short
        transactions: the pipeline commits every batch's alerts and waits for the database meanwhile."""
        published: list[CaseEvent] = []
        with self.sessions.begin() as session:
            stored = load_watermark(session)
            if (stored.time, stored.last_id) != (mark.time, mark.last_id):  # moved by another: start over
                return None
            handled_max = mark.last_id  # new alerts come in id order: every id up to here was handled
            in_incidents = self._incidents_of(session, [p.alert_id for p in pending])
            changed: list[Pending] = []  # alerts already in an incident: refreshed per incident, below
            for item in pending:
                if item.alert_id in in_incidents:
                    changed.append(item)
                    continue
                try:
                    with session.begin_nested():  # one bad alert is logged and passed over, never blocks the rest
                        events = self._group(session, item, trees.get(item.alert_id, set()), mark, handled_max)
                except Exception:
                    log.exception("cannot group alert %s; it is left out of incidents", item.alert_id)
                    self.failed += 1
                    continue
                finally:
                    handled_max = max(handled_max, item.alert_id)
                if self.history_before is None or item.created_at >= self.history_before:
                    published.extend(events)
            published.extend(self._refresh_incidents(session, changed, trees, mark))
            mark.advance((p.alert_id, p.updated_at) for p in pending)
            save_watermark(session, mark)
        return published

    @staticmethod
    def _incidents_of(session: Session, alert_ids: Sequence[int]) -> dict[int, int]:
        """The incident each of these alerts is in (alerts in none are left out)."""
        rows = session.execute(select(IncidentAlert.alert_id, IncidentAlert.incident_id)
                               .where(IncidentAlert.alert_id.in_(alert_ids)))
        return {int(alert_id): int(incident_id) for alert_id, incident_id in rows}

    def _refresh_incidents(self, session: Session, changed: Sequence[Pending], trees: Mapping[int, set[str]],
                           mark: Watermark) -> list[CaseEvent]:
        """Bring the incidents of changed alerts up to date, once per incident however many of its alerts
        changed (a busy incident's alerts change with every batch); return the events to publish."""
        published: list[CaseEvent] = []
        by_incident: dict[int, list[Pending]] = {}
        current = self._incidents_of(session, [p.alert_id for p in changed])  # merges may have moved some
        if changed:  # one query for every changed alert: each incident's look-ups below find them loaded
            session.scalars(select(Alert).where(Alert.id.in_([p.alert_id for p in changed]))).all()
        for item in changed:
            by_incident.setdefault(current.get(item.alert_id, -1), []).append(item)
        for incident_id, items in by_incident.items():
            try:
                with session.begin_nested():  # one bad incident is logged and passed over
                    events = self._refresh_incident(session, incident_id, items, trees, mark)
            except Exception:
                log.exception("cannot refresh incident %s for alerts %s", incident_id, [i.alert_id for i in items])
                self.failed += len(items)
                continue
            fresh = {i.alert_id for i in items if self.history_before is None or i.created_at >= self.history_before}
            published.extend(e for e in events if (bool(fresh) if e.alert is None else _id_of_alert(e) in fresh))
        return published

    def _refresh_incident(self, session: Session, incident_id: int, items: Sequence[Pending],
                          trees: Mapping[int, set[str]], mark: Watermark) -> list[CaseEvent]:
        from mamori.api.routes_alerts import alert_dict  # here: the api package imports the service, which imports us
        alerts = [a for a in (session.get(Alert, i.alert_id) for i in items) if a is not None]
        if incident_id < 0 or not alerts:
            return []
        incident = workflow.get_incident(session, incident_id)
        out: list[CaseEvent] = []
        if incident.status not in workflow.closed_statuses():
            before = workflow.incident_dict(incident)
            tree = set().union(*(trees.get(a.id, set()) for a in alerts))
            extra = {"process_tree": sorted(tree)} if tree else {}
            workflow.refresh_summary(session, incident, self.rules, alerts, extra)
            names = ", ".join(str(a.id) for a in alerts)
            out.extend(self._updated(incident, before, f"alert{'s' if len(alerts) > 1 else ''} {names} changed"))
        shown = workflow.incident_dict(incident)
        return [*(CaseEvent("alert.created" if a.id > mark.last_id else "alert.updated", alert=alert_dict(a),
                            incident=shown) for a in alerts), *out]

    def _pull_earlier(self, session: Session, incident: Incident, handled_max: int) -> list[CaseEvent]:
        """Bring into ``incident`` the alerts already handled and left alone (too low to open one, or seen
        before the incident existed) that share its entities within the windows; return their events."""
        from mamori.api.routes_alerts import alert_dict  # here: the api package imports the service, which imports us

        found = earlier_alerts(session, incident, self.rules, handled_max)
        if not found:
            return []
        try:
            with session.begin_nested():  # a bad earlier alert must not stop the one being grouped
                for alert, reason in found:
                    text = render_message(reason, "en")
                    workflow.link_alert(session, incident, alert.id, f"{text} (found when the incident grew)")
                    workflow.record_change(session, incident, "system", "alert", None, str(alert.id), reason)
                session.flush()
                workflow.refresh_summary(session, incident, self.rules, [a for a, _ in found])
        except Exception:
            log.exception("cannot bring earlier alerts into incident %s", incident.id)
            return []
        shown = workflow.incident_dict(incident)
        return [CaseEvent("alert.updated", alert=alert_dict(a), incident=shown,
                          changes={"incident_id": incident.id, "reason": render_message(reason, "en")})
                for a, reason in found]

    def _group(self, session: Session, item: Pending, tree: set[str], mark: Watermark,
               handled_max: int) -> list[CaseEvent]:
        alert = session.get(Alert, item.alert_id)
        if alert is None:
            return []
        link = session.scalars(select(IncidentAlert).where(IncidentAlert.alert_id == alert.id)).first()
        if link is not None:  # brought into an incident earlier in this round
            return self._refresh_incident(session, link.incident_id, [item], {alert.id: tree}, mark)
        is_new = item.alert_id > mark.last_id
        from mamori.api.routes_alerts import alert_dict  # here: the api package imports the service, which imports us
        extra = {"process_tree": sorted(tree)} if tree else {}
        out: list[CaseEvent] = []
        incident: Incident | None = None
        values: dict[str, Iterable[object]] = dict(workflow.alert_entity_values(alert))
        values["process_tree"] = tree
        facts = AlertFacts(alert.id, alert.level, alert.first_seen, alert.last_seen,
                           alert_entities(values, self.rules))
        decision = decide(facts, _open_cases(session, facts, self.rules), self.rules)
        if decision.action == "join" and decision.incident_id is not None:
            incident = workflow.get_incident(session, decision.incident_id)
            before = workflow.incident_dict(incident)
            workflow.link_alert(session, incident, alert.id, decision.reason)
            workflow.record_change(session, incident, "system", "alert", None, str(alert.id),
                                   decision.message or decision.reason)
            session.flush()
            for other_id in decision.merge_ids:
                other_before = workflow.incident_dict(workflow.get_incident(session, other_id))
                other = merge_into(session, incident, other_id, "system", decision.message or decision.reason)
                out.extend(self._updated(other, other_before, f"merged into incident {incident.id}"))
            workflow.refresh_summary(session, incident, self.rules, [alert], extra)
            if incident.entities != before["entities"]:
                out.extend(self._pull_earlier(session, incident, handled_max))
            out.extend(self._updated(incident, before, f"alert {alert.id} joined: {decision.reason}"))
        elif decision.action == "open":
            incident = workflow.new_incident(session, [alert], "system", self.rules,
                                             reason=decision.message or decision.reason,
                                             extra_entities=extra)
            pulled = self._pull_earlier(session, incident, handled_max)
            out.append(CaseEvent("incident.created", incident=workflow.incident_dict(incident),
                                 changes={"reason": decision.reason, "alert_ids": [alert.id]}))
            out.extend(pulled)
        alert_event = CaseEvent("alert.created" if is_new else "alert.updated", alert=alert_dict(alert),
                                incident=workflow.incident_dict(incident) if incident is not None else None)
        return [alert_event, *out]

    @staticmethod
    def _updated(incident: Incident, before: Mapping[str, Any], why: str) -> list[CaseEvent]:
        after = workflow.incident_dict(incident)
        changes: dict[str, Any] = {k: {"old": before.get(k), "new": v} for k, v in after.items()
                   if k != "updated_at" and before.get(k) != v}
        if not changes:
            return []
        changes["reason"] = why
        return [CaseEvent("incident.updated", incident=after, changes=changes)]


def _id_of_alert(event: CaseEvent) -> int | None:
    """The id of the alert a case event is about (None: it is about an incident only)."""
    return int(event.alert["id"]) if event.alert is not None else None


RECENT_FILES = timedelta(seconds=30)  # an alert's first events were stored just before it was made (same
# batch, a pipeline step of a second or two); each look-up reads the footers of every file this recent
TREES_KEPT = 100_000  # alerts whose process-tree values are remembered; past this the memory starts over


def _tree_key(item: Pending) -> tuple[int, tuple[str, ...], str | None]:
    """What an alert's process-tree values depend on: its first events and its host."""
    return item.alert_id, item.event_uids, item.host
