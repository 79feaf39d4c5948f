"""Rarity: a value an entity showed only once or twice in the baseline window and its peer group hardly
ever shows (UEBA "rare" analytics, as Splunk UBA, Elastic ML ``rare`` or Sentinel's uncommon-activity
anomalies have them).

Where first-seen (``first_seen.py``) reports what an entity never showed, rarity is the frequency view:
a process a host ran once in four weeks, a parent→child pair it saw twice, a logon type, logon source
or destination port a user or host used once or twice, each also rare among its peers. Per kind it
keeps how often each entity showed each value (learned from the baseline, kept up to date from the
live stream) and judges a value of a new batch by two smoothed shares, ``(count + 0.5) / (total + 1)``:
the entity's own share of the value and the share of the value among the other members of its peer
group (``peers.behaviour_peers``, or the whole organisation when the group holds too few events). A
value is rare when the entity showed it between ``min_entity_count`` and ``max_entity_count`` times,
its share is at most ``max_entity_share`` and the peers' at most ``max_peer_share``; the score grows
with the surprise of both shares. Values new to the entity (count 0) are first-seen's: set
``min_entity_count`` to 0 to have rarity report them too for the kinds first-seen does not watch.

The live stream is folded into the counts as it is scored; events the previous batch already held (the
service scores each round with the previous hour's events as context) are neither judged nor counted
again. An analyst's benign verdict allow-lists the entity and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from mamori.detect.anomaly import explain, fields
from mamori.detect.anomaly.base import Peers, host_role, time_span
from mamori.detect.anomaly.records import Anomaly

PAIR = " → "  # between parent and child image in a process pair
ORGANISATION = "organisation"  # the peer group of an entity whose own group holds too few events
DYNAMIC_PORTS = 49152  # destination ports from here on are ephemeral (a flow seen from its reply side)
RECENT_AFTER_FIT = timedelta(days=1)  # baseline events the first batches may hold again (the service's context)
_NO_VALUE = ["", "-"]
_COUNTS = {"entity": pl.Utf8, "value": pl.Utf8, "count": pl.Int64}
_TOTALS = {"entity": pl.Utf8, "total": pl.Int64}
_EVIDENCE = 100  # events listed behind one anomaly


def _first_present(frame: pl.DataFrame, candidates: tuple[str, ...]) -> pl.Expr:
    """The first non-null value among the present ``candidates`` columns, row by row (a frame of mixed
    sources names a user ``TargetUserName`` on logons and ``User`` on connections)."""
    present = [pl.col(c).cast(pl.Utf8) for c in candidates if c in frame.columns]
    return pl.coalesce(present) if present else pl.lit(None, dtype=pl.Utf8)


def _rows(events: pl.DataFrame, where: pl.Expr, entity: pl.Expr, value: pl.Expr) -> pl.DataFrame:
    """(entity, value, _time, _uid) rows of the events ``where`` picks, with both an entity and a value
    (read lazily, so only the columns these name are filtered: a stored batch has dozens more)."""
    return (
        events.lazy()
        .filter(where)
        .select(entity.alias("entity"), value.alias("value"), pl.col("_time"), pl.col("_uid").cast(pl.Utf8))
        .drop_nulls(["entity", "value"])
        .filter(~pl.col("value").is_in(_NO_VALUE) & ~pl.col("entity").is_in(_NO_VALUE))
        .collect()
    )


def _people(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows whose entity is a person (``fields.person_entity``): machine accounts and Windows' built-in
    principals are left out."""
    return rows.filter(fields.person_entity())


def _processes(events: pl.DataFrame) -> pl.DataFrame:
    where = fields.event_id_in(events, fields.PROCESS_CREATION)
    return _rows(events, where, pl.col("_host"), _first_present(events, fields.IMAGE))


def _process_pairs(events: pl.DataFrame) -> pl.DataFrame:
    where = fields.event_id_in(events, fields.PROCESS_CREATION)
    pair = pl.concat_str(
        [_first_present(events, fields.PARENT_IMAGE), _first_present(events, fields.IMAGE)], separator=PAIR
    )
    return _rows(events, where, pl.col("_host"), pair)


def _logon_types(events: pl.DataFrame) -> pl.DataFrame:
    where, user = fields.event_id_in(events, fields.LOGON_SUCCESS), _first_present(events, fields.USER)
    return _people(_rows(events, where, user, _first_present(events, fields.LOGON_TYPE)))


def _logon_sources(events: pl.DataFrame) -> pl.DataFrame:
    where, user = fields.event_id_in(events, fields.LOGON_SUCCESS), _first_present(events, fields.USER)
    return _people(_rows(events, where, user, _first_present(events, fields.SOURCE_IP)))


def _ports(by_user: bool) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def select(events: pl.DataFrame) -> pl.DataFrame:
        name = fields.pick(events, fields.DEST_PORT)
        if name is None:
            return _rows(events, pl.lit(False), pl.lit(None, dtype=pl.Utf8), pl.lit(None, dtype=pl.Utf8))
        port = pl.col(name).cast(pl.Utf8)
        if not by_user:
            return _rows(events, port.is_not_null(), pl.col("_host"), port)
        user = _first_present(events, fields.USER)
        return _people(_rows(events, port.is_not_null() & user.is_not_null(), user, port))

    return select


def _as_is(value: pl.Expr) -> pl.Expr:
    return value


def _case_folded(value: pl.Expr) -> pl.Expr:
    """Windows paths in one case (Sysmon and the Security log spell ``System32`` differently)."""
    return value.str.to_lowercase()


def _fixed_port(value: pl.Expr) -> pl.Expr:
    """A destination port as a number's text; null for an ephemeral one (a flow seen from its reply side)
    or anything not a port."""
    port = value.cast(pl.Int64, strict=False)
    return pl.when(port.is_between(1, DYNAMIC_PORTS - 1)).then(port.cast(pl.Utf8))


@dataclass(frozen=True)
class RarityKind:
    """What one rarity detector counts (an entity and a value of its events) and how to say it."""

    name: str
    entity_type: str  # "host" or "user"
    what: tuple[str, str]  # the value, in English and Japanese
    events: tuple[str, str]  # the events counted, in English and Japanese
    select: Callable[[pl.DataFrame], pl.DataFrame]  # -> entity, value, _time, _uid
    # the value as counted (null: not counted), applied to distinct values when a baseline is built
    normalise: Callable[[pl.Expr], pl.Expr] = _as_is


RARE_PROCESS = RarityKind(
    "rare_process", "host", ("process", "プロセス"), ("process starts", "プロセス起動"), _processes, _case_folded
)
RARE_PROCESS_PAIR = RarityKind(
    "rare_process_pair", "host", ("parent→child process pair", "親子プロセスの組"), ("process starts", "プロセス起動"),
    _process_pairs, _case_folded,
)
RARE_LOGON_TYPE = RarityKind(
    "rare_logon_type", "user", ("logon type", "ログオン種別"), ("logons", "ログオン"), _logon_types
)
RARE_LOGON_SOURCE = RarityKind(
    "rare_logon_source", "user", ("logon source", "ログオン元"), ("logons", "ログオン"), _logon_sources
)
RARE_USER_PORT = RarityKind(
    "rare_dest_port_user", "user", ("destination port", "宛先ポート"), ("connections", "接続"), _ports(by_user=True),
    _fixed_port,
)
RARE_HOST_PORT = RarityKind(
    "rare_dest_port_host", "host", ("destination port", "宛先ポート"), ("connections", "接続"), _ports(by_user=False),
    _fixed_port,
)
RARITY_KINDS = (RARE_PROCESS, RARE_PROCESS_PAIR, RARE_LOGON_TYPE, RARE_LOGON_SOURCE, RARE_USER_PORT, RARE_HOST_PORT)
KINDS_BY_NAME = {k.name: k for k in RARITY_KINDS}


class RarityDetector:
    """Flags values rare for the entity and among its peers (see the module); one anomaly per entity,
    value and batch."""

    def __init__(
        self,
        kind: RarityKind | str,
        max_entity_count: int = 2,
        min_entity_count: int = 1,
        max_entity_share: float = 0.01,
        max_peer_share: float = 0.001,
        min_history: int = 50,
        min_peer_events: int = 200,
    ) -> None:
        self.kind = KINDS_BY_NAME[kind] if isinstance(kind, str) else kind
        self.name = self.kind.name
        self.max_entity_count = max_entity_count
        self.min_entity_count = min_entity_count
        self.max_entity_share = max_entity_share
        self.max_peer_share = max_peer_share
        self.min_history = min_history
        self.min_peer_events = min_peer_events
        self.peers: Peers = {}
        self._counts = pl.DataFrame(schema=_COUNTS)
        self._totals = pl.DataFrame(schema=_TOTALS)
        self._allowed: set[str] = set()  # "entity|value" an analyst called benign
        self._recent = pl.Series("_uid", [], dtype=pl.UInt64)  # hashed uids of the last batch's rows
        self._peer_of: pl.DataFrame | None = None  # (entity, peer) of every counted entity
        self._start: datetime | None = None
        self._end: datetime | None = None

    def _peer(self, entity: str) -> str:
        if self.kind.entity_type == "host":
            return self.peers.get(entity, host_role(entity))
        return self.peers.get(entity, "all users")

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Count how often each entity showed each value in the baseline window."""
        self.peers = dict(peers or {})
        rows = self.kind.select(events)
        raw = rows.group_by("entity", "value").agg(pl.len().cast(pl.Int64).alias("count"))
        self._counts = (  # values normalised once each, not once per event
            raw.with_columns(self.kind.normalise(pl.col("value")).alias("value"))
            .drop_nulls("value")
            .group_by("entity", "value")
            .agg(pl.col("count").sum())
        )
        self._totals = self._counts.group_by("entity").agg(pl.col("count").sum().alias("total"))
        self._start, self._end = time_span(events)
        self._recent = rows.filter(pl.col("_time") >= self._end - RECENT_AFTER_FIT).get_column("_uid").hash()
        self._peer_of = None

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies for the batch's values rare for their entity and its peers; the batch is then
        counted (what the previous batch held is neither judged nor counted again)."""
        rows = self.kind.select(events)
        if rows.is_empty():
            return []
        fresh = rows.filter(~pl.col("_uid").hash().is_in(self._recent)) if len(self._recent) else rows
        self._recent = rows.get_column("_uid").hash()
        fresh = fresh.with_columns(self.kind.normalise(pl.col("value")).alias("value")).drop_nulls("value")
        if fresh.is_empty():
            return []
        found = self._judge(fresh)
        self._fold(fresh)
        return found

    def _judge(self, fresh: pl.DataFrame) -> list[Anomaly]:
        batch = fresh.group_by("entity", "value").agg(pl.len().alias("now"), pl.col("_time").min().alias("first"))
        cand = (
            batch.join(self._totals, on="entity")
            .filter(pl.col("total") >= self.min_history)
            .join(self._counts, on=["entity", "value"], how="left")
            .with_columns(pl.col("count").fill_null(0))
            .filter(pl.col("count").is_between(self.min_entity_count, self.max_entity_count))
            .with_columns(((pl.col("count") + 0.5) / (pl.col("total") + 1)).alias("p_entity"))
            .filter(pl.col("p_entity") <= self.max_entity_share)
        )
        if self._allowed and not cand.is_empty():
            key = pl.concat_str([pl.col("entity"), pl.col("value")], separator="|")
            cand = cand.filter(~key.is_in(sorted(self._allowed)))
        if cand.is_empty():
            return []
        if self.kind is RARE_PROCESS_PAIR:
            cand = self._usual_child(cand)
        cand = self._with_peers(cand)
        cand = cand.with_columns(((pl.col("peer_count") + 0.5) / (pl.col("peer_total") + 1)).alias("p_peer")).filter(
            (pl.col("peer_total") >= self.min_peer_events) & (pl.col("p_peer") <= self.max_peer_share)
        )
        if cand.is_empty():
            return []
        cand = cand.join(self._typical(cand.get_column("entity").unique()), on="entity", how="left")
        uids = (
            fresh.join(cand.select("entity", "value"), on=["entity", "value"], how="semi")
            .sort("_time")
            .group_by("entity", "value")
            .agg(pl.col("_uid").head(_EVIDENCE))
        )
        cand = cand.join(uids, on=["entity", "value"])
        days, window = explain.window_days(self._start, self._end), explain.window_text(self._start, self._end)
        out: list[Anomaly] = []
        for row in cand.sort("first", "entity", "value").iter_rows(named=True):
            surprise = -math.log10(row["p_entity"]) - math.log10(row["p_peer"])
            facts = explain.RarityFacts(
                entity=row["entity"],
                entity_type=self.kind.entity_type,
                what=self.kind.what,
                events=self.kind.events,
                value=row["value"],
                now=int(row["now"]),
                count=int(row["count"]),
                total=int(row["total"]),
                typical=float(row["typical"] or 0.0),
                days=days,
                peer=row["peer"],
                peer_count=int(row["peer_count"]),
                peer_total=int(row["peer_total"]),
                peers_with=int(row["peers_with"]),
                peer_size=int(row["peer_size"]),
            )
            out.append(
                Anomaly(
                    detector=self.name,
                    entity_type=self.kind.entity_type,
                    entity=row["entity"],
                    time=row["first"],
                    score=float(min(5.0 * surprise, 80.0)),
                    observed=float(row["count"]),
                    typical=float(row["typical"] or 0.0),
                    window=window,
                    explanation=explain.rarity(facts),
                    peer_group=row["peer"],
                    event_uids=tuple(row["_uid"]),
                    detail=(("value", row["value"]),),
                )
            )
        return out

    def _usual_child(self, cand: pl.DataFrame) -> pl.DataFrame:
        """Pairs whose child process is not itself rare on the host (a rare process is reported once,
        by the process detector): an ordinary program started by an unusual parent."""
        child = pl.col("value").str.split(PAIR).list.last().alias("child")
        images = (
            self._counts.join(cand.select("entity").unique(), on="entity", how="semi")
            .group_by("entity", child)
            .agg(pl.col("count").sum().alias("child_count"))
        )
        return (
            cand.with_columns(child)
            .join(images, on=["entity", "child"], how="left")
            .filter(pl.col("child_count").fill_null(0) > self.max_entity_count)
            .drop("child", "child_count")
        )

    def _with_peers(self, cand: pl.DataFrame) -> pl.DataFrame:
        """Columns peer, peer_count, peer_total, peers_with and peer_size: how often the other members of
        the entity's peer group (the organisation when the group holds under ``min_peer_events`` events
        besides the entity's) showed the value, of how many events, and how many of them did."""
        if self._peer_of is None:
            entities = self._totals.get_column("entity").to_list()
            self._peer_of = pl.DataFrame(
                {"entity": entities, "peer": [self._peer(e) for e in entities]},
                schema={"entity": pl.Utf8, "peer": pl.Utf8},
            )
        have = self._counts.join(cand.select("value").unique(), on="value", how="semi").join(self._peer_of, on="entity")
        in_group = have.group_by("peer", "value").agg(
            pl.col("count").sum().alias("g_count"), pl.len().cast(pl.Int64).alias("g_with")
        )
        in_org = have.group_by("value").agg(
            pl.col("count").sum().alias("o_count"), pl.len().cast(pl.Int64).alias("o_with")
        )
        groups = (
            self._totals.join(self._peer_of, on="entity")
            .group_by("peer")
            .agg(pl.col("total").sum().alias("g_total"), pl.len().cast(pl.Int64).alias("g_size"))
        )
        org_total, org_size = int(self._totals.get_column("total").sum()), self._totals.height
        cand = (
            cand.join(self._peer_of, on="entity", how="left")
            .join(in_group, on=["peer", "value"], how="left")
            .join(in_org, on="value", how="left")
            .join(groups, on="peer", how="left")
            .with_columns(pl.col("g_count", "g_with", "o_count", "o_with", "g_total", "g_size").fill_null(0))
        )
        own = (pl.col("count") > 0).cast(pl.Int64)
        group = (pl.col("g_total") - pl.col("total")) >= self.min_peer_events
        return cand.with_columns(
            pl.when(group).then(pl.col("peer")).otherwise(pl.lit(ORGANISATION)).alias("peer"),
            pl.when(group).then(pl.col("g_count")).otherwise(pl.col("o_count")).sub(pl.col("count")).alias("peer_count"),
            pl.when(group).then(pl.col("g_total")).otherwise(pl.lit(org_total)).sub(pl.col("total")).alias("peer_total"),
            pl.when(group).then(pl.col("g_with")).otherwise(pl.col("o_with")).sub(own).alias("peers_with"),
            pl.when(group).then(pl.col("g_size")).otherwise(pl.lit(org_size)).sub(1).alias("peer_size"),
        )

    def _typical(self, entities: pl.Series) -> pl.DataFrame:
        """Per entity, how often its typical value was seen: the count such that half of its events show
        values seen at least that often (a weighted median, which a long tail of rare values leaves alone)."""
        ordered = pl.col("count").sort(descending=True)
        return (
            self._counts.join(entities.to_frame("entity"), on="entity", how="semi")
            .group_by("entity")
            .agg(ordered.filter(ordered.cum_sum() * 2 >= ordered.sum()).first().cast(pl.Float64).alias("typical"))
        )

    def _fold(self, fresh: pl.DataFrame) -> None:
        """Count a scored batch's rows into the baseline."""
        add = fresh.group_by("entity", "value").agg(pl.len().cast(pl.Int64).alias("count"))
        self._counts = pl.concat([self._counts, add]).group_by("entity", "value").agg(pl.col("count").sum())
        totals = fresh.group_by("entity").agg(pl.len().cast(pl.Int64).alias("total"))
        if not totals.join(self._totals, on="entity", how="anti").is_empty():
            self._peer_of = None  # an entity new to the counts needs its peer group
        self._totals = pl.concat([self._totals, totals]).group_by("entity").agg(pl.col("total").sum())
        _, end = time_span(fresh)
        self._end = max(self._end, end) if self._end else end
        self._start = self._start or end

    def learn_benign(self, anomaly: Anomaly) -> None:
        """Allow the entity's value from now on (a host's monthly maintenance tool, a user's VPN port)."""
        self._allowed.add(f"{anomaly.entity}|{dict(anomaly.detail).get('value', '')}")

    def state(self) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        """Counts and totals as frames; thresholds, peers, the allow-list and the window as settings."""
        settings = {
            "kind": self.kind.name,
            "max_entity_count": self.max_entity_count,
            "min_entity_count": self.min_entity_count,
            "max_entity_share": self.max_entity_share,
            "max_peer_share": self.max_peer_share,
            "min_history": self.min_history,
            "min_peer_events": self.min_peer_events,
            "peers": self.peers,
            "allowed": sorted(self._allowed),
            "start": self._start.isoformat() if self._start else None,
            "end": self._end.isoformat() if self._end else None,
        }
        return {"counts": self._counts, "totals": self._totals}, settings

    def restore(self, frames: dict[str, pl.DataFrame], settings: dict[str, Any]) -> None:
        """Take back a saved state."""
        self._counts, self._totals = frames["counts"], frames["totals"]
        self.max_entity_count, self.min_entity_count = settings["max_entity_count"], settings["min_entity_count"]
        self.max_entity_share, self.max_peer_share = settings["max_entity_share"], settings["max_peer_share"]
        self.min_history, self.min_peer_events = settings["min_history"], settings["min_peer_events"]
        self.peers, self._allowed = dict(settings["peers"]), set(settings["allowed"])
        self._start = datetime.fromisoformat(settings["start"]) if settings["start"] else None
        self._end = datetime.fromisoformat(settings["end"]) if settings["end"] else None
        self._recent = pl.Series("_uid", [], dtype=pl.UInt64)
        self._peer_of = None
