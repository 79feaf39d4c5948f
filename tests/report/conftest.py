"""A migrated records database (real SQLite file) holding one incident, and the artifacts folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_fixtures import populate_incident
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.playbooks import records as playbook_records  # registers the playbook migrations
from mamori.store.db import make_engine, migrate, session_factory

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "report"
assert playbook_records.MIGRATIONS


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """build/test-artifacts/report/ (gitignored), created on first use."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def report_db(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], int]]:
    """A records database with one populated incident: (session factory, incident id)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'mamori.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    try:
        yield sessions, populate_incident(sessions, tmp_path / "evidence")
    finally:
        engine.dispose()
