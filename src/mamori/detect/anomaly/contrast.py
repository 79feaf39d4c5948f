"""Normal rows against a product of their own marginals: a classifier that finds broken dependences.

Synthetic rows are drawn column by column, each column from a different random normal row, so every
value in them is one normal traffic shows, but the combinations are chance ones. A gradient-boosted
classifier learns to tell the real normal rows from these; its log-odds for "synthetic" is the log
density ratio of the marginal product to the normal density (Hastie, Tibshirani and Friedman,
*Elements of Statistical Learning* §14.2.4: unsupervised learning as supervised learning). A row
whose values are each ordinary but whose combination is not (password guessing on POP3 from a host
that otherwise only browses, ICMP echo rows carrying the byte counts and rates of a flood) scores
high. Rows far outside everything normal are not its strength (trees extrapolate flat), which is why
:class:`mamori.detect.anomaly.tabular.TabularKnnModel` pairs it with a kNN distance.

The classifiers are cross-fitted: each fold's rows are scored by a model that never saw them, which
gives honest normal scores to calibrate against; new rows get the mean of the fold models.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier


def marginal_sample(rows: NDArray[np.float64], size: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``size`` synthetic rows, each column drawn independently from the same column of ``rows``."""
    picks = rng.integers(0, len(rows), size=(size, rows.shape[1]))
    return np.asarray(np.take_along_axis(rows, picks, axis=0), dtype=np.float64)


class MarginalContrastModel:
    """Cross-fitted classifiers of normal rows against marginal-product rows; higher is more anomalous."""

    def __init__(self, folds: int = 5, seed: int = 0, iterations: int = 200) -> None:
        self.folds = folds
        self.seed = seed
        self.iterations = iterations
        self._models: list[HistGradientBoostingClassifier] = []
        self.reference: NDArray[np.float64] = np.zeros(0)  # out-of-fold scores of the normal rows

    def fit(self, normal: NDArray[np.float64]) -> MarginalContrastModel:
        """Train one classifier per fold on the other folds' rows and as many synthetic rows."""
        rng = np.random.default_rng(self.seed)
        folds = max(2, min(self.folds, len(normal)))
        fold = rng.permutation(len(normal)) % folds
        self._models = []
        self.reference = np.zeros(len(normal))
        for f in range(folds):
            real = normal[fold != f]
            synthetic = marginal_sample(real, len(real), rng)
            model = HistGradientBoostingClassifier(
                max_iter=self.iterations, early_stopping=False, random_state=self.seed * 100 + f
            )
            model.fit(np.vstack([real, synthetic]), np.r_[np.zeros(len(real)), np.ones(len(synthetic))])
            self._models.append(model)
            self.reference[fold == f] = model.decision_function(normal[fold == f])
        return self

    def score(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Mean log-odds, over the fold models, that each row is a chance combination of normal values."""
        if not self._models:
            raise RuntimeError("model is not fitted")
        return np.asarray(np.mean([m.decision_function(rows) for m in self._models], axis=0), dtype=np.float64)
