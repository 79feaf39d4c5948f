"""Values the intel store hands out: readers, collections, stored objects, pages, statuses,
indicators and feed state. Frozen, so they can be passed between threads and cached freely."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mamori.intel.tlp import Tlp


@dataclass(frozen=True)
class Reader:
    """Who is reading, for TLP enforcement: a principal name and whether it is a named partner."""

    name: str
    partner: bool = False


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as the store knows it."""

    id: str
    api_root: str
    title: str
    description: str = ""
    alias: str | None = None
    default_tlp: Tlp = Tlp.GREEN
    outgoing: bool = False


@dataclass(frozen=True)
class StoredObject:
    """One stored version of a STIX object, with its JSON text as received."""

    object_id: str
    version: str
    date_added: str
    spec_version: str
    body: str

    @property
    def media_type(self) -> str:
        """The media type of the object's representation."""
        return f"application/stix+json;version={self.spec_version}"

    def as_dict(self) -> dict[str, Any]:
        """The object as a JSON-ready dict."""
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass(frozen=True)
class Page:
    """One page of a read: the items, whether more follow, and the token to ask for them."""

    items: tuple[StoredObject, ...]
    more: bool
    next: str | None


@dataclass(frozen=True)
class Status:
    """A TAXII status resource: what became of each object of one POST."""

    id: str
    status: str
    request_timestamp: str
    total_count: int
    success_count: int
    failure_count: int
    pending_count: int
    successes: tuple[dict[str, str], ...] = ()
    failures: tuple[dict[str, str], ...] = ()
    pendings: tuple[dict[str, str], ...] = ()

    def to_resource(self) -> dict[str, Any]:
        """The status as the TAXII 2.1 ``status`` resource (section 4.3.1)."""
        resource: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "request_timestamp": self.request_timestamp,
            "total_count": self.total_count,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "pending_count": self.pending_count,
        }
        for key in ("successes", "failures", "pendings"):
            if getattr(self, key):
                resource[key] = list(getattr(self, key))
        return resource


@dataclass(frozen=True)
class IndicatorRecord:
    """The latest version of an indicator, with what the matcher and alerts need to know."""

    object_id: str
    name: str
    pattern: str
    pattern_type: str
    valid_from: str
    valid_until: str | None
    revoked: bool
    confidence: int
    tlp: Tlp
    sources: tuple[str, ...]
    date_added: str = ""


@dataclass(frozen=True)
class FeedState:
    """Where a feed left off and how its last run went."""

    name: str
    cursor: str = ""
    last_run: str = ""
    last_count: int = 0
    last_error: str = ""
