"""What the cases room tells the rest of the SOC: an alert or an incident was created or changed.

The cases worker (``mamori.cases.worker``) emits one ``CaseEvent`` per change after its transaction
commits; playbooks and anything else subscribe with ``CaseBus.subscribe``. Payloads are plain JSON
dictionaries (the REST API's shape) so a listener never holds a database session of the emitter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["alert.created", "alert.updated", "incident.created", "incident.updated"]
KINDS: tuple[EventKind, ...] = ("alert.created", "alert.updated", "incident.created", "incident.updated")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseEvent:
    """One change: its kind, the alert and/or incident as JSON dictionaries, who made it, what changed."""

    kind: EventKind
    alert: dict[str, Any] | None = None
    incident: dict[str, Any] | None = None
    actor: str = "system"
    changes: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[CaseEvent], None]


class CaseBus:
    """A synchronous fan-out of case events to listeners; a failing listener is logged, never fatal."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every event published from now on."""
        with self._lock:
            self._listeners.append(listener)

    def publish(self, event: CaseEvent) -> None:
        """Hand ``event`` to every listener in subscription order."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop incident handling
                log.exception("case event listener failed on %s", event.kind)
