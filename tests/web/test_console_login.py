"""Logging in to the console: lockout after repeated failures, changing one's own password, logging out."""

from __future__ import annotations

import httpx
from web_fixtures import EXTRA_USERS, Console, csrf_of

from mamori.web.accounts import MAX_FAILURES


def _login(client: httpx.Client, user: str, password: str) -> httpx.Response:
    return client.post("/console/login", data={"username": user, "password": password})


def test_repeated_failures_lock_the_account_even_for_the_right_password(console: Console) -> None:
    with httpx.Client(base_url=console.url) as client:
        answers = [_login(client, "lockout-user", f"wrong password {i}") for i in range(MAX_FAILURES)]
        assert [a.status_code for a in answers] == [401] * MAX_FAILURES
        assert "locked" in answers[-1].text
        right = _login(client, "lockout-user", EXTRA_USERS["lockout-user"])
    assert right.status_code == 401 and "locked" in right.text
    assert "mamori_console" not in right.headers.get("set-cookie", "")


def test_changing_ones_password_keeps_this_session_and_ends_the_others(console: Console) -> None:
    old, new = EXTRA_USERS["changer-user"], "changer console pass 2"
    with httpx.Client(base_url=console.url) as other, httpx.Client(base_url=console.url) as this:
        assert _login(other, "changer-user", old).status_code == 303
        assert _login(this, "changer-user", old).status_code == 303
        token = csrf_of(this.get("/console/preferences").text)
        mismatch = this.post("/console/password", data={"csrf": token, "current": old, "new": new, "again": "x"})
        assert mismatch.status_code == 400 and "The two new passwords differ." in mismatch.text
        changed = this.post("/console/password", data={"csrf": token, "current": old, "new": new, "again": new})
        assert changed.status_code == 303
        assert this.get("/console/").status_code == 200
        assert other.get("/console/").status_code == 303
    with httpx.Client(base_url=console.url) as client:
        assert _login(client, "changer-user", old).status_code == 401
        assert _login(client, "changer-user", new).status_code == 303


def test_logging_out_ends_the_session(console: Console) -> None:
    with console.login("viewer") as client:
        token = csrf_of(client.get("/console/").text)
        kept = dict(client.cookies)
        assert client.post("/console/logout", data={"csrf": token}).status_code == 303
        assert client.get("/console/").status_code == 303
    with httpx.Client(base_url=console.url, cookies=kept) as replay:
        assert replay.get("/console/").status_code == 303
