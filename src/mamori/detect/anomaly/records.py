"""The values every anomaly detector returns: an anomaly with its evidence and a bilingual explanation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Explanation:
    """What an analyst reads, in Japanese and English, written from the same facts."""

    en: str
    ja: str


@dataclass(frozen=True)
class Anomaly:
    """One behaviour that departs from its baseline, with the facts that show it.

    ``observed`` and ``typical`` are the measured value and the baseline it is compared with (for
    example the 99th percentile of the last 30 days); ``window`` is the baseline window, ``peer_group``
    the group the entity was compared with, ``event_uids`` the events behind the anomaly.
    """

    detector: str
    entity_type: str
    entity: str
    time: datetime
    score: float
    observed: float
    typical: float
    window: str
    explanation: Explanation
    peer_group: str = ""
    event_uids: tuple[str, ...] = ()
    detail: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """A stable identity for feedback and de-duplication: detector, entity and what was seen."""
        extra = ",".join(f"{k}={v}" for k, v in self.detail)
        return f"{self.detector}|{self.entity_type}|{self.entity}|{extra}"


def anomaly_record(anomaly: Anomaly) -> dict[str, Any]:
    """An anomaly as JSON values (an analyst's verdict is kept this way across restarts)."""
    return {
        "detector": anomaly.detector,
        "entity_type": anomaly.entity_type,
        "entity": anomaly.entity,
        "time": anomaly.time.isoformat(),
        "score": anomaly.score,
        "observed": anomaly.observed,
        "typical": anomaly.typical,
        "window": anomaly.window,
        "peer_group": anomaly.peer_group,
        "detail": [list(pair) for pair in anomaly.detail],
    }


def anomaly_from_record(record: dict[str, Any]) -> Anomaly:
    """Take back what :func:`anomaly_record` wrote (without explanation and events: a verdict needs neither)."""
    return Anomaly(
        str(record["detector"]),
        str(record["entity_type"]),
        str(record["entity"]),
        datetime.fromisoformat(str(record["time"])),
        float(record["score"]),
        float(record["observed"]),
        float(record["typical"]),
        str(record["window"]),
        Explanation("", ""),
        str(record["peer_group"]),
        (),
        tuple((str(k), str(v)) for k, v in record["detail"]),
    )
