"""First-seen detectors: a user logging on to a host, a process on a host, or a parent→child process
pair that the entity never showed in the baseline window. Items its peers commonly show score less."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, host_role, time_span
from mamori.detect.anomaly.records import Anomaly


@dataclass(frozen=True)
class FirstSeenKind:
    """What pair a first-seen detector watches and how to say it."""

    name: str
    entity_type: str
    what_en: str
    what_ja: str


USER_HOST = FirstSeenKind("first_seen_user_host", "user", "logon target host(s)", "ログオン先ホスト")
HOST_PROCESS = FirstSeenKind("first_seen_process", "host", "process(es)", "プロセス")
PROCESS_PAIR = FirstSeenKind("first_seen_process_pair", "host", "parent→child process pair(s)", "親子プロセスの組")
FIRST_SEEN_KINDS = (USER_HOST, HOST_PROCESS, PROCESS_PAIR)


def _pairs(kind: FirstSeenKind, events: pl.DataFrame) -> pl.DataFrame:
    """Rows (entity, item, _time, _uid) for the events this kind watches."""
    if kind is USER_HOST:
        sel = events.filter(fields.event_id_in(events, fields.LOGON_SUCCESS))
        entity, item = fields.column(sel, fields.USER), pl.col("_host")
    else:
        sel = events.filter(fields.event_id_in(events, fields.PROCESS_CREATION))
        entity = pl.col("_host")
        image = fields.column(sel, fields.IMAGE)
        if kind is HOST_PROCESS:
            item = image
        else:
            item = pl.concat_str([fields.column(sel, fields.PARENT_IMAGE), image], separator=" → ")
    out = sel.select(entity.alias("entity"), item.alias("item"), pl.col("_time"), pl.col("_uid"))
    out = out.drop_nulls(["entity", "item"])
    if kind is USER_HOST:  # machine accounts and built-in principals are not people
        out = out.filter(fields.person_entity())
    return out


class FirstSeenDetector:
    """Flags entities showing items (hosts, processes, process pairs) new to them.

    One anomaly per entity and batch lists all its new items; each new item weighs ``1 - share``
    where ``share`` is the fraction of the entity's peers that showed the item in the baseline.
    """

    def __init__(self, kind: FirstSeenKind, min_history: int = 5, min_score: float = 0.5) -> None:
        self.kind = kind
        self.name = kind.name
        self.min_history = min_history
        self.min_score = min_score
        self.peers: Peers = {}
        self._seen = pl.DataFrame(schema={"entity": pl.Utf8, "item": pl.Utf8, "count": pl.UInt32})
        self._history = pl.DataFrame(schema={"entity": pl.Utf8, "events": pl.UInt32})
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _peer(self, entity: str) -> str:
        if self.kind.entity_type == "host":
            return self.peers.get(entity, host_role(entity))
        return self.peers.get(entity, "")

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Remember every (entity, item) pair of the baseline window."""
        self.peers = dict(peers or {})
        pairs = _pairs(self.kind, events)
        self._seen = pairs.group_by("entity", "item").agg(pl.len().cast(pl.UInt32).alias("count"))
        self._history = pairs.group_by("entity").agg(pl.len().cast(pl.UInt32).alias("events"))
        self._start, self._end = time_span(events)

    def _peer_share(self) -> pl.DataFrame:
        """Per (peer group, item): the fraction of the group's entities that showed the item."""
        seen = self._seen.with_columns(pl.col("entity").map_elements(self._peer, return_dtype=pl.Utf8).alias("peer"))
        size = seen.group_by("peer").agg(pl.col("entity").n_unique().alias("size"))
        have = seen.group_by("peer", "item").agg(pl.col("entity").n_unique().alias("have"))
        return have.join(size, on="peer").select("peer", "item", (pl.col("have") / pl.col("size")).alias("share"))

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies for entities with a history that show items new to them in this batch."""
        pairs = _pairs(self.kind, events)
        if pairs.is_empty():
            return []
        known = self._history.filter(pl.col("events") >= self.min_history).select("entity")
        new = pairs.join(known, on="entity", how="semi").join(self._seen, on=["entity", "item"], how="anti")
        if self.kind is PROCESS_PAIR:  # a new process is reported once, by the process detector
            images = self._seen.select("entity", pl.col("item").str.split(" → ").list.last().alias("image")).unique()
            new = new.with_columns(pl.col("item").str.split(" → ").list.last().alias("image")).join(
                images, on=["entity", "image"], how="semi"
            )
        if new.is_empty():
            return []
        entities = new.get_column("entity").unique().to_list()
        peer_of = {e: self._peer(e) for e in entities}
        new = new.with_columns(pl.col("entity").replace_strict(peer_of, default="").alias("peer"))
        new = new.join(self._peer_share(), on=["peer", "item"], how="left").with_columns(pl.col("share").fill_null(0.0))
        grouped = (
            new.group_by("entity", "item")
            .agg(pl.col("_time").min(), pl.col("share").first(), pl.col("peer").first())
            .group_by("entity")
            .agg(
                pl.col("item").sort_by("_time"),
                pl.col("_time").min(),
                (1.0 - pl.col("share")).sum().alias("weight"),
                (pl.col("share") > 0).sum().alias("peers_seen"),
                pl.col("peer").first(),
            )
        )
        uids = new.sort("_time").group_by("entity").agg(pl.col("_uid").head(100))
        grouped = grouped.join(uids, on="entity")
        days = explain.window_days(self._start, self._end)
        out: list[Anomaly] = []
        for row in grouped.iter_rows(named=True):
            if row["weight"] < self.min_score:
                continue
            items: list[str] = row["item"]
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type=self.kind.entity_type,
                    entity=row["entity"],
                    time=row["_time"],
                    score=min(1.0 + float(row["weight"]), 10.0) * 10.0,
                    observed=float(len(items)),
                    typical=0.0,
                    window=explain.window_text(self._start, self._end),
                    explanation=explain.first_seen(
                        row["entity"],
                        self.kind.what_en,
                        self.kind.what_ja,
                        items,
                        days,
                        int(row["peers_seen"]),
                        row["peer"] or "",
                    ),
                    peer_group=row["peer"] or "",
                    event_uids=tuple(row["_uid"][:100]),
                    detail=(("items", "|".join(sorted(items))),),
                )
            )
        return out

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Add the anomaly's items to the entity's baseline: they are no longer new."""
        items = dict(anomaly.detail).get("items", "")
        rows = pl.DataFrame(
            {"entity": [anomaly.entity] * len(items.split("|")), "item": items.split("|")},
            schema={"entity": pl.Utf8, "item": pl.Utf8},
        ).with_columns(pl.lit(1, dtype=pl.UInt32).alias("count"))
        self._seen = pl.concat([self._seen, rows]).unique(["entity", "item"])

    def update(self, events: pl.DataFrame) -> None:
        """Fold a scored batch into the baseline (items seen once are not new the next time)."""
        pairs = _pairs(self.kind, events)
        add = pairs.group_by("entity", "item").agg(pl.len().cast(pl.UInt32).alias("count"))
        self._seen = pl.concat([self._seen, add]).group_by("entity", "item").agg(pl.col("count").sum())
        hist = pairs.group_by("entity").agg(pl.len().cast(pl.UInt32).alias("events"))
        self._history = pl.concat([self._history, hist]).group_by("entity").agg(pl.col("events").sum())
        if not events.is_empty():
            _, end = time_span(events)
            self._end = max(self._end, end) if self._end else end

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Seen pairs and history as frames; settings and window as JSON values."""
        settings = {
            "kind": self.kind.name,
            "min_history": self.min_history,
            "min_score": self.min_score,
            "peers": self.peers,
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }
        return {"seen": self._seen, "history": self._history}, settings

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._seen, self._history = frames["seen"], frames["history"]
        self.min_history, self.min_score = settings["min_history"], settings["min_score"]
        self.peers = settings["peers"]
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
