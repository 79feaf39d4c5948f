"""Detector thresholds as settings: named thresholds of named detectors (a family or one detector)
change what the detectors find, and a bad entry is an error naming the detector, parameter or value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from mamori.detect.anomaly import parse_thresholds
from mamori.detect.anomaly.base import Detector
from mamori.detect.anomaly.engine import VECTOR_MODELS, UebaEngine, default_detectors
from mamori.detect.anomaly.geo import GeoLogonDetector
from mamori.detect.anomaly.thresholds import NAMES, current_thresholds, family_of

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def _by_name(detectors: list[Detector]) -> dict[str, Detector]:
    return {d.name: d for d in detectors}


def test_named_thresholds_are_read_per_detector_with_their_types() -> None:
    assert parse_thresholds("spraying.min_users=10, beaconing.max_jitter=0.2, rarity.max_peer_share=0.001") == {
        "spraying": {"min_users": 10},
        "beaconing": {"max_jitter": 0.2},
        "rarity": {"max_peer_share": 0.001},
    }
    assert parse_thresholds("") == {}
    assert isinstance(parse_thresholds("spraying.min_users=10.0")["spraying"]["min_users"], int)


def test_every_detector_the_engine_builds_can_be_named_in_a_setting() -> None:
    built = default_detectors(models=tuple(VECTOR_MODELS))  # the geography detector needs a database
    assert {d.name: family_of(d) for d in built} == {n: f for n, f in NAMES.items() if n != GeoLogonDetector.name}


def test_settings_override_the_thresholds_of_a_family_and_one_detector_wins_over_its_family() -> None:
    thresholds = parse_thresholds("volume.factor=3, processes_host.factor=4, rarity.max_peer_share=0.002, "
                                  "rare_process.max_entity_count=1, spraying.min_users=20")
    detectors = _by_name(default_detectors(thresholds=thresholds))
    assert dict(current_thresholds(detectors["auth_failures_user"]))["factor"] == 3
    assert dict(current_thresholds(detectors["processes_host"]))["factor"] == 4
    assert {dict(current_thresholds(d))["max_peer_share"] for n, d in detectors.items() if n.startswith("rare_")} == {
        0.002
    }
    assert dict(current_thresholds(detectors["rare_process"]))["max_entity_count"] == 1
    assert dict(current_thresholds(detectors["rare_logon_type"]))["max_entity_count"] == 2  # the default
    assert dict(current_thresholds(detectors["password_spraying"]))["min_users"] == 20


def test_a_threshold_set_in_the_settings_changes_what_is_found() -> None:
    def failure(src: str, user: str, t: datetime) -> dict[str, object]:
        return {"_time": t, "_host": "dc01", "EventID": "4625", "TargetUserName": user, "IpAddress": src}

    def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
        return pl.DataFrame(rows).with_columns(pl.col("_time").cast(pl.Datetime("ns", "UTC")),
                                               pl.Series("_uid", [f"e{i}" for i in range(len(rows))]))

    spray = frame([failure("10.6.6.6", f"user{i}", T0 + timedelta(days=1, seconds=10 * i)) for i in range(25)])
    found = {}
    for setting in ("", "spraying.min_users=30"):
        detectors = default_detectors(thresholds=parse_thresholds(setting))
        engine = UebaEngine([d for d in detectors if d.name == "password_spraying"])
        engine.fit(frame([failure("10.0.0.9", "alice", T0)]), peers={})
        found[setting] = [a.entity for a in engine.score(spray)]
    assert found == {"": ["10.6.6.6"], "spraying.min_users=30": []}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("sprayng.min_users=10", r"anomaly_thresholds: unknown detector 'sprayng' in 'sprayng.min_users=10': "
                                 r"choose among first_seen, volume, spraying"),
        ("spraying.min_user=10", r"anomaly_thresholds: detector 'spraying' has no threshold 'min_user' "
                                 r"\(in 'spraying.min_user=10'\): choose among min_users, max_attempts_per_user"),
        ("spraying.min_users=ten", r"anomaly_thresholds: spraying.min_users must be an integer ≥ 2, not 'ten'"),
        ("spraying.min_users=2.5", r"spraying.min_users must be an integer ≥ 2, not '2.5'"),
        ("beaconing.max_jitter=1.5", r"beaconing.max_jitter must be a number in \[0, 1\], not '1.5'"),
        ("rarity.max_peer_share=0", r"rarity.max_peer_share must be a number in \(0, 1\], not '0'"),
        ("volume.factor=nan", r"volume.factor must be a number ≥ 1, not 'nan'"),
        ("spraying=10", r"'spraying=10' is not detector.parameter=value \(e.g. spraying.min_users=10"),
        ("rarity.min_entity_count=3, rarity.max_entity_count=1",
         r"rarity.min_entity_count \(3\) is above rarity.max_entity_count \(1\)"),
    ],
)
def test_a_bad_threshold_setting_names_the_detector_parameter_or_value(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_thresholds(setting)
