"""CSV and plain-text IOC lists, e.g. the JPCERT/CC phishing URL list (``date,URL,description``).

Columns are configured per feed (by header name or 0-based position); comment lines (``#``) and
values that are not IOCs are skipped and counted, never fatal.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mamori.intel.errors import IntelError
from mamori.intel.feeds.config import FeedConfig
from mamori.intel.feeds.iocs import indicator_for


@dataclass(frozen=True)
class ListResult:
    """Indicators read from a list, and how many lines were skipped (with the first few reasons)."""

    indicators: tuple[dict[str, Any], ...]
    skipped: int
    reasons: tuple[str, ...]


def _column(header: list[str], key: str, where: str) -> int:
    if key.isdigit():
        return int(key)
    lowered = [h.strip().lower() for h in header]
    if key.strip().lower() not in lowered:
        raise IntelError(f"no column {key!r} in the header {header}", where=where, hint="fix the feed's columns")
    return lowered.index(key.strip().lower())


def _rows(text: str, feed: FeedConfig) -> Iterator[tuple[int, list[str]]]:
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.reader((line for _, line in lines), delimiter=feed.delimiter)
    for (number, _), row in zip(lines, reader, strict=True):
        yield number, row


def read_list(data: bytes, feed: FeedConfig) -> ListResult:
    """Indicators from a CSV list (``kind: csv``) or a one-value-per-line list (``kind: text``)."""
    text = data.decode("utf-8-sig", errors="replace")
    found: dict[str, dict[str, Any]] = {}
    skipped, reasons = 0, []
    kind = feed.value_type or None
    if feed.kind == "text":
        items = [(n, [line.strip()]) for n, line in enumerate(text.splitlines(), start=1)]
        items = [(n, r) for n, r in items if r[0] and not r[0].startswith("#")]
        value_at, type_at, date_at, description_at = 0, None, None, None
    else:
        items = list(_rows(text, feed))
        header = items[0][1] if feed.has_header and items else []
        if feed.has_header:
            items = items[1:]
        columns = dict(feed.columns) or {"value": "0"}
        where = f"{feed.name}: columns"
        value_at = _column(header, columns["value"], where)
        type_at = _column(header, columns["type"], where) if "type" in columns else None
        date_at = _column(header, columns["date"], where) if "date" in columns else None
        description_at = _column(header, columns["description"], where) if "description" in columns else None
    for number, row in items:
        try:
            value = row[value_at]
            row_kind = (row[type_at].strip().lower() if type_at is not None else None) or kind
            first_seen = row[date_at] if date_at is not None else None
            description = row[description_at] if description_at is not None else ""
        except IndexError:
            skipped += 1
            reasons.append(f"{feed.name}: line {number}: too few columns")
            continue
        indicator = indicator_for(
            value,
            row_kind,
            source=feed.name,
            confidence=feed.confidence,
            tlp=feed.tlp,
            first_seen=first_seen,
            description=description,
        )
        if indicator is None:
            skipped += 1
            reasons.append(f"{feed.name}: line {number}: {value!r} is not an IOC")
            continue
        found.setdefault(indicator["id"], indicator)
    return ListResult(tuple(found.values()), skipped, tuple(reasons[:20]))
