"""The contrast half of the tabular model: normal rows against chance combinations of their values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from mamori.detect.anomaly.contrast import MarginalContrastModel, marginal_sample
from mamori.detect.anomaly.tabular import TabularKnnModel, calibrate


def _flows(n: int, seed: int = 0) -> pl.DataFrame:
    """TCP rows carry a few hundred bytes in few packets, UDP rows thousands in many."""
    rng = np.random.default_rng(seed)
    udp = rng.random(n) < 0.5
    size = np.where(udp, rng.integers(5000, 6000, n), rng.integers(100, 200, n))
    return pl.DataFrame(
        {
            "bytes": size,
            "packets": size // 50 + rng.integers(0, 3, n),
            "proto": np.where(udp, "udp", "tcp"),
        }
    )


def test_marginal_sample_keeps_each_columns_values_but_mixes_rows() -> None:
    rows = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    sample = marginal_sample(rows, 500, np.random.default_rng(0))
    assert set(sample[:, 0]) == {1.0, 2.0, 3.0} and set(sample[:, 1]) == {10.0, 20.0, 30.0}
    assert np.mean(sample[:, 1] != 10 * sample[:, 0]) > 0.5  # most synthetic rows pair values no real row pairs


def test_contrast_model_scores_unseen_combinations_of_seen_values_above_normal_rows() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=600)
    normal = np.column_stack([x, x + rng.normal(scale=0.1, size=600)])
    model = MarginalContrastModel(folds=3).fit(normal)
    assert model.reference.shape == (600,)
    scores = model.score(np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    assert min(scores[2:]) > max(scores[:2])
    assert min(scores[2:]) > np.quantile(model.reference, 0.95)


def test_tabular_model_flags_a_protocol_carrying_the_other_protocols_traffic() -> None:
    normal = _flows(600)
    model = TabularKnnModel(["bytes", "packets"], ["proto"], k=10).fit(normal)
    test = pl.DataFrame({"bytes": [150, 5500, 5500], "packets": [3, 110, 110], "proto": ["tcp", "udp", "tcp"]})
    knn, dependence = model.parts(test)
    assert dependence[2] > max(dependence[:2]) and dependence[2] > 1.0  # past the normal rows' 90th percentile
    held_out = model.score(_flows(300, seed=5))
    assert model.score(test)[2] > np.quantile(held_out, 0.95)
    assert np.array_equal(model.score(test), np.maximum(knn, dependence))


def test_tabular_model_without_contrast_is_the_calibrated_knn_distance(tmp_path: Path) -> None:
    normal = _flows(200)
    model = TabularKnnModel(["bytes", "packets"], ["proto"], k=5, contrast=False).fit(normal)
    test = pl.DataFrame({"bytes": [150, 90_000], "packets": [3, 4], "proto": ["tcp", "tcp"]})
    knn, dependence = model.parts(test)
    assert np.isnan(dependence).all() and np.array_equal(model.score(test), knn)
    assert knn[1] > 1.0 > knn[0]
    model.save(tmp_path / "m")
    settings = (tmp_path / "m" / "tabular.json").read_text(encoding="utf-8")
    (tmp_path / "m" / "tabular.json").write_text(settings.replace(', "contrast": false', ""), encoding="utf-8")
    assert np.allclose(TabularKnnModel.load(tmp_path / "m").score(test), knn)  # saved before contrast existed


def test_calibration_puts_the_normal_median_at_zero_and_90th_percentile_at_one() -> None:
    reference = np.arange(101, dtype=np.float64)
    assert np.allclose(calibrate(np.array([50.0, 90.0, 130.0]), reference), [0.0, 1.0, 2.0])
    assert np.allclose(calibrate(np.array([2.0, 3.0]), np.full(10, 2.0)), [0.0, 1.0])
