"""Anomaly scores for system-call traces: an n-gram language model of normal behaviour.

The model learns, from normal traces only, how likely each call is after the calls before it
(interpolated Witten-Bell smoothing from order 1 to ``order``). A trace scores its mean surprise
(negative log-likelihood per call): code paths a program never takes in normal runs raise it.
All counting and look-ups are vectorised over numpy arrays of n-gram codes.

Measured on ADFA-LD (train on the 833 normal training traces, score 4,372 validation normals and 746
attacks; benchmarks/anomaly.py adfa-ld): this model 0.842 AUC. Neural next-call language models
trained the same way did not beat it: a GRU (128 units, 30 epochs, 6 min on one thread) 0.833 and an
LSTM (200 units, 12 epochs) 0.834 AUC, though the GRU predicts 83 held-out training traces better
(1.05 nats per call against 1.23-1.27 for orders 5-7); a rank average of GRU and n-gram scores
0.838; median, clipped-mean, sum and sliding-window-maximum trace scores 0.60-0.84. The traces of
normal programs absent from the training set, not a weak language model, cause most false alarms:
190 of the 219 validation normals the GRU ranks in the top 5 % open with three calls that no
training trace opens with.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_BASE = 512  # syscall numbers + 1 (0 marks the start of a trace) must stay below this
Trace = NDArray[np.int64]


@dataclass(frozen=True)
class LabelledTraces:
    """ADFA-LD split into normal training traces, normal validation traces and attack traces."""

    train: list[Trace]
    validation: list[Trace]
    attacks: list[Trace]
    attack_families: list[str]


def load_adfa_ld(path: Path) -> LabelledTraces:
    """Read ADFA-LD from its zip (or an unpacked folder); the folder name is the label."""
    train: list[Trace] = []
    validation: list[Trace] = []
    attacks: list[Trace] = []
    families: list[str] = []

    def add(name: str, data: bytes) -> None:
        if not name.endswith(".txt") or "Syscall" in name:
            return
        trace = np.array(data.split(), dtype=np.int64)
        if "Training_Data_Master" in name:
            train.append(trace)
        elif "Validation_Data_Master" in name:
            validation.append(trace)
        elif "Attack_Data_Master" in name:
            attacks.append(trace)
            families.append(re.sub(r"_\d+$", "", name.split("/")[-2]))

    if path.is_dir():
        for file in sorted(path.rglob("*.txt")):
            add(file.relative_to(path).as_posix(), file.read_bytes())
    else:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                add(name, archive.read(name) if name.endswith(".txt") else b"")
    if not train:
        raise ValueError(f"{path}: no Training_Data_Master traces found; is this the ADFA-LD archive?")
    return LabelledTraces(train, validation, attacks, families)


def ngram_codes(trace: Trace, n: int) -> NDArray[np.int64]:
    """Code of the n-gram ending at each position of a trace (padded at the start with 0)."""
    padded = np.concatenate([np.zeros(n - 1, dtype=np.int64), np.asarray(trace, dtype=np.int64) + 1])
    if padded.max(initial=0) >= _BASE:
        raise ValueError(f"system call number {int(padded.max()) - 1} exceeds {_BASE - 2}")
    length = len(trace)
    codes = np.zeros(length, dtype=np.int64)
    for i in range(n):
        codes = codes * _BASE + padded[i : i + length]
    return codes


def _lookup(keys: NDArray[np.int64], values: NDArray[np.float64], query: NDArray[np.int64]) -> NDArray[np.float64]:
    idx = np.searchsorted(keys, query)
    idx[idx >= len(keys)] = 0
    found = keys[idx] == query if len(keys) else np.zeros(len(query), dtype=bool)
    return np.where(found, values[idx] if len(keys) else 0.0, 0.0)


class NgramSequenceModel:
    """Interpolated Witten-Bell n-gram model of normal system-call sequences (orders 1..order)."""

    def __init__(self, order: int = 7) -> None:
        if not 1 <= order <= 7:
            raise ValueError("order must be between 1 and 7 (n-gram codes are 64-bit integers)")
        self.order = order
        self._tables: list[dict[str, NDArray[np.generic]]] = []

    def fit(self, traces: list[Trace]) -> NgramSequenceModel:
        """Count n-grams of every order over the normal traces."""
        self._tables = []
        for n in range(1, self.order + 1):
            grams = np.concatenate([ngram_codes(t, n) for t in traces if len(t)])
            keys, counts = np.unique(grams, return_counts=True)
            hist_keys, inverse = np.unique(keys // _BASE, return_inverse=True)
            self._tables.append(
                {
                    "keys": keys,
                    "counts": counts.astype(np.float64),
                    "hist_keys": hist_keys,
                    "hist_counts": np.bincount(inverse, weights=counts).astype(np.float64),
                    "hist_types": np.bincount(inverse).astype(np.float64),
                }
            )
        return self

    def surprise(self, trace: Trace) -> NDArray[np.float64]:
        """Negative log-probability of each call given the calls before it."""
        if not self._tables:
            raise RuntimeError("model is not fitted")
        prob = np.full(len(trace), 1.0 / _BASE)
        for n, table in enumerate(self._tables, start=1):
            grams = ngram_codes(trace, n)
            hist = grams // _BASE
            count = _lookup(table["keys"], table["counts"], grams)  # type: ignore[arg-type]
            h_count = _lookup(table["hist_keys"], table["hist_counts"], hist)  # type: ignore[arg-type]
            h_types = _lookup(table["hist_keys"], table["hist_types"], hist)  # type: ignore[arg-type]
            mixed = (count + h_types * prob) / np.maximum(h_count + h_types, 1.0)
            prob = np.where(h_count > 0, mixed, prob)
        return np.asarray(-np.log(prob), dtype=np.float64)

    def score(self, traces: list[Trace]) -> NDArray[np.float64]:
        """Mean surprise per call of each trace: higher means further from normal behaviour."""
        return np.array([float(self.surprise(t).mean()) if len(t) else 0.0 for t in traces])

    def save(self, path: Path) -> None:
        """Write the model to one ``.npz`` file (written then renamed, so it is never half-written)."""
        arrays: dict[str, NDArray[np.generic]] = {"order": np.array([self.order])}
        for n, table in enumerate(self._tables, start=1):
            for name, value in table.items():
                arrays[f"{n}_{name}"] = value
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NgramSequenceModel:
        """Read a model written by :meth:`save`."""
        with np.load(path) as data:
            model = cls(int(data["order"][0]))
            model._tables = [
                {k: data[f"{n}_{k}"] for k in ("keys", "counts", "hist_keys", "hist_counts", "hist_types")}
                for n in range(1, model.order + 1)
            ]
        return model
