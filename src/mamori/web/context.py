"""What every console page shares: who is reading (from the session cookie), role and CSRF checks, the
reader's language and time zone, and rendering a template with all of it."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select

from mamori.api.auth import role_admits
from mamori.api.deps import service_of
from mamori.cases.playbooks.records import ActionRun
from mamori.web import accounts
from mamori.web.i18n import Translator, negotiate, translator
from mamori.web.sessions import CSRF_FIELD, CSRF_HEADER, SessionCodec, csrf_matches, load_secret

ENVIRONMENT = Environment(loader=PackageLoader("mamori.web", "templates"), autoescape=select_autoescape(),
                          trim_blocks=True, lstrip_blocks=True)
PAGE_HEADERS = {  # every console page: not cached, not framed, scripts and styles only from the console
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}
LOGIN_WINDOW_SECONDS = 300.0
LOGIN_FAILURES_PER_ADDRESS = 20  # failed logins from one address within the window before it must wait


@dataclass(frozen=True)
class ConsoleUser:
    """The person reading a page: their user id, name, role, language, time zone and CSRF token."""

    id: int
    name: str
    role: str
    language: str
    time_zone: str | None
    csrf: str

    def may(self, role: str) -> bool:
        """True when this user's role admits what needs ``role`` (``api.auth.role_admits``)."""
        return role_admits(self.role, role)


def codec(request: Request) -> SessionCodec:
    """The session codec of this application (its key lives in the service's data folder)."""
    state = request.app.state
    found: SessionCodec | None = getattr(state, "console_codec", None)
    if found is None:
        found = SessionCodec(load_secret(service_of(request).settings.data_dir))
        state.console_codec = found
    return found


class LoginThrottle:
    """Failed logins per client address in a sliding window: too many and the address must wait."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and now - times[0] > LOGIN_WINDOW_SECONDS:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        """True when this address failed too often lately."""
        with self._lock:
            return len(self._recent(address, time.monotonic())) >= LOGIN_FAILURES_PER_ADDRESS

    def failed(self, address: str) -> None:
        """Count one failed login from this address."""
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._recent(address, time.monotonic()).append(time.monotonic())


def throttle(request: Request) -> LoginThrottle:
    """The login throttle of this application."""
    state = request.app.state
    found: LoginThrottle | None = getattr(state, "console_throttle", None)
    if found is None:
        found = state.console_throttle = LoginThrottle()
    return found


def page_error(status: int, key: str, **values: Any) -> HTTPException:
    """An HTTP error whose page says ``key`` of the catalogues (with ``values``) in the reader's language; a
    value written ``@other.key`` is itself translated."""
    return HTTPException(status, detail={"key": key, "values": values})


def _to_login(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/console/login?next={quote(target)}"
    if request.headers.get("hx-request"):
        return HTTPException(401, detail="login needed", headers={"HX-Redirect": location})
    return HTTPException(303, detail="login needed", headers={"Location": location})


def optional_user(request: Request) -> ConsoleUser | None:
    """The logged-in reader of this request, or None."""
    session = codec(request).read(request)
    if session is None:
        return None
    with service_of(request).sessions() as db:
        found = accounts.current_user(db, session.user_id, session.epoch)
        if found is None:
            return None
        user, account = found
        language = account.language or negotiate(request.headers.get("accept-language"))
        return ConsoleUser(user.id, user.name, user.role, language, account.time_zone, session.csrf)


def page_user(request: Request) -> ConsoleUser:
    """A FastAPI dependency: the logged-in reader, or a redirect to the login page."""
    user = optional_user(request)
    if user is None:
        raise _to_login(request)
    return user


def need_role(user: ConsoleUser, role: str) -> None:
    """Refuse (403) a reader whose role is below ``role``."""
    if not user.may(role):
        raise page_error(403, "error.role", needed=f"@role.{role}", role=f"@role.{user.role}")


async def checked_form(request: Request, user: ConsoleUser, role: str) -> dict[str, Any]:
    """The submitted form of a POST after checking the reader's role and the CSRF token (403 otherwise);
    repeated fields come back as lists, uploaded files as ``UploadFile``."""
    need_role(user, role)
    form = await request.form()
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    session = codec(request).read(request)
    if session is None or not csrf_matches(session, str(sent) if sent else None):
        raise page_error(403, "error.csrf")
    out: dict[str, Any] = {}
    for key in form:
        values = list(form.getlist(key))  # text fields are str, uploaded files stay UploadFile
        out[key] = values if len(values) > 1 else values[0]
    return out


def reader_translator(request: Request, user: ConsoleUser | None) -> Translator:
    """The translator for this reader (their preference, else the browser's language)."""
    if user is not None:
        return translator(user.language, user.time_zone)
    return translator(negotiate(request.headers.get("accept-language")))


def pending_approvals(request: Request) -> int:
    """How many playbook actions wait for a person's decision (shown beside the navigation link)."""
    with service_of(request).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ActionRun)
                                  .where(ActionRun.approval == "pending")) or 0)


def render(request: Request, template: str, user: ConsoleUser | None, status_code: int = 200,
           **values: Any) -> HTMLResponse:
    """Render a template with the reader, their translator (``t``), the CSRF token and the current path."""
    t = reader_translator(request, user)
    html = ENVIRONMENT.get_template(template).render(
        request=request, user=user, t=t, lang=t.language, csrf=user.csrf if user else "",
        path=request.url.path, pending_approvals=pending_approvals(request) if user else 0, **values)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


Reader = Depends(page_user)  # route parameter default: the logged-in reader (or a redirect to log in)
