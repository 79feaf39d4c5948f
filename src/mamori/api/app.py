"""The FastAPI application: ``create_app(settings)`` builds the service and mounts every route.

OpenAPI is served at ``/docs``. Every ``/api/v1`` route and ``/metrics`` needs a token; ``/healthz``
answers without one and says nothing but "ok" (for process supervisors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mamori.api import (
    routes_alerts,
    routes_anomaly,
    routes_events,
    routes_incidents,
    routes_ingest,
    routes_playbooks,
    routes_reports,
    routes_rules,
    routes_share,
    routes_system,
)
from mamori.api.auth import TokenCheck
from mamori.api.taxii import mount_taxii
from mamori.config import Settings
from mamori.errors import MamoriError
from mamori.service.runtime import Service
from mamori.web.console import mount as mount_console


def create_app(settings: Settings, service: Service | None = None,
               on_started: Callable[[], None] | None = None) -> FastAPI:
    """Build the API over a service (created from ``settings`` when not given); the service starts and
    stops with the application, and ``on_started`` runs once everything listens."""
    running = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await running.start()
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            await running.stop()

    app = FastAPI(title="Mamori SOC API", version="1", lifespan=lifespan,
                  description="Events, alerts, rules, ingest, health and metrics of a Mamori service.")
    app.state.service = running
    app.state.tokens = TokenCheck(running.sessions)
    app.state.pending_keys = set()
    app.state.in_flight = 0

    @app.exception_handler(MamoriError)
    async def mamori_error(_request: Request, exc: MamoriError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "where": exc.where, "hint": exc.hint}, status_code=400)

    for module in (routes_ingest, routes_events, routes_alerts, routes_rules, routes_system, routes_playbooks,
                   routes_incidents, routes_reports, routes_share, routes_anomaly):
        app.include_router(module.router)
    mount_taxii(app, running.settings, app.state.tokens)
    mount_console(app)
    return app
