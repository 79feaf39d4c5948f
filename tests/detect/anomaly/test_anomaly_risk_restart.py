"""Entity risk survives a restart: what an entity accumulated, and whether it was already raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mamori.detect.anomaly import Anomaly, Explanation, RiskScorer, UebaEngine

START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _anomaly(entity: str, minutes: int, score: float) -> Anomaly:
    return Anomaly("volume_auth_failures", "user", entity, START + timedelta(minutes=minutes), score, 40.0, 3.0,
                   "28 days", Explanation(f"{entity} failed 40 logons", f"{entity} のログオン失敗 40 回"),
                   "peers-3", ("uid-a", "uid-b"), (("metric", "auth_failures"),))


def _engine_after_restart(engine: UebaEngine, folder: Path) -> UebaEngine:
    engine.save(folder)
    return UebaEngine.load(folder)


def test_risk_accumulated_before_a_restart_still_counts_after_it(tmp_path: Path) -> None:
    engine = UebaEngine(risk=RiskScorer(threshold=100, half_life=timedelta(hours=1)))
    assert engine.risk.add([_anomaly("taro", 0, 60)]) == []
    restarted = _engine_after_restart(engine, tmp_path / "state")
    at = START + timedelta(minutes=30)
    assert restarted.risk.risk("user", "taro", at) == engine.risk.risk("user", "taro", at)
    incidents = restarted.risk.add([_anomaly("taro", 10, 50)])
    assert len(incidents) == 1
    before, _ = (part for part, _points in incidents[0].contributions)
    assert before == _anomaly("taro", 0, 60)  # every fact of the earlier anomaly came back
    assert "failed 40 logons" in incidents[0].explanation.en and "ログオン失敗" in incidents[0].explanation.ja


def test_an_entity_raised_before_a_restart_is_not_raised_again_while_its_risk_stays_high(tmp_path: Path) -> None:
    engine = UebaEngine(risk=RiskScorer(threshold=100, half_life=timedelta(hours=1)))
    assert len(engine.risk.add([_anomaly("hanako", 0, 120)])) == 1
    restarted = _engine_after_restart(engine, tmp_path / "state")
    assert restarted.risk.add([_anomaly("hanako", 5, 30)]) == []
    assert len(engine.risk.add([_anomaly("hanako", 5, 30)])) == 0  # the same answer as without the restart


def test_an_engine_saved_without_risk_state_loads_with_none(tmp_path: Path) -> None:
    engine = UebaEngine()
    engine.save(tmp_path / "state")
    for path in sorted((tmp_path / "state" / "entity_risk").iterdir(), reverse=True):
        path.unlink()
    (tmp_path / "state" / "entity_risk").rmdir()
    restarted = UebaEngine.load(tmp_path / "state")
    assert restarted.risk.risk("user", "taro", START) == 0
