"""Shared by the tests that start a real ``mamori serve`` child: the Whoami Sigma rule, Windows
process-creation events that fire it, a poll-until helper, and the running child with its tokens."""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from mamori.service.launch import ServiceProcess, seed_tokens

T = TypeVar("T")

_WHOAMI_RULE = """
title: Whoami Execution
id: {rule_id}
status: test
level: high
author: Mamori tests
tags: [attack.discovery, attack.t1033]
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    CommandLine|contains: whoami
  condition: selection
"""


def whoami_rule(rule_id: str) -> str:
    """Sigma YAML of the high-level "Whoami Execution" rule (discovery, T1033) with the given id; it fires on
    any process-creation event whose command line contains ``whoami``."""
    return _WHOAMI_RULE.format(rule_id=rule_id)


def process_event(seq: int | None, command: str, host: str, user: str = "alice", **fields: str) -> dict[str, Any]:
    """A Windows Security 4688 (process creation) event running ``command`` on ``host`` as ``user``, stamped
    now; ``seq`` (kept as text, left out when None) and ``fields`` make otherwise equal events distinct."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event: dict[str, Any] = {
        "EventTime": now, "Hostname": host, "EventID": 4688, "Channel": "Security",
        "SourceName": "Microsoft-Windows-Security-Auditing", "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": command, "SubjectUserName": user}
    if seq is not None:
        event["seq"] = str(seq)
    event.update(fields)
    return event


def wait_for(predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Call ``predicate`` every ``interval`` seconds until it gives a truthy value and return that value;
    AssertionError when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout:g} s")


@dataclass
class Running:
    """The child service, its API tokens by role (admin, analyst, viewer), and its data folder."""

    process: ServiceProcess
    tokens: dict[str, str]
    data_dir: Path

    @property
    def url(self) -> str:
        """Base URL of the child (http://127.0.0.1:port)."""
        return self.process.url

    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header carrying the token of ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def client(self, role: str, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client on the child with the token of ``role`` (the caller closes it)."""
        return httpx.Client(base_url=self.url, headers=self.headers(role), timeout=timeout)


@contextlib.contextmanager
def running_service(root: Path, rules: Mapping[str, str],
                    extra: Mapping[str, str] | None = None) -> Iterator[Running]:
    """Start a ``mamori serve`` child with its data in ``root/data`` and the given rules (file name to Sigma
    YAML, written to ``root/rules``), one token per role seeded before it starts, and stop it afterwards.
    Settings: ``MAMORI_BATCH_SECONDS=0.1`` (so alerts come quickly) updated with ``extra``."""
    rules_dir = root / "rules"
    rules_dir.mkdir()
    for name, text in rules.items():
        (rules_dir / name).write_text(textwrap.dedent(text), encoding="utf-8")
    data = root / "data"
    tokens = seed_tokens(data)
    process = ServiceProcess(data, rules=[rules_dir], extra={"MAMORI_BATCH_SECONDS": "0.1", **(extra or {})})
    process.start()
    try:
        yield Running(process, tokens, data)
    finally:
        process.stop()
