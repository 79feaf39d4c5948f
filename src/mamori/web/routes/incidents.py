"""Incidents: the list, and one incident with its timeline, entity graph, alerts, notes, change trail,
pending approvals and report downloads; status, severity, owner and notes change here (analyst)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from mamori.api.auth import audit
from mamori.api.deps import owner, service_of
from mamori.cases import records, workflow
from mamori.cases.evidence import MAX_EVIDENCE_BYTES, read_evidence
from mamori.cases.messages import render_message
from mamori.cases.playbooks.records import ActionRun, PlaybookRun
from mamori.cases.sla import SlaStatus, sla_status
from mamori.cases.timeline import TimelineEntry, timeline
from mamori.detect.attack import tactics
from mamori.errors import MamoriError
from mamori.store.records import Alert, utcnow
from mamori.web.casebus import publish
from mamori.web.context import ConsoleUser, Reader, checked_form, page_error, reader_translator, render
from mamori.web.graph import entity_graph
from mamori.web.i18n import Translator

router = APIRouter()
PAGE = 50
ENTITY_KINDS = ("host", "user", "ip", "process", "process_tree", "file_hash", "domain")
CHANGES = ("status", "severity", "owner", "note")
TIMELINE_SHOWN = 40  # timeline lines shown at once; the rest open on a click
CHANGE_FIELDS = ("created", "alert", "status", "severity", "owner", "note", "evidence", "merged")


@router.get("/incidents", response_class=HTMLResponse, summary="Incident list")
def incidents_page(request: Request, status: str = "", severity: str = "", owner: str = "", page: int = 1,
                   user: ConsoleUser = Reader) -> Response:
    """Incidents, most recently active first, filtered by status, severity and owner."""
    incident = records.Incident
    query = select(incident).where(incident.merged_into.is_(None))
    for column, value in ((incident.status, status), (incident.severity, severity), (incident.owner, owner)):
        if value:
            query = query.where(column == value[:200])
    page = max(page, 1)
    with service_of(request).sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(incident.last_seen.desc()).limit(PAGE).offset((page - 1) * PAGE)).all()
        slas = {row.id: _sla(row) for row in rows}
    return render(request, "incidents.html", user, incidents=rows, total=total, page=page,
                  pages=max((total - 1) // PAGE + 1, 1), status=status, severity=severity, owner=owner,
                  statuses=workflow.STATUSES, severities=workflow.SEVERITIES, slas=slas)


def _sla(incident: records.Incident) -> SlaStatus:
    return sla_status(incident, utcnow())


LABEL_GROUPS = {"level": "level", "severity": "severity", "status": "incident_status"}


def case_words(t: Translator) -> Callable[[dict[str, Any] | None, str], str]:
    """``say(message, fallback)`` for templates: a message the cases room stored (severity basis, trail
    reasons, timeline lines) in the reader's language with the console's own level and status names, or
    ``fallback`` (a person's own words, or rows older than messages) when there is none."""

    def labelled(kind: str, value: str) -> str | None:
        group = LABEL_GROUPS.get(kind)
        return t(f"{group}.{value}") if group and value else None

    def say(stored: dict[str, Any] | None, fallback: str = "") -> str:
        return render_message(stored, t.language, fallback, labelled)

    return say


def _approvals(session: Any, incident_id: int | None) -> list[dict[str, Any]]:
    """Actions waiting for a person's approval (of one incident, or all), with their run."""
    query = (select(ActionRun, PlaybookRun).join(PlaybookRun, PlaybookRun.id == ActionRun.run_id)
             .where(ActionRun.approval == "pending").order_by(ActionRun.id))
    if incident_id is not None:
        query = query.where(PlaybookRun.incident_id == incident_id)
    return [{"action": action, "run": run} for action, run in session.execute(query).all()]


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, summary="One incident")
def incident_page(request: Request, incident_id: int, user: ConsoleUser = Reader) -> Response:
    """Everything about one incident on one page."""
    service = service_of(request)
    t = reader_translator(request, user)
    with service.sessions() as session:
        incident = session.get(records.Incident, incident_id)
        if incident is None:
            raise page_error(404, "error.no_incident", id=incident_id)
        alerts = session.scalars(select(Alert).join(records.IncidentAlert, records.IncidentAlert.alert_id == Alert.id)
                                 .where(records.IncidentAlert.incident_id == incident_id)
                                 .order_by(Alert.first_seen)).all()
        notes = session.scalars(select(records.IncidentNote).where(records.IncidentNote.incident_id == incident_id)
                                .order_by(records.IncidentNote.time)).all()
        changes = session.scalars(select(records.IncidentChange)
                                  .where(records.IncidentChange.incident_id == incident_id)
                                  .order_by(records.IncidentChange.time)).all()
        evidence = session.scalars(select(records.IncidentEvidence)
                                   .where(records.IncidentEvidence.incident_id == incident_id)).all()
        entries: list[TimelineEntry] = timeline(session, service.lake, incident_id)
        approvals = _approvals(session, incident_id)
        sla = _sla(incident)
    entities = {kind: values for kind, values in (incident.entities or {}).items() if values}
    labels = {kind: t(f"entity.{kind}") for kind in entities}
    graph = entity_graph(f"#{incident.id}", entities, labels, t("incident.graph"),
                         more=lambda n: t("incident.graph_more", n=n))
    tactic_names = {tactic.tag: tactic.ja if t.language == "ja" else tactic.en for tactic in tactics()}
    return render(request, "incident.html", user, incident=incident, alerts=alerts, notes=notes, changes=changes,
                  evidence=evidence, timeline=entries, approvals=approvals, sla=sla, graph=graph,
                  statuses=workflow.STATUSES, severities=workflow.SEVERITIES, tactic_names=tactic_names,
                  change_fields=CHANGE_FIELDS, timeline_shown=TIMELINE_SHOWN, say=case_words(t),
                  message=request.query_params.get("done", ""))


@router.post("/incidents/{incident_id}/evidence", summary="Attach an evidence file")
async def upload_evidence(request: Request, incident_id: int, user: ConsoleUser = Reader) -> Response:
    """Store an uploaded file under its SHA-256 and attach it to the incident (analyst; audited, published)."""
    form = await checked_form(request, user, "analyst")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise page_error(400, "error.no_file")
    data = await upload.read(MAX_EVIDENCE_BYTES + 1)
    if len(data) > MAX_EVIDENCE_BYTES:
        raise page_error(413, "error.too_large", n=MAX_EVIDENCE_BYTES)
    service = service_of(request)
    try:
        with service.sessions.begin() as session:
            row = workflow.add_evidence(session, incident_id, upload.filename, data, user.name,
                                        service.settings.data_dir / "evidence",
                                        content_type=upload.content_type or "application/octet-stream")
            audit(session, user.name, "incident.evidence", f"incident {incident_id}", evidence_id=row.id,
                  filename=row.filename, sha256=row.sha256, size=row.size, via="console")
            shown, incident = workflow.evidence_dict(row), workflow.incident_dict(workflow.get_incident(session,
                                                                                                      incident_id))
    except MamoriError as exc:
        raise HTTPException(400, detail=exc.message) from exc
    publish(request, "incident.updated", user.name, incident=incident, changes={"evidence": shown})
    return RedirectResponse(f"/console/incidents/{incident_id}?done=evidence", 303)


@router.get("/incidents/{incident_id}/evidence/{evidence_id}", summary="Download an evidence file")
def download_evidence(request: Request, incident_id: int, evidence_id: int, user: ConsoleUser = Reader) -> Response:
    """The stored file, checked against its SHA-256, as an attachment (never shown inline)."""
    service = service_of(request)
    with service.sessions() as session:
        row = session.get(records.IncidentEvidence, evidence_id)
        if row is None or row.incident_id != incident_id:
            raise page_error(404, "error.no_evidence", id=evidence_id, incident=incident_id)
        filename, sha256 = row.filename, row.sha256
    try:
        data = read_evidence(service.settings.data_dir / "evidence", sha256)
    except MamoriError as exc:
        raise HTTPException(409, detail=exc.message) from exc
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[:120] or "evidence.bin"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "X-Content-Type-Options": "nosniff"})


@router.get("/incidents/{incident_id}/report", summary="Download the incident report")
async def report(request: Request, incident_id: int, lang: str = "ja", format: str = "pdf",
                 user: ConsoleUser = Reader) -> Response:
    """The incident report (HTML or PDF, Japanese or English) built by ``mamori.report``."""
    from mamori import report as reports  # imported on use: WeasyPrint is slow to load

    lang = lang if lang in ("ja", "en") else "ja"
    service = service_of(request)

    def build() -> tuple[bytes, str]:
        with service.sessions() as session:
            data = reports.build(session, service.lake, incident_id, lang, time_zone=user.time_zone)
        if format == "html":
            return reports.render_html(data, lang, user.time_zone).encode(), "text/html; charset=utf-8"
        return reports.render_pdf(data, lang, user.time_zone), "application/pdf"

    try:
        body, media = await asyncio.to_thread(build)
    except MamoriError as exc:
        raise HTTPException(404, detail=exc.message) from exc
    with service.sessions.begin() as session:
        audit(session, user.name, "incident.report", f"incident {incident_id}", lang=lang, format=format)
    extension = "html" if format == "html" else "pdf"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="incident-{incident_id}-{lang}.{extension}"'})


# last: its path would otherwise shadow the evidence upload
@router.post("/incidents/{incident_id}/{change}", summary="Change an incident")
async def change_incident(request: Request, incident_id: int, change: str,
                          user: ConsoleUser = Reader) -> Response:
    """Set the status (with a reason), the severity or the owner, or add a note; the cases room records the
    change in the incident's trail and the audit log gets a console entry."""
    if change not in CHANGES:
        raise page_error(404, "error.not_found")
    form = await checked_form(request, user, "analyst")
    value = str(form.get("value", "")).strip()[:20_000]
    reason = str(form.get("reason", "")).strip()[:2000] or None
    try:
        with service_of(request).sessions.begin() as session:
            if change == "status":
                workflow.set_status(session, incident_id, value, user.name, reason=reason)
            elif change == "severity":
                workflow.set_severity(session, incident_id, value, user.name)
            elif change == "owner":  # only to someone who can see it (422 naming the name otherwise)
                workflow.assign(session, incident_id, owner(session, value or user.name, "owner"), user.name)
            else:
                workflow.add_note(session, incident_id, value, user.name)
            audit(session, user.name, f"incident.{change}", f"incident {incident_id}", via="console",
                  value=value if change != "note" else f"{len(value)} characters", reason=reason or "")
            incident = workflow.incident_dict(workflow.get_incident(session, incident_id))
    except workflow.TransitionRefused as exc:  # the cases room's refusal, in the reader's language
        raise HTTPException(400, detail=case_words(reader_translator(request, user))(exc.refusal, exc.message)
                            ) from exc
    except MamoriError as exc:
        raise HTTPException(400, detail=exc.message) from exc
    publish(request, "incident.updated", user.name, incident=incident,
            changes={change: value if change != "note" else "added"})
    return RedirectResponse(f"/console/incidents/{incident_id}?done={change}", 303)
