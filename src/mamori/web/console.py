"""The console under ``/console``: ``mount(app)`` adds its routes and shows errors on console pages as
pages (in the reader's language) instead of JSON."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mamori.web.context import optional_user, reader_translator, render
from mamori.web.routes import alerts, auth, dashboard, events, incidents, playbooks, rules, share, static

router = APIRouter(prefix="/console", include_in_schema=False)
for _module in (auth, dashboard, alerts, events, rules, incidents, playbooks, share, static):
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
        t = reader_translator(request, user)
        detail = exc.detail
        if isinstance(detail, dict) and "key" in detail:
            values = {name: t(value[1:]) if isinstance(value, str) and value.startswith("@") else value
                      for name, value in dict(detail.get("values") or {}).items()}
            text = t(str(detail["key"]), **values)
        elif exc.status_code == 404 and detail == "Not Found":
            text = t("error.not_found")
        else:  # a message from another room (e.g. a refused workflow move), as it was given
            text = str(detail)
        return render(request, "error.html", user, status_code=exc.status_code, status=exc.status_code,
                      detail=text)
