"""Evaluation figures for anomaly scores: ROC AUC and the share of attacks caught at a false-alarm rate."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (ties count half): the chance an attack outscores a normal sample."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both normal and attack samples")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def detection_at_false_alarm(labels: ArrayLike, scores: ArrayLike, false_alarm_rate: float) -> float:
    """Share of attacks scoring above the threshold that lets ``false_alarm_rate`` of normals through."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    threshold = float(np.quantile(s[~y], 1.0 - false_alarm_rate))
    return float((s[y] > threshold).mean())
