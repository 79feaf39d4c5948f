"""Tell the rest of the SOC about changes made in the console: one ``CaseEvent`` on the service's case bus
after the change is committed (playbooks listen there), as the cases room asks of its callers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from mamori.api.deps import service_of
from mamori.cases.events import CaseEvent, EventKind


def publish(request: Request, kind: EventKind, actor: str, alert: dict[str, Any] | None = None,
            incident: dict[str, Any] | None = None, changes: dict[str, Any] | None = None) -> None:
    """Publish one case event when the service has a case bus (it has none before the cases room starts)."""
    bus = getattr(service_of(request), "cases_bus", None)
    if bus is not None:
        bus.publish(CaseEvent(kind, alert=alert, incident=incident, actor=actor, changes=changes or {}))
