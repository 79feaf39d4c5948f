"""Login, logout and the reader's preferences (language, time zone); every outcome is audited, passwords
never leave this module."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mamori.api.auth import audit
from mamori.api.deps import service_of
from mamori.locales import LANGUAGES
from mamori.web import accounts
from mamori.web.context import ConsoleUser, Reader, checked_form, codec, optional_user, render, throttle

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only console paths are followed after login (no open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


@router.get("/login", response_class=HTMLResponse, summary="Console login page")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form (in the browser's language)."""
    if optional_user(request) is not None:
        return RedirectResponse(_safe_next(next), 303)
    return render(request, "login.html", None, next=_safe_next(next), error="")


@router.post("/login", summary="Log in to the console")
def login(request: Request, username: str = Form(..., max_length=200), password: str = Form(..., max_length=1000),
          next: str = Form("/console/")) -> Response:
    """Check the password; on success set a session cookie, else count the failure (per account and per
    address) and show the form again."""
    address = request.client.host if request.client else "?"
    gate = throttle(request)
    if gate.blocked(address):
        return render(request, "login.html", None, status_code=429, next=_safe_next(next), error="login.throttled")
    with service_of(request).sessions.begin() as session:
        result = accounts.authenticate(session, username, password)
        audit(session, username, "console.login" if result.ok else "console.login_failed", f"user {username}",
              address=address, **({} if result.ok else {"reason": result.reason}))
    if not result.ok:
        gate.failed(address)
        error = "login.locked" if result.reason == "locked" else "login.failed"
        return render(request, "login.html", None, status_code=401, next=_safe_next(next), error=error)
    response = RedirectResponse(_safe_next(next), 303)
    codec(request).issue(response, request, result.user_id, result.epoch)
    return response


@router.post("/logout", summary="Log out of the console")
async def logout(request: Request, user: ConsoleUser = Reader) -> Response:
    """End every session of this user and clear the cookie."""
    await checked_form(request, user, "viewer")
    with service_of(request).sessions.begin() as session:
        accounts.end_sessions(session, user.id)
        audit(session, user.name, "console.logout", f"user {user.name}")
    response = RedirectResponse("/console/login", 303)
    codec(request).clear(response)
    return response


@router.get("/preferences", response_class=HTMLResponse, summary="The reader's language and time zone")
def preferences_page(request: Request, user: ConsoleUser = Reader) -> Response:
    """The preferences form."""
    return render(request, "preferences.html", user, zones=_zones(), languages=LANGUAGES,
                  minimum=accounts.MIN_PASSWORD_LENGTH, done=request.query_params.get("done", ""))


def _zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@router.post("/preferences", summary="Change the reader's language or time zone")
async def preferences(request: Request, user: ConsoleUser = Reader) -> Response:
    """Store the language and/or time zone; return to the page the reader was on."""
    form: dict[str, Any] = await checked_form(request, user, "viewer")
    language = form.get("language") or None
    zone = form.get("time_zone")
    if zone is not None and zone and zone not in available_timezones():
        zone = None
    with service_of(request).sessions.begin() as session:
        accounts.set_preferences(session, user.id, language if language in LANGUAGES else None, zone)
        audit(session, user.name, "console.preferences", f"user {user.name}", language=language, time_zone=zone)
    return RedirectResponse(_safe_next(form.get("back")), 303)


@router.post("/password", summary="Change one's own console password")
async def change_password(request: Request, user: ConsoleUser = Reader) -> Response:
    """Check the current password, set the new one (other sessions end), and keep this browser logged in."""
    form: dict[str, Any] = await checked_form(request, user, "viewer")
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    error = ""
    with service_of(request).sessions.begin() as session:
        if not accounts.authenticate(session, user.name, current).ok:
            error = "password.wrong"
        elif new != again:
            error = "password.mismatch"
        elif len(new) < accounts.MIN_PASSWORD_LENGTH:
            error = "password.short"
        else:
            accounts.set_password(session, user.name, new)
        audit(session, user.name, "console.password" if not error else "console.password_refused",
              f"user {user.name}", **({"reason": error} if error else {}))
    if error:
        return render(request, "preferences.html", user, status_code=400, zones=_zones(), languages=LANGUAGES,
                      password_error=error, minimum=accounts.MIN_PASSWORD_LENGTH)
    with service_of(request).sessions() as session:
        found = accounts.current_user_by_name(session, user.name)
    response = RedirectResponse("/console/preferences?done=password", 303)
    if found is not None:
        codec(request).issue(response, request, found[0], found[1])
    return response
