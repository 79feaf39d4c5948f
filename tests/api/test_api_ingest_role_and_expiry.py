"""Least privilege for log shippers and tokens that expire, through HTTP against the real service: an
ingest token may send events and nothing else; an expired token is refused like an unknown one; the CLI
issues both and lists an expired token as expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner
from service_testing import Running, process_event, wait_for

from mamori.api.auth import create_user, issue_token
from mamori.config import load_settings
from mamori.service.cli import tokens, users
from mamori.service.runtime import open_records


def _issue(service: Running, role: str, expires_at: datetime | None = None) -> dict[str, str]:
    """A token of a new user with ``role`` in the running service's database."""
    engine, sessions = open_records(load_settings(None, env={}, data_dir=service.data_dir))
    with sessions.begin() as session:
        name = f"{role}-{datetime.now(UTC).timestamp()}"
        create_user(session, name, role)
        token = issue_token(session, name, "test", expires_at)
    engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def test_an_ingest_token_sends_events_and_may_do_nothing_else(service: Running) -> None:
    shipper = _issue(service, "ingest")
    with httpx.Client(base_url=service.url, headers=shipper) as client:
        sent = client.post("/api/v1/ingest", json=[process_event(900, "cmd /c ver", "SHIPPER1", "bob")])
        assert sent.status_code == 202 and sent.json()["accepted"] == 1
        for method, path in [("GET", "/api/v1/events"), ("GET", "/api/v1/alerts"), ("GET", "/api/v1/rules"),
                             ("POST", "/api/v1/hunt"), ("POST", "/api/v1/alerts/1/acknowledge"),
                             ("GET", "/api/v1/stats")]:
            refused = client.request(method, path)
            assert refused.status_code == 403, path
            assert "your token has ingest" in refused.json()["detail"]
    with service.client("analyst") as analyst:  # what the shipper sent is stored like anyone's
        found = wait_for(lambda: analyst.get("/api/v1/events", params={"field": "Computer=SHIPPER1"}).json()["total"])
        assert found == 1


def test_an_expired_token_is_refused_as_an_unknown_one_and_a_live_one_works(service: Running) -> None:
    expired = _issue(service, "analyst", datetime.now(UTC) - timedelta(seconds=1))
    live = _issue(service, "analyst", datetime.now(UTC) + timedelta(days=1))
    with httpx.Client(base_url=service.url) as client:
        refused = client.get("/api/v1/alerts", headers=expired)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/v1/alerts", headers=live).status_code == 200


def test_cli_adds_an_ingest_user_and_lists_an_expiring_token(tmp_path: Path) -> None:
    data = str(tmp_path)
    runner = CliRunner()
    added = runner.invoke(users, ["add", "fluentbit", "--role", "ingest", "--no-token", "--data-dir", data])
    assert added.exit_code == 0 and "user fluentbit (ingest) added" in added.output
    created = runner.invoke(tokens, ["create", "--user", "fluentbit", "--name", "shipper", "--expires-days", "30",
                                     "--data-dir", data])
    assert created.exit_code == 0 and created.output.startswith("mamori_")
    listed = runner.invoke(tokens, ["list", "--data-dir", data]).output
    expected = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert "fluentbit\tshipper\tactive" in listed and f"expires {expected}" in listed
    bad = runner.invoke(tokens, ["create", "--user", "fluentbit", "--expires-days", "0", "--data-dir", data])
    assert bad.exit_code == 2
