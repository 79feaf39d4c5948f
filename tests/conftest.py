"""Shared test settings: a fresh rule cache per test session, so tests never read a developer's cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["MAMORI_CACHE_DIR"] = str(tmp_path_factory.mktemp("rule-cache"))
