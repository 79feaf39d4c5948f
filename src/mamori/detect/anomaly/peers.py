"""Peer groups computed from behaviour: users that log on to the same hosts and run the same programs,
hosts that run the same programs. A detector compares an entity with its peers when its own history
is thin (volume ceilings) or to weigh what is new to it (first-seen: a server its whole team uses is
not a surprise), so the groups must come from what the baseline shows, not from a directory the
service does not have.

Each entity is a vector of log-scaled counts of the items it shows (hosts logged on to, programs
started), normalised to unit length, so two entities are alike when their cosine is high. Items
nearly every entity shows (explorer.exe on every user's list, a domain controller everyone logs on
to) tell nothing about likeness and would make everyone alike: they are left out. Groups are
made by leader clustering in a fixed order (busiest entity first, then by name): the first entity
not yet grouped leads a new group that takes every ungrouped entity within ``threshold`` of it; then
each entity moves once to the group whose centre it is closest to. That is deterministic and costs
one sparse product per group, cheap for thousands of entities. Entities left alone in a group get no
peer group (the detectors' defaults apply: all users, hosts of the same name stem).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mamori.detect.anomaly import fields
from mamori.detect.anomaly.base import Peers

USER_PREFIX = "users"
HOST_PREFIX = "hosts"


def _user_items(events: pl.DataFrame) -> pl.DataFrame:
    """(entity, item, count) for users: hosts logged on to, programs started."""
    logons = events.filter(fields.event_id_in(events, fields.LOGON_SUCCESS))
    host = pl.concat_str([pl.lit("host:"), pl.col("_host")])
    parts = [logons.select(fields.column(logons, fields.USER).alias("entity"), host.alias("item"))]
    if fields.pick(events, fields.PROCESS_USER) is not None:
        procs = events.filter(fields.event_id_in(events, fields.PROCESS_CREATION))
        parts.append(
            procs.select(
                fields.column(procs, fields.PROCESS_USER).alias("entity"),
                pl.concat_str([pl.lit("image:"), fields.column(procs, fields.IMAGE)]).alias("item"),
            )
        )
    rows = pl.concat(parts).drop_nulls()
    rows = rows.filter(fields.person_entity())
    return rows.group_by("entity", "item").agg(pl.len().alias("count"))


def _host_items(events: pl.DataFrame) -> pl.DataFrame:
    """(entity, item, count) for hosts: programs started."""
    procs = events.filter(fields.event_id_in(events, fields.PROCESS_CREATION))
    rows = procs.select(pl.col("_host").alias("entity"), fields.column(procs, fields.IMAGE).alias("item")).drop_nulls()
    return rows.group_by("entity", "item").agg(pl.len().alias("count"))


def distinctive(items: pl.DataFrame, ubiquity: float = 0.9) -> pl.DataFrame:
    """The (entity, item, count) rows whose item is shown by at most ``ubiquity`` of the entities."""
    entities = items.get_column("entity").n_unique()
    spread = items.group_by("item").agg(pl.col("entity").n_unique().alias("df"))
    keep = spread.filter(pl.col("df") <= ubiquity * entities).select("item")
    return items.join(keep, on="item", how="semi")


def cluster(items: pl.DataFrame, threshold: float = 0.5, min_size: int = 2) -> dict[str, int]:
    """Group entities of (entity, item, count) rows by the cosine of their log-count vectors (see the
    module); entity -> group number, numbered by group size (largest first), groups under ``min_size``
    left out."""
    if items.is_empty():
        return {}
    from scipy import sparse  # half a second to import: only when baselines are built, not at service start

    entities = items.group_by("entity").agg(pl.col("count").sum().alias("total")).sort(
        ["total", "entity"], descending=[True, False]
    )
    names: list[str] = entities.get_column("entity").to_list()
    item_names = items.get_column("item").unique().sort().to_list()
    row = pl.DataFrame({"entity": names, "r": np.arange(len(names))})
    col = pl.DataFrame({"item": item_names, "c": np.arange(len(item_names))})
    coded = items.join(row, on="entity").join(col, on="item")
    weights = np.log1p(coded.get_column("count").to_numpy().astype(np.float64))
    matrix = sparse.csr_matrix(
        (weights, (coded.get_column("r").to_numpy(), coded.get_column("c").to_numpy())),
        shape=(len(names), len(item_names)),
    )
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    matrix = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix
    label = np.full(len(names), -1)
    leaders: list[int] = []
    for i in range(len(names)):  # busiest first: a leader is a typical member, not a stray
        if label[i] >= 0:
            continue
        free = np.flatnonzero(label < 0)
        sims = (matrix[free] @ matrix[i].T).toarray().ravel()
        label[free[sims >= threshold]] = len(leaders)
        label[i] = len(leaders)
        leaders.append(i)
    # one move of each entity to the nearest group centre (a leader at a group's edge takes strays)
    member = sparse.csr_matrix((np.ones(len(names)), (label, np.arange(len(names)))), shape=(len(leaders), len(names)))
    centres = member @ matrix
    c_norms = np.sqrt(np.asarray(centres.multiply(centres).sum(axis=1)).ravel())
    centres = sparse.diags(1.0 / np.maximum(c_norms, 1e-12)) @ centres
    label = np.asarray((matrix @ centres.T).toarray().argmax(axis=1)).ravel()
    sizes = np.bincount(label, minlength=len(leaders))
    order = sorted((g for g in range(len(leaders)) if sizes[g] >= min_size), key=lambda g: (-sizes[g], g))
    number = {g: k + 1 for k, g in enumerate(order)}
    return {names[i]: number[g] for i, g in enumerate(label.tolist()) if g in number}


def _named(groups: dict[str, int], items: pl.DataFrame, prefix: str) -> dict[str, str]:
    """Group names an analyst can read: ``users-03 (srv03, srv06)``, the items most members share."""
    if not groups:
        return {}
    member = pl.DataFrame({"entity": list(groups), "group": list(groups.values())})
    shared = (
        items.join(member, on="entity")
        .group_by("group", "item")
        .agg(pl.col("entity").n_unique().alias("have"))
        .sort(["group", "have", "item"], descending=[False, True, False])
        .group_by("group", maintain_order=True)
        .agg(pl.col("item").head(2))
    )
    label = {}
    for g, top in shared.iter_rows():
        short = [str(t).split(":", 1)[-1].rsplit("\\", 1)[-1] for t in top]
        label[g] = f"{prefix}-{g:02d} ({', '.join(short)})"
    return {e: label.get(g, f"{prefix}-{g:02d}") for e, g in groups.items()}


def behaviour_peers(events: pl.DataFrame, threshold: float = 0.5) -> Peers:
    """Peer groups of users and hosts computed from the baseline's events (entity -> group name);
    entities without peers are left out."""
    users, hosts = distinctive(_user_items(events)), distinctive(_host_items(events))
    peers = _named(cluster(hosts, threshold), hosts, HOST_PREFIX)
    peers.update(_named(cluster(users, threshold), users, USER_PREFIX))  # a name both user and host: the user's
    return peers
