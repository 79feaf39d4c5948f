"""Suspicious domain names: a character-level model of the organisation's own DNS history.

A smoothed character trigram model learns how the registered part of queried names is spelled
(``mail``, ``office365``, ``yahoo``...). Algorithmically generated names (``xjw3kq9zpl``) are
improbable under it: the score is the mean surprise per character, compared with the names seen.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from mamori.detect.anomaly import fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.explain import window_text
from mamori.detect.anomaly.records import Anomaly, Explanation

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_."
_INDEX = {c: i + 2 for i, c in enumerate(_ALPHABET)}  # 0 = start, 1 = unknown character
_V = len(_ALPHABET) + 2


def registered_label(name: str) -> str:
    """The label that carries the choice of name: ``mail.google.com`` -> ``google``."""
    parts = [p for p in name.lower().rstrip(".").split(".") if p]
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in {"co", "ne", "or", "ac", "go", "com", "net", "org"}:
        return parts[-3]
    return parts[-2] if len(parts) >= 2 else (parts[0] if parts else "")


def _encode(label: str) -> NDArray[np.int64]:
    return np.array([0, 0, *(_INDEX.get(c, 1) for c in label), 0], dtype=np.int64)


class DomainNameModel:
    """Character trigram model with add-k smoothing over registered labels of queried names; names whose
    surprise exceeds the ``quantile`` of the training names' are suspicious."""

    def __init__(self, smoothing: float = 0.1, quantile: float = 0.999) -> None:
        self.smoothing = smoothing
        self.quantile = quantile
        self._tri = np.zeros((_V, _V, _V))
        self._threshold = float("inf")

    def fit(self, names: list[str]) -> DomainNameModel:
        """Count trigrams over the distinct registered labels of ``names`` (the DNS history)."""
        labels = sorted({registered_label(n) for n in names if n})
        self._tri = np.zeros((_V, _V, _V))
        for label in labels:
            x = _encode(label)
            np.add.at(self._tri, (x[:-2], x[1:-1], x[2:]), 1.0)
        scores = self.score(labels)
        self._threshold = float(np.quantile(scores, self.quantile)) if len(scores) else float("inf")
        return self

    @property
    def threshold(self) -> float:
        """Surprise above which a name counts as suspicious (the ``quantile``, by default the 99.9th
        percentile, of the history)."""
        return self._threshold

    def surprise(self, label: str) -> float:
        """Mean negative log-probability per character of one label."""
        x = _encode(label)
        counts = self._tri[x[:-2], x[1:-1], x[2:]]
        totals = self._tri[x[:-2], x[1:-1]].sum(axis=1)
        prob = (counts + self.smoothing) / (totals + self.smoothing * _V)
        return float(-np.log(prob).mean())

    def score(self, names: list[str]) -> NDArray[np.float64]:
        """Surprise of each name's registered label: higher looks more machine-generated."""
        return np.array([self.surprise(registered_label(n)) for n in names], dtype=np.float64)

    def suspicious(self, queries: pl.Series) -> pl.DataFrame:
        """Distinct queried names scoring above the threshold (the training names' ``quantile``)."""
        names = queries.drop_nulls().unique().to_list()
        scores = self.score(names)
        return pl.DataFrame({"name": names, "score": scores}).filter(pl.col("score") > self._threshold)

    def save(self, directory: Path) -> None:
        """Write the counts and threshold under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "domains.tmp.npz"
        np.savez_compressed(tmp, tri=self._tri)
        tmp.replace(directory / "domains.npz")
        (directory / "domains.json").write_text(
            json.dumps({"smoothing": self.smoothing, "quantile": self.quantile, "threshold": self._threshold}),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path) -> DomainNameModel:
        """Read a model written by :meth:`save`."""
        settings = json.loads((directory / "domains.json").read_text(encoding="utf-8"))
        model = cls(settings["smoothing"], settings.get("quantile", 0.999))
        model._threshold = settings["threshold"]
        with np.load(directory / "domains.npz") as data:
            model._tri = data["tri"]
        return model


QUERY = ("QueryName", "query.hostname", "dns.question.name", "query")


class SuspiciousDomainDetector:
    """Flags hosts querying names whose registered label looks machine-generated to a character
    model trained on the organisation's own DNS history (names already in the history never are); the
    threshold is the ``quantile`` of the history's names' surprise."""

    name = "suspicious_domain"

    def __init__(self, smoothing: float = 0.1, quantile: float = 0.999) -> None:
        self.model = DomainNameModel(smoothing, quantile)
        self.quantile = quantile
        self._known: set[str] = set()
        self._start: datetime | None = None
        self._end: datetime | None = None

    @staticmethod
    def _queries(events: pl.DataFrame) -> pl.DataFrame:
        column = fields.pick(events, QUERY)
        if column is None:
            return pl.DataFrame(
                schema={"host": pl.Utf8, "name": pl.Utf8, "_time": pl.Datetime("ns", "UTC"), "_uid": pl.Utf8}
            )
        return events.select(
            pl.col("_host").alias("host"),
            pl.col(column).cast(pl.Utf8).str.to_lowercase().alias("name"),
            "_time",
            "_uid",
        ).drop_nulls("name")

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Train the character model on the distinct names of the DNS history."""
        names = self._queries(events).get_column("name").unique().to_list()
        self._known = {registered_label(n) for n in names}
        if names:
            self.model.quantile = self.quantile
            self.model.fit(names)
        self._start, self._end = time_span(events)

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """One anomaly per host listing its suspicious new names."""
        queries = self._queries(events)
        if queries.is_empty() or not self._known:
            return []
        names = [n for n in queries.get_column("name").unique().to_list() if registered_label(n) not in self._known]
        if not names:
            return []
        flagged = self.model.suspicious(pl.Series(names, dtype=pl.Utf8))
        if flagged.is_empty():
            return []
        hits = (
            queries.join(flagged, on="name")
            .group_by("host")
            .agg(pl.col("name").unique().sort(), pl.col("score").max(), pl.col("_time").min(), pl.col("_uid").head(50))
        )
        window = window_text(self._start, self._end)
        out: list[Anomaly] = []
        for row in hits.sort("_time").iter_rows(named=True):
            shown = ", ".join(row["name"][:5])
            typical = self.model.threshold
            out.append(
                Anomaly(
                    self.name,
                    "host",
                    row["host"],
                    row["_time"],
                    float(min(30.0 + 10 * len(row["name"]), 90.0)),
                    float(row["score"]),
                    typical,
                    window,
                    Explanation(
                        en=f"{row['host']} queried {len(row['name'])} name(s) that look machine-generated: {shown}; "
                        f"character surprise {row['score']:.2f} vs ≤ {typical:.2f} for the organisation's own names",
                        ja=f"{row['host']} が機械生成と見られるドメイン名 {len(row['name'])} 件を問い合わせ: {shown}。"
                        f"文字列の意外度 {row['score']:.2f}（組織の通常の名前は {typical:.2f} 以下）",
                    ),
                    event_uids=tuple(row["_uid"]),
                    detail=(("names", "|".join(row["name"])),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """The names join the known history (a CDN's hashed host names, for instance)."""
        self._known |= {registered_label(n) for n in dict(anomaly.detail).get("names", "").split("|") if n}

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Trigram counts (non-zero cells) and known labels as frames."""
        i, j, k = np.nonzero(self.model._tri)
        counts = pl.DataFrame({"i": i, "j": j, "k": k, "count": self.model._tri[i, j, k]})
        known = pl.DataFrame({"label": sorted(self._known)}, schema={"label": pl.Utf8})
        return {"trigrams": counts, "known": known}, {
            "smoothing": self.model.smoothing,
            "quantile": self.quantile,
            "threshold": self.model.threshold,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self.quantile = float(settings.get("quantile", 0.999))  # saved before thresholds were settings
        self.model = DomainNameModel(settings["smoothing"], self.quantile)
        self.model._threshold = settings["threshold"]
        t = frames["trigrams"]
        self.model._tri[t["i"].to_numpy(), t["j"].to_numpy(), t["k"].to_numpy()] = t["count"].to_numpy()
        self._known = set(frames["known"]["label"].to_list())
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
