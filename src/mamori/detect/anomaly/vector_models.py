"""What the unsupervised models over behaviour vectors share: building the vectors of a batch,
centring them on each entity's baseline, a threshold set from the baseline itself, explanations that
name the features behind a score (observed vs the entity's typical), analysts' feedback, and state.

A model (ECOD in ``ecod.py``, half-space trees in ``half_space.py``) gives per row a score and the
share of each feature in it. The threshold is the score that about ``alerts_per_day`` of the baseline's
entity-hours a day reach (the ``1 - alerts_per_day / rows per day`` quantile of the baseline's own
scores): a false-alarm budget, not a magic number. A benign verdict keeps the feature that led it as
normal for that entity up to twice the value seen (a ceiling keyed on entity and feature, not on the
hour), so it outlives refits, as ``behaviour.BehaviourVectorDetector``'s verdicts do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.explain import vector_outlier, window_text
from mamori.detect.anomaly.records import Anomaly
from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.vectors import (
    KINDS,
    VectorKind,
    baseline_vectors,
    entity_baseline,
    kind_vectors,
    residuals,
)

SHOWN_FEATURES = 3  # features an explanation names, the largest shares first
CALIBRATION_ROWS = 50_000  # baseline rows the threshold is set from, at most
MIN_SHARE = 0.15  # a feature with less of the score than this is not named (the first always is)


class VectorModelDetector:
    """A model over (entity, hour) behaviour vectors; subclasses give ``_fit_model``, ``_score_model``,
    ``_model_state`` and ``_restore_model`` (and may learn from the stream in ``_learn``)."""

    prefix = ""  # detector name is ``<prefix>_<entity type>``
    model_en = ""
    model_ja = ""

    def __init__(self, kind: VectorKind | str, calendar: Calendar | None = None, alerts_per_day: float = 0.5) -> None:
        self.kind = KINDS[kind] if isinstance(kind, str) else kind
        self.name = f"{self.prefix}_{self.kind.entity_type}"
        self.calendar = calendar or Calendar()
        self.alerts_per_day = alerts_per_day
        self.threshold = float("inf")
        self.usual = 0.0  # the baseline's median score (risk points grow from it to the threshold and on)
        self._fitted = False
        self._overrides: dict[str, float] = {}  # "entity|feature" -> a value an analyst called benign
        schema = {"entity": pl.Utf8, "office": pl.Boolean, **{f: pl.Float64 for f in self.kind.features}}
        self._median = pl.DataFrame(schema=schema)
        self._typical = pl.DataFrame(schema=schema)
        self._start: datetime | None = None
        self._end: datetime | None = None

    # --- model hooks -------------------------------------------------------------------------------

    def _fit_model(self, x: np.ndarray, hours: pl.Series) -> None:
        """Fit the model to the baseline's centred vectors (``hours``: each row's hour)."""
        raise NotImplementedError

    def _score_model(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row a score (higher: stranger) and each feature's share of it (rows sum to 1)."""
        raise NotImplementedError

    def _learn(self, x: np.ndarray, hours: pl.Series) -> None:
        """Take normal rows of the live stream into the model (batch models do not)."""

    def _model_state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        raise NotImplementedError

    def _restore_model(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- detector ----------------------------------------------------------------------------------

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Centre the baseline's vectors on each entity, fit the model, and set the threshold from the
        baseline's own scores."""
        vectors = baseline_vectors(self.kind, events, self.calendar)
        self._median, self._typical = entity_baseline(vectors, self.kind.features)
        x = residuals(vectors, self._median, self.kind.features)
        self._fit_model(x, vectors.get_column("hour"))
        self._start, self._end = time_span(events)
        days = max((self._end - self._start).total_seconds() / 86400, 1.0)
        quantile = 1.0 - min(self.alerts_per_day * days / max(len(x), 1), 1.0)
        if len(x) > CALIBRATION_ROWS:  # the threshold from a sample: a large fleet's history is millions of rows
            x = x[np.random.default_rng(0).choice(len(x), CALIBRATION_ROWS, replace=False)]
        scores, _ = self._score_model(x)
        self.threshold = float(np.quantile(scores, quantile)) if len(x) else float("inf")
        self.usual = float(np.median(scores)) if len(x) else 0.0
        self._fitted = True

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies for (entity, hour) vectors scored above the threshold, each naming the features that
        made its score; the normal rows are then learned (streaming models)."""
        if not self._fitted:
            raise RuntimeError("detector is not fitted")
        vectors = kind_vectors(self.kind, events, self.calendar, evidence=True)
        if vectors.is_empty():
            return []
        x = residuals(vectors, self._median, self.kind.features)
        scores, shares = self._score_model(x)
        flagged = scores > self.threshold  # ties at the threshold are the baseline's own
        self._learn(x[~flagged], vectors.get_column("hour").filter(pl.Series(~flagged)))
        if not flagged.any():
            return []
        rows = vectors.with_row_index("_row").filter(pl.Series(flagged))
        rows = rows.join(self._typical, on=["entity", "office"], how="left", suffix="_typical", maintain_order="left")
        return [a for row in rows.iter_rows(named=True)
                if (a := self._anomaly(row, float(scores[row["_row"]]), shares[row["_row"]])) is not None]

    def _anomaly(self, row: dict[str, Any], score: float, shares: np.ndarray) -> Anomaly | None:
        features = self.kind.features
        typical = {f: float(row[f"{f}_typical"]) if row[f"{f}_typical"] is not None else 0.0 for f in features}
        order = [int(i) for i in np.argsort(-shares)]
        named = [i for n, i in enumerate(order[:SHOWN_FEATURES])
                 if (n == 0 or shares[i] >= MIN_SHARE) and row[features[i]] > typical[features[i]]]
        if not named:  # every leading feature within the entity's own 99th percentile: nothing to name
            return None
        top = features[named[0]]
        if row[top] <= 2.0 * self._overrides.get(f"{row['entity']}|{top}", -1.0):
            return None  # within twice what an analyst called benign for this entity and feature
        local = f"{self.calendar.clock(row['hour']):%Y-%m-%d %H:%M} {self.calendar.timezone}"
        season = self.calendar.season_text(None, bool(row["office"]))
        window = window_text(self._start, self._end)
        explanation = vector_outlier(
            row["entity"], local, (self.model_en, self.model_ja), score, self.threshold,
            [(features[i], self.kind.ja[features[i]], float(row[features[i]]), typical[features[i]],
              float(shares[i])) for i in named],
            season, window,
        )
        return Anomaly(
            self.name, self.kind.entity_type, row["entity"], row["hour"],
            self._points(score), float(row[top]), typical[top], window,
            explanation,
            event_uids=tuple(dict.fromkeys(u for i in named for u in row[self.kind.evidence[features[i]]])),
            detail=(("feature", top), ("bucket", row["hour"].isoformat())),
        )

    def _points(self, score: float) -> float:
        """Risk points: 20 at the threshold (two models agreeing on an hour stay under an incident), 20 more
        each time the score's distance from the baseline's median doubles, at most 100."""
        ratio = max(score - self.usual, 1e-9) / max(self.threshold - self.usual, 1e-9)
        return float(np.clip(20.0 + 20.0 * np.log2(ratio), 20.0, 100.0))

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Take the value of the feature that led the score as normal for the entity: up to twice it
        stays quiet in any later hour."""
        key = f"{anomaly.entity}|{dict(anomaly.detail)['feature']}"
        self._overrides[key] = max(self._overrides.get(key, 0.0), anomaly.observed)

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Entity medians and typical values, the model's frames, and the settings, for saving."""
        frames, settings = self._model_state()
        return {"median": self._median, "typical": self._typical, **frames}, {
            "kind": self.kind.entity_type,
            "alerts_per_day": self.alerts_per_day,
            "threshold": self.threshold,
            "usual": self.usual,
            "fitted": self._fitted,
            "timezone": self.calendar.timezone,
            "office": list(self.calendar.office),
            "overrides": self._overrides,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
            "model": settings,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a state written by :meth:`state`."""
        self.kind = KINDS[settings["kind"]]
        self.name = f"{self.prefix}_{self.kind.entity_type}"
        self._median, self._typical = frames["median"], frames["typical"]
        self.calendar = Calendar(settings["timezone"], (int(settings["office"][0]), int(settings["office"][1])))
        self.alerts_per_day, self.threshold = float(settings["alerts_per_day"]), float(settings["threshold"])
        self.usual, self._fitted = float(settings["usual"]), bool(settings["fitted"])
        self._overrides = {k: float(v) for k, v in settings["overrides"].items()}
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
        self._restore_model(frames, settings["model"])
