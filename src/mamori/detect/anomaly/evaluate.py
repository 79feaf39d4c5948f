"""Evaluations behind the benchmarks and the CI tests: ADFA-LD, NSL-KDD and the UEBA scenario."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from mamori.detect.anomaly.engine import UebaEngine
from mamori.detect.anomaly.metrics import detection_at_false_alarm, roc_auc
from mamori.detect.anomaly.nslkdd import SYMBOLIC, numeric_fields, read_nsl_kdd
from mamori.detect.anomaly.records import Anomaly
from mamori.detect.anomaly.risk import RiskIncident
from mamori.detect.anomaly.scenario import Injection, Scenario
from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.sequence_rnn import GruCallModel
from mamori.detect.anomaly.syscalls import TraceAnomalyModel, load_adfa_ld
from mamori.detect.anomaly.tabular import TabularKnnModel


@dataclass(frozen=True)
class FamilyResult:
    """Detection figures for one attack family (or all attacks)."""

    family: str
    attacks: int
    auc: float
    caught_at_1pct: float
    caught_at_5pct: float


@dataclass(frozen=True)
class AdfaResult:
    """ADFA-LD: trace-level AUC and detection at 1 % and 5 % false alarms, overall and per family."""

    overall: FamilyResult
    families: tuple[FamilyResult, ...]
    train_traces: int
    normal_traces: int
    sequence_auc: float = float("nan")  # the n-gram part alone
    call_set_auc: float = float("nan")  # the call-set part alone
    rnn: FamilyResult | None = None  # the GRU language model alone, when one was asked for
    rnn_seconds: tuple[float, float] = (float("nan"), float("nan"))  # its training and scoring time


def _family(name: str, y: np.ndarray, s: np.ndarray) -> FamilyResult:
    return FamilyResult(
        name,
        int(y.sum()),
        roc_auc(y, s),
        detection_at_false_alarm(y, s, 0.01),
        detection_at_false_alarm(y, s, 0.05),
    )


def evaluate_adfa_ld(path: Path, order: int = 7, every: int = 1, rnn: GruCallModel | None = None) -> AdfaResult:
    """Train :class:`TraceAnomalyModel` on normal training traces only; score validation normals and
    attacks (every ``every``-th trace of each set, for a quick run). With ``rnn``, also train that GRU
    language model on the same traces and report its mean surprise per call alone (the published
    neural route, a comparison: it does not beat the n-gram model here, so the model leaves it out)."""
    data = load_adfa_ld(path)
    model = TraceAnomalyModel(order).fit(data.train)
    normals = data.validation[::every]
    attacks = data.attacks[::every]
    families = np.array(data.attack_families[::every])
    s_norm = model.score(normals)
    s_att = model.score(attacks)
    scores = np.concatenate([s_norm, s_att])
    y = np.r_[np.zeros(len(s_norm), dtype=bool), np.ones(len(s_att), dtype=bool)]
    surprise, distance = model.parts(normals + attacks)
    per_family = []
    for fam in sorted(set(families.tolist())):
        mask = families == fam
        per_family.append(
            _family(
                fam,
                np.r_[np.zeros(len(s_norm), bool), np.ones(int(mask.sum()), bool)],
                np.concatenate([s_norm, s_att[mask]]),
            )
        )
    rnn_result, rnn_seconds = None, (float("nan"), float("nan"))
    if rnn is not None:
        start = time.perf_counter()
        rnn.fit(data.train)
        trained = time.perf_counter()
        rnn_result = _family("GRU", y, rnn.score(normals + attacks))
        rnn_seconds = (trained - start, time.perf_counter() - trained)
    return AdfaResult(
        _family("all", y, scores),
        tuple(per_family),
        len(data.train),
        len(normals),
        roc_auc(y, surprise),
        roc_auc(y, distance),
        rnn_result,
        rnn_seconds,
    )


@dataclass(frozen=True)
class NslKddResult:
    """NSL-KDD: AUC on KDDTest+ and on the hard subset KDDTest-21."""

    auc_test: float
    auc_test21: float
    train_rows: int


def evaluate_nsl_kdd(folder: Path, k: int = 20, sample: int | None = None) -> NslKddResult:
    """Train on the normal rows of KDDTrain+_20Percent only; report AUC on KDDTest+ and KDDTest-21
    (``sample`` rows of each test file, for a quick run)."""
    train = read_nsl_kdd(folder, "KDDTrain+_20Percent.txt").filter(pl.col("label") == "normal")
    model = TabularKnnModel(numeric_fields(folder), list(SYMBOLIC), k=k).fit(train)
    aucs = []
    for name in ("KDDTest+.txt", "KDDTest-21.txt"):
        test = read_nsl_kdd(folder, name)
        if sample is not None and sample < len(test):
            test = test.sample(sample, seed=0)
        aucs.append(roc_auc((test["label"] != "normal").to_numpy(), model.score(test)))
    return NslKddResult(aucs[0], aucs[1], len(train))


@dataclass(frozen=True)
class ScenarioResult:
    """UEBA scenario: which injections were found, false alarms per day, incidents raised."""

    found: dict[str, bool]
    false_alarms_per_day: dict[date, int]
    anomalies: tuple[Anomaly, ...]
    incidents: tuple[RiskIncident, ...]

    @property
    def max_false_alarms_per_day(self) -> int:
        """The worst simulated day."""
        return max(self.false_alarms_per_day.values(), default=0)


def _matches(anomaly: Anomaly, injection: Injection) -> bool:
    """An anomaly belongs to an injection when it rests on injected events, or names the injected
    entity within an hour of the injection."""
    if injection.event_uids.intersection(anomaly.event_uids):
        return True
    slack = timedelta(hours=1)
    return anomaly.entity == injection.entity and injection.start - slack <= anomaly.time <= injection.end + slack


def evaluate_scenario(
    scenario: Scenario, engine: UebaEngine | None = None, departments: bool = False
) -> ScenarioResult:
    """Fit on the training weeks, score the last week day by day (local days, as live batches), match
    anomalies to the injected attacks and count the rest as false alarms. Peer groups are computed
    from behaviour, as the service does, unless ``departments`` asks for the generator's ground truth."""
    calendar = Calendar(scenario.timezone)
    engine = engine or UebaEngine(calendar=calendar)
    events = scenario.events
    engine.fit(events.filter(pl.col("_time") < scenario.train_end), scenario.departments if departments else None)
    test = events.filter(pl.col("_time") >= scenario.train_end).with_columns(
        calendar.local_date(pl.col("_time")).alias("_day")
    )
    anomalies: list[Anomaly] = []
    incidents: list[RiskIncident] = []
    false_alarms: dict[date, int] = {}
    for day in test.partition_by("_day", maintain_order=True, include_key=False):
        found, raised = engine.score_with_risk(day)
        anomalies += found
        incidents += raised
        false_alarms[day.select(calendar.local_date(pl.col("_time")).min()).item()] = sum(
            1 for a in found if not any(_matches(a, inj) for inj in scenario.injections)
        )
    hit = {inj.kind: any(_matches(a, inj) for a in anomalies) for inj in scenario.injections}
    return ScenarioResult(hit, false_alarms, tuple(anomalies), tuple(incidents))
