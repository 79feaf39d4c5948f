"""Event search: time range, source, exact field values and text in the raw record, paged."""

from __future__ import annotations

from collections import Counter
from typing import Any
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
BASE_COLUMNS = ("_time", "_source", "_host")
PREFERRED = ("EventID", "Image", "CommandLine", "User", "SubjectUserName", "TargetUserName", "IpAddress",
             "SourceIp", "DestinationIp", "eventName", "message", "msg", "program")
MAX_COLUMNS = 9


def columns_for(events: list[dict[str, Any]]) -> tuple[str, ...]:
    """Which fields a page of events is shown with: time, source and host, then the well-known fields the
    page has, then its most common other fields (the whole record is always one click away)."""
    counts: Counter[str] = Counter(k for event in events for k in event if not k.startswith("_"))
    chosen = [name for name in PREFERRED if counts[name]]
    chosen += [name for name, _ in counts.most_common() if name not in chosen]
    return BASE_COLUMNS + tuple(chosen[:MAX_COLUMNS - len(BASE_COLUMNS)])


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
                  shown=columns_for(result.events) if result else BASE_COLUMNS,
                  query=urlencode({**kept, "run": "1"}), page_size=PAGE)
