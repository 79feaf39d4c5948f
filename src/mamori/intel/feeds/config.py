"""Feed definitions: where a feed is, what kind it is, and the confidence and TLP its data gets.

Read from a YAML file (a list of feeds, or ``{feeds: [...]}``); every error names the file and the
feed so the operator knows what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mamori.intel.errors import IntelError
from mamori.intel.tlp import Tlp, parse_tlp

KINDS = frozenset({"taxii", "misp", "csv", "text", "stix"})


@dataclass(frozen=True)
class FeedConfig:
    """One feed.

    ``location`` is a URL or a path. For TAXII, ``collection`` is the remote collection's objects
    URL base (``.../collections/<id>/``). For CSV, ``columns`` maps ``value`` (required), and
    optionally ``type``, ``date`` and ``description``, to column names (or 0-based positions);
    ``value_type`` fixes the kind of every value (``url``, ``domain``, ``ip``...) when the list
    holds one kind.
    """

    name: str
    kind: str
    location: str
    confidence: int = 50
    tlp: Tlp = Tlp.GREEN
    interval: int = 3600
    collection: str = ""
    token: str = ""
    columns: Mapping[str, str] = field(default_factory=dict)
    value_type: str = ""
    delimiter: str = ","
    has_header: bool = True
    only_to_ids: bool = True
    target: str = "feeds"


def _feed(raw: Any, where: str) -> FeedConfig:
    if not isinstance(raw, Mapping):
        raise IntelError("a feed must be a mapping", where=where)
    name = str(raw.get("name", "")).strip()
    kind = str(raw.get("kind", "")).strip().lower()
    location = str(raw.get("location", raw.get("url", raw.get("path", "")))).strip()
    if not name or kind not in KINDS or not location:
        raise IntelError(
            "a feed needs name, kind and location",
            where=f"{where} ({name or 'unnamed'})",
            hint="kind is one of " + ", ".join(sorted(KINDS)),
        )
    confidence = int(raw.get("confidence", 50))
    if not 0 <= confidence <= 100:
        raise IntelError("confidence must be 0-100", where=f"{where} ({name}).confidence")
    return FeedConfig(
        name=name,
        kind=kind,
        location=location,
        confidence=confidence,
        tlp=parse_tlp(str(raw.get("tlp", "green")), where=f"{where} ({name}).tlp"),
        interval=int(raw.get("interval", 3600)),
        collection=str(raw.get("collection", "")),
        token=str(raw.get("token", "")),
        columns={str(k): str(v) for k, v in (raw.get("columns") or {}).items()},
        value_type=str(raw.get("value_type", "")),
        delimiter=str(raw.get("delimiter", ",")),
        has_header=bool(raw.get("has_header", True)),
        only_to_ids=bool(raw.get("only_to_ids", True)),
        target=str(raw.get("target", "feeds")),
    )


def load_feeds(path: str | Path) -> list[FeedConfig]:
    """Read the feed definitions of a YAML file."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise IntelError(f"cannot read feeds: {exc}", where=str(source)) from None
    entries = data.get("feeds", []) if isinstance(data, Mapping) else data or []
    feeds = [_feed(raw, f"{source}: feed {number}") for number, raw in enumerate(entries, start=1)]
    names = [f.name for f in feeds]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise IntelError(f"feed names must be unique: {', '.join(duplicates)}", where=str(source))
    return feeds
