"""Alerts: list and filter, read one, acknowledge, assign, close (changes are audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mamori.api.auth import Analyst, Principal, Viewer, audit
from mamori.api.deps import owner, parse_time, service_of
from mamori.service.anomaly_worker import is_anomaly_alert
from mamori.service.runtime import Service
from mamori.store.records import ALERT_STATUSES, Alert, utcnow

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def alert_dict(alert: Alert) -> dict[str, Any]:
    """An alert as the API shows it."""
    return {
        "id": alert.id, "rule_id": alert.rule_id, "rule_title": alert.rule_title, "level": alert.level,
        "author": alert.author, "tags": alert.tags, "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(), "created_at": alert.created_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "entities": {"host": alert.host, "user": alert.user, "ip": alert.ip, "process": alert.process,
                     "file_hash": alert.file_hash},
        "event_uids": alert.event_uids, "explanation": alert.explanation, "status": alert.status,
        "assignee": alert.assignee, "dedup_key": alert.dedup_key, "count": alert.count,
    }


@router.get("", summary="List alerts, newest first")
def list_alerts(request: Request, status: str | None = None, level: str | None = None,
                rule_id: str | None = None, host: str | None = None, assignee: str | None = None,
                since: str | None = None, until: str | None = None,
                limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                principal: Principal = Viewer) -> dict[str, Any]:
    """Alerts matching every filter given."""
    query = select(Alert)
    for column, value in ((Alert.status, status), (Alert.level, level), (Alert.rule_id, rule_id),
                          (Alert.host, host), (Alert.assignee, assignee)):
        if value is not None:
            query = query.where(column == value)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start:
        query = query.where(Alert.last_seen >= start)
    if end:
        query = query.where(Alert.first_seen <= end)
    with service_of(request).sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Alert.id.desc()).limit(limit).offset(offset)).all()
        return {"total": total, "alerts": [alert_dict(a) for a in rows]}


@router.get("/{alert_id}", summary="One alert")
def get_alert(request: Request, alert_id: int, principal: Principal = Viewer) -> dict[str, Any]:
    """The alert with this id (404 when there is none)."""
    with service_of(request).sessions() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise HTTPException(404, detail=f"no alert {alert_id}")
        return alert_dict(alert)


class Assignment(BaseModel):
    """Who takes the alert: the name of an enabled user; null or empty gives the alert back."""

    assignee: str | None = Field(max_length=200)


def _alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise HTTPException(404, detail=f"no alert {alert_id}")
    return alert


def _set(session: Session, alert: Alert, actor: str, action: str, values: dict[str, Any],
         **detail: object) -> dict[str, Any]:
    """Change an alert's fields, audited with before and after (and ``detail``)."""
    before = {k: getattr(alert, k) for k in values}
    for key, value in values.items():
        setattr(alert, key, value)
    alert.updated_at = utcnow()
    audit(session, actor, action, f"alert {alert.id}", before=before, after=values, **detail)
    session.flush()
    return alert_dict(alert)


def _change(request: Request, alert_id: int, principal: Principal, action: str, **values: Any) -> dict[str, Any]:
    with service_of(request).sessions.begin() as session:
        return _set(session, _alert(session, alert_id), principal.user, action, values)


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an alert")
def acknowledge(request: Request, alert_id: int, principal: Principal = Analyst) -> dict[str, Any]:
    """Mark the alert acknowledged (someone is on it)."""
    return _change(request, alert_id, principal, "alert.acknowledge", status="acknowledged")


@router.post("/{alert_id}/close", summary="Close an alert")
def close(request: Request, alert_id: int, principal: Principal = Analyst) -> dict[str, Any]:
    """Close the alert; new detections for the same entities open a new one."""
    return _change(request, alert_id, principal, "alert.close", status="closed")


def benign_verdict(service: Service, alert_id: int, actor: str, **detail: str) -> dict[str, Any]:
    """Close an anomaly alert as benign and teach its detector (``AnomalyWorker.mark_benign``); audited
    with whether the detector could learn it. 404 for no such alert, 409 for a rule alert."""
    with service.sessions.begin() as session:
        alert = _alert(session, alert_id)
        if not is_anomaly_alert(alert.rule_id):
            raise HTTPException(409, detail=f"alert {alert_id} is not an anomaly alert (rule {alert.rule_id})")
        learned = service.anomaly_worker.mark_benign(alert.dedup_key)
        return {**_set(session, alert, actor, "alert.benign", {"status": "closed"}, learned=learned, **detail),
                "learned": learned}


@router.post("/{alert_id}/benign", summary="Mark an anomaly alert benign")
def benign(request: Request, alert_id: int, principal: Principal = Analyst) -> dict[str, Any]:
    """An analyst's verdict on an anomaly alert: it is closed and its detector learns the behaviour
    (an allow-list entry and the baseline updated), so the same thing stays quiet; audited, with
    whether the detector could learn it. 409 for an alert no anomaly detector raised."""
    return benign_verdict(service_of(request), alert_id, principal.user)


@router.post("/{alert_id}/assign", summary="Assign an alert")
def assign(request: Request, alert_id: int, body: Assignment, principal: Principal = Analyst) -> dict[str, Any]:
    """Give the alert to an enabled user (422 naming the user otherwise), or back to nobody with a null or
    empty assignee."""
    with service_of(request).sessions.begin() as session:
        alert = _alert(session, alert_id)
        return _set(session, alert, principal.user, "alert.assign",
                    {"assignee": owner(session, body.assignee, "assignee")})


assert set(ALERT_STATUSES) == {"new", "acknowledged", "closed"}
