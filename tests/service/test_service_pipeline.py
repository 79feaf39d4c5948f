"""The pipeline in one process (real spool, lake, SQLite and Sigma engine): alerts are de-duplicated and
throttled per rule and entity, a closed alert lets a new one open, correlation windows survive a
restart, and a crash between the lake write and the commit stores nothing twice."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from service_fixtures import WHOAMI_RULE, WHOAMI_RULE_ID, syslog_line, windows_event
from sqlalchemy import select, update

from mamori.collect.spool import Entry
from mamori.config import load_settings, retention_by_source
from mamori.errors import MamoriError
from mamori.service import alerting
from mamori.service.detection import load_stage
from mamori.service.runtime import Service
from mamori.store.query import stored_uids
from mamori.store.records import Alert

CORRELATION = """
title: Whoami Twice
id: 0c1a0000-0000-4000-8000-0000000000c1
status: test
level: critical
author: Mamori tests
correlation:
  type: event_count
  rules: [0c1a0000-0000-4000-8000-0000000000a1]
  group-by: [Computer]
  timespan: 1h
  condition:
    gte: 2
"""


def _service(data: Path, rules: Path, **settings: object) -> Service:
    config = load_settings(None, env={}, data_dir=data, syslog_tcp_port=-1, syslog_udp_port=-1, rules=[rules],
                           **settings)
    return Service(config, load_stage([rules]))


def _feed(service: Service, events: list[dict[str, object]]) -> None:
    lines = tuple(syslog_line(e).decode().rstrip("\n") for e in events)
    service.spool.append_wait(Entry("syslog", "syslog+tcp://test", lines, time.time_ns()))
    while service.pipeline.step() == 0:
        pass


def _alerts(service: Service) -> list[Alert]:
    with service.sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_detections_for_the_same_rule_and_entity_add_to_one_alert_until_it_is_closed(tmp_path: Path,
                                                                                        rules_dir: Path) -> None:
    service = _service(tmp_path / "data", rules_dir)
    _feed(service, [windows_event(f"a{n}", "WS1", True) for n in range(3)] + [windows_event("b", "WS2", True)])
    _feed(service, [windows_event("a3", "WS1", True), windows_event("quiet", "WS1", False)])
    alerts = _alerts(service)
    assert [(a.host, a.count, len(a.event_uids)) for a in alerts] == [("WS1", 4, 4), ("WS2", 1, 1)]
    assert alerts[0].rule_id == WHOAMI_RULE_ID and alerts[0].user == "alice"
    assert "whoami" in alerts[0].explanation
    with service.sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id == alerts[0].id).values(status="closed"))
    _feed(service, [windows_event("a4", "WS1", True)])
    assert [(a.host, a.count, a.status) for a in _alerts(service)] == [
        ("WS1", 4, "closed"), ("WS2", 1, "new"), ("WS1", 1, "new")]
    service.spool.close()


def test_a_committed_batch_leaves_its_alerts_events_for_the_grouping_worker(tmp_path: Path,
                                                                            rules_dir: Path) -> None:
    service = _service(tmp_path / "data", rules_dir)
    _feed(service, [windows_event("a0", "WS1", True), windows_event("quiet", "WS1", False)])
    alerted = [uid for alert in _alerts(service) for uid in alert.event_uids]
    stored = set(stored_uids(service.lake))
    assert len(alerted) == 1 and len(stored) == 2
    remembered = service.recent_events.recall(stored)
    assert list(remembered) == alerted  # the alert's event only, once stored
    assert remembered[alerted[0]]["_host"] == "WS1"
    service.spool.close()


def test_an_alert_closed_while_a_batch_joins_it_lets_the_batch_open_a_new_one(
        tmp_path: Path, rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the batch reads the open alerts, then writes: an alert closed in between is not updated, and
    # its detections open a new alert instead of being lost
    service = _service(tmp_path / "data", rules_dir)
    _feed(service, [windows_event("a0", "WS1", True)])
    first = _alerts(service)[0]
    with service.sessions.begin() as session:
        session.execute(update(Alert).where(Alert.id == first.id).values(status="closed"))
    monkeypatch.setattr(alerting, "_open_alerts", lambda session, ids: {i: [] for i in ids})  # read before the close
    _feed(service, [windows_event("a1", "WS1", True), windows_event("a2", "WS1", True)])
    assert [(a.host, a.count, a.status, len(a.event_uids)) for a in _alerts(service)] == [
        ("WS1", 1, "closed", 1), ("WS1", 2, "new", 2)]
    service.spool.close()


def test_correlation_windows_survive_a_restart(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(textwrap.dedent(WHOAMI_RULE))
    (rules / "twice.yml").write_text(textwrap.dedent(CORRELATION))
    first = _service(tmp_path / "data", rules)
    _feed(first, [windows_event("one", "WS7", True)])
    first.spool.close()
    first.engine.dispose()
    second = _service(tmp_path / "data", rules)
    _feed(second, [windows_event("two", "WS7", True)])
    fired = [a for a in _alerts(second) if a.rule_id == "0c1a0000-0000-4000-8000-0000000000c1"]
    assert len(fired) == 1
    assert fired[0].level == "critical"
    second.spool.close()


def test_a_batch_replayed_after_a_crash_before_its_commit_is_stored_and_alerted_once(tmp_path: Path,
                                                                                     rules_dir: Path) -> None:
    data = tmp_path / "data"
    service = _service(data, rules_dir)
    _feed(service, [windows_event("c0", "WS3", True)])
    lines = tuple(syslog_line(windows_event(f"c{n}", "WS3", True)).decode() for n in range(1, 4))
    service.spool.append_wait(Entry("syslog", "syslog+tcp://test", lines, time.time_ns()))
    entries = service.spool.read(service.pipeline.committed, 100, 1.0)
    from mamori.service.parse import parse_entries

    parsed = parse_entries(entries, service.pipeline.settings.options)
    service.lake.write(parsed.frame, service.pipeline.committed, entries[-1].seq + 1)  # then: crash
    service.spool.close()
    service.engine.dispose()
    again = _service(data, rules_dir)
    while again.pipeline.step() == 0:
        pass
    uids = stored_uids(again.lake)
    assert len(uids) == len(set(uids)) == 4
    assert [(a.host, a.count) for a in _alerts(again)] == [("WS3", 4)]
    again.spool.close()


def test_settings_come_from_defaults_then_the_file_then_the_environment(tmp_path: Path) -> None:
    assert load_settings(None, env={}).data_dir == Path("mamori-data")
    config = tmp_path / "mamori.toml"
    config.write_text('[serve]\nport = 9000\nretention_days = 7\nrules = ["/r1", "/r2"]\n')
    settings = load_settings(config, env={"MAMORI_PORT": "9100"})
    assert (settings.port, settings.retention_days, settings.rules) == (9100, 7, (Path("/r1"), Path("/r2")))
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    with pytest.raises(MamoriError, match=r"bad.toml: unknown setting 'prot'"):
        load_settings(bad, env={})


def test_retention_per_source_is_read_from_the_settings_and_a_bad_entry_is_named() -> None:
    settings = load_settings(None, env={"MAMORI_RETENTION_BY_SOURCE": "fortigate=7, winevtx = 365,"})
    assert retention_by_source(settings) == {"fortigate": 7, "winevtx": 365}
    with pytest.raises(MamoriError, match=r"retention_by_source: 'winevtx:365' is not source=days"):
        retention_by_source(load_settings(None, env={"MAMORI_RETENTION_BY_SOURCE": "winevtx:365"}))
