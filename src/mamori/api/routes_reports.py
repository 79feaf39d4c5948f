"""Incident reports over REST: ``GET /api/v1/incidents/{id}/report?lang=ja|en&format=html|pdf`` (viewer role)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from mamori.api.auth import Principal, Viewer
from mamori.api.deps import service_of
from mamori.cases.records import Incident
from mamori.errors import MamoriError
from mamori.report import build, render_html, render_pdf
from mamori.report.locale import time_zone as check_zone

router = APIRouter(prefix="/api/v1/incidents", tags=["reports"])


@router.get("/{incident_id}/report", summary="An incident's report as HTML or PDF, in Japanese or English",
            response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}}, 404: {}, 503: {}})
def incident_report(request: Request, incident_id: int, lang: Literal["ja", "en"] = "en",
                    format: Literal["html", "pdf"] = "html",
                    tz: str | None = Query(None, description="Time zone of the times shown (default: JST for ja, "
                                                             "UTC for en)", max_length=64),
                    principal: Principal = Viewer) -> Response:
    """The report of one incident: a self-contained HTML page, or a PDF to download; a PDF whose CJK
    font is missing on the server is a 503 naming the package to install."""
    try:
        check_zone(tz, lang)
    except MamoriError as exc:
        raise HTTPException(422, detail=f"tz: {exc.message}") from exc
    service = service_of(request)
    with service.sessions() as session:
        if session.get(Incident, incident_id) is None:
            raise HTTPException(404, detail=f"no incident {incident_id}")
        data = build(session, service.lake, incident_id, lang, tz)
    name = f"incident-{incident_id}-{lang}"
    if format == "html":
        return HTMLResponse(render_html(data, lang, tz),
                            headers={"Content-Disposition": f'inline; filename="{name}.html"'})
    try:
        pdf = render_pdf(data, lang, tz)
    except MamoriError as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
