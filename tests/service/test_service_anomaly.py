"""The UEBA engine in the running service: baselines built from the stored history, each newly stored
event scored once, anomalies raised as explained alerts (English and Japanese), and the baselines
and cursor surviving a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from mamori_testing import records_sessions
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.config import load_settings
from mamori.detect.anomaly.scenario import Scenario, generate_scenario
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.service.anomaly_worker import (
    RISK_RULE,
    AnomalySettings,
    AnomalyWorker,
    anomaly_rule_id,
    anomaly_settings,
)
from mamori.store.db import make_engine, migrate
from mamori.store.lake import Lake
from mamori.store.records import Alert


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(seed=7, days=14)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with records_sessions(tmp_path) as made:
        yield made


def _store_days(lake: Lake, events: pl.DataFrame, first_seq: int) -> int:
    """Store events one day a batch, as the pipeline would; return the next spool position."""
    seq = first_seq
    days = events.with_columns(pl.col(schema.TIME).dt.date().alias("_d")).partition_by("_d", maintain_order=True,
                                                                                        include_key=False)
    for day in days:
        lake.write(day.drop("injected", strict=False), seq, seq + 1)
        seq += 1
    return seq


def _scored_week(tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> tuple[Lake, AnomalyWorker]:
    """A worker whose baselines came from the stored history and which then scored the attack week."""
    lake = Lake(tmp_path / "lake", fsync=False)
    seq = _store_days(lake, scenario.events.filter(pl.col(schema.TIME) < scenario.train_end), 0)
    worker = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert worker.run_once(scenario.train_end) == 0  # the history is the baseline, not scored
    assert worker.engine is not None and worker.cursor == seq
    _store_days(lake, scenario.events.filter(pl.col(schema.TIME) >= scenario.train_end), seq)
    worker.run_once(scenario.end)
    return lake, worker


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert)))


def test_stored_history_becomes_a_baseline_and_new_events_raise_explained_anomaly_alerts(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    _, worker = _scored_week(tmp_path, scenario, sessions)
    alerts = _alerts(sessions)
    assert alerts
    kinds = {a.rule_id for a in alerts}
    assert anomaly_rule_id("password_spraying") in kinds
    assert anomaly_rule_id("logon_hosts_user") in kinds
    spike = next(a for a in alerts if a.rule_id == anomaly_rule_id("logon_hosts_user") and a.user == "taro")
    assert "taro logged on to distinct hosts" in spike.explanation
    assert "99パーセンタイル" in spike.explanation  # the Japanese text too
    assert spike.event_uids and spike.tags == ["anomaly", "anomaly.logon_hosts_user"]
    assert worker.run_once(scenario.end + timedelta(minutes=5)) == 0  # nothing new stored: nothing scored twice
    assert len(_alerts(sessions)) == len(alerts)
    if any(a.rule_id == RISK_RULE for a in alerts):
        risk = next(a for a in alerts if a.rule_id == RISK_RULE)
        assert "points" in risk.explanation


def test_baselines_and_cursor_survive_a_restart(tmp_path: Path, scenario: Scenario,
                                                sessions: sessionmaker[Session]) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    history = scenario.events.filter(pl.col(schema.TIME) < scenario.train_end)
    seq = _store_days(lake, history, 0)
    first = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    first.run_once(scenario.train_end)
    again = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert again.engine is not None and again.cursor == seq == first.cursor
    assert again.fitted_at == first.fitted_at


def test_too_little_history_scores_nothing_and_builds_no_baseline(tmp_path: Path, scenario: Scenario,
                                                                  sessions: sessionmaker[Session]) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    start = scenario.events.get_column(schema.TIME).min()
    hour = scenario.events.filter(pl.col(schema.TIME) < start + timedelta(hours=2))  # type: ignore[operator]
    lake.write(hour.drop("injected", strict=False), 0, 1)
    worker = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert worker.run_once(scenario.train_end) == 0
    assert worker.engine is None and worker.cursor == 0 and not _alerts(sessions)


def test_a_benign_verdict_is_learned_kept_across_a_restart_and_quiets_the_same_anomaly(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    lake, worker = _scored_week(tmp_path, scenario, sessions)
    attacks = scenario.events.filter(pl.col(schema.TIME) >= scenario.train_end)
    spike = next(a for a in _alerts(sessions) if a.rule_id == anomaly_rule_id("logon_hosts_user") and a.user == "taro")
    assert not worker.mark_benign("no such alert")
    assert worker.mark_benign(spike.dedup_key)
    restarted = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert restarted.engine is not None
    taro = [k for k in restarted.engine.benign if k.startswith("logon_hosts_user|user|taro|")]
    assert taro  # the allow-list entry survived the restart
    again = restarted.engine.score(attacks)
    assert not [a for a in again if a.detector == "logon_hosts_user" and a.entity == "taro"]


def test_the_anomaly_command_rebuilds_the_baselines_of_a_data_folder_and_shows_them(
        tmp_path: Path, scenario: Scenario) -> None:
    import json

    from click.testing import CliRunner

    from mamori.cli import main

    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'mamori.db'}") if data.mkdir() is None else None
    assert engine is not None
    migrate(engine)
    engine.dispose()
    lake = Lake(data / "lake", fsync=False)
    stored = _store_days(lake, scenario.events.filter(pl.col(schema.TIME) < scenario.train_end), 0)
    runner = CliRunner()
    before = json.loads(runner.invoke(main, ["anomaly", "status", "--data-dir", str(data)]).output)
    assert before["baselines_built"] is None
    built = runner.invoke(main, ["anomaly", "rebuild", "--data-dir", str(data)])
    assert built.exit_code == 0, built.output
    after = json.loads(runner.invoke(main, ["anomaly", "status", "--data-dir", str(data)]).output)
    assert after["baselines_built"] and after["scored_up_to_spool_entry"] == stored
    assert after["timezone"] == "Asia/Tokyo" and after["peer_groups"] >= 8
    assert "password_spraying" in after["detectors"]
    missing = runner.invoke(main, ["anomaly", "status", "--data-dir", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "--data-dir" in missing.output


def test_rule_alerts_add_their_points_to_entity_risk_and_a_crossing_lists_them(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    from datetime import UTC, datetime

    lake = Lake(tmp_path / "lake", fsync=False)
    history = scenario.events.filter(pl.col(schema.TIME) < scenario.train_end)
    seq = _store_days(lake, history, 0)
    worker = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    worker.run_once(scenario.train_end)
    now = datetime.now(UTC)
    with sessions.begin() as session:  # two critical rule alerts about one quiet user
        for n in range(2):
            session.add(Alert(rule_id=f"rule-{n}", rule_title=f"Mimikatz use {n}", level="critical", author="x",
                              tags=[], first_seen=scenario.train_end + timedelta(hours=1), last_seen=now,
                              created_at=now, updated_at=now, user="user005", event_uids=[f"u{n}"], status="new",
                              dedup_key=f"k{n}", count=1))
    day = scenario.events.filter(pl.col(schema.TIME) >= scenario.train_end).filter(
        pl.col(schema.TIME) < scenario.train_end + timedelta(days=1))
    _store_days(lake, day, seq)
    worker.run_once(scenario.train_end + timedelta(days=1))
    risk = [a for a in _alerts(sessions) if a.rule_id == RISK_RULE and a.user == "user005"]
    assert len(risk) == 1
    assert "Sigma rule 'Mimikatz use 0' (critical)" in risk[0].explanation
    assert worker.alert_mark >= 2


def test_the_columns_read_for_scoring_give_the_anomalies_all_columns_give(tmp_path: Path, scenario: Scenario) -> None:
    from mamori.detect.anomaly.engine import UebaEngine
    from mamori.service.anomaly_worker import read_for_scoring

    lake = Lake(tmp_path / "lake", fsync=False)
    seq = _store_days(lake, scenario.events.filter(pl.col(schema.TIME) < scenario.train_end), 0)
    _store_days(lake, scenario.events.filter(pl.col(schema.TIME) >= scenario.train_end), seq)
    history = [f for f in lake.files() if f.end <= seq]
    recent = [f for f in lake.files() if f.end > seq]
    found = []
    for read in (read_for_scoring, lambda files: pl.concat([pl.read_parquet(f.path) for f in files],
                                                          how="diagonal_relaxed")):
        engine = UebaEngine()
        engine.fit(read(history))
        found.append(sorted(a.key for a in engine.score(read(recent))))
    assert found[0] == found[1] and len(found[0]) > 10


def test_a_refreshed_baseline_keeps_the_analysts_verdicts(tmp_path: Path, scenario: Scenario,
                                                           sessions: sessionmaker[Session]) -> None:
    _, worker = _scored_week(tmp_path, scenario, sessions)
    spike = next(a for a in _alerts(sessions) if a.rule_id == anomaly_rule_id("logon_hosts_user") and a.user == "taro")
    assert worker.mark_benign(spike.dedup_key)
    assert worker.engine is not None
    verdicts = set(worker.engine.benign)
    assert worker.rebuild(scenario.end + timedelta(days=2))
    assert worker.engine is not None and verdicts <= worker.engine.benign


def _thin_spraying(template: pl.DataFrame, start: datetime, users: int) -> pl.DataFrame:
    """One source failing once as each of ``users`` users, two minutes apart, in one 30-minute window."""
    row = template.filter(pl.col("EventID") == "4625").head(1)
    return pl.concat([row.with_columns(
        pl.lit(start + timedelta(minutes=2 * i)).cast(row.schema[schema.TIME]).alias(schema.TIME),
        pl.lit(f"spray-{i}").alias(schema.UID), pl.lit(f"spray-user-{i}").alias("TargetUserName"),
        pl.lit("10.66.66.66").alias("IpAddress")) for i in range(users)])


def _spraying_round_by_round(tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session],
                             settings: AnomalySettings) -> list[Alert]:
    """Baseline from the history, then a slow spraying stored five minutes at a time, a round after each."""
    lake = Lake(tmp_path / "lake", fsync=False)
    history = scenario.events.filter(pl.col(schema.TIME) < scenario.train_end)
    seq = _store_days(lake, history, 0)
    worker = AnomalyWorker(lake, sessions, tmp_path / "anomaly", settings)
    worker.run_once(scenario.train_end)
    start = scenario.train_end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    spraying = _thin_spraying(history, start, 12)
    for first in range(0, 24, 5):  # what one five-minute round stores
        part = spraying.filter((pl.col(schema.TIME) >= start + timedelta(minutes=first))
                               & (pl.col(schema.TIME) < start + timedelta(minutes=first + 5)))
        lake.write(part.drop("injected", strict=False), seq, seq + 1)
        seq += 1
        worker.run_once(start + timedelta(minutes=first + 5))
    return [a for a in _alerts(sessions) if a.rule_id == anomaly_rule_id("password_spraying")]


def test_a_spraying_spread_over_several_rounds_is_judged_on_its_whole_window(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    found = _spraying_round_by_round(tmp_path, scenario, sessions, AnomalySettings())
    assert len(found) == 1 and found[0].ip == "10.66.66.66"  # one alert about the source, not one per user
    assert "as 10 different users in 30 minutes" in found[0].explanation  # one round alone stored three


def test_without_the_previous_rounds_a_slow_spraying_goes_unseen(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    assert _spraying_round_by_round(tmp_path, scenario, sessions, AnomalySettings(context_seconds=0)) == []


GEO_CSV = """\
"167837696","167837951","JP","Japan","Tokyo","Tokyo","35.6895","139.69171"
"3405803776","3405804031","DE","Germany","Hessen","Frankfurt","50.11552","8.68417"
"""


def test_a_configured_geolocation_database_switches_logon_geography_on_in_the_service(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    (tmp_path / "ip2location.csv").write_text(GEO_CSV, encoding="utf-8")  # 10.1.0.0/24 in Tokyo
    config = tmp_path / "mamori.toml"
    config.write_text(f'anomaly_geo_database = "{tmp_path / "ip2location.csv"}"\n', encoding="utf-8")
    settings = load_settings(config, env={"MAMORI_ANOMALY_TIMEZONE": "Asia/Tokyo"})
    assert settings.anomaly_geo_database == tmp_path / "ip2location.csv"
    lake = Lake(tmp_path / "lake", fsync=False)
    seq = _store_days(lake, scenario.events.filter(pl.col(schema.TIME) < scenario.train_end), 0)
    worker = AnomalyWorker(lake, sessions, tmp_path / "anomaly", anomaly_settings(settings))
    worker.run_once(scenario.train_end)
    assert worker.engine is not None and "geo_logon" in worker.status()["detectors"]  # type: ignore[operator]
    logon = scenario.events.filter((pl.col("EventID") == "4624") & (pl.col("TargetUserName") == "taro")).tail(1)
    abroad = logon.with_columns(pl.lit("203.0.113.7").alias("IpAddress"), pl.lit("abroad-1").alias(schema.UID),
                                (pl.col(schema.TIME) + timedelta(hours=1)).alias(schema.TIME))
    lake.write(abroad.drop("injected", strict=False), seq, seq + 1)
    worker.run_once(scenario.train_end + timedelta(hours=1))
    geo = [a for a in _alerts(sessions) if a.rule_id == anomaly_rule_id("geo_logon")]
    assert geo and geo[0].user == "taro" and "DE" in geo[0].explanation
    restarted = AnomalyWorker(lake, sessions, tmp_path / "anomaly", anomaly_settings(settings))
    assert restarted.engine is not None and "geo_logon" in [d.name for d in restarted.engine.detectors]


def test_an_unknown_time_zone_or_a_missing_geolocation_file_stops_the_worker_with_the_setting_named(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    with pytest.raises(MamoriError, match="anomaly_timezone: unknown time zone 'Asia/Tokio'"):
        AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(timezone="Asia/Tokio"))
    with pytest.raises(MamoriError, match=r"nothere\.mmdb: geolocation database not found"):
        AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(geo_database=tmp_path / "nothere.mmdb"))


def test_baselines_saved_for_another_time_zone_are_rebuilt_at_the_next_round(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    lake = Lake(tmp_path / "lake", fsync=False)
    _store_days(lake, scenario.events.filter(pl.col(schema.TIME) < scenario.train_end), 0)
    utc = AnomalyWorker(lake, sessions, tmp_path / "anomaly", AnomalySettings(timezone="UTC"))
    utc.run_once(scenario.train_end)
    tokyo = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert tokyo.fitted_at == utc.fitted_at
    tokyo.run_once(scenario.train_end + timedelta(minutes=5))
    assert tokyo.fitted_at == scenario.train_end + timedelta(minutes=5)
    assert tokyo.status()["timezone"] == "Asia/Tokyo"
    zones = {d.calendar.timezone for d in tokyo.engine.detectors if hasattr(d, "calendar")}  # type: ignore[union-attr]
    assert zones == {"Asia/Tokyo"}


def test_a_benign_verdict_outlives_the_daily_refit_and_a_restart_keyed_on_entity_not_bucket(
        tmp_path: Path, scenario: Scenario, sessions: sessionmaker[Session]) -> None:
    lake, worker = _scored_week(tmp_path, scenario, sessions)
    attacks = scenario.events.filter(pl.col(schema.TIME) >= scenario.train_end)
    lateral = next(i for i in scenario.injections if i.kind == "lateral_movement")
    spike = next(a for a in _alerts(sessions) if a.rule_id == anomaly_rule_id("logon_hosts_user") and a.user == "taro")
    assert worker.mark_benign(spike.dedup_key)
    assert worker.run_once(scenario.end + timedelta(days=2)) == 0  # the refit is due: a fresh baseline
    assert worker.fitted_at == scenario.end + timedelta(days=2)
    restarted = AnomalyWorker(lake, sessions, tmp_path / "anomaly")
    assert restarted.engine is not None and restarted.status()["benign_verdicts"] == 1
    # the same behaviour a week later, in another ten-minute bucket, stays quiet
    later = attacks.filter(pl.col(schema.UID).is_in(list(lateral.event_uids))).with_columns(
        (pl.col(schema.TIME) + timedelta(days=7, minutes=3)).alias(schema.TIME))
    for engine in (worker.engine, restarted.engine):
        assert engine is not None
        assert not [a for a in engine.score(later) if a.detector == "logon_hosts_user" and a.entity == "taro"]
    # but more than twice the volume judged benign is not (the same factor as over any baseline)
    thrice = pl.concat([later, *(later.with_columns(pl.col("_host") + f"-{n}", pl.col(schema.UID) + f"-{n}")
                                 for n in (2, 3))])
    assert [a for a in restarted.engine.score(thrice) if a.detector == "logon_hosts_user" and a.entity == "taro"]
