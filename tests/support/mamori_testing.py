"""Helpers shared by the tests: where the real data lives, and small rule sets from YAML text."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mamori.detect.sigma.loader import parse_rule_text
from mamori.detect.sigma.model import Correlation, Rule, RuleSet
from mamori.detect.sigma.plan import rule_plan

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data; skips the test with the reason when it is absent (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it ships beside the repo in CI)")
    return path


@contextlib.contextmanager
def records_sessions(folder: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated records database (SQLite in ``folder``) and its sessions, disposed afterwards."""
    from mamori.store.db import make_engine, migrate, session_factory

    engine = make_engine(f"sqlite:///{folder / 'mamori.db'}")
    migrate(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def ruleset_from(*texts: str, placeholders: dict[str, list[str]] | None = None) -> RuleSet:
    """A rule set from YAML texts, one text per rule file; fails the test if any is refused."""
    ruleset = RuleSet()
    for number, text in enumerate(texts):
        items, refused = parse_rule_text(f"rule{number}.yml", textwrap.dedent(text), placeholders)
        assert not refused, refused
        for item in items:
            if isinstance(item, Correlation):
                ruleset.correlations.append(item)
            else:
                assert isinstance(item, Rule)
                ruleset.rules.append(item)
                ruleset.plans[item.id] = rule_plan(item)
    return ruleset
