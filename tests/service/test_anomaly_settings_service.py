"""The ``anomaly_thresholds`` setting in the running service: the worker's detectors take its
thresholds, a bad entry stops the worker with the setting and the field named, and baselines saved
under other thresholds are rebuilt at the next round."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from mamori_testing import records_sessions
from sqlalchemy.orm import Session, sessionmaker

from mamori.config import load_settings
from mamori.detect.anomaly.scenario import Scenario, generate_scenario
from mamori.detect.anomaly.thresholds import current_thresholds
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.service.anomaly_worker import AnomalySettings, AnomalyWorker, anomaly_settings
from mamori.store.lake import Lake


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with records_sessions(tmp_path) as made:
        yield made


def test_the_thresholds_setting_reaches_the_workers_detectors(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    settings = load_settings(env={"MAMORI_ANOMALY_THRESHOLDS": "rarity.max_peer_share=0.002, spraying.min_users=12"})
    worker = AnomalyWorker(Lake(tmp_path / "lake", fsync=False), sessions, tmp_path / "anomaly",
                           anomaly_settings(settings))
    detectors = {d.name: dict(current_thresholds(d)) for d in worker._new_engine().detectors}
    assert detectors["password_spraying"]["min_users"] == 12
    assert detectors["rare_process"]["max_peer_share"] == detectors["rare_logon_source"]["max_peer_share"] == 0.002


def test_a_bad_thresholds_setting_stops_the_worker_with_the_setting_and_field_named(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    with pytest.raises(MamoriError, match=r"anomaly_thresholds: .*no threshold 'max_jiter'.*choose among min_count"):
        AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(thresholds="beaconing.max_jiter=0.2"))
    with pytest.raises(MamoriError, match=r"beaconing.max_jitter must be a number in \[0, 1\], not 'high'.*hint"):
        AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(thresholds="beaconing.max_jitter=high"))


def test_baselines_saved_under_other_thresholds_are_rebuilt_at_the_next_round(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    scenario: Scenario = generate_scenario(seed=7, days=3)
    lake = Lake(tmp_path / "lake", fsync=False)
    lake.write(scenario.events.filter(pl.col(schema.TIME) < scenario.end), 0, 1)
    first = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    first.run_once(scenario.end)
    assert first.fitted_at == scenario.end
    same = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    same.run_once(scenario.end + timedelta(minutes=5))
    assert same.fitted_at == scenario.end  # nothing changed: the saved baselines are kept
    stricter = AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(thresholds="rarity.min_history=500"))
    stricter.run_once(scenario.end + timedelta(minutes=10))
    assert stricter.fitted_at == scenario.end + timedelta(minutes=10)
    assert stricter.engine is not None
    rare = next(d for d in stricter.engine.detectors if d.name == "rare_process")
    assert dict(current_thresholds(rare))["min_history"] == 500
