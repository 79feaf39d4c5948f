"""The unsupervised models over behaviour vectors (ECOD, streaming half-space trees): they find the
scenario's attacks naming the features behind the score in both languages, keep the streaming state
across a restart, learn each complete hour of the stream once, and take an analyst's verdict."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mamori.detect.anomaly.ecod import EcodDetector, counted, tail_scores
from mamori.detect.anomaly.engine import UebaEngine, default_detectors, vector_models
from mamori.detect.anomaly.evaluate import ScenarioResult, evaluate_scenario
from mamori.detect.anomaly.half_space import HalfSpaceForest, HalfSpaceTreesDetector
from mamori.detect.anomaly.scenario import Scenario, generate_scenario
from mamori.detect.anomaly.seasons import Calendar


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(seed=7)


@pytest.fixture(scope="module")
def train(scenario: Scenario) -> pl.DataFrame:
    return scenario.events.filter(pl.col("_time") < scenario.train_end)


@pytest.fixture(scope="module")
def result(scenario: Scenario) -> ScenarioResult:
    return evaluate_scenario(scenario)


def _injection(scenario: Scenario, kind: str) -> tuple[str, set[str]]:
    inj = next(i for i in scenario.injections if i.kind == kind)
    return inj.entity, set(inj.event_uids)


def test_the_default_engine_runs_ecod_and_half_space_trees_over_hosts_and_users() -> None:
    names = {d.name for d in default_detectors()}
    assert {"ecod_host", "ecod_user", "half_space_host", "half_space_user"} <= names
    assert not {d.name for d in default_detectors(models=())} & {"ecod_host", "half_space_user"}
    with pytest.raises(ValueError, match="isolation"):
        vector_models(("isolation",))


def test_ecod_finds_the_exfiltration_hour_and_names_bytes_sent_against_typical(
    scenario: Scenario, result: ScenarioResult
) -> None:
    host, uids = _injection(scenario, "exfiltration")
    hit = next(a for a in result.anomalies if a.detector == "ecod_host" and a.entity == host)
    assert dict(hit.detail)["feature"] == "bytes_out"
    assert uids & set(hit.event_uids)
    assert hit.observed > 50 * hit.typical
    assert "bytes_out 2,985,252,236 (typical ≤ " in hit.explanation.en and "of the score" in hit.explanation.en
    assert "ECOD score" in hit.explanation.en and "alert threshold" in hit.explanation.en
    assert "送信バイト数" in hit.explanation.ja and "しきい値" in hit.explanation.ja
    assert "baseline 2026-03-01..2026-03-22 (21 days)" in hit.explanation.en


def test_ecod_over_users_finds_taro_logging_on_to_many_hosts(
    scenario: Scenario, result: ScenarioResult
) -> None:
    user, uids = _injection(scenario, "lateral_movement")
    hit = next(a for a in result.anomalies if a.detector == "ecod_user" and a.entity == user)
    assert dict(hit.detail)["feature"] in {"hosts", "logons"}
    assert "hosts 15 (typical ≤ 1" in hit.explanation.en
    assert "ログオン先ホスト数 15" in hit.explanation.ja
    assert uids & set(hit.event_uids)
    assert hit.score > 40  # far past the threshold: more risk than an anomaly at it (20)


def test_vector_models_keep_the_false_alarm_bar(result: ScenarioResult, scenario: Scenario) -> None:
    assert all(result.found.values())
    assert result.max_false_alarms_per_day <= 5
    mine = [a for a in result.anomalies if a.detector.startswith(("ecod_", "half_space_"))]
    spraying_source = _injection(scenario, "password_spraying")[0]
    assert spraying_source in {i.entity for i in result.incidents}
    victims = {a.entity for a in mine if a.entity_type == "user"} - {"taro"}
    assert not victims & {i.entity for i in result.incidents}  # sprayed accounts alone raise no incident


def test_an_ecod_tail_past_anything_seen_keeps_growing() -> None:
    rng = np.random.default_rng(1)
    reference = np.sort(rng.normal(size=(5000, 1)), axis=0)
    tails = tail_scores(reference, 5000, np.array([[0.0], [reference[-1, 0]], [reference[-1, 0] + 10.0]]))
    assert tails[0, 0] < 1.0 < tails[1, 0] < tails[2, 0]
    assert tails[2, 0] > tails[1, 0] + 10  # extrapolated, not floored at ln(5001)
    assert counted(tails)[0, 0] == 0.0  # within the usual 95 %: adds nothing


def test_half_space_trees_score_an_isolated_point_above_the_crowd() -> None:
    rng = np.random.default_rng(3)
    crowd = rng.normal(0.5, 0.05, size=(4000, 3))
    forest = HalfSpaceForest(3, trees=25, depth=10)
    forest.add(crowd, into_reference=True)
    scores, shares = forest.score(np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 1.4]]))
    assert scores[1] > scores[0] + 2
    assert int(np.argmax(shares[1])) == 2  # the feature that isolated it gets the credit
    assert shares.sum(axis=1) == pytest.approx([1.0, 1.0])


def test_half_space_trees_learn_each_complete_hour_once_and_swap_windows(train: pl.DataFrame) -> None:
    detector = HalfSpaceTreesDetector("host", Calendar(), window_days=0.75)
    detector.fit(train)
    window = detector.window
    assert window > 0 and detector.learned == 0
    start = detector.learned_until
    assert start is not None
    day = train.filter((pl.col("_time") >= start - timedelta(days=1)) & (pl.col("_time") < start))
    shifted = day.with_columns(pl.col("_time") + timedelta(days=1), pl.col("_uid") + "-next")
    first, second = shifted.filter(pl.col("_time") < start + timedelta(hours=12)), shifted
    reference = detector.forest.reference.copy()
    detector.score(first)
    learned = detector.learned
    assert 0 < learned < window  # the hours before the batch's newest, complete ones only
    assert detector.learned_until is not None and detector.learned_until > start
    detector.score(first)  # the same hours again (a round's context): nothing learned twice
    assert detector.learned == learned
    detector.score(second)  # the rest of the day: the latest window fills and becomes the reference
    assert detector.learned < learned
    assert not np.array_equal(detector.forest.reference, reference)


def test_the_streaming_state_survives_a_restart(scenario: Scenario, train: pl.DataFrame, tmp_path: Path) -> None:
    calendar = Calendar(scenario.timezone)
    engine = UebaEngine(vector_models(("ecod", "half_space"), calendar), calendar=calendar)
    engine.fit(train)
    test = scenario.events.filter(pl.col("_time") >= scenario.train_end)
    days = test.with_columns(pl.col("_time").dt.date().alias("_day")).partition_by(
        "_day", maintain_order=True, include_key=False)
    engine.score(days[0])
    engine.save(tmp_path / "ueba")
    restored = UebaEngine.load(tmp_path / "ueba")
    stream = next(d for d in engine.detectors if isinstance(d, HalfSpaceTreesDetector) and d.name.endswith("user"))
    again = next(d for d in restored.detectors if d.name == stream.name)
    assert isinstance(again, HalfSpaceTreesDetector)
    assert np.array_equal(again.forest.latest, stream.forest.latest) and stream.forest.latest.sum() > 0
    assert (again.learned, again.learned_until, again.window) == (stream.learned, stream.learned_until, stream.window)
    for day in days[1:4]:
        assert [(a.detector, a.entity, a.score, a.explanation.en) for a in engine.score(day)] == [
            (a.detector, a.entity, a.score, a.explanation.en) for a in restored.score(day)
        ]


def test_a_benign_ecod_verdict_quiets_the_entity_and_outlives_a_refit(scenario: Scenario, train: pl.DataFrame) -> None:
    calendar = Calendar(scenario.timezone)
    host, _ = _injection(scenario, "exfiltration")
    day = scenario.events.filter(pl.col("_time").dt.date() == next(
        i for i in scenario.injections if i.kind == "exfiltration").start.date())
    engine = UebaEngine([EcodDetector("host", calendar, 0.25)], calendar=calendar)
    engine.fit(train)
    found = [a for a in engine.score(day) if a.entity == host]
    assert found
    engine.mark_benign(found[0])
    engine.benign.clear()  # not the exact allow-list: the detector itself has learned
    assert [a for a in engine.score(day) if a.entity == host] == []
    engine.fit(train)  # a refit teaches the verdict again
    engine.benign.clear()
    assert [a for a in engine.score(day) if a.entity == host] == []
