"""Console passwords: salted scrypt hashes, lockout after repeated failures, sessions ended by a new password."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mamori.api.auth import create_user
from mamori.errors import MamoriError
from mamori.store.db import make_engine, migrate, session_factory
from mamori.store.records import utcnow
from mamori.web import accounts
from mamori.web.sessions import load_secret


@pytest.fixture
def sessions(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(engine)
    factory = session_factory(engine)
    with factory.begin() as session:
        create_user(session, "sato", "analyst")
        accounts.set_password(session, "sato", "a long enough password")
    yield factory
    engine.dispose()


def test_passwords_are_stored_as_salted_scrypt_hashes() -> None:
    first, second = accounts.hash_password("same password"), accounts.hash_password("same password")
    assert first.startswith("scrypt$") and first != second
    assert "same password" not in first
    assert accounts.verify_password("same password", first)
    assert not accounts.verify_password("other password", first)
    assert not accounts.verify_password("same password", "garbage")


def test_right_password_logs_in_and_wrong_one_does_not(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        good = accounts.authenticate(session, "sato", "a long enough password")
        bad = accounts.authenticate(session, "sato", "wrong")
        unknown = accounts.authenticate(session, "nobody", "a long enough password")
    assert good.ok and good.role == "analyst" and good.name == "sato"
    assert (bad.ok, bad.reason) == (False, "bad")
    assert (unknown.ok, unknown.reason) == (False, "bad")


def test_account_locks_after_repeated_failures_even_for_the_right_password(sessions) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with sessions.begin() as session:
        reasons = [accounts.authenticate(session, "sato", f"wrong {i}", now).reason
                   for i in range(accounts.MAX_FAILURES)]
        assert reasons == ["bad"] * (accounts.MAX_FAILURES - 1) + ["locked"]
        assert accounts.authenticate(session, "sato", "a long enough password", now).reason == "locked"
        later = now + timedelta(minutes=accounts.LOCK_MINUTES + 1)
        assert accounts.authenticate(session, "sato", "a long enough password", later).ok


def test_new_password_ends_open_sessions_and_unlocks(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        login = accounts.authenticate(session, "sato", "a long enough password")
        assert accounts.current_user(session, login.user_id, login.epoch) is not None
        accounts.set_password(session, "sato", "another long password")
        assert accounts.current_user(session, login.user_id, login.epoch) is None


def test_short_passwords_and_unknown_users_are_refused_with_a_hint(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session, pytest.raises(MamoriError) as short:
        accounts.set_password(session, "sato", "short")
    assert "at least" in (short.value.hint or "")
    with sessions.begin() as session, pytest.raises(MamoriError) as unknown:
        accounts.set_password(session, "ghost", "a long enough password")
    assert "users add" in (unknown.value.hint or "")


def test_session_cookie_secret_is_private_and_stable(tmp_path: Path) -> None:
    key = load_secret(tmp_path)
    assert load_secret(tmp_path) == key and len(key) == 32
    assert (tmp_path / "console-secret.key").stat().st_mode & 0o077 == 0
