"""Off-hours logons: a user logging on at a local hour of the day at which they are almost never
active. The baseline is each user's profile of successful logons per local hour of the day and kind
of day (workday or weekend) on the organisation's clock: time-of-day and day-of-week seasonality. A
kind of day with too few of the user's logons (a weekend of a nine-to-five user) is judged against
the user's hours over every day, so working a Saturday morning is not an anomaly but a 03:00 logon is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.records import Anomaly
from mamori.detect.anomaly.seasons import Calendar

_PROFILE = {"user": pl.Utf8, "workday": pl.Boolean, "hour": pl.Int32, "count": pl.UInt32}


def _logons(events: pl.DataFrame, calendar: Calendar) -> pl.DataFrame:
    sel = events.filter(fields.event_id_in(events, fields.LOGON_SUCCESS))
    return (
        sel.select(fields.column(sel, fields.USER).alias("user"), pl.col("_time"), pl.col("_uid"), pl.col("_host"))
        .filter(fields.person_entity("user"))  # (null users too)
        .with_columns(
            calendar.hour(pl.col("_time")).alias("hour"),
            calendar.workday(pl.col("_time")).alias("workday"),
            calendar.local_date(pl.col("_time")).alias("day"),
        )
    )


def _near_shares(users: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user (rows of ``users``) and hour: the share of the user's logons within one hour of it, and
    the user's total; ``rows`` holds (user index, hour, count)."""
    wide = np.zeros((len(users), 24))
    if len(rows):
        np.add.at(wide, (rows[:, 0], rows[:, 1]), rows[:, 2])
    near = wide + np.roll(wide, 1, axis=1) + np.roll(wide, -1, axis=1)
    total = wide.sum(axis=1, keepdims=True)
    return near / np.maximum(total, 1), np.repeat(total, 24, axis=1)


class OffHoursDetector:
    """Flags logons at hours holding less than ``max_share`` of the user's logons (±1 hour)."""

    name = "off_hours_logon"

    def __init__(self, max_share: float = 0.005, min_logons: int = 10, calendar: Calendar | None = None) -> None:
        self.max_share = max_share
        self.min_logons = min_logons
        self.calendar = calendar or Calendar()
        self.peers: Peers = {}
        self._profile = pl.DataFrame(schema=_PROFILE)
        self._allowed: set[str] = set()  # "user|hour" an analyst called benign
        self._cached: pl.DataFrame | None = None  # the shares of the profile, made once per baseline
        self._start: datetime | None = None
        self._end: datetime | None = None

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Count each user's logons per local hour of day and kind of day."""
        self.peers = dict(peers or {})
        self._profile = (
            _logons(events, self.calendar)
            .group_by("user", "workday", "hour")
            .agg(pl.len().cast(pl.UInt32).alias("count"))
        )
        self._cached = None
        self._start, self._end = time_span(events)

    def _shares(self) -> pl.DataFrame:
        """Per (user, kind of day, hour): the share of the user's logons within one hour of ``hour`` on
        that kind of day, or over every day (``workday`` null in column ``over``) when the kind of day
        holds fewer than ``min_logons`` of them."""
        if self._cached is not None:
            return self._cached
        users = self._profile.get_column("user").unique().sort().to_list()
        index = {u: i for i, u in enumerate(users)}
        coded = self._profile.select(
            pl.col("user").replace_strict(index, return_dtype=pl.Int64), "workday", "hour", "count"
        )
        every_share, every_total = _near_shares(users, coded.select("user", "hour", "count").to_numpy())
        parts = []
        for workday in (True, False):
            rows = coded.filter(pl.col("workday") == workday).select("user", "hour", "count").to_numpy()
            share, total = _near_shares(users, rows)
            thin = total < self.min_logons
            parts.append(
                pl.DataFrame(
                    {
                        "user": np.repeat(np.array(users, dtype=object), 24),
                        "workday": np.full(len(users) * 24, workday),
                        "hour": np.tile(np.arange(24, dtype=np.int32), len(users)),
                        "share": np.where(thin, every_share, share).ravel(),
                        "total": np.where(thin, every_total, total).ravel(),
                        "thin": thin.ravel(),
                    },
                    schema={
                        "user": pl.Utf8,
                        "workday": pl.Boolean,
                        "hour": pl.Int32,
                        "share": pl.Float64,
                        "total": pl.Float64,
                        "thin": pl.Boolean,
                    },
                )
            )
        over = pl.when(pl.col("thin")).then(pl.lit(None, pl.Boolean)).otherwise(pl.col("workday")).alias("over")
        self._cached = pl.concat(parts).with_columns(over).drop("thin")
        return self._cached

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """One anomaly per user, local day and off-hours hour in the batch."""
        logons = _logons(events, self.calendar)
        if logons.is_empty():
            return []
        hits = (
            logons.join(self._shares(), on=["user", "workday", "hour"], how="inner")
            .filter((pl.col("total") >= self.min_logons) & (pl.col("share") <= self.max_share))
            .filter(~pl.concat_str([pl.col("user"), pl.col("hour").cast(pl.Utf8)], separator="|").is_in(
                sorted(self._allowed)))
            .group_by("user", "day", "hour")
            .agg(
                pl.col("_time").min(),
                pl.col("_uid").head(50),
                pl.col("_host").unique().sort(),
                pl.col("share").first(),
                pl.col("over").first(),
            )
        )
        days = explain.window_days(self._start, self._end)
        window = explain.window_text(self._start, self._end)
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
                    explanation=explain.off_hours(
                        row["user"], row["hour"], row["share"], days, self.calendar.timezone, row["over"]
                    ),
                    peer_group=self.peers.get(row["user"], ""),
                    event_uids=tuple(row["_uid"]),
                    detail=(("hour", str(row["hour"])), ("hosts", "|".join(row["_host"]))),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Allow the user at this local hour on any day from now on (an allow-list beside the profile:
        counting logons into a thin weekend profile would make its every other hour look odd)."""
        self._allowed.add(f"{anomaly.entity}|{int(dict(anomaly.detail)['hour'])}")

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """The hour-of-day profile as a frame; thresholds as settings."""
        return {"profile": self._profile}, {
            "max_share": self.max_share,
            "min_logons": self.min_logons,
            "timezone": self.calendar.timezone,
            "office": list(self.calendar.office),
            "allowed": sorted(self._allowed),
            "peers": self.peers,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state (one saved with UTC hours only is refused: rebuild)."""
        if "timezone" not in settings:
            raise ValueError(f"{self.name}: profile saved with UTC hours only; build it again")
        self._profile = frames["profile"]
        self._cached = None
        self.calendar = Calendar(settings["timezone"], (int(settings["office"][0]), int(settings["office"][1])))
        self._allowed = set(settings.get("allowed", ()))
        self.max_share, self.min_logons, self.peers = (
            settings["max_share"],
            settings["min_logons"],
            settings["peers"],
        )
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
