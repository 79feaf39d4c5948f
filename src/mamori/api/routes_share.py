"""Sharing an incident with partners: prepare a redacted draft from a stored incident, review it, publish it
into the outgoing TAXII collection.

Analysts prepare and publish (both audited); viewers review. TLP is checked before anything is built:
TLP:RED is refused, TLP:AMBER and AMBER+STRICT need named partners, and every partner named must be in
the ``taxii_partners`` setting (the TAXII server gives AMBER to those users only). Refusals are 422 with
the field and a hint; an unknown incident or share is 404; publishing twice is 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from mamori.api.auth import Analyst, Principal, Viewer, audit
from mamori.api.deps import service_of
from mamori.cases.workflow import IncidentNotFound
from mamori.intel.errors import IntelError
from mamori.intel.policy import load_policy
from mamori.intel.share import ShareDraft, load_share, publish_share
from mamori.intel.share_incident import check_audience, draft_dict, parse_partners, share_incident
from mamori.intel.store import IntelStore
from mamori.intel.tlp import parse_tlp

router = APIRouter(tags=["sharing"])


class ShareBody(BaseModel):
    """How to share: the TLP level, the partners it is for (required for AMBER) and the outgoing collection."""

    tlp: str = Field(default="green", max_length=30)
    audience: list[str] = Field(default_factory=list, max_length=100)
    collection: str = Field(default="outgoing", min_length=1, max_length=200)


def _store(request: Request) -> IntelStore:
    store: IntelStore = request.app.state.intel
    return store


def _refused(exc: IntelError) -> HTTPException:
    return HTTPException(422, detail={"detail": exc.message, "where": exc.where, "hint": exc.hint})


def _share(request: Request, share_id: str) -> ShareDraft:
    try:
        return load_share(_store(request), share_id)
    except IntelError as exc:
        raise HTTPException(404, detail=f"no share {share_id}") from exc


@router.post("/api/v1/incidents/{incident_id}/share", status_code=201,
             summary="Prepare a redacted share of an incident for partners")
def prepare(request: Request, incident_id: int, body: ShareBody, principal: Principal = Analyst) -> dict[str, Any]:
    """Build the incident's STIX bundle at the TLP given, redact personal data, and store it as a draft (nothing
    leaves yet); the answer lists every redaction and exclusion for review."""
    service = service_of(request)
    try:
        tlp = parse_tlp(body.tlp, where="tlp")
        check_audience(tlp, body.audience, parse_partners(service.settings.taxii_partners))
        with service.sessions.begin() as session:
            draft = share_incident(_store(request), session, incident_id, tlp=tlp, audience=body.audience,
                                   collection=body.collection, policy=load_policy(None))
            audit(session, principal.user, "incident.share.prepare", f"incident {incident_id}", share_id=draft.id,
                  tlp=draft.tlp.label, audience=list(draft.audience), redactions=len(draft.audit))
    except IncidentNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except IntelError as exc:
        raise _refused(exc) from exc
    return draft_dict(draft)


@router.get("/api/v1/intel/shares/{share_id}", summary="Review a share: its bundle, redactions and exclusions")
def review(request: Request, share_id: str, principal: Principal = Viewer) -> dict[str, Any]:
    """The share with its (redacted) bundle, every redaction made and every object left out."""
    return draft_dict(_share(request, share_id))


@router.post("/api/v1/intel/shares/{share_id}/publish", summary="Publish a reviewed share")
def publish(request: Request, share_id: str, principal: Principal = Analyst) -> dict[str, Any]:
    """Put the reviewed draft into its outgoing collection, marked with its TLP and addressed to its partners."""
    draft = _share(request, share_id)
    if draft.status != "draft":
        raise HTTPException(409, detail=f"share {share_id} is already {draft.status}")
    try:
        status = publish_share(_store(request), share_id)
    except IntelError as exc:
        raise _refused(exc) from exc
    with service_of(request).sessions.begin() as session:
        audit(session, principal.user, "intel.share.publish", f"share {share_id}", tlp=draft.tlp.label,
              audience=list(draft.audience), published=status.success_count, failed=status.failure_count)
    return {**draft_dict(load_share(_store(request), share_id)), "published": status.success_count,
            "failed": status.failure_count}
