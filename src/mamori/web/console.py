"""The console under ``/console``: ``mount(app)`` adds its routes and shows errors on console pages as
pages (in the reader's language) instead of JSON."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mamori.web.context import optional_user, render
from mamori.web.routes import alerts, auth, dashboard, events, incidents, playbooks, rules, static

router = APIRouter(prefix="/console", include_in_schema=False)
for _module in (auth, dashboard, alerts, events, rules, incidents, playbooks, static):
    router.include_router(_module.router)


def mount(app: FastAPI) -> None:
    """Include the console's routes in ``app`` and render HTTP errors of console pages as HTML."""
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/console/", 307)

    @app.exception_handler(StarletteHTTPException)
    async def console_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/console") or exc.status_code in (301, 302, 303, 307, 401):
            return await http_exception_handler(request, exc)
        user = None if exc.status_code >= 500 else optional_user(request)
        return render(request, "error.html", user, status_code=exc.status_code, status=exc.status_code,
                      detail=str(exc.detail))
