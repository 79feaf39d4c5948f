"""Read a feed's bytes from a URL (HTTP/HTTPS) or a local path, naming the source in errors."""

from __future__ import annotations

from pathlib import Path

import httpx

from mamori.intel.errors import IntelError


def is_url(location: str) -> bool:
    """Tell whether a feed location is an HTTP(S) URL rather than a path."""
    return location.lower().startswith(("http://", "https://"))


def fetch_bytes(location: str, *, token: str = "", timeout: float = 60.0) -> bytes:
    """The content at a URL or path."""
    if is_url(location):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = httpx.get(location, headers=headers, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise IntelError(f"cannot fetch: {exc}", where=location, hint="check the URL and the token") from None
        return response.content
    try:
        return Path(location).read_bytes()
    except OSError as exc:
        raise IntelError(f"cannot read: {exc.strerror}", where=location) from None


def join(location: str, name: str) -> str:
    """A file next to (or under) a location: a URL path or a directory."""
    if is_url(location):
        return location.rstrip("/") + "/" + name
    base = Path(location)
    return str((base if base.is_dir() else base.parent) / name)
