"""Fixtures for the service tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from service_fixtures import WHOAMI_RULE


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "whoami.yml").write_text(textwrap.dedent(WHOAMI_RULE), encoding="utf-8")
    return folder
