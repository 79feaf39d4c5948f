"""Read stored events by id (``_uid``) from the lake, for an incident's timeline and process tree.

Files are pruned by day (the caller gives the time range its alerts span); ids are bound parameters
and column names are checked against the files before they are selected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import duckdb

from mamori.events import schema
from mamori.store.lake import DAY, SRC, Lake

Event = dict[str, object]


def _relation(paths: Sequence[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)  # paths come from the lake itself
    return f"read_parquet([{quoted}], union_by_name=true, hive_partitioning=true)"


def _written_at(path: str) -> float:
    """When a lake file was written (its modification time; 0 when it is gone)."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clean_event(row: Mapping[str, object]) -> Event:
    """An event as look-ups give it: empty fields and the partition columns dropped, times as ISO 8601
    UTC text (JSON-ready)."""
    out: Event = {}
    for key, value in row.items():
        if value is None or key in (DAY, SRC):
            continue
        out[key] = value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    return out


def events_by_uid(lake: Lake, uids: Sequence[str], since: datetime | None = None, until: datetime | None = None,
                  columns: Sequence[str] | None = None, limit: int = 1000,
                  stored_since: datetime | None = None) -> list[Event]:
    """The stored events with these ids (oldest first, at most ``limit``), optionally only some columns.

    ``since``/``until`` bound which day partitions are read (a day of margin each side);
    ``stored_since`` reads only the files written since then (events the caller knows are recent)."""
    wanted = list(dict.fromkeys(str(u) for u in uids))[:limit]
    if not wanted:
        return []
    first: date | None = (since - timedelta(days=1)).date() if since else None
    last: date | None = (until + timedelta(days=1)).date() if until else None
    paths = lake.glob(first, last)
    if stored_since is not None:
        after = (stored_since if stored_since.tzinfo else stored_since.replace(tzinfo=UTC)).timestamp()
        paths = [p for p in paths if _written_at(p) >= after]
    if not paths:
        return []
    relation = _relation(paths)
    connection = duckdb.connect(config={"threads": 1})  # background work: never every core of an ingesting service
    try:
        present = [row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        if columns is None:
            selected = "*"
        else:
            keep = [c for c in dict.fromkeys([schema.UID, schema.TIME, *columns]) if c in present]
            selected = ", ".join(_quote(c) for c in keep)
        marks = ", ".join("?" for _ in wanted)
        cursor = connection.execute(f"SELECT {selected} FROM {relation} WHERE {schema.UID} IN ({marks}) "
                                    f"ORDER BY {schema.TIME} NULLS LAST, {schema.UID} LIMIT ?", [*wanted, limit])
        names = [d[0] for d in cursor.description or []]
        seen: set[object] = set()
        out: list[Event] = []
        for values in cursor.fetchall():
            row = clean_event(dict(zip(names, values, strict=True)))
            if row.get(schema.UID) in seen:  # a replayed batch stored twice would show once
                continue
            seen.add(row.get(schema.UID))
            out.append(row)
        return out
    finally:
        connection.close()
