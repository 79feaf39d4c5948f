"""Turn detections into alerts: pick the entities, de-duplicate and throttle per rule and entity.

Detections of one rule about the same host and user, while an alert for them is open and was last
updated within the throttle window, add to that alert (``count``, matched event ids) instead of
opening a new one. The work is split so the database write lock is held only briefly: ``draft``
groups the detections and writes the explanations of probably-new alerts outside any transaction;
``apply`` runs inside the pipeline's commit transaction, so a replayed batch never counts twice. The
book of open alerts is updated only after the commit (``settle``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.orm import Session, sessionmaker

from mamori.events import schema
from mamori.service.detection import Detection
from mamori.store.records import Alert

MAX_UIDS = 200  # matched event ids kept on one alert
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "host": (schema.HOST, "Computer", "hostname", "host"),
    "user": ("TargetUserName", "SubjectUserName", "User", "UserName", "user", "src_user"),
    "ip": ("IpAddress", "SourceIp", "SourceAddress", "src_ip", "SRC", "DestinationIp", "ClientIP"),
    "process": ("Image", "NewProcessName", "ProcessName", "process", "program"),
    "file_hash": ("Hashes", "sha256", "SHA256", "Hash", "md5", "MD5"),
}


@dataclass(frozen=True)
class AlertOutcome:
    """What one batch did to the alerts: new alerts, updated alerts, ingest-to-alert latencies (s)."""

    created: int
    updated: int
    latencies: tuple[float, ...]


@dataclass
class Draft:
    """The detections of one rule about one entity group in a batch, ready to become or join an alert."""

    key: str
    detection: Detection
    entities: dict[str, str | None]
    uids: list[str]
    count: int
    first_seen: datetime
    last_seen: datetime
    latency: float | None
    explanation: str | None = None


@dataclass
class _Open:
    alert_id: int
    updated_at: datetime
    uids: int


@dataclass
class AlertBook:
    """The open alerts the pipeline may add to, by dedup key (rebuilt from the database at start)."""

    throttle_seconds: float
    open: dict[str, _Open] = field(default_factory=dict)

    def load(self, sessions: sessionmaker[Session]) -> None:
        """Read the open alerts still inside the throttle window."""
        since = datetime.now(UTC) - timedelta(seconds=self.throttle_seconds)
        with sessions() as session:
            rows = session.execute(select(Alert.id, Alert.dedup_key, Alert.updated_at, Alert.event_uids)
                                   .where(Alert.status != "closed", Alert.updated_at >= since)).all()
        self.open = {r.dedup_key: _Open(r.id, r.updated_at, len(r.event_uids or [])) for r in rows}

    def fresh(self, key: str, now: datetime) -> _Open | None:
        """The open alert a detection with this key would join, if any."""
        known = self.open.get(key)
        if known is None or now - known.updated_at > timedelta(seconds=self.throttle_seconds):
            return None
        return known


def _first(row: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = row.get(name)
        if value not in (None, "", "-"):
            return str(value)[:500]
    return None


def dedup_key(rule_id: str, host: str | None, user: str | None) -> str:
    """The name of an alert group: the rule and the entities it is about."""
    text = f"{rule_id}\x1f{(host or '').lower()}\x1f{(user or '').lower()}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _key(detection: Detection, entities: dict[str, str | None]) -> str:
    """The alert group of a detection: its rule, host and user; a group (correlation, anomaly) about an
    address alone is keyed by the address."""
    user = entities["user"]
    if detection.group and not user and not entities["host"]:
        user = entities["ip"]
    return dedup_key(detection.rule_id, entities["host"], user)


def _time(value: Any, fallback: datetime) -> datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else fallback


def draft(detections: Sequence[Detection], frame: pl.DataFrame, received_ns: pl.Series, book: AlertBook,
          now: datetime) -> list[Draft]:
    """Group the detections of a batch by rule and entities; explain the groups that will open an alert."""
    wanted = [c for fields in ENTITY_FIELDS.values() for c in fields] + [schema.TIME, schema.UID]
    columns = [c for c in dict.fromkeys(wanted) if c in frame.columns]
    uid_rows: dict[str, int] = {}
    if any(d.uids for d in detections) and schema.UID in frame.columns:
        uid_rows = {u: i for i, u in enumerate(frame.get_column(schema.UID).to_list())}
    received = received_ns.to_list()
    rows_of = [list(d.rows) or [uid_rows[u] for u in d.uids if u in uid_rows] for d in detections]
    # one gather of every matched row as Python rows, not one Polars gather per detection
    every = sorted({r for rows in rows_of for r in rows})
    position = {r: i for i, r in enumerate(every)}
    matched_rows = frame[every].select(columns).to_dicts() if every else []
    out: list[Draft] = []
    for detection, rows in zip(detections, rows_of, strict=True):
        picked = [matched_rows[position[r]] for r in rows]
        groups: dict[str, tuple[dict[str, str | None], list[dict[str, Any]], int]] = {}
        group_fields = dict(detection.group)
        for row_index, row in zip(rows, picked, strict=True):
            entities = {name: _first(row, fields) for name, fields in ENTITY_FIELDS.items()}
            if group_fields:  # a correlation or an anomaly is about its group: one alert, whoever the events name
                entities["host"] = _first(group_fields, ENTITY_FIELDS["host"])
                entities["user"] = _first(group_fields, ENTITY_FIELDS["user"])
                entities["ip"] = _first(group_fields, ENTITY_FIELDS["ip"]) or entities["ip"]
            key = _key(detection, entities)
            if key not in groups:
                groups[key] = (entities, [], row_index)
            groups[key][1].append(row)
        if not rows:  # a correlation whose events are in earlier batches
            entities = {name: _first(group_fields, fields) for name, fields in ENTITY_FIELDS.items()}
            groups[_key(detection, entities)] = (entities, [], -1)
        for key, (entities, members, first_row) in groups.items():
            times = [_time(m.get(schema.TIME), now) for m in members]
            uids = [str(m.get(schema.UID)) for m in members[:MAX_UIDS]] if members else list(detection.uids)
            latency = None
            if first_row >= 0 and received[first_row] is not None:
                latency = max(0.0, now.timestamp() - received[first_row] / 1e9)
            item = Draft(key, detection, entities, uids, max(len(members), 1), min(times, default=now),
                         max(times, default=now), latency)
            if book.fresh(key, now) is None:
                item.explanation = "\n".join(detection.explain()[:5])
            out.append(item)
    return out


def apply(session: Session, drafts: Sequence[Draft], book: AlertBook, now: datetime) -> tuple[AlertOutcome,
                                                                                                dict[str, _Open]]:
    """Write the drafts (inside the caller's transaction); return the outcome and the book changes to
    ``settle`` after the commit. The open alerts drafts join are read in one query and updated in one
    statement run for all of them (hundreds of drafts a batch), new alerts are inserted together."""
    joined = {k.alert_id for d in drafts if (k := book.fresh(d.key, now)) is not None}
    current = _open_alerts(session, joined)
    updates: dict[int, _Update] = {}
    new: dict[str, Alert] = {}
    created = updated = 0
    for item in drafts:
        alert = new.get(item.key)
        if alert is not None:  # a second draft for an alert this batch opens
            alert.count += item.count
            alert.event_uids = (list(alert.event_uids or []) + item.uids)[:MAX_UIDS]
            alert.last_seen = max(alert.last_seen, item.last_seen)
            updated += 1
            continue
        known = book.fresh(item.key, now)
        if known is not None and known.alert_id in current:
            change = updates.get(known.alert_id)
            if change is None:
                change = updates[known.alert_id] = _Update(known.alert_id, item.key, current[known.alert_id])
            change.add(item)
            updated += 1
            continue
        new[item.key] = _new_alert(item, now)
        created += 1
    changes: dict[str, _Open] = {}
    if updates:
        table = cast(Table, Alert.__table__)
        session.execute(
            update(table).where(table.c.id == bindparam("alert_id"), table.c.status != "closed")
            .values(count=table.c.count + bindparam("added"), updated_at=bindparam("now"),
                    event_uids=bindparam("uids", type_=table.c.event_uids.type),
                    last_seen=case((table.c.last_seen < bindparam("seen"), bindparam("seen")),
                                   else_=table.c.last_seen)),
            [{"alert_id": u.alert_id, "added": u.count, "now": now, "uids": u.uids, "seen": u.last_seen}
             for u in updates.values()])
        # an alert closed since it was read was not updated: its detections open a new alert
        closed = set(session.scalars(select(Alert.id).where(Alert.id.in_(list(updates)), Alert.status == "closed")))
        for alert_id, change in updates.items():
            if alert_id in closed:
                first, *rest = change.drafts
                alert = new[first.key] = _new_alert(first, now)
                for item in rest:
                    alert.count += item.count
                    alert.event_uids = (list(alert.event_uids or []) + item.uids)[:MAX_UIDS]
                    alert.last_seen = max(alert.last_seen, item.last_seen)
                created += 1
                updated -= 1
                continue
            changes[change.key] = _Open(alert_id, now, len(change.uids))
    if new:
        session.add_all(new.values())
        session.flush()
        for key, alert in new.items():
            changes[key] = _Open(alert.id, now, len(alert.event_uids or []))
    latencies = tuple(d.latency for d in drafts if d.latency is not None)
    return AlertOutcome(created, updated, latencies), changes


@dataclass
class _Update:
    """What a batch adds to one open alert."""

    alert_id: int
    key: str
    uids: list[str]
    count: int = 0
    last_seen: datetime | None = None
    drafts: list[Draft] = field(default_factory=list)

    def add(self, item: Draft) -> None:
        self.count += item.count
        if len(self.uids) < MAX_UIDS:
            self.uids = (self.uids + item.uids)[:MAX_UIDS]
        self.last_seen = item.last_seen if self.last_seen is None else max(self.last_seen, item.last_seen)
        self.drafts.append(item)


def _open_alerts(session: Session, ids: set[int]) -> dict[int, list[str]]:
    """The matched event ids of those of these alerts that are not closed."""
    found: dict[int, list[str]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        rows = session.execute(select(Alert.id, Alert.event_uids).where(
            Alert.id.in_(wanted[start:start + 500]), Alert.status != "closed"))
        for alert_id, uids in rows:
            found[alert_id] = list(uids or [])
    return found


def _new_alert(item: Draft, now: datetime) -> Alert:
    detection = item.detection
    explanation = item.explanation if item.explanation is not None else "\n".join(detection.explain()[:5])
    return Alert(
        rule_id=detection.rule_id, rule_title=detection.title[:500], level=detection.level,
        author=detection.author[:500], tags=list(detection.tags), first_seen=item.first_seen,
        last_seen=item.last_seen, created_at=now, updated_at=now, host=item.entities["host"],
        user=item.entities["user"], ip=item.entities["ip"], process=item.entities["process"],
        file_hash=item.entities["file_hash"], event_uids=list(item.uids)[:MAX_UIDS], explanation=explanation,
        status="new", dedup_key=item.key, count=item.count,
        latency_ms=None if item.latency is None else item.latency * 1000)


def settle(book: AlertBook, changes: dict[str, _Open]) -> None:
    """After the commit: remember the alerts written, for the next batches."""
    book.open.update(changes)
