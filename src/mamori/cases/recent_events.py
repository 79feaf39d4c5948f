"""The events of the latest alerts, kept in memory for the grouping worker.

The pipeline holds an alert's events when it creates or updates the alert; the grouping worker needs a
few of their fields a moment later (an alert's process tree). Read back from the lake, every look-up
opens the footers of every file written in the seconds before: under sustained load that made the
worker the service's biggest reader. The pipeline now remembers those fields here once its batch is
committed (the events are stored), and the worker reads the lake only for what is not here: events
of alerts from before a restart, or forgotten (the oldest go first beyond ``capacity``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import polars as pl

from mamori.cases.event_lookup import Event, clean_event
from mamori.cases.grouping import PROCESS_FIELDS
from mamori.events import schema

TREE_FIELDS = (schema.UID, schema.TIME, schema.HOST, *PROCESS_FIELDS)  # what process trees are built from
CAPACITY = 20_000  # events: about a minute of alerts' events under heavy load


class RecentEvents:
    """A bounded uid -> event map of alerts' stored events (``TREE_FIELDS`` only), safe across threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._events: OrderedDict[str, Event] = OrderedDict()
        self._lock = threading.Lock()

    def remember_rows(self, frame: pl.DataFrame, uids: Iterable[str]) -> None:
        """Keep the rows of ``frame`` with these ids (a committed batch and its alerts' event ids)."""
        if schema.UID not in frame.columns:
            return
        wanted = set(uids)
        if not wanted:
            return
        rows = frame.filter(pl.col(schema.UID).is_in(list(wanted)))
        self.remember(rows.select([c for c in TREE_FIELDS if c in frame.columns]).to_dicts())

    def remember(self, events: Iterable[Mapping[str, object]]) -> None:
        """Keep events (as read from a batch: fields that are not ``TREE_FIELDS`` are left out)."""
        kept = [clean_event({k: v for k, v in e.items() if k in TREE_FIELDS}) for e in events]
        with self._lock:
            for event in kept:
                uid = str(event.get(schema.UID))
                self._events[uid] = event
                self._events.move_to_end(uid)
            while len(self._events) > self.capacity:
                self._events.popitem(last=False)

    def recall(self, uids: Iterable[str]) -> dict[str, Event]:
        """The remembered events among these ids, by id."""
        with self._lock:
            return {u: self._events[u] for u in uids if u in self._events}

    def __len__(self) -> int:
        return len(self._events)
