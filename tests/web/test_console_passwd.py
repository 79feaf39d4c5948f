"""``mamori users passwd`` (the console's click command) sets a password people can then log in with."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from mamori.config import load_settings
from mamori.service.launch import seed_tokens
from mamori.service.runtime import open_records
from mamori.store.records import AuditEntry
from mamori.web import accounts
from mamori.web.cli import passwd
from mamori.web.context import LOGIN_FAILURES_PER_ADDRESS, LoginThrottle


def test_passwd_sets_a_console_password_from_stdin_and_audits_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_tokens(data, roles=("analyst",))
    result = CliRunner().invoke(passwd, ["analyst-user", "--password-stdin", "--data-dir", str(data)],
                                input="a good long password\n")
    assert result.exit_code == 0, result.output
    assert "console password of analyst-user set" in result.output
    engine, sessions = open_records(load_settings(None, env={}, data_dir=data))
    with sessions.begin() as session:
        assert accounts.authenticate(session, "analyst-user", "a good long password").ok
        actions = list(session.scalars(select(AuditEntry.action)))
    engine.dispose()
    assert "user.passwd" in actions


def test_passwd_refuses_a_short_password_and_an_unknown_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_tokens(data, roles=("viewer",))
    short = CliRunner().invoke(passwd, ["viewer-user", "--password-stdin", "--data-dir", str(data)], input="short\n")
    assert short.exit_code != 0 and "too short" in short.output
    unknown = CliRunner().invoke(passwd, ["nobody", "--password-stdin", "--data-dir", str(data)],
                                 input="a good long password\n")
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output


def test_one_address_failing_too_often_must_wait() -> None:
    throttle = LoginThrottle()
    for _ in range(LOGIN_FAILURES_PER_ADDRESS - 1):
        throttle.failed("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")
    throttle.failed("192.0.2.1")
    assert throttle.blocked("192.0.2.1")
    assert not throttle.blocked("192.0.2.2")
