"""Shared by the API tests: the test rule and the handle on the running service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mamori.service.launch import ServiceProcess

WHOAMI_RULE = """
title: Whoami Execution
id: 0c1a0000-0000-4000-8000-000000000001
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


@dataclass
class Running:
    """The child service, its tokens by role, and its data folder."""

    process: ServiceProcess
    tokens: dict[str, str]
    data_dir: Path

    @property
    def url(self) -> str:
        """Base URL."""
        return self.process.url

    def headers(self, role: str) -> dict[str, str]:
        """Authorization header for a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}
