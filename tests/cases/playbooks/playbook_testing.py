"""Shared by the playbook tests: stepping a runner until a condition holds, and sample case payloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from mamori.cases.playbooks.runner import PlaybookRunner


@dataclass
class Received:
    """One request the HTTP sink received."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HttpSink:
    """A real HTTP server on 127.0.0.1: records every POST; answers with the queued status codes first
    (then 200); ``gate`` (when set) holds every answer until it is released."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    gate: threading.Event | None = None


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: the messages it received, parsed, and the logins."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


def drive(runner: PlaybookRunner, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Step the runner (in the test's thread) until ``done()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the runner did not get there in time"
        if not runner.step():
            time.sleep(0.01)


INCIDENT = {
    "id": 42, "title": "資格情報の窃取と横展開 (WS-HR-07)", "severity": "high", "status": "new",
    "alert_count": 3, "owner": None, "tactics": ["credential_access", "lateral_movement"],
    "techniques": ["T1003.001", "T1021.002"], "first_seen": "2026-11-29T01:02:03+00:00",
    "entities": {"host": ["WS-HR-07"], "user": ["CORP\\tanaka"], "ip": ["203.0.113.45"]},
}
ALERT = {
    "id": 7, "rule_id": "0d894093-71bc-43c3-8c4d-ecfc28dcf5d9", "rule_title": "LSASS Memory Dump",
    "level": "critical", "tags": ["attack.credential_access", "attack.t1003.001"],
    "entities": {"host": "WS-HR-07", "user": "CORP\\tanaka", "ip": "203.0.113.45", "process": None,
                 "file_hash": None},
}
