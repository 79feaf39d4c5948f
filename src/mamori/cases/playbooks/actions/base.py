"""The contract every playbook action keeps: what it receives, what it returns, how it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker


class ActionFailed(Exception):
    """The action did not do its job; ``retryable`` says whether trying again may help, ``output``
    keeps what was learnt (status code, response text, exit code)."""

    def __init__(self, message: str, *, retryable: bool = True, output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.output = output or {}


@dataclass(frozen=True)
class ActionContext:
    """What an action may use: the records database, who it acts as, the run, and its time budget."""

    sessions: sessionmaker[Session]
    playbook: str
    run_id: int
    payload: dict[str, Any]
    timeout: float

    @property
    def actor(self) -> str:
        """The name changes made by this playbook carry (the loop guard recognises it)."""
        return f"playbook:{self.playbook}"


Check = Callable[[dict[str, Any]], list[tuple[str, str]]]
Run = Callable[[ActionContext, dict[str, Any]], dict[str, Any]]


def no_check(_params: dict[str, Any]) -> list[tuple[str, str]]:
    """An action type without checks beyond its required and allowed fields."""
    return []


@dataclass(frozen=True)
class ActionType:
    """An action type: its name, its fields (required, optional, secret) and the function that runs it.

    Secret fields may hold ``${env:NAME}`` and are not templated; every other string is a template.
    """

    name: str
    run: Run
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    check: Check = field(default=no_check)
    description: str = ""
