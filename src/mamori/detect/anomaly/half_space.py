"""Streaming half-space trees (Tan, Ting & Liu 2011) over behaviour vectors, in numpy.

Each tree halves a random feature's work range at every node down to ``depth``; a row's mass score is,
per tree, the share of the reference window's rows in the first node on its path holding less than
``size_limit`` of them (or its leaf), times 2^depth of that node (few rows in a big cell: strange).
The trees' scores are combined as a geometric mean, not the paper's sum: ``depth * ln 2 - mean(ln
mass score)``, so a row alone in its cell in some trees (one feature far out) is not averaged away by
the trees whose splits never looked at that feature. A feature's share of the score is the mass each
split on it removed from the row's path beyond the halving expected of uniform data, which is what the
explanation names.

The model learns from the live stream: every complete, unflagged (entity, hour) vector a round scores
adds to the *latest* masses, and once ``window`` vectors (about ``window_days`` of them) were learned
the latest masses become the reference (the paper's window swap), so the model follows drift between
refits; a watermark keeps an hour scored again with the next round's context from being learned twice.
A fit takes the baseline's last ``window_days`` as the reference window, as if the stream had filled it.

Features are residuals from each entity's median (``vectors.residuals``) scaled by the baseline's 0.1
and 99.9 percentiles into [0, 1]; the work ranges reach beyond, so a value past anything seen falls
into a thin edge cell. Trees, split values and masses are arrays, saved as Parquet frames (no pickle):
the model survives a restart as it was, window and watermark included. (river's ``HalfSpaceTrees``
learns and scores one dict at a time in Python and saves by pickling; these arrays score a round's
vectors at once.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.vector_models import VectorModelDetector
from mamori.detect.anomaly.vectors import VectorKind

_LN2 = float(np.log(2.0))


class HalfSpaceForest:
    """The trees and their reference and latest masses, as arrays (heap order: node i's children are
    2i+1 and 2i+2)."""

    def __init__(
        self, features: int, trees: int = 25, depth: int = 12, size_limit: float = 0.01, seed: int = 7
    ) -> None:
        self.depth, self.size_limit = depth, size_limit
        rng = np.random.default_rng(seed)
        inner = 2**depth - 1
        self.split_feature = rng.integers(features, size=(trees, inner)).astype(np.int64)
        self.split_value = np.zeros((trees, inner), dtype=np.float64)
        centre = rng.random((trees, features))
        spread = 2.0 * np.maximum(centre, 1.0 - centre)
        lo, hi = (centre - spread)[:, None, :], (centre + spread)[:, None, :]  # (trees, nodes of a level, features)
        t_index = np.arange(trees)[:, None]
        for level in range(depth):  # a level at a time: node i of the level is heap node 2**level - 1 + i
            nodes = np.arange(2**level - 1, 2 ** (level + 1) - 1)
            q = self.split_feature[:, nodes]
            k_index = np.arange(len(nodes))[None, :]
            mid = (lo[t_index, k_index, q] + hi[t_index, k_index, q]) / 2.0
            self.split_value[:, nodes] = mid
            lo, hi = np.repeat(lo, 2, axis=1), np.repeat(hi, 2, axis=1)  # children: left, right, in heap order
            child = np.arange(2 * len(nodes))[None, :]
            parent_q, parent_mid = np.repeat(q, 2, axis=1), np.repeat(mid, 2, axis=1)
            left = child % 2 == 0
            hi[t_index, child, parent_q] = np.where(left, parent_mid, hi[t_index, child, parent_q])
            lo[t_index, child, parent_q] = np.where(left, lo[t_index, child, parent_q], parent_mid)
        self.reference = np.zeros((trees, 2 * inner + 1), dtype=np.float64)
        self.latest = np.zeros_like(self.reference)

    def paths(self, x: np.ndarray) -> np.ndarray:
        """The node each row visits at each depth in each tree: (trees, rows, depth + 1)."""
        trees, inner = self.split_feature.shape
        rows, features = x.shape
        out = np.zeros((trees, rows, self.depth + 1), dtype=np.int64)
        node = np.zeros((trees, rows), dtype=np.int64)
        tree_base = (np.arange(trees) * inner)[:, None]
        row_base = (np.arange(rows) * features)[None, :]
        flat_x, flat_feature, flat_value = x.ravel(), self.split_feature.ravel(), self.split_value.ravel()
        for d in range(self.depth):  # flat takes: much faster than 2-D fancy indexing
            at = tree_base + node
            right = flat_x.take(row_base + flat_feature.take(at)) >= flat_value.take(at)
            node = 2 * node + 1 + right
            out[:, :, d + 1] = node
        return out

    def add(self, x: np.ndarray, into_reference: bool = False) -> None:
        """Count the rows into every node they pass (the latest window, or the reference)."""
        if not len(x):
            return
        paths = self.paths(x)
        nodes = self.reference.shape[1]
        flat = (np.arange(paths.shape[0])[:, None, None] * nodes + paths).ravel()
        counts = np.bincount(flat, minlength=self.reference.size).reshape(self.reference.shape)
        target = self.reference if into_reference else self.latest
        target += counts

    def swap(self) -> None:
        """The latest window becomes the reference (and a new latest window starts)."""
        self.reference, self.latest = self.latest, np.zeros_like(self.latest)

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row the mean mass score over the trees as ``depth * ln 2 - ln(mean)`` (0: as dense as the
        densest leaf can be; higher: stranger), and per row and feature the share of the mass its splits
        removed beyond uniform halving on the way to the node scored."""
        features = int(x.shape[1])
        paths = self.paths(x)
        total = self.reference[:, :1][:, :, None]  # root mass per tree
        nodes = self.reference.shape[1]
        mass = self.reference.ravel().take(np.arange(len(self.reference))[:, None, None] * nodes + paths)
        share = (mass + 1.0) / (total + 1.0)
        above = share >= self.size_limit
        above[:, :, 0] = True
        last = np.minimum(above.cumprod(axis=2).sum(axis=2), self.depth)  # first node under the limit, or a leaf
        end_share = np.take_along_axis(share, last[:, :, None], axis=2)[:, :, 0]  # (trees, rows)
        scores = self.depth * _LN2 - np.mean(np.log(end_share) + last * _LN2, axis=0)
        drop = np.maximum(np.log(share[:, :, :-1] / share[:, :, 1:]) - _LN2, 0.0)  # (trees, rows, depth)
        drop *= np.arange(self.depth)[None, None, :] < last[:, :, None]
        inner = self.split_feature.shape[1]
        parent_feature = self.split_feature.ravel().take(
            np.arange(len(self.split_feature))[:, None, None] * inner + paths[:, :, :-1])
        cell = np.arange(x.shape[0])[None, :, None] * features + parent_feature  # (row, feature) as one index
        credit = np.bincount(cell.ravel(), drop.ravel(), x.shape[0] * features).reshape(x.shape[0], features)
        sums = credit.sum(axis=1, keepdims=True)
        shares = np.where(sums > 0, credit / np.maximum(sums, 1e-12), 1.0 / features)
        return scores, shares


class HalfSpaceTreesDetector(VectorModelDetector):
    """Half-space trees over (entity, hour) behaviour vectors of hosts or users, learning from the live
    stream (see the module)."""

    prefix = "half_space"
    model_en = "half-space trees"
    model_ja = "ハーフスペースツリー"

    def __init__(self, kind: VectorKind | str = "host", calendar: Calendar | None = None,
                 alerts_per_day: float = 0.5, trees: int = 25, depth: int = 12, window_days: float = 7.0) -> None:
        super().__init__(kind, calendar, alerts_per_day)
        self.trees, self.depth, self.window_days = trees, depth, window_days
        self.forest = HalfSpaceForest(len(self.kind.features), trees, depth)
        self.window = 0  # vectors per window (about ``window_days`` of the baseline's)
        self.learned = 0  # vectors in the latest window so far
        self.learned_until: datetime | None = None  # hours before this were learned
        self._lo = np.zeros(len(self.kind.features))
        self._hi = np.ones(len(self.kind.features))

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x - self._lo) / np.maximum(self._hi - self._lo, 1e-6), dtype=np.float64)

    def _fit_model(self, x: np.ndarray, hours: pl.Series) -> None:
        """Trees over the baseline's ranges; the reference masses are the last ``window_days`` of it (the
        window the stream would have filled), so the rest of the baseline scores out of sample when the
        threshold is set; the stream takes over from the newest stored hour."""
        self._lo = np.quantile(x, 0.001, axis=0) if len(x) else np.zeros(x.shape[1])
        self._hi = np.quantile(x, 0.999, axis=0) if len(x) else np.ones(x.shape[1])
        self.forest = HalfSpaceForest(x.shape[1], self.trees, self.depth)
        newest = hours.max() if len(hours) else None
        if not isinstance(newest, datetime):
            self.window, self.learned, self.learned_until = 1, 0, None
            return
        oldest = hours.min()
        assert isinstance(oldest, datetime)
        since = newest - timedelta(days=self.window_days)
        recent = (hours > since).to_numpy()
        self.forest.add(self._scaled(x[recent]), into_reference=True)
        span_days = max((newest - max(oldest, since)).total_seconds() / 86400, 1.0 / 24)
        self.window = max(int(recent.sum() / span_days * self.window_days), 1)
        self.learned, self.learned_until = 0, newest

    def _score_model(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.forest.score(self._scaled(x))

    def _learn(self, x: np.ndarray, hours: pl.Series) -> None:
        """Learn the complete hours not learned yet (an hour is complete once the batch holds a later
        one); swap windows when the latest holds ``window`` vectors."""
        if not len(x):
            return
        newest = hours.max()
        if not isinstance(newest, datetime):
            return
        hour = hours.to_numpy()
        keep = hour < np.datetime64(newest.replace(tzinfo=None), "ns")
        if self.learned_until is not None:
            keep &= hour >= np.datetime64(self.learned_until.replace(tzinfo=None), "ns")
        if not keep.any():
            return
        self.forest.add(self._scaled(x[keep]))
        self.learned += int(keep.sum())
        self.learned_until = newest  # the newest hour is not complete yet: it is learned with a later batch
        if self.learned >= self.window:
            self.forest.swap()
            self.learned = 0

    def _model_state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        f = self.forest
        frames = {
            "split_feature": pl.DataFrame(f.split_feature, orient="row"),
            "split_value": pl.DataFrame(f.split_value, orient="row"),
            "reference_mass": pl.DataFrame(f.reference, orient="row"),
            "latest_mass": pl.DataFrame(f.latest, orient="row"),
        }
        return frames, {
            "trees": self.trees, "depth": self.depth, "size_limit": f.size_limit, "window_days": self.window_days,
            "window": self.window, "learned": self.learned,
            "learned_until": self.learned_until.isoformat() if self.learned_until else None,
            "lo": self._lo.tolist(), "hi": self._hi.tolist(),
        }

    def _restore_model(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        self.trees, self.depth = int(settings["trees"]), int(settings["depth"])
        self.window_days, self.window, self.learned = float(settings["window_days"]), int(settings["window"]), \
            int(settings["learned"])
        self.learned_until = datetime.fromisoformat(settings["learned_until"]) if settings["learned_until"] else None
        self._lo, self._hi = np.array(settings["lo"], dtype=np.float64), np.array(settings["hi"], dtype=np.float64)
        forest = HalfSpaceForest.__new__(HalfSpaceForest)
        forest.depth, forest.size_limit = self.depth, float(settings["size_limit"])
        forest.split_feature = frames["split_feature"].to_numpy().astype(np.int64)
        forest.split_value = frames["split_value"].to_numpy().astype(np.float64)
        forest.reference = frames["reference_mass"].to_numpy().astype(np.float64)
        forest.latest = frames["latest_mass"].to_numpy().astype(np.float64)
        self.forest = forest


