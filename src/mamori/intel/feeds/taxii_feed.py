"""Poll a partner's TAXII 2.1 collection incrementally (``added_after`` the last run's last object).

Follows ``more``/``next`` paging and keeps the ``X-TAXII-Date-Added-Last`` header of the last page
as the cursor, so each poll fetches only what the partner added since.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from mamori.intel.errors import IntelError
from mamori.intel.feeds.config import FeedConfig

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


@dataclass(frozen=True)
class TaxiiPoll:
    """Objects fetched in one poll and the cursor to resume from."""

    objects: tuple[dict[str, Any], ...]
    cursor: str
    pages: int


def objects_url(feed: FeedConfig) -> str:
    """The objects endpoint of the feed's collection."""
    base = feed.location.rstrip("/")
    if feed.collection:
        base = f"{base}/collections/{feed.collection}"
    return base + "/objects/"


def poll_taxii(feed: FeedConfig, cursor: str, *, page_size: int = 1000, verify: bool | str = True) -> TaxiiPoll:
    """Fetch every object added to the collection after ``cursor`` (everything on the first run)."""
    url = objects_url(feed)
    headers = {"Accept": TAXII_MEDIA_TYPE}
    if feed.token:
        headers["Authorization"] = f"Bearer {feed.token}"
    params: dict[str, str] = {"limit": str(page_size)}
    if cursor:
        params["added_after"] = cursor
    objects: list[dict[str, Any]] = []
    last, pages = cursor, 0
    with httpx.Client(headers=headers, timeout=60.0, verify=verify) as client:
        while True:
            try:
                response = client.get(url, params=params)
            except httpx.HTTPError as exc:
                raise IntelError(f"cannot poll: {exc}", where=url) from None
            if response.status_code != 200:
                raise IntelError(
                    f"the TAXII server answered {response.status_code}: {response.text[:200]}",
                    where=url,
                    hint="check the collection id and the token's read permission",
                )
            pages += 1
            envelope = response.json()
            objects.extend(envelope.get("objects", []))
            last = response.headers.get("X-TAXII-Date-Added-Last", last)
            if not envelope.get("more") or not envelope.get("next"):
                break
            params = {**params, "next": str(envelope["next"])}
    return TaxiiPoll(tuple(objects), last, pages)
