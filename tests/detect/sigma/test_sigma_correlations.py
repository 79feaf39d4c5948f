"""Correlation rules: event_count, value_count, temporal, temporal_ordered, group-by, timespan,
aliases, generate, and state carried across batches and restarts."""

from __future__ import annotations

from mamori_testing import ruleset_from

from mamori.detect.sigma.correlation import BaseHit, CorrelationEngine

FAILED = """
title: failed logon
id: failed-logon
name: failed_logon
logsource: {}
detection:
    sel: {EventID: 4625}
    condition: sel
"""
SUCCESS = """
title: successful logon
id: ok-logon
name: ok_logon
logsource: {}
detection:
    sel: {EventID: 4624}
    condition: sel
"""
SECOND = 1_000_000_000


def correlation(body: str) -> str:
    return f"title: corr\nid: corr-1\nlevel: high\ncorrelation:\n{body}\n"


def hits(*items: tuple[str, int, dict[str, str]]) -> list[BaseHit]:
    return [BaseHit(rule, t * SECOND, f"uid{i}", fields) for i, (rule, t, fields) in enumerate(items)]


def engine(body: str) -> CorrelationEngine:
    ruleset = ruleset_from(FAILED, SUCCESS, correlation(body))
    return CorrelationEngine(ruleset.correlations, ruleset.rules)


def test_event_count_fires_per_group_within_the_timespan() -> None:
    e = engine("  type: event_count\n  rules: [failed_logon]\n  group-by: [User]\n  timespan: 60s\n"
               "  condition: {gte: 3}")
    stream = hits(("failed-logon", 0, {"User": "bob"}), ("failed-logon", 10, {"User": "bob"}),
                  ("failed-logon", 20, {"User": "amy"}), ("failed-logon", 200, {"User": "bob"}),
                  ("failed-logon", 30, {"User": "bob"}))
    fired = e.feed(sorted(stream, key=lambda h: h.time_ns))
    assert [(dict(f.group)["User"], f.value) for f in fired] == [("bob", 3.0)]
    assert set(fired[0].uids) == {"uid0", "uid1", "uid4"}


def test_event_count_outside_the_timespan_does_not_fire() -> None:
    e = engine("  type: event_count\n  rules: [failed-logon]\n  group-by: [User]\n  timespan: 5s\n"
               "  condition: {gte: 2}")
    assert e.feed(hits(("failed-logon", 0, {"User": "bob"}), ("failed-logon", 10, {"User": "bob"}))) == []


def test_value_count_counts_distinct_values() -> None:
    e = engine("  type: value_count\n  rules: [failed_logon]\n  group-by: [IpAddress]\n  timespan: 5m\n"
               "  condition: {gte: 3, field: User}")
    stream = hits(*[("failed-logon", i, {"IpAddress": "10.0.0.9", "User": u}) for i, u in
                    enumerate(["a", "a", "b", "b", "c"])])
    fired = e.feed(stream)
    assert len(fired) == 1 and fired[0].value == 3.0


def test_temporal_needs_every_rule_in_any_order() -> None:
    e = engine("  type: temporal\n  rules: [failed_logon, ok_logon]\n  group-by: [User]\n  timespan: 1m")
    assert e.feed(hits(("ok-logon", 0, {"User": "x"}), ("failed-logon", 5, {"User": "x"})))
    e2 = engine("  type: temporal\n  rules: [failed_logon, ok_logon]\n  group-by: [User]\n  timespan: 1m")
    assert not e2.feed(hits(("ok-logon", 0, {"User": "x"}), ("failed-logon", 5, {"User": "y"})))


def test_temporal_ordered_needs_the_order() -> None:
    body = "  type: temporal_ordered\n  rules: [failed_logon, ok_logon]\n  group-by: [User]\n  timespan: 1m"
    assert not engine(body).feed(hits(("ok-logon", 0, {"User": "x"}), ("failed-logon", 5, {"User": "x"})))
    assert engine(body).feed(hits(("failed-logon", 0, {"User": "x"}), ("ok-logon", 5, {"User": "x"})))


def test_aliases_group_different_fields_together() -> None:
    e = engine("  type: temporal\n  rules: [failed_logon, ok_logon]\n  group-by: [who]\n  timespan: 1m\n"
               "  aliases:\n    who:\n      failed-logon: TargetUserName\n      ok-logon: SubjectUserName")
    fired = e.feed(hits(("failed-logon", 0, {"TargetUserName": "eve"}), ("ok-logon", 1, {"SubjectUserName": "eve"})))
    assert len(fired) == 1 and dict(fired[0].group) == {"who": "eve"}


def test_referenced_rules_are_silenced_unless_generate() -> None:
    quiet = engine("  type: event_count\n  rules: [failed_logon]\n  timespan: 1m\n  condition: {gte: 2}")
    loud = engine("  type: event_count\n  rules: [failed_logon]\n  timespan: 1m\n  condition: {gte: 2}\n"
                  "  generate: true")
    assert quiet.silenced_rules() == {"failed-logon"}
    assert loud.silenced_rules() == set()


def test_state_survives_a_restart() -> None:
    body = "  type: event_count\n  rules: [failed_logon]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 3}"
    first = engine(body)
    assert not first.feed(hits(("failed-logon", 0, {"User": "bob"}), ("failed-logon", 1, {"User": "bob"})))
    saved = first.to_json()
    second = engine(body)
    second.load_json(saved)
    assert second.feed(hits(("failed-logon", 2, {"User": "bob"})))


def test_correlation_through_hunt_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import orjson

    from mamori.hunt import run_hunt

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "failed.yml").write_text(FAILED.replace("logsource: {}", "logsource: {product: windows}"))
    (rules / "corr.yml").write_text(correlation(
        "  type: event_count\n  rules: [failed_logon]\n  group-by: [TargetUserName]\n  timespan: 2m\n"
        "  condition: {gte: 3}"))
    events = [{"EventID": 4625, "Channel": "Security", "Computer": "dc1", "TargetUserName": "admin",
               "TimeCreated_SystemTime": f"2024-05-01T00:00:{s:02d}Z"} for s in (1, 5, 9)]
    log = tmp_path / "logons.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    result = run_hunt([log], [rules], use_cache=False, workers=1)
    assert [d["rule_id"] for d in result.detections] == ["corr-1"]
    assert result.detections[0]["fields"] == {"TargetUserName": "admin"}
    assert len(result.detections[0]["correlation"]["events"]) == 3
