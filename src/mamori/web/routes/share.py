"""Sharing an incident with partners from the console: prepare a redacted draft (form on the incident page),
review every redaction on the share's page, then publish it into the outgoing TAXII collection.

The same checks as the API (``mamori.api.routes_share``): TLP:RED refused, AMBER only to named partners
who are in ``taxii_partners``; preparing and publishing are analyst actions, audited with ``via=console``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mamori.api.auth import audit
from mamori.api.deps import service_of
from mamori.cases.workflow import IncidentNotFound
from mamori.intel.errors import IntelError
from mamori.intel.policy import load_policy
from mamori.intel.share import ShareDraft, load_share, publish_share
from mamori.intel.share_incident import check_audience, parse_partners, share_incident
from mamori.intel.store import IntelStore
from mamori.intel.tlp import parse_tlp
from mamori.web.context import ConsoleUser, Reader, checked_form, page_error, render

router = APIRouter()
LEVELS = ("clear", "green", "amber", "amber+strict")  # offered on the form; RED never leaves


def _store(request: Request) -> IntelStore:
    store: IntelStore = request.app.state.intel
    return store


def _draft(request: Request, share_id: str) -> ShareDraft:
    try:
        return load_share(_store(request), share_id[:100])
    except IntelError as exc:
        raise page_error(404, "share.not_found", id=share_id[:100]) from exc


def _audience(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return sorted({name.strip() for item in values for name in str(item or "").split(",") if name.strip()})


@router.post("/shares", summary="Prepare a share of an incident")
async def prepare(request: Request, user: ConsoleUser = Reader) -> Response:
    """Build a redacted draft of the incident named in the form and show it for review (nothing leaves)."""
    form = await checked_form(request, user, "analyst")
    try:
        incident_id = int(str(form.get("incident", "")))
    except ValueError:
        raise page_error(404, "error.not_found") from None
    service = service_of(request)
    try:
        tlp = parse_tlp(str(form.get("tlp", "green")), where="tlp")
        audience = _audience(form.get("audience", ""))
        check_audience(tlp, audience, parse_partners(service.settings.taxii_partners))
        with service.sessions.begin() as session:
            draft = share_incident(_store(request), session, incident_id, tlp=tlp, audience=audience,
                                   policy=load_policy(None))
            audit(session, user.name, "incident.share.prepare", f"incident {incident_id}", share_id=draft.id,
                  tlp=draft.tlp.label, audience=list(draft.audience), redactions=len(draft.audit), via="console")
    except IncidentNotFound as exc:
        raise page_error(404, "error.no_incident", id=incident_id) from exc
    except IntelError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    return RedirectResponse(f"/console/shares/{draft.id}?incident={incident_id}", 303)


@router.get("/shares/{share_id}", response_class=HTMLResponse, summary="Review a share")
def review(request: Request, share_id: str, incident: int | None = None, user: ConsoleUser = Reader) -> Response:
    """The share as partners will get it: its report, objects, every redaction and every exclusion."""
    draft = _draft(request, share_id)
    objects = draft.bundle.get("objects", [])
    report: dict[str, Any] = next((o for o in objects if o.get("type") == "report"), {})
    return render(request, "share.html", user, share=draft, report=report, objects=objects, incident_id=incident,
                  message=request.query_params.get("done", ""))


@router.post("/shares/{share_id}/publish", summary="Publish a reviewed share")
async def publish(request: Request, share_id: str, user: ConsoleUser = Reader) -> Response:
    """Put the reviewed draft into the outgoing collection (analyst; audited)."""
    form = await checked_form(request, user, "analyst")
    draft = _draft(request, share_id)
    try:
        status = publish_share(_store(request), draft.id)
    except IntelError as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    with service_of(request).sessions.begin() as session:
        audit(session, user.name, "intel.share.publish", f"share {draft.id}", tlp=draft.tlp.label,
              audience=list(draft.audience), published=status.success_count, failed=status.failure_count,
              via="console")
    back = str(form.get("incident", ""))
    suffix = f"&incident={back}" if back.isdigit() else ""
    return RedirectResponse(f"/console/shares/{draft.id}?done=published{suffix}", 303)
