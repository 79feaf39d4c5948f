"""Small helpers the routes share: the running service, and ISO time parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from mamori.cases import workflow
from mamori.service.runtime import Service


def service_of(request: Request) -> Service:
    """The service behind this application."""
    service: Service = request.app.state.service
    return service


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 parameter as an aware UTC datetime; a bad one is a 422 naming the parameter."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(422, detail=f"{name}: {value!r} is not an ISO 8601 time (e.g. 2024-05-01T00:00:00Z)"
                            ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def owner(session: Session, name: str | None, field: str) -> str | None:
    """``workflow.assignable`` for a request: a name no enabled, non-ingest user has is a 422 naming the
    field and the name."""
    try:
        return workflow.assignable(session, name, field)
    except workflow.NoSuchOwner as exc:
        raise HTTPException(422, detail=exc.message) from exc
