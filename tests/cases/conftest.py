"""A migrated records database (real SQLite file) and a way to write alerts into it, for the cases tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cases_testing import T0
from mamori_testing import records_sessions
from sqlalchemy.orm import Session, sessionmaker

from mamori.store.records import Alert


@pytest.fixture
def case_sessions(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    with records_sessions(tmp_path) as sessions:
        yield sessions


AddAlert = Callable[..., int]


@pytest.fixture
def add_alert(case_sessions: sessionmaker[Session]) -> AddAlert:
    """Write one alert (committed) and return its id; ``minutes`` places it after T0."""

    def add(level: str = "high", minutes: float = 0, host: str | None = "WS01", user: str | None = "alice",
            ip: str | None = None, tags: list[str] | None = None, rule: str = "Suspicious thing",
            event_uids: list[str] | None = None) -> int:
        when = T0 + timedelta(minutes=minutes)
        with case_sessions.begin() as session:
            alert = Alert(rule_id=f"rule-{rule}", rule_title=rule, level=level, tags=tags or [],
                          first_seen=when, last_seen=when, host=host, user=user, ip=ip,
                          event_uids=event_uids or [], dedup_key=f"{rule}-{host}-{user}-{minutes}")
            session.add(alert)
            session.flush()
            return alert.id

    return add
