"""What a playbook is, once loaded: a trigger, conditions and ordered actions (frozen values).

Playbooks are YAML data files (see ``data/examples``); ``mamori.cases.playbooks.loader`` turns a
file into a ``Playbook`` or refuses it with the file, the field and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

LEVELS = ("informational", "low", "medium", "high", "critical")
OPERATORS = ("equals", "not_equals", "in", "contains", "gte", "lte", "exists")
LevelMatch = Literal["at_least", "exact"]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BASE_DELAY = 2.0  # seconds; attempt n waits base_delay * 2 ** (n - 1) before attempt n + 1
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Trigger:
    """Which case events start the playbook: event kinds, level, tags, rule ids and entity values."""

    events: tuple[str, ...]
    level: str | None = None
    level_match: LevelMatch = "at_least"
    tags: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    entities: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (kind, values): any value of any kind matches
    on_playbook_changes: bool = False  # also start on changes made by playbooks (off: no loops)
    cooldown_seconds: float = 0.0  # at most one run per incident (or alert) in this window; 0: no limit


@dataclass(frozen=True)
class Comparison:
    """One test on a dotted path of the event payload, e.g. ``incident.alert_count gte 2``."""

    path: str
    operator: str
    value: Any


@dataclass(frozen=True)
class ConditionGroup:
    """``all`` (every item holds) or ``any`` (one item holds) over comparisons and nested groups."""

    mode: Literal["all", "any"]
    items: tuple[Comparison | ConditionGroup, ...]


@dataclass(frozen=True)
class RetryPolicy:
    """How often an action is tried and how long to wait between tries (exponential back-off)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one."""
        return float(self.base_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class ActionSpec:
    """One step: its name and type, its type-specific parameters, approval, retries and timeout."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    approval_required: bool = False
    retry: RetryPolicy = RetryPolicy()
    timeout: float = DEFAULT_TIMEOUT
    continue_on_failure: bool = False


@dataclass(frozen=True)
class Playbook:
    """A loaded playbook file."""

    name: str
    path: Path
    sha256: str
    trigger: Trigger
    conditions: ConditionGroup | None
    actions: tuple[ActionSpec, ...]
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Refusal:
    """A playbook file that was not loaded: the file, the field (e.g. ``actions[1].url``) and why."""

    path: Path
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Library:
    """Every playbook of a folder: the loaded ones, and the refused files with their reasons."""

    playbooks: tuple[Playbook, ...] = ()
    refused: tuple[Refusal, ...] = ()
    folder: Path | None = None

    def get(self, name: str) -> Playbook | None:
        """The loaded playbook with this name, or None."""
        return next((p for p in self.playbooks if p.name == name), None)
