"""Password spraying: one source failing to log on as many different users, a few attempts each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.records import Anomaly


def _failures(events: pl.DataFrame) -> pl.DataFrame:
    sel = events.filter(fields.event_id_in(events, fields.LOGON_FAILURE))
    return sel.select(
        fields.column(sel, fields.SOURCE_IP).alias("source"),
        fields.column(sel, fields.USER).alias("user"),
        "_time",
        "_uid",
    ).drop_nulls(["source", "user"])


class SprayingDetector:
    """Flags a source whose failed logons in ``window`` span many users with few attempts per user.

    The threshold is the larger of ``min_users`` and ``factor`` × the 99th percentile of distinct
    failed users per source and window in the baseline.
    """

    name = "password_spraying"

    def __init__(
        self,
        window: str = "30m",
        min_users: int = 10,
        max_attempts_per_user: float = 3.0,
        factor: float = 2.0,
    ) -> None:
        self.window = window
        self.min_users = min_users
        self.max_attempts_per_user = max_attempts_per_user
        self.factor = factor
        self._typical = 1.0
        self._allowed: set[str] = set()
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _windows(self, events: pl.DataFrame) -> pl.DataFrame:
        return (
            _failures(events)
            .with_columns(pl.col("_time").dt.truncate(self.window).alias("bucket"))
            .group_by("source", "bucket")
            .agg(
                pl.col("user").n_unique().alias("users"),
                pl.len().alias("attempts"),
                pl.col("_time").min().alias("first"),
                pl.col("_uid").head(100).alias("uids"),
            )
        )

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Learn how many distinct users a source normally fails on per window."""
        w = self._windows(events)
        self._typical = float(w.get_column("users").quantile(0.99, "higher") or 1.0) if not w.is_empty() else 1.0
        self._start, self._end = time_span(events)

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """One anomaly per spraying source and window."""
        threshold = max(float(self.min_users), self._typical * self.factor)
        w = self._windows(events).filter(
            (pl.col("users") >= threshold)
            & (pl.col("attempts") / pl.col("users") <= self.max_attempts_per_user)
            & ~pl.col("source").is_in(sorted(self._allowed))
        )
        minutes = _minutes(self.window)
        window = explain.window_text(self._start, self._end)
        out: list[Anomaly] = []
        for row in w.sort("first").iter_rows(named=True):
            per_user = row["attempts"] / row["users"]
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type="source_ip",
                    entity=row["source"],
                    time=row["first"],
                    score=min(40.0 + 2.0 * row["users"], 100.0),
                    observed=float(row["users"]),
                    typical=self._typical,
                    window=window,
                    explanation=explain.spraying(row["source"], row["users"], per_user, self._typical, minutes),
                    event_uids=tuple(row["uids"]),
                    detail=(("bucket", row["bucket"].isoformat()),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Allow the source (a scanner, a password-reset portal) from now on."""
        self._allowed.add(anomaly.entity)

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Everything fits in the settings."""
        return {}, {
            "window": self.window,
            "min_users": self.min_users,
            "max_attempts_per_user": self.max_attempts_per_user,
            "factor": self.factor,
            "typical": self._typical,
            "allowed": sorted(self._allowed),
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self.window, self.min_users = settings["window"], settings["min_users"]
        self.max_attempts_per_user, self.factor = settings["max_attempts_per_user"], settings["factor"]
        self._typical, self._allowed = settings["typical"], set(settings["allowed"])
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None


def _minutes(duration: str) -> int:
    """Minutes in a Polars duration string such as ``30m`` or ``1h``."""
    if duration.endswith("m"):
        return int(duration[:-1])
    if duration.endswith("h"):
        return int(duration[:-1]) * 60
    raise ValueError(f"unsupported window {duration!r}: use minutes (30m) or hours (1h)")
