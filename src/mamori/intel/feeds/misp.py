"""MISP feeds: ``manifest.json`` lists events (uuid -> info, timestamp, tags); each ``<uuid>.json``
holds an event with attributes (and objects with attributes). Only events whose timestamp changed
since the last run are fetched; only attributes flagged ``to_ids`` become indicators (by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mamori.intel.errors import IntelError
from mamori.intel.feeds.config import FeedConfig
from mamori.intel.feeds.fetch import fetch_bytes, join
from mamori.intel.feeds.iocs import indicator_for
from mamori.intel.tlp import Tlp, parse_tlp

# MISP attribute types -> our IOC kinds; for "a|b" types the first part is the IOC.
_TYPES = {
    "ip-src": "ip",
    "ip-dst": "ip",
    "ip-src|port": "ip",
    "ip-dst|port": "ip",
    "domain": "domain",
    "hostname": "domain",
    "domain|ip": "domain",
    "url": "url",
    "uri": "url",
    "link": None,
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "filename|md5": "md5",
    "filename|sha1": "sha1",
    "filename|sha256": "sha256",
    "email": "email",
    "email-src": "email",
    "email-dst": "email",
    "filename": "filename",
}
_HASH_PAIRS = {"filename|md5", "filename|sha1", "filename|sha256"}


@dataclass(frozen=True)
class MispResult:
    """Indicators from changed events, the new cursor (event uuid -> timestamp), and skips."""

    indicators: tuple[dict[str, Any], ...]
    cursor: dict[str, str]
    events_read: int
    skipped: int


def _tlp(tags: Iterable[Any], default: Tlp) -> Tlp:
    for tag in tags:
        name = str(tag.get("name", "") if isinstance(tag, Mapping) else tag).lower()
        if name.startswith("tlp:"):
            try:
                return parse_tlp(name)
            except IntelError:
                continue
    return default


def _attributes(event: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from event.get("Attribute", []) or []
    for obj in event.get("Object", []) or []:
        yield from obj.get("Attribute", []) or []


def event_indicators(event: Mapping[str, Any], feed: FeedConfig) -> tuple[list[dict[str, Any]], int]:
    """Indicators for one MISP event's attributes, and how many attributes were skipped."""
    tlp = _tlp(event.get("Tag", []) or [], feed.tlp)
    found: list[dict[str, Any]] = []
    skipped = 0
    for attribute in _attributes(event):
        kind = _TYPES.get(str(attribute.get("type", "")))
        if kind is None or (feed.only_to_ids and not attribute.get("to_ids", False)):
            skipped += 1
            continue
        value = str(attribute.get("value", ""))
        attr_type = str(attribute.get("type"))
        if "|" in attr_type:
            parts = value.split("|", 1)
            value = parts[1] if attr_type in _HASH_PAIRS and len(parts) == 2 else parts[0]
        stamp = attribute.get("timestamp") or event.get("timestamp")
        first_seen = (
            datetime.fromtimestamp(int(stamp), UTC).isoformat() if stamp and str(stamp).isdigit() else event.get("date")
        )
        indicator = indicator_for(
            value,
            kind,
            source=feed.name,
            confidence=feed.confidence,
            tlp=_tlp(attribute.get("Tag", []) or [], tlp),
            first_seen=str(first_seen) if first_seen else None,
            description=f"MISP event {event.get('uuid', '')}: {event.get('info', '')}".strip(),
        )
        if indicator is None:
            skipped += 1
        else:
            found.append(indicator)
    return found, skipped


def read_misp(feed: FeedConfig, cursor: Mapping[str, str]) -> MispResult:
    """Read a MISP feed incrementally: events new or changed since ``cursor``."""
    manifest_at = join(feed.location, "manifest.json")
    try:
        manifest = json.loads(fetch_bytes(manifest_at, token=feed.token))
    except ValueError as exc:
        raise IntelError(f"manifest.json is not JSON: {exc}", where=manifest_at) from None
    if not isinstance(manifest, Mapping):
        raise IntelError("manifest.json must map event uuids to event summaries", where=manifest_at)
    indicators: dict[str, dict[str, Any]] = {}
    new_cursor = dict(cursor)
    events_read = skipped = 0
    for uuid, summary in manifest.items():
        stamp = str(summary.get("timestamp", "")) if isinstance(summary, Mapping) else ""
        if cursor.get(uuid) == stamp and stamp:
            continue
        event_at = join(feed.location, f"{uuid}.json")
        try:
            event = json.loads(fetch_bytes(event_at, token=feed.token)).get("Event", {})
        except (ValueError, AttributeError) as exc:
            raise IntelError(f"not a MISP event file: {exc}", where=event_at) from None
        found, missed = event_indicators(event, feed)
        skipped += missed
        events_read += 1
        for indicator in found:
            indicators.setdefault(indicator["id"], indicator)
        new_cursor[uuid] = stamp
    return MispResult(tuple(indicators.values()), new_cursor, events_read, skipped)
