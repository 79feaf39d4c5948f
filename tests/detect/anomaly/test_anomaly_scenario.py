"""The UEBA scenario: every injected attack is found, false alarms stay at most five a day, and the
engine's baselines, feedback and risk incidents behave as an analyst expects."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from mamori.detect.anomaly.engine import UebaEngine
from mamori.detect.anomaly.evaluate import ScenarioResult, evaluate_scenario
from mamori.detect.anomaly.peers import behaviour_peers
from mamori.detect.anomaly.scenario import Scenario, generate_scenario
from mamori.detect.anomaly.seasons import Calendar


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(seed=7)


@pytest.fixture(scope="module")
def result(scenario: Scenario) -> ScenarioResult:
    return evaluate_scenario(scenario)


def test_scenario_holds_four_weeks_of_200_users_on_50_hosts(scenario: Scenario) -> None:
    assert len(scenario.users) == 200
    assert len(scenario.hosts) == 50
    assert (scenario.end - scenario.events["_time"].min()).days == 28  # type: ignore[operator]
    assert scenario.events["_uid"].n_unique() == len(scenario.events)
    assert {"TargetUserName", "Image", "dst_endpoint.ip", "QueryName"} <= set(scenario.events.columns)


def test_every_injected_attack_is_found(result: ScenarioResult) -> None:
    assert result.found == {
        "lateral_movement": True,
        "offhours_new_host": True,
        "password_spraying": True,
        "beaconing": True,
        "dga_lookups": True,
        "exfiltration": True,
    }


def test_false_alarms_stay_at_most_five_per_simulated_day(result: ScenarioResult) -> None:
    assert len(result.false_alarms_per_day) == 7
    assert result.max_false_alarms_per_day <= 5


def test_with_the_directory_departments_as_peers_the_bar_holds_too(scenario: Scenario) -> None:
    result = evaluate_scenario(scenario, departments=True)
    assert all(result.found.values())
    assert result.max_false_alarms_per_day <= 5


def test_peer_groups_computed_from_behaviour_recover_the_departments(scenario: Scenario) -> None:
    peers = behaviour_peers(scenario.events.filter(pl.col("_time") < scenario.train_end))
    user_groups = {u: peers[u] for u in scenario.users}  # every user has a group
    pairs = {(scenario.departments[u], g) for u, g in user_groups.items()}
    assert len(pairs) == len(set(scenario.departments.values())) == len(set(user_groups.values())) == 8
    assert len({peers[h] for h in scenario.hosts if h.startswith("ws")}) == 1
    assert len({peers[h] for h in scenario.hosts if h.startswith("srv")}) == 1
    assert peers["ws01"] != peers["srv01"]
    taro = peers["taro"]  # named by the servers the group logs on to
    assert taro.startswith("users-") and "srv" in taro


def test_judged_on_utc_hours_the_japanese_organisation_would_drown_in_false_alarms(scenario: Scenario) -> None:
    utc = evaluate_scenario(scenario, UebaEngine(calendar=Calendar("UTC")))
    assert utc.max_false_alarms_per_day > 100  # Tokyo's afternoon is UTC's office-hours night and so on


def test_office_hours_are_local_tokyo_hours_and_explanations_name_the_zone(result: ScenarioResult) -> None:
    night = next(a for a in result.anomalies if a.detector == "off_hours_logon" and a.entity == "hanako")
    assert night.time.hour == 18  # 03:12 in Tokyo is 18:12 UTC the day before
    assert "03:00-03:59 Asia/Tokyo" in night.explanation.en and "03時台（Asia/Tokyo）" in night.explanation.ja
    spike = next(a for a in result.anomalies if a.detector == "logon_hosts_user" and a.entity == "taro")
    assert "workdays 08:00-19:00 Asia/Tokyo" in spike.explanation.en  # 14:00 on a Tuesday, local
    assert "平日 8時〜19時（Asia/Tokyo）" in spike.explanation.ja


def test_lateral_movement_explains_observed_against_typical_in_both_languages(result: ScenarioResult) -> None:
    spike = next(a for a in result.anomalies if a.detector == "logon_hosts_user" and a.entity == "taro")
    assert spike.observed >= 14
    assert spike.typical <= 2
    assert "taro logged on to distinct hosts: " in spike.explanation.en
    assert "99th percentile of the last 21 days" in spike.explanation.en
    assert "99パーセンタイル" in spike.explanation.ja
    assert spike.window.endswith("(21 days)")
    assert len(spike.event_uids) >= 14


def test_risk_incident_lists_each_contribution(result: ScenarioResult) -> None:
    hanako = next(i for i in result.incidents if i.entity == "hanako")
    detectors = {a.detector for a, _ in hanako.contributions}
    assert detectors == {"off_hours_logon", "first_seen_user_host"}
    assert hanako.risk == pytest.approx(sum(share for _, share in hanako.contributions))
    assert "off_hours_logon" in hanako.explanation.en
    assert "リスクスコア" in hanako.explanation.ja
    assert {i.entity for i in result.incidents} >= {"taro", "hanako", "10.1.0.201", "ws12", "srv05"}


def test_baselines_survive_a_restart(scenario: Scenario, tmp_path: Path) -> None:
    train = scenario.events.filter(pl.col("_time") < scenario.train_end)
    day = scenario.events.filter(
        (pl.col("_time") >= scenario.injections[0].start.replace(hour=0, minute=0, second=0))
        & (pl.col("_time") < scenario.injections[0].start.replace(hour=23, minute=59, second=59))
    )
    engine = UebaEngine()
    engine.fit(train, scenario.departments)
    engine.save(tmp_path / "ueba")
    restored = UebaEngine.load(tmp_path / "ueba")
    before = [(a.detector, a.entity, a.observed, a.typical) for a in engine.score(day)]
    after = [(a.detector, a.entity, a.observed, a.typical) for a in restored.score(day)]
    assert before == after
    assert ("logon_hosts_user", "taro") in {(d, e) for d, e, _, _ in after}


def test_marking_an_anomaly_benign_teaches_the_detector(scenario: Scenario) -> None:
    train = scenario.events.filter(pl.col("_time") < scenario.train_end)
    beacon = next(i for i in scenario.injections if i.kind == "beaconing")
    day = scenario.events.filter(pl.col("_time").dt.date() == beacon.start.date())
    engine = UebaEngine()
    engine.fit(train, scenario.departments)
    first = [a for a in engine.score(day) if a.detector == "beaconing"]
    assert [a.entity for a in first] == ["ws12"]
    engine.mark_benign(first[0])
    assert [a for a in engine.score(day) if a.detector == "beaconing"] == []


def test_behaviour_vectors_single_out_the_exfiltration_hour_and_name_the_feature(result: ScenarioResult) -> None:
    found = [a for a in result.anomalies if a.detector == "behaviour_vector"]
    top = max(found, key=lambda a: a.score)
    assert (top.entity, dict(top.detail)["feature"]) == ("srv05", "bytes_out")
    assert top.observed > 50 * top.typical
    assert "送信バイト数" in top.explanation.ja
    local = top.time.astimezone(ZoneInfo("Asia/Tokyo"))  # the hour on the organisation's clock, zone named
    assert f"in the hour from {local:%Y-%m-%d %H}:00 Asia/Tokyo" in top.explanation.en


def test_each_attack_is_named_by_the_detector_made_for_it(scenario: Scenario, result: ScenarioResult) -> None:
    by_kind = {i.kind: i for i in scenario.injections}
    expected = {
        "lateral_movement": "logon_hosts_user",
        "offhours_new_host": "off_hours_logon",
        "password_spraying": "password_spraying",
        "beaconing": "beaconing",
        "dga_lookups": "suspicious_domain",
        "exfiltration": "bytes_out_host",
    }
    for kind, detector in expected.items():
        hits = [a for a in result.anomalies if a.detector == detector and a.entity == by_kind[kind].entity]
        assert hits, f"{detector} did not report {kind}"
        assert by_kind[kind].event_uids.intersection(hits[0].event_uids)


def test_a_benign_new_logon_target_is_not_new_the_next_time(scenario: Scenario) -> None:
    train = scenario.events.filter(pl.col("_time") < scenario.train_end)
    offhours = next(i for i in scenario.injections if i.kind == "offhours_new_host")
    day = scenario.events.filter(pl.col("_uid").is_in(list(offhours.event_uids)))
    engine = UebaEngine()
    engine.fit(train)
    first = next(a for a in engine.score(day) if a.detector == "first_seen_user_host")
    assert first.entity == "hanako" and f"ピアグループ（{first.peer_group}）でも未知" in first.explanation.ja
    assert first.peer_group.startswith("users-")
    assert f"none seen among its peers ({first.peer_group})" in first.explanation.en
    fresh = UebaEngine()
    fresh.fit(train)
    fresh.mark_benign(first)
    assert [a for a in fresh.score(day) if a.detector == "first_seen_user_host"] == []
