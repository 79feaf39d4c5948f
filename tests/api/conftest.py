"""A real ``mamori serve`` child (uvicorn on a free port, temp data folder) shared by the API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_fixtures import WHOAMI_RULE_ID
from service_testing import Running, running_service, whoami_rule


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The child with the Whoami rule loaded, one per test module."""
    with running_service(tmp_path_factory.mktemp("api"), {"whoami.yml": whoami_rule(WHOAMI_RULE_ID)}) as running:
        yield running
