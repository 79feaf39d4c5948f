"""Search the event lake with DuckDB: time range, source, field filters, full text, paging.

Values are always bound parameters; field names are checked against the lake's columns and quoted.
File paths come from the lake itself (never from the user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from mamori.errors import MamoriError
from mamori.events import schema
from mamori.store.lake import DAY, SRC, Lake


@dataclass(frozen=True)
class EventQuery:
    """What to look for: a time range, a source, exact field values, a text to find in the raw record."""

    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    fields: Mapping[str, str] | None = None
    text: str | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class EventPage:
    """One page of events (newest first) and how many match in all."""

    events: list[dict[str, Any]]
    total: int


def _relation(paths: Sequence[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}], union_by_name=true, hive_partitioning=true)"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or key in (DAY, SRC):
            continue
        out[key] = value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    return out


def search_events(lake: Lake, query: EventQuery) -> EventPage:
    """Run ``query`` over the lake and return one page of events, newest first."""
    paths = lake.glob(query.since.date() if query.since else None, query.until.date() if query.until else None,
                      query.source)
    if not paths:
        return EventPage([], 0)
    relation = _relation(paths)
    connection = duckdb.connect()
    try:
        columns = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        where: list[str] = []
        params: list[Any] = []
        if query.since:
            where.append(f"{schema.TIME} >= ?")
            params.append(query.since)
        if query.until:
            where.append(f"{schema.TIME} <= ?")
            params.append(query.until)
        if query.source:
            where.append(f"{schema.SOURCE} = ?")
            params.append(query.source)
        for name, value in (query.fields or {}).items():
            if name not in columns:
                raise MamoriError(f"no stored event has a field {name!r}", where=f"field filter {name}",
                                  hint="field names are case-sensitive, e.g. EventID, Image, _host")
            where.append(f"CAST({_quote(name)} AS VARCHAR) = ?")
            params.append(value)
        if query.text:
            where.append(f"{schema.RAW} ILIKE ? ESCAPE '\\'")
            escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total_row = connection.execute(f"SELECT count(*) FROM {relation}{clause}", params).fetchone()
        total = int(total_row[0]) if total_row else 0
        cursor = connection.execute(
            f"SELECT * FROM {relation}{clause} ORDER BY {schema.TIME} DESC NULLS LAST, {schema.UID} "
            f"LIMIT ? OFFSET ?", [*params, query.limit, query.offset])
        names = [d[0] for d in cursor.description or []]
        rows = [_clean(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]
        return EventPage(rows, total)
    finally:
        connection.close()


def count_events(lake: Lake) -> dict[str, int]:
    """Stored events per source."""
    paths = lake.glob()
    if not paths:
        return {}
    connection = duckdb.connect()
    try:
        rows = connection.execute(f"SELECT {schema.SOURCE}, count(*) FROM {_relation(paths)} GROUP BY 1").fetchall()
        return {str(source): int(count) for source, count in rows}
    finally:
        connection.close()


def stored_uids(lake: Lake) -> list[str]:
    """Every stored event id, duplicates included (for exactly-once checks)."""
    paths = lake.glob()
    if not paths:
        return []
    connection = duckdb.connect()
    try:
        return [str(r[0]) for r in connection.execute(f"SELECT {schema.UID} FROM {_relation(paths)}").fetchall()]
    finally:
        connection.close()
