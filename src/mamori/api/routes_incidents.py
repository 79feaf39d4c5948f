"""Incidents: list and filter, read one (alerts, SLA, notes, evidence, trail), timeline, change status,
severity or owner, notes, evidence upload and download, open one from alerts, MTTA/MTTR.

Viewers read; analysts change. Every change is written to the incident's trail and the audit log in
one transaction, then published on the service's case bus as ``incident.updated`` (or
``incident.created``) with the caller as actor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mamori.api.auth import Analyst, Principal, Viewer, audit
from mamori.api.deps import owner, parse_time, service_of
from mamori.api.routes_alerts import alert_dict
from mamori.cases import workflow
from mamori.cases.events import CaseEvent
from mamori.cases.evidence import MAX_EVIDENCE_BYTES, read_evidence
from mamori.cases.records import Incident, IncidentChange, IncidentEvidence, IncidentNote
from mamori.cases.sla import metrics_dict, mtta_mttr, sla_dict, sla_status
from mamori.cases.timeline import entry_dict, timeline
from mamori.store.records import utcnow

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@contextmanager
def _workflow_errors() -> Iterator[None]:
    """Map workflow errors to HTTP: unknown incident or alert 404, refused move or taken alert 409 (other
    ``MamoriError``s become 400 in the application's handler)."""
    try:
        yield
    except (workflow.IncidentNotFound, workflow.UnknownAlert) as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except (workflow.TransitionRefused, workflow.AlertTaken) as exc:
        raise HTTPException(409, detail=str(exc)) from exc


def _summary(incident: Incident) -> dict[str, Any]:
    return {**workflow.incident_dict(incident), "sla": sla_dict(sla_status(incident, utcnow()))}


def _publish(request: Request, kind: str, incident: dict[str, Any], actor: str, changes: dict[str, Any]) -> None:
    event = CaseEvent("incident.created" if kind == "incident.created" else "incident.updated", incident=incident,
                      actor=actor, changes=changes)
    service_of(request).cases_bus.publish(event)


@router.get("", summary="List incidents, newest first")
def list_incidents(request: Request, status: str | None = None, severity: str | None = None,
                   owner: str | None = None, since: str | None = None, until: str | None = None,
                   limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                   principal: Principal = Viewer) -> dict[str, Any]:
    """Incidents matching every filter given; ``status`` and ``severity`` take comma-separated values
    (``status=open`` means every status but the closed ones); ``since``/``until`` select incidents active in
    that range."""
    query = select(Incident)
    if status is not None:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        if "open" in wanted:
            wanted = (wanted - {"open"}) | (set(workflow.STATUSES) - workflow.closed_statuses())
        query = query.where(Incident.status.in_(wanted))
    if severity is not None:
        query = query.where(Incident.severity.in_({s.strip() for s in severity.split(",") if s.strip()}))
    if owner is not None:
        query = query.where(Incident.owner == owner)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start:
        query = query.where(Incident.last_seen >= start)
    if end:
        query = query.where(Incident.first_seen <= end)
    with service_of(request).sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Incident.id.desc()).limit(limit).offset(offset)).all()
        return {"total": total, "incidents": [_summary(i) for i in rows]}


@router.get("/metrics", summary="Mean time to acknowledge and to resolve")
def metrics(request: Request, since: str | None = None, until: str | None = None,
            principal: Principal = Viewer) -> dict[str, Any]:
    """MTTA and MTTR (seconds) with SLA breach counts, overall and per severity, of incidents opened in the range."""
    with service_of(request).sessions() as session:
        figures = mtta_mttr(session, since=parse_time(since, "since"), until=parse_time(until, "until"))
        return metrics_dict(figures)


def _detail(session: Session, incident: Incident) -> dict[str, Any]:
    alerts = workflow.linked_alerts(session, incident.id)
    notes = session.scalars(select(IncidentNote).where(IncidentNote.incident_id == incident.id)
                            .order_by(IncidentNote.id))
    evidence = session.scalars(select(IncidentEvidence).where(IncidentEvidence.incident_id == incident.id)
                               .order_by(IncidentEvidence.id))
    changes = session.scalars(select(IncidentChange).where(IncidentChange.incident_id == incident.id)
                              .order_by(IncidentChange.id))
    return {**_summary(incident), "alerts": [alert_dict(a) for a in alerts],
            "notes": [workflow.note_dict(n) for n in notes],
            "evidence": [workflow.evidence_dict(e) for e in evidence],
            "changes": [workflow.change_dict(c) for c in changes]}


@router.get("/{incident_id}", summary="One incident with its alerts, SLA, notes, evidence and trail")
def get_incident(request: Request, incident_id: int, principal: Principal = Viewer) -> dict[str, Any]:
    """The incident with this id (404 when there is none)."""
    with service_of(request).sessions() as session, _workflow_errors():
        return _detail(session, workflow.get_incident(session, incident_id))


@router.get("/{incident_id}/timeline", summary="The incident's timeline")
def get_timeline(request: Request, incident_id: int, events: bool = True,
                 principal: Principal = Viewer) -> dict[str, Any]:
    """Alerts, the stored events behind them (unless ``events=false``), changes and notes, oldest first."""
    service = service_of(request)
    with service.sessions() as session, _workflow_errors():
        entries = timeline(session, service.lake, incident_id, with_events=events)
        return {"incident_id": incident_id, "entries": [entry_dict(e) for e in entries]}


class IncidentPatch(BaseModel):
    """The fields to change; a move to false_positive needs a reason. An empty owner takes the incident back."""

    status: str | None = None
    reason: str | None = Field(default=None, max_length=10_000)
    severity: str | None = None
    owner: str | None = Field(default=None, max_length=200)


@router.patch("/{incident_id}", summary="Change status, severity or owner")
def patch_incident(request: Request, incident_id: int, body: IncidentPatch,
                   principal: Principal = Analyst) -> dict[str, Any]:
    """Apply the changes given (all or none); each is audited and the result published on the case bus."""
    if body.status is None and body.severity is None and body.owner is None:
        raise HTTPException(422, detail="give at least one of status, severity, owner")
    actor = principal.user
    target = f"incident {incident_id}"
    changes: dict[str, Any] = {}
    with service_of(request).sessions.begin() as session, _workflow_errors():
        incident = workflow.get_incident(session, incident_id)
        if body.owner is not None:  # before any change: all or none
            owner(session, body.owner, "owner")
        if body.severity is not None and body.severity != incident.severity:
            old = incident.severity
            workflow.set_severity(session, incident_id, body.severity, actor, body.reason or "")
            audit(session, actor, "incident.severity", target, old=old, new=body.severity)
            changes["severity"] = {"old": old, "new": body.severity}
        if body.owner is not None and (body.owner.strip() or None) != incident.owner:
            old_owner = incident.owner
            workflow.assign(session, incident_id, body.owner, actor)
            audit(session, actor, "incident.assign", target, old=old_owner, new=incident.owner)
            changes["owner"] = {"old": old_owner, "new": incident.owner}
        if body.status is not None:
            old = incident.status
            workflow.set_status(session, incident_id, body.status, actor, body.reason)
            audit(session, actor, "incident.status", target, old=old, new=body.status, reason=body.reason or "")
            changes["status"] = {"old": old, "new": body.status}
            if body.reason:
                changes["reason"] = body.reason
        result = _detail(session, incident)
    if changes:
        _publish(request, "incident.updated", workflow_fields(result), actor, changes)
    return result


def workflow_fields(detail: dict[str, Any]) -> dict[str, Any]:
    """The plain incident dictionary (the bus shape) out of a detailed answer."""
    keys = ("alerts", "notes", "evidence", "changes", "sla")
    return {k: v for k, v in detail.items() if k not in keys}


class NoteBody(BaseModel):
    """A note's text."""

    text: str = Field(min_length=1, max_length=100_000)


@router.post("/{incident_id}/notes", status_code=201, summary="Add a note")
def post_note(request: Request, incident_id: int, body: NoteBody, principal: Principal = Analyst) -> dict[str, Any]:
    """Add a note to the incident (audited, published)."""
    with service_of(request).sessions.begin() as session, _workflow_errors():
        note = workflow.add_note(session, incident_id, body.text, principal.user)
        audit(session, principal.user, "incident.note", f"incident {incident_id}", note_id=note.id)
        answer = workflow.note_dict(note)
        incident = workflow.incident_dict(workflow.get_incident(session, incident_id))
    _publish(request, "incident.updated", incident, principal.user, {"note": answer})
    return answer


def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The bytes of an upload, read in chunks; a 413 as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := upload.file.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"the evidence file is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/{incident_id}/evidence", status_code=201, summary="Attach an evidence file")
def post_evidence(request: Request, incident_id: int, file: Annotated[UploadFile, File()],
                  principal: Principal = Analyst) -> dict[str, Any]:
    """Store the uploaded file under its SHA-256 and attach it to the incident (audited, published)."""
    service = service_of(request)
    data = read_upload(file, MAX_EVIDENCE_BYTES)
    with service.sessions.begin() as session, _workflow_errors():
        row = workflow.add_evidence(session, incident_id, file.filename or "evidence.bin", data, principal.user,
                                    service.settings.data_dir / "evidence",
                                    content_type=file.content_type or "application/octet-stream")
        answer = workflow.evidence_dict(row)
        audit(session, principal.user, "incident.evidence", f"incident {incident_id}", evidence_id=row.id,
              filename=row.filename, sha256=row.sha256, size=row.size)
        incident = workflow.incident_dict(workflow.get_incident(session, incident_id))
    _publish(request, "incident.updated", incident, principal.user, {"evidence": answer})
    return answer


@router.get("/{incident_id}/evidence/{evidence_id}", summary="Download an evidence file",
            response_class=Response)
def get_evidence(request: Request, incident_id: int, evidence_id: int, principal: Principal = Viewer) -> Response:
    """The evidence file's bytes (checked against its SHA-256), as an attachment."""
    service = service_of(request)
    with service.sessions() as session:
        row = session.get(IncidentEvidence, evidence_id)
        if row is None or row.incident_id != incident_id:
            raise HTTPException(404, detail=f"no evidence {evidence_id} in incident {incident_id}")
        data = read_evidence(service.settings.data_dir / "evidence", row.sha256)
        name = row.filename.replace('"', "_")
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": disposition, "X-Content-SHA256": row.sha256,
                             "X-Content-Type-Options": "nosniff"})


class OpenBody(BaseModel):
    """The alerts an incident is opened from, and an optional title."""

    alert_ids: list[int] = Field(min_length=1, max_length=10_000)
    title: str | None = Field(default=None, max_length=500)


@router.post("", status_code=201, summary="Open an incident from alerts")
def post_incident(request: Request, body: OpenBody, principal: Principal = Analyst) -> dict[str, Any]:
    """Open an incident by hand from alerts that are in no incident yet (audited, published)."""
    service = service_of(request)
    with service.sessions.begin() as session, _workflow_errors():
        incident = workflow.open_incident(session, body.alert_ids, principal.user, body.title,
                                          rules=service.cases_worker.rules)
        audit(session, principal.user, "incident.open", f"incident {incident.id}", alert_ids=body.alert_ids)
        result = _detail(session, incident)
    _publish(request, "incident.created", workflow_fields(result), principal.user,
             {"alert_ids": body.alert_ids})
    return result
