"""Turn IOC matches into alerts an analyst can read, and record each as a STIX sighting.

An alert names the indicator and where it came from (its feeds), the events that matched, and the
field and value that matched them. The sighting goes to a ``sightings`` collection of the intel
store, so partners can be told (when shared) and the indicator's history shows where it was seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from mamori.intel import stix_build
from mamori.intel.store import IntelStore, Status
from mamori.intel.timestamps import format_timestamp
from mamori.intel.tlp import Tlp

_ENTITY_KEYS = {
    "ip": "ip",
    "domain": "domain",
    "url": "url",
    "hash": "hash",
    "email": "email",
    "file_name": "file",
}
SIGHTINGS_COLLECTION = "sightings"


@dataclass(frozen=True)
class IntelAlert:
    """An alert raised by an indicator match."""

    indicator_id: str
    indicator_name: str
    sources: tuple[str, ...]
    confidence: int
    level: str
    first_seen: str
    last_seen: str
    count: int
    event_uids: tuple[str, ...]
    matched: tuple[tuple[str, str, str], ...]  # (kind, field, value)

    @property
    def title(self) -> str:
        """A one-line title naming the indicator and its source."""
        name = self.indicator_name or self.indicator_id
        return f"Threat intel match: {name} (from {', '.join(self.sources) or 'unknown source'})"

    @property
    def explanation(self) -> str:
        """Which field held which value, and which indicator it matched."""
        seen = "; ".join(f"{field} = {value}" for _, field, value in self.matched[:5])
        more = f" and {len(self.matched) - 5} more" if len(self.matched) > 5 else ""
        return (
            f"{seen}{more} matched indicator {self.indicator_id} ({self.indicator_name or 'unnamed'}) "
            f"from {', '.join(self.sources) or 'unknown source'}, confidence {self.confidence}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The alert in the shape the cases room and the sharing module read."""
        entities: dict[str, list[str]] = {}
        for kind, _, value in self.matched:
            key = _ENTITY_KEYS.get(kind, kind)
            if value not in entities.setdefault(key, []):
                entities[key].append(value)
        return {
            "id": f"intel:{self.indicator_id}:{self.first_seen}",
            "rule": {
                "id": f"intel:{self.indicator_id}",
                "title": self.title,
                "level": self.level,
                "tags": [],
            },
            "title": self.title,
            "time": self.first_seen,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "entities": entities,
            "event_ids": list(self.event_uids),
            "indicator_id": self.indicator_id,
            "sources": list(self.sources),
            "explanation": self.explanation,
        }


def level_for(confidence: int) -> str:
    """Alert level from indicator confidence (STIX 0-100): high from 75, medium from 40, else low."""
    return "high" if confidence >= 75 else "medium" if confidence >= 40 else "low"


def _stamp(value: datetime | None) -> str:
    return format_timestamp(value) if value is not None else ""


def alerts_from_matches(matches: pl.DataFrame) -> list[IntelAlert]:
    """One alert per indicator that matched in a batch, listing every event it matched."""
    if matches.height == 0:
        return []
    grouped = (
        matches.group_by("indicator_id", maintain_order=True)
        .agg(
            pl.col("indicator_name").first(),
            pl.col("sources").first(),
            pl.col("confidence").first(),
            pl.col("_time").min().alias("first"),
            pl.col("_time").max().alias("last"),
            pl.col("_uid").unique(maintain_order=True).alias("uids"),
            pl.struct("kind", "field", "value").unique(maintain_order=True).alias("matched"),
        )
        .to_dicts()
    )
    return [
        IntelAlert(
            indicator_id=row["indicator_id"],
            indicator_name=row["indicator_name"] or "",
            sources=tuple(s for s in (row["sources"] or "").replace("\n", ", ").split(", ") if s),
            confidence=int(row["confidence"]),
            level=level_for(int(row["confidence"])),
            first_seen=_stamp(row["first"]),
            last_seen=_stamp(row["last"]),
            count=len(row["uids"]),
            event_uids=tuple(str(u) for u in row["uids"]),
            matched=tuple((m["kind"], m["field"], m["value"]) for m in row["matched"]),
        )
        for row in grouped
    ]


def record_sightings(store: IntelStore, alerts: Sequence[IntelAlert], *, organisation: str = "Mamori SOC") -> Status:
    """Store a STIX sighting for each alert (TLP:AMBER by default: sightings reveal what we run)."""
    collection = store.create_collection(
        "Sightings",
        alias=SIGHTINGS_COLLECTION,
        description="where indicators were seen",
        default_tlp=Tlp.AMBER,
    )
    me = stix_build.identity(organisation)
    objects: list[dict[str, Any]] = [me]
    for alert in alerts:
        objects.append(
            stix_build.sighting(
                alert.indicator_id,
                first_seen=alert.first_seen or None,
                last_seen=alert.last_seen or None,
                count=alert.count,
                where=me["id"],
                description=alert.explanation,
            )
        )
    return store.add_objects(collection.id, objects, source="mamori:sightings")
