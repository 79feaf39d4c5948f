"""The console's own CSS and JavaScript, and htmx served from the installed ``django-htmx`` package (htmx is
not copied into this repository)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

router = APIRouter()
STATIC = Path(__file__).resolve().parent.parent / "static"
OWN_FILES = {"console.css": "text/css", "console.js": "text/javascript", "favicon.svg": "image/svg+xml"}
HTMX_FILE = ("static", "django_htmx", "htmx-2.min.js")
CACHE = {"Cache-Control": "public, max-age=3600"}


@functools.cache
def htmx_path() -> Path | None:
    """Where the installed htmx 2 file is (inside the django-htmx package), or None when not installed."""
    spec = importlib.util.find_spec("django_htmx")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*HTMX_FILE)
    return path if path.is_file() else None


@router.get("/static/htmx.min.js", include_in_schema=False)
def htmx() -> Response:
    """htmx itself; without it the console still works through plain links and forms."""
    path = htmx_path()
    if path is None:
        return Response("/* htmx is not installed: pages work without it */", media_type="text/javascript")
    return FileResponse(path, media_type="text/javascript", headers=CACHE)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """One of the console's own static files (a fixed list: no path from the request reaches the disk)."""
    if name not in OWN_FILES:
        raise HTTPException(404, detail={"key": "error.not_found", "values": {}})
    return FileResponse(STATIC / name, media_type=OWN_FILES[name], headers=CACHE)
