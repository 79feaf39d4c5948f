"""GET /api/v1/events: search stored events (time range, source, field filters, full text, paging)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from mamori.api.auth import Principal, Viewer
from mamori.api.deps import parse_time, service_of
from mamori.store.query import EventQuery, search_events

router = APIRouter(prefix="/api/v1", tags=["events"])
FIELD_FILTER = Query(default=[], description="exact field match, NAME=VALUE (repeatable)")


@router.get("/events", summary="Search stored events, newest first")
def events(request: Request, since: str | None = None, until: str | None = None, source: str | None = None,
           q: str | None = Query(None, description="text to find in the raw record (case-insensitive)"),
           field: list[str] = FIELD_FILTER,
           limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
           principal: Principal = Viewer) -> dict[str, Any]:
    """Events matching every filter, one page at a time, with the total count."""
    filters: dict[str, str] = {}
    for item in field:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HTTPException(422, detail=f"field filter {item!r} must be NAME=VALUE")
        filters[name] = value
    query = EventQuery(parse_time(since, "since"), parse_time(until, "until"), source, filters, q, limit, offset)
    page = search_events(service_of(request).lake, query)
    return {"total": page.total, "limit": limit, "offset": offset, "events": page.events}
