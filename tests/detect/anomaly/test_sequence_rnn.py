"""The numpy GRU system-call language model: its gradients, what it learns and that it survives a save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mamori.detect.anomaly.sequence_rnn import GruCallModel


def test_gru_gradients_match_finite_differences_across_resets_and_masked_targets() -> None:
    model = GruCallModel(embed=3, hidden=4, seed=3, dtype=np.float64)
    model.vocab = np.arange(5)
    model._init_params(7)
    rng = np.random.default_rng(0)
    for name in model.params:  # move off the zero biases so every term of the gradient shows
        model.params[name] = model.params[name] + rng.normal(0.0, 0.3, model.params[name].shape)
    inputs = rng.integers(1, 7, (6, 3))
    inputs[2, 1] = 0  # a trace starts inside the window: the state resets there
    targets = rng.integers(2, 7, (6, 3))
    targets[4, 2] = -1  # a trace end: no loss
    keep = (inputs != 0).astype(np.float64)
    h0 = rng.normal(0.0, 0.5, (3, 4))
    _, grads, _ = model._loss_and_grads(inputs, targets, keep, h0)
    for name, value in model.params.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + 1e-6
            plus = model._loss_and_grads(inputs, targets, keep, h0)[0]
            value[idx] = old - 1e-6
            minus = model._loss_and_grads(inputs, targets, keep, h0)[0]
            value[idx] = old
            numeric[idx] = (plus - minus) / 2e-6
        assert np.abs(numeric - grads[name]).max() <= 1e-6 * max(np.abs(numeric).max(), 1.0), name


def test_gru_learns_a_program_and_scores_a_changed_order_or_an_unseen_call_higher(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    programs = [np.array([3, 4, 5, 6, 7]), np.array([1, 2, 3, 4, 8, 9])]
    normal = [np.tile(programs[i % 2], int(rng.integers(4, 10))) for i in range(20)]
    model = GruCallModel(embed=8, hidden=16, epochs=15, streams=4, window=16, learning_rate=1e-2).fit(normal)
    assert model.history[-1] < model.history[0] / 3  # it learnt the programs
    known = np.tile(programs[1], 6)
    reordered = np.tile(programs[1][::-1], 6)
    foreign = np.r_[np.tile(programs[0], 3), 200, np.tile(programs[0], 3)]
    scores = model.score([known, reordered, foreign])
    assert scores[0] < 0.3 and scores[1] > 4 * scores[0] and scores[2] > 4 * scores[0]
    surprise = model.surprises([foreign])[0]
    assert len(surprise) == len(foreign) and surprise.argmax() == 15  # the unseen call stands out
    model.save(tmp_path / "gru.npz")
    assert np.allclose(GruCallModel.load(tmp_path / "gru.npz").score([known, reordered, foreign]), scores)


def test_gru_scores_traces_the_same_alone_or_in_a_batch_of_other_lengths() -> None:
    normal = [np.array([3, 4, 5, 6] * 8), np.array([1, 2, 3] * 9)]
    model = GruCallModel(embed=4, hidden=8, epochs=2, streams=2, window=8).fit(normal)
    batch = [np.array([3, 4, 5]), np.array([1, 2, 3] * 40), np.array([], dtype=np.int64), np.array([6, 5, 4] * 7)]
    together = model.surprises(batch, batch=3, chunk=16)
    for trace, surprise in zip(batch, together, strict=True):
        assert np.allclose(model.surprises([trace])[0], surprise)
    assert model.score([np.array([], dtype=np.int64)])[0] == 0.0
    tiny = GruCallModel(embed=4, hidden=8, epochs=3, streams=64).fit([np.array([3, 4, 5])])  # fewer calls than streams
    assert len(tiny.history) == 3 and np.isfinite(tiny.history).all()
    with pytest.raises(ValueError):
        GruCallModel().fit([np.array([], dtype=np.int64)])
    with pytest.raises(RuntimeError):
        GruCallModel().score(normal)
