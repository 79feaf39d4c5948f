"""What every UEBA detector offers: learn a baseline, score a batch, learn from feedback, persist."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import polars as pl

from mamori.detect.anomaly.records import Anomaly

Peers = dict[str, str]  # entity -> peer group name (a user's department, a host's role)


class Detector(Protocol):
    """A behaviour detector over event batches (Polars frames); no per-event Python on hot paths."""

    name: str

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Build the baseline from stored events."""

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies in a batch of new events, each with observed vs typical and its evidence."""
        ...

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Take an analyst's 'benign' verdict into the baseline so the same thing stays quiet."""

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Baselines as frames and settings as JSON-able values, for saving."""
        ...

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a state written by :meth:`state`."""


def host_role(host: str) -> str:
    """Default peer group of a host: its name without digits (``ws12`` -> ``ws``)."""
    return "".join(ch for ch in host if not ch.isdigit()).rstrip("-_.") or "host"


def time_span(events: pl.DataFrame) -> tuple[datetime, datetime]:
    """First and last event time of a batch."""
    t = events.get_column("_time")
    lo, hi = t.min(), t.max()
    if not isinstance(lo, datetime) or not isinstance(hi, datetime):
        raise ValueError("events have no _time values")
    return lo, hi


_T = TypeVar("_T")
_PER_FRAME: list[tuple[weakref.ref[pl.DataFrame], Hashable, Any]] = []
PER_FRAME_KEPT = 8  # results remembered: an engine's vector kinds for one batch and one baseline


def per_frame(events: pl.DataFrame, key: Hashable, build: Callable[[], _T]) -> _T:
    """``build()`` once per frame and ``key``, kept while the frame lives: an engine's detectors score
    the same batch (and fit the same baseline), and several derive the same behaviour vectors from it
    (ECOD, half-space trees and the behaviour detector over host hours: seconds over a baseline)."""
    for ref, known, value in _PER_FRAME:
        if ref() is events and known == key:
            return value  # type: ignore[no-any-return]
    value = build()
    _PER_FRAME[:] = [e for e in _PER_FRAME if e[0]() is not None][-(PER_FRAME_KEPT - 1):]
    _PER_FRAME.append((weakref.ref(events, _forget), key, value))
    return value


def _forget(ref: weakref.ref[pl.DataFrame]) -> None:
    """A frame is gone: so is what was built from it."""
    _PER_FRAME[:] = [e for e in _PER_FRAME if e[0] is not ref]
