"""A real ``mamori serve`` child (uvicorn on a free port, temp data folder) shared by the API tests."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from api_fixtures import WHOAMI_RULE, Running

from mamori.service.launch import ServiceProcess, seed_tokens


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("api")
    rules = root / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(textwrap.dedent(WHOAMI_RULE), encoding="utf-8")
    data = root / "data"
    tokens = seed_tokens(data)
    process = ServiceProcess(data, rules=[rules], extra={"MAMORI_BATCH_SECONDS": "0.1"})
    process.start()
    try:
        yield Running(process, tokens, data)
    finally:
        process.stop()
