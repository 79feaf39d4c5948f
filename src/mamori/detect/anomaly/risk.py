"""Entity risk scoring with decay: anomalies add to their entity's risk, which halves every
``half_life``; an entity crossing ``threshold`` raises one incident listing each contribution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from mamori.detect.anomaly.records import Anomaly, Explanation

_CONTRIBUTION_SCHEMA = pl.Schema({
    "detector": pl.String(), "entity_type": pl.String(), "entity": pl.String(), "time": pl.Datetime("us", "UTC"),
    "score": pl.Float64(), "observed": pl.Float64(), "typical": pl.Float64(), "window": pl.String(),
    "explanation_en": pl.String(), "explanation_ja": pl.String(), "peer_group": pl.String(),
    "event_uids": pl.List(pl.String()), "detail_keys": pl.List(pl.String()), "detail_values": pl.List(pl.String()),
})
_RAISED_SCHEMA = pl.Schema({"entity_type": pl.String(), "entity": pl.String(), "time": pl.Datetime("us", "UTC")})


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


    def state(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The contributions each entity's risk still holds, and the entities raised and not yet calmed
        down, as frames to save: an entity's risk survives a restart of the service."""
        contributions = [a for history in self._history.values() for a in history]
        rows = {
            "detector": [a.detector for a in contributions],
            "entity_type": [a.entity_type for a in contributions],
            "entity": [a.entity for a in contributions],
            "time": [a.time for a in contributions],
            "score": [a.score for a in contributions],
            "observed": [a.observed for a in contributions],
            "typical": [a.typical for a in contributions],
            "window": [a.window for a in contributions],
            "explanation_en": [a.explanation.en for a in contributions],
            "explanation_ja": [a.explanation.ja for a in contributions],
            "peer_group": [a.peer_group for a in contributions],
            "event_uids": [list(a.event_uids) for a in contributions],
            "detail_keys": [[k for k, _ in a.detail] for a in contributions],
            "detail_values": [[v for _, v in a.detail] for a in contributions],
        }
        raised = {"entity_type": [k[0] for k in self._raised], "entity": [k[1] for k in self._raised],
                  "time": list(self._raised.values())}
        return pl.DataFrame(rows, schema=_CONTRIBUTION_SCHEMA), pl.DataFrame(raised, schema=_RAISED_SCHEMA)

    def restore(self, contributions: pl.DataFrame, raised: pl.DataFrame) -> None:
        """Take back what :meth:`state` gave (replacing anything held now)."""
        self._history = {}
        for row in contributions.iter_rows(named=True):
            anomaly = Anomaly(
                row["detector"], row["entity_type"], row["entity"], _utc(row["time"]), row["score"],
                row["observed"], row["typical"], row["window"],
                Explanation(row["explanation_en"], row["explanation_ja"]), row["peer_group"] or "",
                tuple(row["event_uids"] or ()), tuple(zip(row["detail_keys"] or (), row["detail_values"] or (),
                                                          strict=True)))
            self._history.setdefault((anomaly.entity_type, anomaly.entity), []).append(anomaly)
        for history in self._history.values():
            history.sort(key=lambda a: a.time)
        self._raised = {(row["entity_type"], row["entity"]): _utc(row["time"])
                        for row in raised.iter_rows(named=True)}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _explain(entity: str, risk: float, parts: tuple[tuple[Anomaly, float], ...], threshold: float) -> Explanation:
    lines_en = "; ".join(f"{a.detector} +{share:.0f} ({a.explanation.en})" for a, share in parts)
    lines_ja = "／".join(f"{a.detector} +{share:.0f}（{a.explanation.ja}）" for a, share in parts)
    return Explanation(
        en=f"{entity} risk {risk:.0f} crossed {threshold:.0f}: {lines_en}",
        ja=f"{entity} のリスクスコア {risk:.0f} がしきい値 {threshold:.0f} を超過: {lines_ja}",
    )
