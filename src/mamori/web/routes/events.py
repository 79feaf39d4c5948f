"""Event search: time range, source, exact field values and text in the raw record, paged."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mamori.api.deps import service_of
from mamori.errors import MamoriError
from mamori.store.query import EventQuery, search_events
from mamori.web.context import ConsoleUser, Reader, reader_translator, render
from mamori.web.timeparse import local_time

router = APIRouter()
PAGE = 50
SHOWN = ("_time", "_source", "_host", "EventID", "Image", "CommandLine", "User", "SubjectUserName")


@router.get("/events", response_class=HTMLResponse, summary="Event search")
def events_page(request: Request, page: int = 1, user: ConsoleUser = Reader) -> Response:
    """Stored events matching the form (times are read in the reader's time zone), newest first."""
    params = {k: request.query_params.get(k, "").strip()[:500] for k in ("since", "until", "source", "q", "field")}
    t = reader_translator(request, user)
    page = max(page, 1)
    error = ""
    result = None
    if any(params.values()) or request.query_params.get("run"):
        fields: dict[str, str] = {}
        for item in params["field"].split(";"):
            name, sep, value = item.strip().partition("=")
            if sep and name:
                fields[name.strip()] = value.strip()
            elif item.strip():
                error = t("events.bad_field", item=item.strip())
        try:
            query = EventQuery(local_time(params["since"], t.time_zone), local_time(params["until"], t.time_zone),
                               params["source"] or None, fields, params["q"] or None, PAGE, (page - 1) * PAGE)
            if not error:
                result = search_events(service_of(request).lake, query)
        except MamoriError as exc:
            error = exc.message
        except ValueError:
            error = t("events.bad_time")
    kept = {k: v for k, v in params.items() if v}
    return render(request, "events.html", user, params=params, result=result, error=error, page=page,
                  shown=SHOWN, query=urlencode({**kept, "run": "1"}), page_size=PAGE)
