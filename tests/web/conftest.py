"""A real ``mamori serve`` child with console users, a rule that fires, a playbook that waits for approval,
and one incident made from real alerts; shared by the console tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_fixtures import APPROVAL_PLAYBOOK, EXTRA_USERS, PASSWORDS, WHOAMI_RULE, Console, wait_for, whoami_event

from mamori.service.launch import ServiceProcess, seed_tokens


def _set_passwords(data_dir: Any) -> None:
    from mamori.api.auth import create_user
    from mamori.config import load_settings
    from mamori.service.runtime import open_records
    from mamori.web.accounts import set_password

    engine, sessions = open_records(load_settings(None, env={}, data_dir=data_dir))
    with sessions.begin() as session:
        for role, password in PASSWORDS.items():
            set_password(session, f"{role}-user", password)
        for name, password in EXTRA_USERS.items():
            create_user(session, name, "viewer")
            set_password(session, name, password)
    engine.dispose()


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    (root / "rules").mkdir()
    (root / "rules" / "whoami.yml").write_text(WHOAMI_RULE, encoding="utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "watch-host.yaml").write_text(APPROVAL_PLAYBOOK, encoding="utf-8")
    data = root / "data"
    tokens = seed_tokens(data)
    _set_passwords(data)
    process = ServiceProcess(data, rules=[root / "rules"], extra={
        "MAMORI_BATCH_SECONDS": "0.1", "MAMORI_PLAYBOOKS": str(root / "playbooks")})
    process.start()
    running = Console(process, tokens, data)
    try:
        with running.api("analyst") as api:
            answer = api.post("/api/v1/ingest", json=[whoami_event(i) for i in range(3)]
                              + [whoami_event(10, host="WS-CONSOLE2", user="suzuki")])
            assert answer.status_code == 202, answer.text
            wait_for(lambda: api.get("/api/v1/alerts").json()["total"] >= 2)
        yield running
    finally:
        process.stop()
