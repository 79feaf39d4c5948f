"""Unsupervised model over behaviour vectors: one row per (host, hour) with counts of logons,
failed logons, distinct users, processes, connections, distinct destinations and bytes sent.
Each feature is log-scaled and turned into a robust z-score against the host's own hours in the
baseline window (median and median absolute deviation, as ECOD scores per-feature tails); a row's
score is its largest z, so the explanation can name the feature that stands out. Hours are split into
local office hours and the rest on the organisation's clock (``seasons.Calendar``). (An isolation
forest over the same vectors ranked many-small-deviation rows above a 100x byte spike here.) The
population-wide models over these vectors and users' are ``ecod.py`` and ``half_space.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.anomaly import fields
from mamori.detect.anomaly.base import Peers, per_frame, time_span
from mamori.detect.anomaly.explain import fmt, window_text
from mamori.detect.anomaly.records import Anomaly, Explanation
from mamori.detect.anomaly.seasons import Calendar

EVIDENCE = {
    "logons": "ev_logon",
    "failures": "ev_failure",
    "users": "ev_logon",
    "processes": "ev_process",
    "connections": "ev_connection",
    "destinations": "ev_connection",
    "bytes_out": "ev_bytes",
}
FEATURES = ("logons", "failures", "users", "processes", "connections", "destinations", "bytes_out")
JA_NAMES = {
    "logons": "ログオン数",
    "failures": "ログオン失敗数",
    "users": "ユーザー数",
    "processes": "プロセス起動数",
    "connections": "接続数",
    "destinations": "宛先数",
    "bytes_out": "送信バイト数",
}


def host_hour_vectors(events: pl.DataFrame, calendar: Calendar, evidence: bool) -> pl.DataFrame:
    """``behaviour_vectors`` built once per frame (``base.per_frame``): this detector and the models over
    host vectors read the same ones."""
    return per_frame(events, ("host hours", calendar, evidence), lambda: behaviour_vectors(events, calendar, evidence))


def behaviour_vectors(events: pl.DataFrame, calendar: Calendar | None = None, evidence: bool = True) -> pl.DataFrame:
    """One row per (host, hour): the behaviour features, computed in one grouped pass, and whether the
    hour is a local office hour; with ``evidence``, the first events behind each feature too (a baseline
    needs none: leaving them out makes a rebuild over millions of events faster)."""
    calendar = calendar or Calendar()
    logon = fields.event_id_in(events, fields.LOGON_SUCCESS)
    failure = fields.event_id_in(events, fields.LOGON_FAILURE)
    process = fields.event_id_in(events, fields.PROCESS_CREATION)
    dst = fields.column(events, fields.DEST_IP)
    bytes_name = fields.pick(events, fields.BYTES_OUT)
    sent = pl.col(bytes_name).cast(pl.Float64, strict=False).fill_null(0.0) if bytes_name else pl.lit(0.0)
    user = fields.column(events, fields.USER)
    return (
        events.with_columns(pl.col("_time").dt.truncate("1h").alias("hour"))
        .group_by(pl.col("_host").alias("host"), "hour")
        .agg(
            logon.sum().cast(pl.Float64).alias("logons"),
            failure.sum().cast(pl.Float64).alias("failures"),
            user.filter(logon | failure).n_unique().cast(pl.Float64).alias("users"),
            process.sum().cast(pl.Float64).alias("processes"),
            dst.is_not_null().sum().cast(pl.Float64).alias("connections"),
            dst.drop_nulls().n_unique().cast(pl.Float64).alias("destinations"),
            sent.sum().alias("bytes_out"),
            *(
                (
                    pl.col("_uid").filter(logon | failure).head(20).alias("ev_logon"),
                    pl.col("_uid").filter(failure).head(20).alias("ev_failure"),
                    pl.col("_uid").filter(process).head(20).alias("ev_process"),
                    pl.col("_uid").filter(dst.is_not_null()).head(20).alias("ev_connection"),
                    pl.col("_uid").sort_by(sent, descending=True).head(20).alias("ev_bytes"),
                )
                if evidence
                else ()
            ),
        )
        .with_columns(calendar.office_hours(pl.col("hour")).alias("office"))
    )


class BehaviourVectorDetector:
    """Flags (host, hour) behaviour vectors whose largest robust z-score reaches ``min_z``."""

    name = "behaviour_vector"

    def __init__(self, min_z: float = 10.0, calendar: Calendar | None = None) -> None:
        self.min_z = min_z
        self.calendar = calendar or Calendar()
        self._overrides: dict[str, float] = {}  # "host|feature" -> a value an analyst called benign
        self._fitted = False
        self._typical = pl.DataFrame(
            schema={"host": pl.Utf8, "office": pl.Boolean, **{f: pl.Float64 for f in FEATURES}}
        )
        self._median = self._typical.clone()
        self._spread = self._typical.clone()
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _matrix(self, vectors: pl.DataFrame) -> np.ndarray:
        """Log-scaled features as robust z-scores against the host's own hours (median and MAD)."""
        centred = vectors.join(self._median, on=["host", "office"], how="left", suffix="_median").join(
            self._spread, on=["host", "office"], how="left", suffix="_spread"
        )
        own = np.log1p(centred.select(FEATURES).to_numpy())
        usual = centred.select(f"{f}_median" for f in FEATURES).fill_null(0.0).to_numpy()
        spread = centred.select(f"{f}_spread" for f in FEATURES).fill_null(1.0).to_numpy()
        return np.asarray(np.clip((own - usual) / np.maximum(spread, 0.25), -50, 50), dtype=np.float64)

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Per host: median and spread of each log feature, and the 99th percentile as typical."""
        vectors = host_hour_vectors(events, self.calendar, evidence=False)
        logs = vectors.with_columns(pl.col(f).log1p() for f in FEATURES)
        self._median = logs.group_by("host", "office").agg(pl.col(f).median() for f in FEATURES)
        self._spread = (
            logs.join(self._median, on=["host", "office"], suffix="_m")
            .group_by("host", "office")
            .agg((pl.col(f) - pl.col(f"{f}_m")).abs().median().alias(f) for f in FEATURES)
        )
        self._fitted = True
        self._typical = vectors.group_by("host", "office").agg(pl.col(f).quantile(0.99, "higher") for f in FEATURES)
        self._start, self._end = time_span(events)

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies for (host, hour) rows far above the host's usual hours in some feature."""
        if not self._fitted:
            raise RuntimeError("detector is not fitted")
        vectors = host_hour_vectors(events, self.calendar, evidence=True)
        if vectors.is_empty():
            return []
        matrix = self._matrix(vectors)
        zmax = matrix.max(axis=1)
        top_feature = np.array(FEATURES)[matrix.argmax(axis=1)]
        rows = vectors.with_columns(pl.Series("z", zmax), pl.Series("top", top_feature)).filter(
            pl.col("z") >= self.min_z
        )
        rows = rows.join(self._typical, on=["host", "office"], how="left", suffix="_typical")
        window = window_text(self._start, self._end)
        out: list[Anomaly] = []
        for row in rows.sort("hour").iter_rows(named=True):
            top = row["top"]
            if row[top] <= 2.0 * self._overrides.get(f"{row['host']}|{top}", -1.0):
                continue  # within twice what an analyst called benign for this host and feature
            typical = float(row[f"{top}_typical"] or 0.0)
            local = f"{self.calendar.clock(row['hour']):%Y-%m-%d %H:%M} {self.calendar.timezone}"
            out.append(
                Anomaly(
                    self.name,
                    "host",
                    row["host"],
                    row["hour"],
                    float(min(5.0 * row["z"], 100.0)),
                    float(row[top]),
                    typical,
                    window,
                    Explanation(
                        en=f"{row['host']} behaved unlike its baseline in the hour from {local}: "
                        f"{top} {fmt(row[top])}; typical ≤ {fmt(typical)} (99th percentile per hour)",
                        ja=f"{row['host']} の {local} からの1時間の振る舞いがベースラインと異なる: "
                        f"{JA_NAMES[top]} {fmt(row[top])}。通常は {fmt(typical)} 以下（1時間あたり99パーセンタイル）",
                    ),
                    event_uids=tuple(row[EVIDENCE[top]]),
                    detail=(("feature", top), ("bucket", row["hour"].isoformat())),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Take the value of the feature that stood out as normal for the host: up to twice it stays quiet
        in any later hour (a ceiling keyed on host and feature, not on the hour)."""
        key = f"{anomaly.entity}|{dict(anomaly.detail)['feature']}"
        self._overrides[key] = max(self._overrides.get(key, 0.0), anomaly.observed)

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Per-host medians, spreads and typical values as frames."""
        return {"typical": self._typical, "median": self._median, "spread": self._spread}, {
            "min_z": self.min_z,
            "fitted": self._fitted,
            "timezone": self.calendar.timezone,
            "office": list(self.calendar.office),
            "overrides": self._overrides,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state (one saved with UTC office hours is refused: rebuild)."""
        if "timezone" not in settings:
            raise ValueError(f"{self.name}: baselines saved with UTC office hours; build them again")
        self._typical, self._median, self._spread = frames["typical"], frames["median"], frames["spread"]
        self.calendar = Calendar(settings["timezone"], (int(settings["office"][0]), int(settings["office"][1])))
        self._overrides = {k: float(v) for k, v in settings["overrides"].items()}
        self.min_z, self._fitted = settings["min_z"], settings["fitted"]
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
