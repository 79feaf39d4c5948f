"""Entity risk scoring with decay: anomalies add to their entity's risk, which halves every
``half_life``; an entity crossing ``threshold`` raises one incident listing each contribution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mamori.detect.anomaly.records import Anomaly, Explanation


@dataclass(frozen=True)
class RiskIncident:
    """An entity whose decayed risk crossed the threshold, with the anomalies that brought it there."""

    entity_type: str
    entity: str
    time: datetime
    risk: float
    contributions: tuple[tuple[Anomaly, float], ...]  # (anomaly, its decayed share of the risk)
    explanation: Explanation


class RiskScorer:
    """Accumulates decayed anomaly scores per entity and raises incidents at the threshold."""

    def __init__(self, threshold: float = 80.0, half_life: timedelta = timedelta(hours=24)) -> None:
        self.threshold = threshold
        self.half_life = half_life
        self._history: dict[tuple[str, str], list[Anomaly]] = {}
        self._raised: dict[tuple[str, str], datetime] = {}

    def _decay(self, anomaly: Anomaly, at: datetime) -> float:
        age = max((at - anomaly.time).total_seconds(), 0.0)
        return float(anomaly.score * 0.5 ** (age / self.half_life.total_seconds()))

    def risk(self, entity_type: str, entity: str, at: datetime) -> float:
        """The entity's risk at ``at``: the decayed sum of its anomaly scores up to then."""
        return sum(self._decay(a, at) for a in self._history.get((entity_type, entity), []) if a.time <= at)

    def add(self, anomalies: list[Anomaly]) -> list[RiskIncident]:
        """Add anomalies (in time order) and return the incidents of entities that crossed the threshold.

        An entity raises again only after its risk fell back below half the threshold.
        """
        incidents: list[RiskIncident] = []
        for anomaly in sorted(anomalies, key=lambda a: a.time):
            key = (anomaly.entity_type, anomaly.entity)
            history = self._history.setdefault(key, [])
            horizon = anomaly.time - self.half_life * 10
            history[:] = [a for a in history if a.time >= horizon]
            history.append(anomaly)
            total = self.risk(*key, anomaly.time)
            raised = self._raised.get(key)
            if raised is not None and total >= self.threshold / 2:
                continue
            if total >= self.threshold:
                parts = tuple((a, self._decay(a, anomaly.time)) for a in history)
                self._raised[key] = anomaly.time
                incidents.append(
                    RiskIncident(
                        key[0],
                        key[1],
                        anomaly.time,
                        total,
                        parts,
                        _explain(key[1], total, parts, self.threshold),
                    )
                )
            elif raised is not None:
                del self._raised[key]
        return incidents


def _explain(entity: str, risk: float, parts: tuple[tuple[Anomaly, float], ...], threshold: float) -> Explanation:
    lines_en = "; ".join(f"{a.detector} +{share:.0f} ({a.explanation.en})" for a, share in parts)
    lines_ja = "／".join(f"{a.detector} +{share:.0f}（{a.explanation.ja}）" for a, share in parts)
    return Explanation(
        en=f"{entity} risk {risk:.0f} crossed {threshold:.0f}: {lines_en}",
        ja=f"{entity} のリスクスコア {risk:.0f} がしきい値 {threshold:.0f} を超過: {lines_ja}",
    )
