"""SLA deadlines and breaches per severity (targets are data), and MTTA/MTTR over hand-made incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mamori.cases.records import Incident
from mamori.cases.sla import load_targets, metrics_dict, response_metrics, sla_status
from mamori.errors import MamoriError

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def incident(severity: str, acknowledged: float | None = None, resolved: float | None = None,
             merged_into: int | None = None) -> Incident:
    """An incident opened at OPENED, acknowledged / resolved that many minutes later."""
    return Incident(severity=severity, created_at=OPENED, first_seen=OPENED, last_seen=OPENED,
                    acknowledged_at=None if acknowledged is None else OPENED + timedelta(minutes=acknowledged),
                    resolved_at=None if resolved is None else OPENED + timedelta(minutes=resolved),
                    merged_into=merged_into)


def test_deadlines_follow_the_targets_of_the_severity() -> None:
    status = sla_status(incident("critical"), OPENED + timedelta(minutes=5))
    assert status.acknowledge_due == OPENED + timedelta(minutes=15)
    assert status.resolve_due == OPENED + timedelta(hours=4)
    assert status.acknowledge_seconds_left == 600
    assert not status.acknowledge_breached and not status.resolve_breached
    assert sla_status(incident("low"), OPENED).acknowledge_due == OPENED + timedelta(days=1)


def test_an_incident_not_acknowledged_in_time_is_breached_with_negative_time_left() -> None:
    status = sla_status(incident("high"), OPENED + timedelta(minutes=90))
    assert status.acknowledge_breached
    assert status.acknowledge_seconds_left == -1800
    assert not status.resolve_breached


def test_a_late_acknowledgement_stays_breached_and_an_early_one_never_breaches() -> None:
    late = sla_status(incident("high", acknowledged=61), OPENED + timedelta(days=30))
    assert late.acknowledge_breached and late.acknowledge_seconds_left is None
    early = sla_status(incident("high", acknowledged=59, resolved=600), OPENED + timedelta(days=30))
    assert not early.acknowledge_breached and not early.resolve_breached
    assert early.resolve_seconds_left is None


def test_mtta_and_mttr_overall_and_per_severity() -> None:
    incidents = [incident("high", acknowledged=10, resolved=100), incident("high", acknowledged=30, resolved=300),
                 incident("critical", acknowledged=20), incident("medium"),
                 incident("high", acknowledged=1, resolved=2, merged_into=1)]
    figures = response_metrics(incidents, OPENED + timedelta(minutes=400))
    assert figures.overall.incidents == 4
    assert figures.overall.acknowledged == 3
    assert figures.overall.mtta_seconds == pytest.approx(20 * 60)
    assert figures.overall.mttr_seconds == pytest.approx(200 * 60)
    high = figures.by_severity["high"]
    assert (high.incidents, high.mtta_seconds, high.mttr_seconds) == (2, 20 * 60, 200 * 60)
    critical = figures.by_severity["critical"]
    assert (critical.mtta_seconds, critical.mttr_seconds, critical.acknowledge_breaches,
            critical.resolve_breaches) == (20 * 60, None, 1, 1)
    assert figures.by_severity["low"].incidents == 0
    assert metrics_dict(figures)["by_severity"]["medium"]["mtta_seconds"] is None


def test_an_sla_file_missing_a_severity_names_the_file_and_the_severity(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("critical: {acknowledge_minutes: 5, resolve_minutes: 60}\n", encoding="utf-8")
    with pytest.raises(MamoriError) as caught:
        load_targets(path)
    assert caught.value.where == f"{path}: informational"
