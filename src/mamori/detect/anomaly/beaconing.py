"""Beaconing: a host calling one destination at a steady period with little jitter, where few other
hosts of the organisation talk to that destination (popular periodic services such as update
servers are not beacons)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, time_span
from mamori.detect.anomaly.records import Anomaly


def _connections(events: pl.DataFrame) -> pl.DataFrame:
    dst = fields.pick(events, fields.DEST_IP)
    if dst is None:
        return pl.DataFrame(
            schema={
                "host": pl.Utf8,
                "dest_ip": pl.Utf8,
                "dest": pl.Utf8,
                "_time": events.schema["_time"],
                "_uid": pl.Utf8,
            }
        )
    port = fields.column(events, fields.DEST_PORT)
    sel = events.filter(pl.col(dst).is_not_null())
    return sel.select(
        pl.col("_host").alias("host"),
        pl.col(dst).cast(pl.Utf8).alias("dest_ip"),
        pl.concat_str([pl.col(dst), port.fill_null("")], separator=":").str.strip_suffix(":").alias("dest"),
        "_time",
        "_uid",
    )


class BeaconingDetector:
    """Flags (host, destination) series with ≥ ``min_count`` connections whose intervals have a
    median absolute deviation below ``max_jitter`` of the median interval."""

    name = "beaconing"

    def __init__(
        self,
        min_count: int = 12,
        max_jitter: float = 0.1,
        min_period_s: float = 10.0,
        max_peer_hosts: int = 3,
    ) -> None:
        self.min_count = min_count
        self.max_jitter = max_jitter
        self.min_period_s = min_period_s
        self.max_peer_hosts = max_peer_hosts
        self._popularity = pl.DataFrame(schema={"dest_ip": pl.Utf8, "hosts": pl.UInt32})
        self._allowed: set[str] = set()
        self._start: datetime | None = None
        self._end: datetime | None = None

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Count, per destination address, how many hosts talk to it."""
        dst = fields.pick(events, fields.DEST_IP)
        if dst is None:
            self._popularity = pl.DataFrame(schema={"dest_ip": pl.Utf8, "hosts": pl.UInt32})
        else:
            conns = events.select(pl.col("_host").alias("host"), pl.col(dst).cast(pl.Utf8).alias("dest_ip"))
            self._popularity = self._count_hosts(conns.drop_nulls())
        self._start, self._end = time_span(events)

    @staticmethod
    def _count_hosts(conns: pl.DataFrame) -> pl.DataFrame:
        return conns.group_by("dest_ip").agg(pl.col("host").n_unique().cast(pl.UInt32).alias("hosts"))

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """One anomaly per beaconing (host, destination) in the batch."""
        conns = _connections(events)
        if conns.is_empty():
            return []
        now = self._count_hosts(conns)
        popularity = pl.concat([self._popularity, now]).group_by("dest_ip").agg(pl.col("hosts").max())
        series = (
            conns.sort("host", "dest", "_time")
            .with_columns((pl.col("_time").diff().over("host", "dest").dt.total_milliseconds() / 1000.0).alias("gap"))
            .group_by("host", "dest")
            .agg(
                pl.col("dest_ip").first(),
                pl.len().alias("count"),
                pl.col("gap").drop_nulls().median().alias("period"),
                (pl.col("gap").drop_nulls() - pl.col("gap").drop_nulls().median()).abs().median().alias("mad"),
                pl.col("_time").min().alias("first"),
                pl.col("_uid").head(100).alias("uids"),
            )
            .filter((pl.col("count") >= self.min_count) & (pl.col("period") >= self.min_period_s))
            .with_columns((pl.col("mad") / pl.col("period")).alias("jitter"))
            .filter(pl.col("jitter") <= self.max_jitter)
            .join(popularity, on="dest_ip", how="left")
            .filter(pl.col("hosts").fill_null(1) <= self.max_peer_hosts)
        )
        window = explain.window_text(self._start, self._end)
        out: list[Anomaly] = []
        for row in series.sort("first").iter_rows(named=True):
            if f"{row['host']}|{row['dest']}" in self._allowed:
                continue
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type="host",
                    entity=row["host"],
                    time=row["first"],
                    score=min(30.0 + row["count"] / 2.0, 100.0) * (1.0 - row["jitter"]),
                    observed=float(row["count"]),
                    typical=0.0,
                    window=window,
                    explanation=explain.beaconing(
                        row["host"],
                        row["dest"],
                        row["count"],
                        row["period"],
                        row["jitter"],
                        int(row["hosts"] or 1),
                    ),
                    peer_group="organisation",
                    event_uids=tuple(row["uids"]),
                    detail=(("destination", row["dest"]),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Allow this host to call this destination periodically."""
        self._allowed.add(f"{anomaly.entity}|{dict(anomaly.detail).get('destination', '')}")

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Destination popularity as a frame; thresholds and the allow-list as settings."""
        return {"popularity": self._popularity}, {
            "min_count": self.min_count,
            "max_jitter": self.max_jitter,
            "min_period_s": self.min_period_s,
            "max_peer_hosts": self.max_peer_hosts,
            "allowed": sorted(self._allowed),
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._popularity = frames["popularity"]
        self.min_count, self.max_jitter = settings["min_count"], settings["max_jitter"]
        self.min_period_s, self.max_peer_hosts = settings["min_period_s"], settings["max_peer_hosts"]
        self._allowed = set(settings["allowed"])
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
