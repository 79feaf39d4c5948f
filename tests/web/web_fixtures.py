"""Shared by the console tests: the test rule and playbook, the running service with console users,
events that fire the rule, and small helpers to wait and to log in over HTTP."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from service_testing import Running
from service_testing import wait_for as wait_until

WHOAMI_RULE = """\
title: Whoami Execution
id: 0c1a0000-0000-4000-8000-00000000c0de
status: test
level: high
author: Mamori console tests
tags: [attack.discovery, attack.t1033, attack.execution, attack.t1059.003]
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    CommandLine|contains: whoami
  condition: selection
"""

APPROVAL_PLAYBOOK = """\
name: watch-host-after-approval
description: Put the incident's first host on the watchlist once an analyst approves
trigger:
  events: [incident.created]
actions:
  - name: watch-host
    type: add_to_list
    approval: required
    list: watchlist
    entity_kind: host
    value: "{{ incident.entities.host | first }}"
    reason: "incident #{{ incident.id }} (console test)"
"""

PASSWORDS = {"analyst": "analyst console pass 1", "viewer": "viewer console pass 1",
             "admin": "admin console pass 1"}
EXTRA_USERS = {"lockout-user": "lockout console pass 1", "changer-user": "changer console pass 1"}  # viewers
T = TypeVar("T")


@dataclass
class Console(Running):
    """The child service with its API tokens (``Running``) and, per role, a console user and password."""

    def api(self, role: str = "admin") -> httpx.Client:
        """An API client with the token of a role."""
        return self.client(role)

    @contextlib.contextmanager
    def login(self, role: str, language: str = "en") -> Iterator[httpx.Client]:
        """A console client logged in as the user of a role (cookie set) reading in ``language``, closed
        afterwards (tests share the users, so each one says which language it expects)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            answer = client.post("/console/login", data={"username": f"{role}-user", "password": PASSWORDS[role]})
            assert answer.status_code == 303, answer.text
            token = csrf_of(client.get("/console/preferences").text)
            client.post("/console/preferences", data={"language": language, "csrf": token})
            yield client


def whoami_event(seq: int, host: str = "WS-CONSOLE1", user: str = "tanaka") -> dict[str, Any]:
    """A Windows process-creation event the test rule fires on."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"EventTime": now, "Hostname": host, "EventID": 4688, "Channel": "Security",
            "SourceName": "Microsoft-Windows-Security-Auditing",
            "NewProcessName": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all",
            "SubjectUserName": user, "IpAddress": "192.0.2.10", "seq": str(seq)}


def wait_for(predicate: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll until ``predicate`` gives a truthy value and return it; the console's waits are the longer
    ones (ingest, grouping, then playbooks)."""
    return wait_until(predicate, timeout=timeout, interval=0.2)


def first_incident(console: Console) -> int:
    """The id of the first incident the service opened (waiting for it)."""

    def found() -> int | None:
        with sqlite3.connect(console.data_dir / "mamori.db") as db:
            row = db.execute("SELECT min(id) FROM incidents").fetchone()
        return int(row[0]) if row and row[0] else None

    return wait_for(found)


def csrf_of(html: str) -> str:
    """The CSRF token in a console page."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
