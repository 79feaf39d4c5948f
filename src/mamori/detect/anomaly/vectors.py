"""Per-entity behaviour vectors for the unsupervised models (ECOD, half-space trees), and the
entity baseline they are centred on.

Two kinds of vector, one row per entity and hour: a host's (``behaviour.behaviour_vectors``: logons,
failures, distinct users, processes, connections, distinct destinations, bytes sent) and a user's
(logons, failures, distinct hosts and sources logged on from, processes started). The models see
each feature as log1p(value) minus the entity's own median for the season (local office hours or
the rest, so an off-hours hour is judged against the entity's off-hours): a busy server and a quiet
workstation are on the same scale, and a model over the whole population learns how far an entity
usually strays from itself. An entity absent from the baseline is centred on the population's median.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from mamori.detect.anomaly import behaviour, fields
from mamori.detect.anomaly.base import per_frame
from mamori.detect.anomaly.seasons import Calendar

USER_FEATURES = ("logons", "failures", "hosts", "sources", "processes")


def user_vectors(events: pl.DataFrame, calendar: Calendar | None = None, evidence: bool = True) -> pl.DataFrame:
    """One row per (user, hour) with any logon, failure or process start: the user's behaviour
    features, computed in one grouped pass, and whether the hour is a local office hour; with
    ``evidence``, the first events behind each feature too."""
    calendar = calendar or Calendar()
    logon = fields.event_id_in(events, fields.LOGON_SUCCESS)
    failure = fields.event_id_in(events, fields.LOGON_FAILURE)
    process = fields.event_id_in(events, fields.PROCESS_CREATION)
    user = fields.column(events, fields.USER)
    process_user = fields.column(events, fields.PROCESS_USER)
    who = pl.when(logon | failure).then(user).when(process).then(process_user).otherwise(None)
    source = fields.column(events, fields.SOURCE_IP)
    auth = logon | failure
    return (
        events.with_columns(who.alias("entity"), pl.col("_time").dt.truncate("1h").alias("hour"))
        .filter(pl.col("entity").is_not_null() & (pl.col("entity") != "") & (pl.col("entity") != "-"))
        .group_by("entity", "hour")
        .agg(
            logon.sum().cast(pl.Float64).alias("logons"),
            failure.sum().cast(pl.Float64).alias("failures"),
            pl.col("_host").filter(auth).n_unique().cast(pl.Float64).alias("hosts"),
            source.filter(auth).drop_nulls().n_unique().cast(pl.Float64).alias("sources"),
            process.sum().cast(pl.Float64).alias("processes"),
            *(
                (
                    pl.col("_uid").filter(auth).head(20).alias("ev_auth"),
                    pl.col("_uid").filter(failure).head(20).alias("ev_failure"),
                    pl.col("_uid").filter(process).head(20).alias("ev_process"),
                )
                if evidence
                else ()
            ),
        )
        .with_columns(calendar.office_hours(pl.col("hour")).alias("office"))
    )


def _host_vectors(events: pl.DataFrame, calendar: Calendar, evidence: bool = True) -> pl.DataFrame:
    return behaviour.host_hour_vectors(events, calendar, evidence).rename({"host": "entity"})


@dataclass(frozen=True)
class VectorKind:
    """One kind of behaviour vector: whose it is, its features with their Japanese names, the evidence
    column behind each feature, and the function that builds it from events."""

    entity_type: str
    features: tuple[str, ...]
    ja: dict[str, str]
    evidence: dict[str, str]
    build: Callable[[pl.DataFrame, Calendar, bool], pl.DataFrame]  # events, calendar, with evidence


HOST = VectorKind("host", behaviour.FEATURES, behaviour.JA_NAMES, behaviour.EVIDENCE, _host_vectors)
USER = VectorKind(
    "user",
    USER_FEATURES,
    {"logons": "ログオン数", "failures": "ログオン失敗数", "hosts": "ログオン先ホスト数",
     "sources": "ログオン元アドレス数", "processes": "プロセス起動数"},
    {"logons": "ev_auth", "failures": "ev_failure", "hosts": "ev_auth", "sources": "ev_auth",
     "processes": "ev_process"},
    user_vectors,
)
KINDS = {k.entity_type: k for k in (HOST, USER)}

def baseline_vectors(kind: VectorKind, events: pl.DataFrame, calendar: Calendar) -> pl.DataFrame:
    """``kind``'s vectors of a baseline's events, without evidence (``kind_vectors``)."""
    return kind_vectors(kind, events, calendar, evidence=False)


def kind_vectors(kind: VectorKind, events: pl.DataFrame, calendar: Calendar, evidence: bool) -> pl.DataFrame:
    """``kind``'s vectors of ``events``, built once per frame for every model that reads them (ECOD and
    half-space trees fit and score the same frames: over 10 million events each build takes seconds)."""
    return per_frame(events, ("vectors", kind.entity_type, calendar, evidence),
                     lambda: kind.build(events, calendar, evidence))


def entity_baseline(vectors: pl.DataFrame, features: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per (entity, office): the median of each log feature (what residuals are taken from) and the
    99th percentile of each raw feature (the typical value explanations quote)."""
    median = vectors.group_by("entity", "office").agg(pl.col(f).log1p().median() for f in features)
    typical = vectors.group_by("entity", "office").agg(pl.col(f).quantile(0.99, "higher") for f in features)
    return median, typical


def residuals(vectors: pl.DataFrame, median: pl.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """log1p(feature) minus the entity's median for the season, rows in ``vectors``' order; an entity the
    baseline never saw is centred on the population's median for the season."""
    population = median.group_by("office").agg(pl.col(f).median().alias(f"{f}_population") for f in features)
    centred = vectors.join(
        median, on=["entity", "office"], how="left", suffix="_median", maintain_order="left"
    ).join(population, on="office", how="left", maintain_order="left")
    own = np.log1p(centred.select(features).to_numpy().astype(np.float64))
    usual = centred.select(
        pl.coalesce(f"{f}_median", f"{f}_population", pl.lit(0.0)) for f in features
    ).to_numpy().astype(np.float64)
    return np.asarray(own - usual, dtype=np.float64)
