"""ECOD (empirical-cumulative-distribution outlier detection, Li et al. 2022) over behaviour vectors,
a batch model refitted with the baselines.

Each feature of an (entity, hour) vector is its distance above the entity's own median for the season
(``vectors.residuals``); ECOD takes, per feature, the share of the baseline's entity-hours at least
that far above their own median (the right tail of the empirical distribution) and scores the row
``sum(-ln tail)``. Past the baseline's 99th percentile the tail is an exponential fitted to the
excesses (``tail_scores``), so one feature a hundred times its usual is not capped at the ECDF's floor.
A feature adds only the part of its ``-ln tail`` past the baseline's 95th percentile (``counted``): in
an ordinary busy hour connections, destinations and bytes rise together, each within its usual 5 %,
and summing their whole tails (which assumes independent features) ranked such hours above one feature
a hundred times its usual. The score is additive, so each feature's share of it says which features
made it, and the explanation names them with observed vs typical values. Only the right tail counts: a
host doing less than usual is not what this detector looks for. The baseline's distribution is kept as
at most ``MAX_REFERENCE`` order statistics per feature, so the saved state stays small for large fleets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.vector_models import VectorModelDetector
from mamori.detect.anomaly.vectors import VectorKind

MAX_REFERENCE = 20_000
TAIL = 0.99  # the quantile past which a feature's tail is extrapolated
COUNTED = 0.95  # a feature adds to the score only past this quantile of the baseline
MIN_SCALE = 0.5  # least scale of that exponential, in log units (small counts move in steps of ln 2)


def tail_scores(reference: np.ndarray, rows: int, x: np.ndarray) -> np.ndarray:
    """Per row and feature, -ln of the right-tail probability of ``x`` under the sorted ``reference``
    columns (order statistics of ``rows`` baseline rows), with the +1 smoothing of an ECDF. Past the
    baseline's ``TAIL`` quantile the tail is extrapolated as an exponential fitted to the excesses over
    it (peaks over threshold), so a value far past anything seen scores far, not just at the ECDF's floor."""
    m = reference.shape[0]
    out = np.empty_like(x, dtype=np.float64)
    if m == 0:
        out[:] = 0.0
        return out
    cut = min(int(TAIL * m), m - 1)
    for j in range(x.shape[1]):
        column = reference[:, j]
        below = np.searchsorted(column, x[:, j], side="left")  # reference points under x
        at_or_above = (m - below) * (rows / m)
        ecdf = -np.log((at_or_above + 1.0) / (rows + 1.0))
        start = column[cut]
        excess = column[cut:] - start
        scale = max(float(excess.mean()), MIN_SCALE)
        at_start = -np.log(((m - cut) * (rows / m) + 1.0) / (rows + 1.0))
        out[:, j] = np.where(x[:, j] > start, at_start + (x[:, j] - start) / scale, ecdf)
    return out


def counted(tails: np.ndarray) -> np.ndarray:
    """The part of each feature's -ln tail probability past the ``COUNTED`` quantile (0 within it)."""
    return np.asarray(np.maximum(tails + np.log(1.0 - COUNTED), 0.0), dtype=np.float64)


class EcodDetector(VectorModelDetector):
    """ECOD over (entity, hour) behaviour vectors of hosts or users (see the module)."""

    prefix = "ecod"
    model_en = "ECOD"
    model_ja = "ECOD"

    def __init__(self, kind: VectorKind | str = "host", calendar: Calendar | None = None,
                 alerts_per_day: float = 0.5) -> None:
        super().__init__(kind, calendar, alerts_per_day)
        self._reference = np.zeros((0, len(self.kind.features)))
        self._rows = 0

    def _fit_model(self, x: np.ndarray, hours: pl.Series) -> None:
        ordered = np.sort(x, axis=0)
        if len(ordered) > MAX_REFERENCE:
            ordered = ordered[np.linspace(0, len(ordered) - 1, MAX_REFERENCE).round().astype(np.int64)]
        self._reference, self._rows = ordered, len(x)

    def _score_model(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tails = counted(tail_scores(self._reference, self._rows, x))
        total = tails.sum(axis=1)
        shares = tails / np.maximum(total, 1e-12)[:, None]
        return total, shares

    def _model_state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        frame = pl.DataFrame(self._reference, schema=list(self.kind.features), orient="row")
        return {"reference": frame}, {"rows": self._rows}

    def _restore_model(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        self._reference = frames["reference"].select(self.kind.features).to_numpy().astype(np.float64)
        self._rows = int(settings["rows"])
