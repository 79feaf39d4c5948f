"""STIX 2.1 bundles (or bare object lists) from files or URLs."""

from __future__ import annotations

import json
from typing import Any

from mamori.intel.errors import IntelError
from mamori.intel.feeds.fetch import fetch_bytes


def read_bundle(location: str, *, token: str = "") -> list[dict[str, Any]]:
    """The objects of a STIX bundle, an envelope, or a JSON list of objects."""
    try:
        data = json.loads(fetch_bytes(location, token=token))
    except ValueError as exc:
        raise IntelError(f"not JSON: {exc}", where=location, hint="a STIX 2.1 bundle is a JSON object") from None
    if isinstance(data, list):
        objects = data
    elif isinstance(data, dict) and isinstance(data.get("objects"), list):
        objects = data["objects"]
    elif isinstance(data, dict) and "type" in data and "id" in data:
        objects = [data]
    else:
        raise IntelError("no STIX objects found", where=location, hint="expected a bundle with 'objects'")
    return [obj for obj in objects if isinstance(obj, dict)]
