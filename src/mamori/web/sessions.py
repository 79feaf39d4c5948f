"""Signed console session cookies (itsdangerous) and the CSRF token each session carries.

The cookie holds only the user id, the account's session epoch and a random CSRF token, signed with a
key kept in the data folder (``console-secret.key``, mode 0600, made on first use). It is HttpOnly and
SameSite=Lax, Secure when the request came over HTTPS, and expires after ``MAX_AGE_SECONDS``. Every
POST carries the CSRF token back (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "mamori_console"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class ConsoleSession:
    """What a session cookie says: whose it is, the account epoch it was made in, its CSRF token."""

    user_id: int
    epoch: int
    csrf: str


def load_secret(data_dir: Path) -> bytes:
    """The signing key of this data folder, created (0600, write-then-rename) when missing."""
    path = data_dir / "console-secret.key"
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)  # never replace a key another process wrote first
    tmp.unlink(missing_ok=True)
    return path.read_bytes()


class SessionCodec:
    """Signs and reads session cookies with one key."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="mamori-console-session")

    def issue(self, response: Response, request: Request, user_id: int, epoch: int) -> ConsoleSession:
        """Set a fresh session cookie (new CSRF token) on ``response``."""
        session = ConsoleSession(user_id, epoch, secrets.token_urlsafe(24))
        value = self._serializer.dumps({"u": user_id, "e": epoch, "c": session.csrf})
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_SECONDS, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/console")
        return session

    def read(self, request: Request) -> ConsoleSession | None:
        """The session of this request, or None when there is no valid, unexpired cookie."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not {"u", "e", "c"} <= data.keys():
            return None
        return ConsoleSession(int(data["u"]), int(data["e"]), str(data["c"]))

    @staticmethod
    def clear(response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(COOKIE, path="/console")


def csrf_matches(session: ConsoleSession, sent: str | None) -> bool:
    """True when the token sent with a POST is this session's (constant-time)."""
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
