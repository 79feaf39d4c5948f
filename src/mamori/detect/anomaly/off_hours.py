"""Off-hours logons: a user logging on at an hour of the day at which they (and, when their own
history is thin, their peers) are almost never active. The baseline is each user's hour-of-day
profile of successful logons: time-of-day seasonality."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.records import Anomaly


def _logons(events: pl.DataFrame) -> pl.DataFrame:
    sel = events.filter(fields.event_id_in(events, fields.LOGON_SUCCESS))
    return (
        sel.select(fields.column(sel, fields.USER).alias("user"), pl.col("_time"), pl.col("_uid"), pl.col("_host"))
        .drop_nulls("user")
        .filter(~pl.col("user").str.ends_with("$"))
        .with_columns(pl.col("_time").dt.hour().cast(pl.Int32).alias("hour"))
    )


class OffHoursDetector:
    """Flags logons at hours holding less than ``max_share`` of the user's logons (±1 hour)."""

    name = "off_hours_logon"

    def __init__(self, max_share: float = 0.005, min_logons: int = 10) -> None:
        self.max_share = max_share
        self.min_logons = min_logons
        self.peers: Peers = {}
        self._profile = pl.DataFrame(schema={"user": pl.Utf8, "hour": pl.Int32, "count": pl.UInt32})
        self._start: datetime | None = None
        self._end: datetime | None = None

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Count each user's logons per hour of day."""
        self.peers = dict(peers or {})
        self._profile = _logons(events).group_by("user", "hour").agg(pl.len().cast(pl.UInt32).alias("count"))
        self._start, self._end = time_span(events)

    def _shares(self) -> pl.DataFrame:
        """Per (user, hour): the share of the user's logons within one hour of ``hour``."""
        wide = np.zeros((0, 24))
        users = self._profile.get_column("user").unique().sort().to_list()
        if users:
            index = {u: i for i, u in enumerate(users)}
            wide = np.zeros((len(users), 24))
            rows = self._profile.select(
                pl.col("user").replace_strict(index, return_dtype=pl.Int64), "hour", "count"
            ).to_numpy()
            np.add.at(wide, (rows[:, 0], rows[:, 1]), rows[:, 2])
        near = wide + np.roll(wide, 1, axis=1) + np.roll(wide, -1, axis=1)
        total = wide.sum(axis=1, keepdims=True)
        share = near / np.maximum(total, 1)
        return pl.DataFrame(
            {
                "user": np.repeat(np.array(users, dtype=object), 24),
                "hour": np.tile(np.arange(24, dtype=np.int32), len(users)),
                "share": share.ravel(),
                "total": np.repeat(total.ravel(), 24),
            },
            schema={"user": pl.Utf8, "hour": pl.Int32, "share": pl.Float64, "total": pl.Float64},
        )

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """One anomaly per user and off-hours hour in the batch."""
        logons = _logons(events)
        if logons.is_empty():
            return []
        hits = (
            logons.join(self._shares(), on=["user", "hour"], how="inner")
            .filter((pl.col("total") >= self.min_logons) & (pl.col("share") <= self.max_share))
            .group_by("user", pl.col("_time").dt.date().alias("day"), "hour")
            .agg(
                pl.col("_time").min(),
                pl.col("_uid").head(50),
                pl.col("_host").unique().sort(),
                pl.col("share").first(),
            )
        )
        days = max(round((self._end - self._start).total_seconds() / 86400), 1) if self._start and self._end else 0
        window = explain.window_text(self._start, self._end) if self._start and self._end else ""
        out: list[Anomaly] = []
        for row in hits.sort("_time").iter_rows(named=True):
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type="user",
                    entity=row["user"],
                    time=row["_time"],
                    score=40.0 * (1.0 - row["share"] / self.max_share) + 20.0,
                    observed=float(row["hour"]),
                    typical=float(row["share"]),
                    window=window,
                    explanation=explain.off_hours(row["user"], row["hour"], row["share"], days),
                    peer_group=self.peers.get(row["user"], ""),
                    event_uids=tuple(row["_uid"]),
                    detail=(("hour", str(row["hour"])), ("hosts", "|".join(row["_host"]))),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Count the hour as a normal working hour for the user (weighted so it stays normal)."""
        hour = int(dict(anomaly.detail)["hour"])
        add = pl.DataFrame(
            {"user": [anomaly.entity], "hour": [hour], "count": [max(self.min_logons, 10)]},
            schema={"user": pl.Utf8, "hour": pl.Int32, "count": pl.UInt32},
        )
        self._profile = pl.concat([self._profile, add]).group_by("user", "hour").agg(pl.col("count").sum())

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """The hour-of-day profile as a frame; thresholds as settings."""
        return {"profile": self._profile}, {
            "max_share": self.max_share,
            "min_logons": self.min_logons,
            "peers": self.peers,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._profile = frames["profile"]
        self.max_share, self.min_logons, self.peers = (
            settings["max_share"],
            settings["min_logons"],
            settings["peers"],
        )
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
