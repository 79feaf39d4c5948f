"""Volume-spike detectors: counts, distinct counts or sums per entity per time bucket, compared with
the entity's 99th percentile over the baseline window (its peers' when its own history is thin), with
separate baselines per season of the organisation's local clock: workday or weekend, office hours or
not (time-of-day and day-of-week seasonality). A season with too few buckets of the entity's own (a
weekend of a nine-to-five user) falls back to the entity's same hours over all days, then to its peers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, host_role, time_span
from mamori.detect.anomaly.records import Anomaly
from mamori.detect.anomaly.seasons import Calendar


@dataclass(frozen=True)
class VolumeMetric:
    """One measured volume: which events, which entity, what value, over which bucket."""

    name: str
    entity_type: str
    metric_en: str
    metric_ja: str
    select: Callable[[pl.DataFrame], pl.DataFrame]  # -> columns entity, value, _time, _uid
    how: str  # "count", "distinct" (of column value) or "sum" (of value)
    bucket: str  # Polars duration: "10m", "1h"
    min_observed: float
    factor: float = 2.0


def _auth_failures(by: tuple[str, ...]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def select(ev: pl.DataFrame) -> pl.DataFrame:
        sel = ev.filter(fields.event_id_in(ev, fields.LOGON_FAILURE))
        return sel.select(fields.column(sel, by).alias("entity"), pl.lit(1.0).alias("value"), "_time", "_uid")

    return select


def _logon_hosts(ev: pl.DataFrame) -> pl.DataFrame:
    sel = ev.filter(fields.event_id_in(ev, fields.LOGON_SUCCESS))
    return sel.select(fields.column(sel, fields.USER).alias("entity"), pl.col("_host").alias("value"), "_time", "_uid")


def _bytes_out(ev: pl.DataFrame) -> pl.DataFrame:
    name = fields.pick(ev, fields.BYTES_OUT)
    if name is None:
        return pl.DataFrame(
            schema={"entity": pl.Utf8, "value": pl.Float64, "_time": ev.schema["_time"], "_uid": pl.Utf8}
        )
    sel = ev.filter(pl.col(name).is_not_null())
    return sel.select(
        pl.col("_host").alias("entity"),
        pl.col(name).cast(pl.Float64, strict=False).alias("value"),
        "_time",
        "_uid",
    )


def _processes(ev: pl.DataFrame) -> pl.DataFrame:
    sel = ev.filter(fields.event_id_in(ev, fields.PROCESS_CREATION))
    return sel.select(pl.col("_host").alias("entity"), pl.lit(1.0).alias("value"), "_time", "_uid")


AUTH_FAILURES_PER_USER = VolumeMetric(
    "auth_failures_user",
    "user",
    "had failed logons",
    "ログオン失敗数",
    _auth_failures(fields.USER),
    "count",
    "1h",
    5,
)
AUTH_FAILURES_PER_SOURCE = VolumeMetric(
    "auth_failures_source",
    "source_ip",
    "caused failed logons",
    "ログオン失敗数",
    _auth_failures(fields.SOURCE_IP),
    "count",
    "1h",
    8,
)
LOGON_HOSTS_PER_USER = VolumeMetric(
    "logon_hosts_user",
    "user",
    "logged on to distinct hosts",
    "ログオン先ホスト数",
    _logon_hosts,
    "distinct",
    "10m",
    5,
)
BYTES_OUT_PER_HOST = VolumeMetric(
    "bytes_out_host", "host", "sent bytes out", "送信バイト数", _bytes_out, "sum", "1h", 100_000_000
)
PROCESSES_PER_HOST = VolumeMetric(
    "processes_host", "host", "started processes", "プロセス起動数", _processes, "count", "1h", 100
)
DEFAULT_METRICS = (
    AUTH_FAILURES_PER_USER,
    AUTH_FAILURES_PER_SOURCE,
    LOGON_HOSTS_PER_USER,
    BYTES_OUT_PER_HOST,
    PROCESSES_PER_HOST,
)
METRICS_BY_NAME = {m.name: m for m in DEFAULT_METRICS}
_BUCKET_TEXT = {"10m": ("10 minutes", "10分間"), "1h": ("one hour", "1時間")}


def _buckets(metric: VolumeMetric, events: pl.DataFrame, calendar: Calendar, evidence: bool = True) -> pl.DataFrame:
    """Per (entity, bucket start): the value, the bucket's season on the organisation's clock (workday
    or weekend, office hours or not) and (with ``evidence``) the events behind it."""
    rows = metric.select(events).drop_nulls(["entity", "value"])
    value = {
        "count": pl.len().cast(pl.Float64),
        "distinct": pl.col("value").n_unique().cast(pl.Float64),
        "sum": pl.col("value").cast(pl.Float64).sum(),
    }[metric.how]
    return (
        rows.with_columns(pl.col("_time").dt.truncate(metric.bucket).alias("bucket"))
        .group_by("entity", "bucket")
        .agg(value.alias("observed"), *([pl.col("_uid").head(50).alias("uids")] if evidence else []))
        .with_columns(
            calendar.workday(pl.col("bucket")).alias("workday"), calendar.office_hours(pl.col("bucket")).alias("office")
        )
    )


def _ceiling(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The 99th percentile of bucket values and the number of buckets per ``keys``."""
    return frame.group_by(keys).agg(
        pl.col("observed").quantile(0.99, "higher").alias("p99"), pl.len().cast(pl.UInt32).alias("n")
    )


_CLASS = ["workday", "office"]


class VolumeDetector:
    """Flags (entity, bucket) values of at least ``min_observed`` above ``factor`` × the baseline 99th
    percentile of the bucket's season (both the metric's unless given)."""

    def __init__(self, metric: VolumeMetric, min_buckets: int = 10, calendar: Calendar | None = None,
                 factor: float | None = None, min_observed: float | None = None) -> None:
        self.metric = metric
        self.name = metric.name
        self.min_buckets = min_buckets
        self.factor = metric.factor if factor is None else factor
        self.min_observed = metric.min_observed if min_observed is None else min_observed
        self.calendar = calendar or Calendar()
        self.peers: Peers = {}
        season = {"workday": pl.Boolean, "office": pl.Boolean, "p99": pl.Float64, "n": pl.UInt32}
        hours = {"office": pl.Boolean, "p99": pl.Float64, "n": pl.UInt32}
        self._baseline = pl.DataFrame(schema={"entity": pl.Utf8, **season})
        self._hours = pl.DataFrame(schema={"entity": pl.Utf8, **hours})
        self._peer_baseline = pl.DataFrame(schema={"peer": pl.Utf8, **season})
        self._peer_hours = pl.DataFrame(schema={"peer": pl.Utf8, **hours})
        self._overrides: dict[str, float] = {}
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _peer(self, entity: str) -> str:
        if self.metric.entity_type == "host":
            return self.peers.get(entity, host_role(entity))
        everyone = {"user": "all users", "source_ip": "all sources"}
        return self.peers.get(entity, everyone.get(self.metric.entity_type, "all"))

    def _with_peer(self, b: pl.DataFrame) -> pl.DataFrame:
        peer_of = {e: self._peer(e) for e in b.get_column("entity").unique().to_list()}
        return b.with_columns(pl.col("entity").replace_strict(peer_of, default="").alias("peer"))

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Per entity (and per peer group) and season: the 99th percentile of bucket values in the window."""
        self.peers = dict(peers or {})
        b = self._with_peer(_buckets(self.metric, events, self.calendar, evidence=False))
        self._start, self._end = time_span(events)
        self._baseline = _ceiling(b, ["entity", *_CLASS])
        self._hours = _ceiling(b, ["entity", "office"])
        self._peer_baseline = _ceiling(b, ["peer", *_CLASS])
        self._peer_hours = _ceiling(b, ["peer", "office"])

    def _typical(self, b: pl.DataFrame) -> pl.DataFrame:
        """Columns typical (the ceiling a bucket is compared with) and source: "season" (the entity's own
        season), "hours" (its own same hours over all days) or "peers"."""
        b = (
            b.join(self._baseline, on=["entity", *_CLASS], how="left")
            .join(self._hours.rename({"p99": "p99_h", "n": "n_h"}), on=["entity", "office"], how="left")
            .join(self._peer_baseline.rename({"p99": "peer_p99", "n": "peer_n"}), on=["peer", *_CLASS], how="left")
            .join(self._peer_hours.rename({"p99": "peer_p99_h", "n": "peer_n_h"}), on=["peer", "office"], how="left")
        )
        own_season = (pl.col("n").fill_null(0) >= self.min_buckets) & pl.col("p99").is_not_null()
        own_hours = (pl.col("n_h").fill_null(0) >= self.min_buckets) & pl.col("p99_h").is_not_null()
        peer = pl.when(pl.col("peer_n").fill_null(0) >= self.min_buckets).then("peer_p99").otherwise("peer_p99_h")
        return b.with_columns(
            pl.when(own_season)
            .then(pl.col("p99"))
            .when(own_hours)
            .then(pl.col("p99_h"))
            .otherwise(pl.max_horizontal(peer, pl.col("p99"), pl.col("p99_h")))
            .fill_null(0.0)
            .alias("typical"),
            pl.when(own_season).then(pl.lit("season")).when(own_hours).then(pl.lit("hours")).otherwise(pl.lit("peers"))
            .alias("source"),
        )

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies for buckets whose value exceeds the entity's (or its peers') typical ceiling."""
        b = _buckets(self.metric, events, self.calendar).filter(pl.col("observed") >= self.min_observed)
        if b.is_empty():
            return []
        b = self._typical(self._with_peer(b))
        if self._overrides:
            b = b.with_columns(
                pl.max_horizontal(
                    pl.col("typical"),
                    pl.col("entity").replace_strict(self._overrides, default=0.0, return_dtype=pl.Float64),
                ).alias("typical")
            )
        b = b.filter(pl.col("observed") > pl.col("typical") * self.factor)
        days = explain.window_days(self._start, self._end)
        bucket_en, bucket_ja = _BUCKET_TEXT.get(self.metric.bucket, (self.metric.bucket, self.metric.bucket))
        out: list[Anomaly] = []
        for row in b.sort("bucket").iter_rows(named=True):
            typical = float(row["typical"])
            observed = float(row["observed"])
            ratio = observed / max(typical, 1.0)
            # the entity's own same hours on every day of the week when its season alone was thin
            season = self.calendar.season_text(None if row["source"] == "hours" else row["workday"], row["office"])
            text = explain.volume(
                row["entity"],
                self.metric.metric_en,
                self.metric.metric_ja,
                observed,
                typical,
                (bucket_en, bucket_ja),
                days,
                row["peer"] if row["source"] == "peers" else "",
                season,
            )
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type=self.metric.entity_type,
                    entity=row["entity"],
                    time=row["bucket"],
                    score=float(min(20.0 * np.log2(1.0 + ratio), 100.0)),
                    observed=observed,
                    typical=typical,
                    window=explain.window_text(self._start, self._end),
                    explanation=text,
                    peer_group=row["peer"] or "",
                    event_uids=tuple(row["uids"]),
                    detail=(("bucket", row["bucket"].isoformat()),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Raise the entity's ceiling, in every season, to the value judged benign (keyed on the entity,
        not on the bucket: the same volume stays quiet on any later day)."""
        self._overrides[anomaly.entity] = max(self._overrides.get(anomaly.entity, 0.0), anomaly.observed)

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Baselines as frames; settings, peers and overrides as JSON values."""
        settings = {
            "metric": self.metric.name,
            "timezone": self.calendar.timezone,
            "office": list(self.calendar.office),
            "min_buckets": self.min_buckets,
            "factor": self.factor,
            "min_observed": self.min_observed,
            "peers": self.peers,
            "overrides": self._overrides,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }
        frames = {
            "baseline": self._baseline,
            "hours": self._hours,
            "peer_baseline": self._peer_baseline,
            "peer_hours": self._peer_hours,
        }
        return frames, settings

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state (one saved before seasons had a day of the week is refused: rebuild)."""
        if "hours" not in frames or "timezone" not in settings:
            raise ValueError(f"{self.name}: baselines saved with UTC office hours only; build them again")
        self._baseline, self._hours = frames["baseline"], frames["hours"]
        self._peer_baseline, self._peer_hours = frames["peer_baseline"], frames["peer_hours"]
        self.calendar = Calendar(settings["timezone"], (int(settings["office"][0]), int(settings["office"][1])))
        self.min_buckets, self.peers = settings["min_buckets"], settings["peers"]
        self.factor = float(settings.get("factor", self.metric.factor))  # saved before thresholds were settings
        self.min_observed = float(settings.get("min_observed", self.metric.min_observed))
        self._overrides = {k: float(v) for k, v in settings["overrides"].items()}
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
