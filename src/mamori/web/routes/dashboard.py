"""The dashboard page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mamori.api.deps import service_of
from mamori.web import dashboard
from mamori.web.context import ConsoleUser, Reader, reader_translator, render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, summary="Console dashboard")
def home(request: Request, days: int = 14, user: ConsoleUser = Reader) -> Response:
    """Alerts over time, by level and tactic, top hosts and users, the ATT&CK heat map and ingest health."""
    days = days if days in dashboard.WINDOWS else 14
    service = service_of(request)
    with service.sessions() as session:
        board = dashboard.build(service, session, reader_translator(request, user), days)
    return render(request, "dashboard.html", user, board=board, windows=dashboard.WINDOWS)
