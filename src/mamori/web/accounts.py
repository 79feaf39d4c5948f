"""Console passwords: a salted scrypt hash per user, failed-login counting and lockout, language and time zone.

The user (name, role, disabled) is the existing ``users`` row; this room adds ``console_accounts`` beside it
with its own Alembic branch (``web``). Importing this module registers that migrations folder with
``mamori.store.db``. Passwords are never stored or logged, only their scrypt hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mamori.errors import MamoriError
from mamori.locales import LANGUAGES
from mamori.store import db
from mamori.store.records import Base, User, utcnow

MIGRATIONS = str(Path(__file__).parent / "migrations" / "versions")
if MIGRATIONS not in db.MIGRATION_LOCATIONS:
    db.MIGRATION_LOCATIONS.append(MIGRATIONS)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 10
MAX_FAILURES = 5  # consecutive failed logins before the account locks
LOCK_MINUTES = 15


class ConsoleAccount(Base):
    """A user's console login: the password hash, failures, lock, preferences and a session epoch."""

    __tablename__ = "console_accounts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)  # bumped to end every open session
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt gave: the user (on success), or why not (``bad`` or ``locked``)."""

    ok: bool
    reason: str = ""
    user_id: int = 0
    name: str = ""
    role: str = ""
    epoch: int = 0


def hash_password(password: str) -> str:
    """The stored form of a password: ``scrypt$N$r$p$salt$hash`` (hex), salted with 16 random bytes."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                  dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def _user(session: Session, user_name: str) -> User | None:
    return session.scalars(select(User).where(User.name == user_name)).first()


def set_password(session: Session, user_name: str, password: str) -> None:
    """Give an existing user a console password (replacing any), unlock it and end its open sessions."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MamoriError(f"the password is too short ({len(password)} characters)", where=f"user {user_name}",
                          hint=f"use at least {MIN_PASSWORD_LENGTH} characters")
    user = _user(session, user_name)
    if user is None:
        raise MamoriError(f"no user {user_name!r}", where="users passwd", hint="create it with `mamori users add`")
    account = session.get(ConsoleAccount, user.id)
    if account is None:
        session.add(ConsoleAccount(user_id=user.id, password_hash=hash_password(password)))
    else:
        account.password_hash = hash_password(password)
        account.failed_logins, account.locked_until = 0, None
        account.session_epoch += 1
        account.updated_at = utcnow()
    session.flush()


def authenticate(session: Session, user_name: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a login: counts failures, locks the account for ``LOCK_MINUTES`` after ``MAX_FAILURES`` in a row,
    and refuses disabled users. Unknown users cost the same hashing time as known ones."""
    now = now or utcnow()
    user = _user(session, user_name)
    account = session.get(ConsoleAccount, user.id) if user is not None else None
    if user is None or account is None:
        verify_password(password, _DUMMY_HASH)
        return LoginResult(False, "bad")
    if account.locked_until is not None and account.locked_until > now:
        return LoginResult(False, "locked")
    if user.disabled or not verify_password(password, account.password_hash):
        account.failed_logins += 1
        if account.failed_logins >= MAX_FAILURES:
            account.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            account.failed_logins = 0
            return LoginResult(False, "locked")
        return LoginResult(False, "bad")
    account.failed_logins, account.locked_until = 0, None
    return LoginResult(True, "", user.id, user.name, user.role, account.session_epoch)


def current_user(session: Session, user_id: int, epoch: int) -> tuple[User, ConsoleAccount] | None:
    """The user and account behind a session, or None when the user is gone or disabled, or the session
    was ended (password changed, logged out)."""
    user = session.get(User, user_id)
    account = session.get(ConsoleAccount, user_id)
    if user is None or account is None or user.disabled or account.session_epoch != epoch:
        return None
    return user, account


def current_user_by_name(session: Session, user_name: str) -> tuple[int, int] | None:
    """A console user's id and session epoch by name (None without a console account)."""
    user = _user(session, user_name)
    account = session.get(ConsoleAccount, user.id) if user is not None else None
    return None if user is None or account is None else (user.id, account.session_epoch)


def end_sessions(session: Session, user_id: int) -> None:
    """End every open console session of a user (logout)."""
    account = session.get(ConsoleAccount, user_id)
    if account is not None:
        account.session_epoch += 1


def set_preferences(session: Session, user_id: int, language: str | None, time_zone: str | None) -> None:
    """Remember a user's console language and time zone (None leaves a value as it is)."""
    account = session.get(ConsoleAccount, user_id)
    if account is None:
        return
    if language is not None:
        if language not in LANGUAGES:
            raise MamoriError(f"unknown language {language!r}", where="preferences", hint="ja or en")
        account.language = language
    if time_zone is not None:
        account.time_zone = time_zone or None
    account.updated_at = utcnow()
