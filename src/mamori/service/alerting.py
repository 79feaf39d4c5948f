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
from typing import Any

import polars as pl
from sqlalchemy import select, update
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
            if group_fields:
                entities["host"] = entities["host"] or _first(group_fields, ENTITY_FIELDS["host"])
                entities["user"] = entities["user"] or _first(group_fields, ENTITY_FIELDS["user"])
            key = dedup_key(detection.rule_id, entities["host"], entities["user"])
            if key not in groups:
                groups[key] = (entities, [], row_index)
            groups[key][1].append(row)
        if not rows:  # a correlation whose events are in earlier batches
            entities = {name: _first(group_fields, fields) for name, fields in ENTITY_FIELDS.items()}
            groups[dedup_key(detection.rule_id, entities["host"], entities["user"])] = (entities, [], -1)
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
    ``settle`` after the commit."""
    created = updated = 0
    changes: dict[str, _Open] = {}
    for item in drafts:
        known = changes.get(item.key) or book.fresh(item.key, now)
        if known is not None:
            values: dict[str, Any] = {"count": Alert.count + item.count, "updated_at": now}
            if known.uids < MAX_UIDS:
                current = session.scalar(select(Alert.event_uids).where(Alert.id == known.alert_id)) or []
                merged = (list(current) + item.uids)[:MAX_UIDS]
                values["event_uids"] = merged
                known = _Open(known.alert_id, now, len(merged))
            else:
                known = _Open(known.alert_id, now, known.uids)
            result = session.execute(update(Alert).where(Alert.id == known.alert_id, Alert.status != "closed")
                                     .values(**values))
            if getattr(result, "rowcount", 0) == 1:
                session.execute(update(Alert).where(Alert.id == known.alert_id, Alert.last_seen < item.last_seen)
                                .values(last_seen=item.last_seen))
                changes[item.key] = known
                updated += 1
                continue
        detection = item.detection
        explanation = item.explanation if item.explanation is not None else "\n".join(detection.explain()[:5])
        alert = Alert(
            rule_id=detection.rule_id, rule_title=detection.title[:500], level=detection.level,
            author=detection.author[:500], tags=list(detection.tags), first_seen=item.first_seen,
            last_seen=item.last_seen, created_at=now, updated_at=now, host=item.entities["host"],
            user=item.entities["user"], ip=item.entities["ip"], process=item.entities["process"],
            file_hash=item.entities["file_hash"], event_uids=item.uids, explanation=explanation, status="new",
            dedup_key=item.key, count=item.count,
            latency_ms=None if item.latency is None else item.latency * 1000)
        session.add(alert)
        session.flush()
        changes[item.key] = _Open(alert.id, now, len(item.uids))
        created += 1
    latencies = tuple(d.latency for d in drafts if d.latency is not None)
    return AlertOutcome(created, updated, latencies), changes


def settle(book: AlertBook, changes: dict[str, _Open]) -> None:
    """After the commit: remember the alerts written, for the next batches."""
    book.open.update(changes)
