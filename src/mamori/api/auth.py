"""API authentication: tokens (only their SHA-256 is stored), users with a role, role checks per route.

Roles are ordered viewer < analyst < admin: a route names the least role it needs. Beside them,
``ingest`` is for log shippers: it may send events and nothing else (not even read them), so a token
left in a forwarder's configuration cannot acknowledge alerts or hunt; analysts and admins may send
events too. Tokens arrive as ``Authorization: Bearer <token>`` (or ``X-Mamori-Token``); a token may
expire. A missing, unknown, revoked or expired token is 401, a role too low is 403; neither says
whether the token exists.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mamori.errors import MamoriError
from mamori.store.records import INGEST_ROLE, ROLES, ApiToken, AuditEntry, User

RANK = {"viewer": 0, "analyst": 1, "admin": 2}
INGEST = INGEST_ROLE


def role_admits(role: str, needed: str) -> bool:
    """Whether a caller with ``role`` may do what needs ``needed`` (``ingest`` is needed to send events:
    the ingest role, analysts and admins have it; the ingest role has nothing else)."""
    if needed == INGEST:
        return role == INGEST or RANK.get(role, -1) >= RANK["analyst"]
    return role != INGEST and RANK.get(role, -1) >= RANK[needed]
TOKEN_PREFIX = "mamori_"
CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their role and the token used."""

    user: str
    role: str
    token_id: int

    def may(self, role: str) -> bool:
        """True when this principal's role admits what needs ``role`` (``role_admits``)."""
        return role_admits(self.role, role)


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256: tokens are long random strings, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str) -> User:
    """Add a user with a role; errors name the bad value."""
    if role not in ROLES:
        raise MamoriError(f"unknown role {role!r}", where=f"user {name}", hint=f"roles: {', '.join(ROLES)}")
    if session.scalars(select(User).where(User.name == name)).first() is not None:
        raise MamoriError(f"user {name!r} exists already", where=f"user {name}")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user_name: str, token_name: str = "default",
                expires_at: datetime | None = None) -> str:
    """Create a token for a user and return it (shown once; only its hash is kept); with ``expires_at``,
    it stops working then (a shipper's or a contractor's token need not live for ever)."""
    user = session.scalars(select(User).where(User.name == user_name)).first()
    if user is None:
        raise MamoriError(f"no user {user_name!r}", where="tokens", hint="create it with `mamori users add`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=token_name, token_hash=hash_token(token), prefix=token[:12],
                         expires_at=expires_at))
    session.flush()
    return token


def revoke_token(session: Session, prefix: str) -> int:
    """Revoke the tokens whose shown prefix (or name) matches; return how many."""
    found = list(session.scalars(select(ApiToken).where((ApiToken.prefix == prefix[:12]) | (ApiToken.name == prefix))))
    for token in found:
        token.revoked = True
    return len(found)


def audit(session: Session, actor: str, action: str, target: str = "", **detail: object) -> None:
    """Record a change in the audit log (in the caller's transaction)."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=dict(detail)))


def bootstrap_admin(sessions: sessionmaker[Session]) -> str | None:
    """On a first start (no user at all) create ``admin`` and return its first token; else None."""
    with sessions.begin() as session:
        if session.scalars(select(User).limit(1)).first() is not None:
            return None
        create_user(session, "admin", "admin")
        token = issue_token(session, "admin", "first admin token")
        audit(session, "mamori", "bootstrap", "user admin")
        return token


class TokenCheck:
    """Looks tokens up (with a short cache, so ingest at full rate does not hit the database each time)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop cached lookups (after a revocation through the API)."""
        with self._lock:
            self._cache.clear()

    def lookup(self, token: str) -> Principal | None:
        """The principal of a token, or None for an unknown, revoked or disabled one."""
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        with self.sessions() as session:
            row = session.execute(
                select(ApiToken.id, ApiToken.revoked, ApiToken.last_used_at, ApiToken.expires_at, User.name,
                       User.role, User.disabled)
                .join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == digest)).first()
        principal = None
        stamp = datetime.now(UTC)
        if row is not None and not row.revoked and not row.disabled and not expired(row.expires_at, stamp):
            principal = Principal(row.name, row.role, row.id)
            if row.last_used_at is None or (stamp - row.last_used_at).total_seconds() > 60:
                self._touch(row.id, stamp)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        return principal


    def _touch(self, token_id: int, stamp: datetime) -> None:
        """Note when a token was last used (best effort: a busy database skips it)."""
        try:
            with self.sessions.begin() as session:
                session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=stamp))
        except OperationalError:
            pass


def expired(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a token's expiry has passed (the database may hand times back without their zone: UTC)."""
    if expires_at is None:
        return False
    return (expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)) <= now


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-mamori-token") or None


def require(role: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency admitting callers whose role is at least ``role``."""

    def check(request: Request) -> Principal:
        token = _token_of(request)
        checker: TokenCheck = request.app.state.tokens
        principal = checker.lookup(token) if token else None
        if principal is None:
            raise HTTPException(401, detail="missing or invalid API token (send 'Authorization: Bearer <token>')",
                                headers={"WWW-Authenticate": "Bearer"})
        if not principal.may(role):
            needed = "ingest (or analyst)" if role == INGEST else role
            raise HTTPException(403, detail=f"this action needs the {needed} role; your token has {principal.role}")
        return principal

    return check


Viewer = Depends(require("viewer"))
Analyst = Depends(require("analyst"))
Admin = Depends(require("admin"))
Ingester = Depends(require(INGEST))
