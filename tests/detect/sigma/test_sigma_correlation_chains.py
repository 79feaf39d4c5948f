"""Chained correlations (a correlation's ``rules`` naming another correlation), with the specification's
own example: many failed logins, then a successful login of the same user. The chained hit carries its
group-by values and its events; loops and fields a hit cannot carry are refused at load; referenced
correlations are silent unless ``generate: true``; the chain runs in ``mamori hunt`` and in the
service's detection stage, across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from correlation_testing import BRUTE_FORCE, FAILED, INNER, OUTER, SPEC_EXAMPLE, SUCCESS, frames, logon_log, spec_rules
from mamori_testing import ruleset_from

from mamori.detect.sigma.correlation import BaseHit, CorrelationEngine
from mamori.detect.sigma.model import RefusalKind
from mamori.detect.sigma.ruleset import load_ruleset
from mamori.errors import RuleError
from mamori.hunt import HuntFilters, run_hunt
from mamori.service.detection import SigmaStage
from mamori.service.retrohunt import ruleset_from_text

SECOND = 1_000_000_000


def spec_engine(text: str = SPEC_EXAMPLE) -> CorrelationEngine:
    ruleset = ruleset_from(text)
    return CorrelationEngine(ruleset.correlations, ruleset.rules)


def attempts(*items: tuple[str, int, str]) -> list[BaseHit]:
    return [BaseHit(FAILED if kind == "fail" else SUCCESS, t * SECOND, f"{kind}{t}",
                    {"User": user, "Computer": "dc1"}) for kind, t, user in items]


def looped_example() -> str:
    """The specification's example with its inner correlation also naming the outer one: a loop."""
    looped = SPEC_EXAMPLE.replace("        - failed_login\n",
                                  "        - failed_login\n        - successful_login_after\n")
    return looped.replace("id: b180ead8-d58f-40b2-ae54-c8940995b9b6\n",
                          "id: b180ead8-d58f-40b2-ae54-c8940995b9b6\nname: successful_login_after\n")


def test_a_chained_correlation_fires_on_the_hit_of_the_one_it_names() -> None:
    e = spec_engine()
    assert [c.id for c in e.correlations] == [INNER, OUTER]  # what is referenced runs first
    fired = e.feed(attempts(("fail", 0, "bob"), ("fail", 10, "bob"), ("fail", 20, "bob"), ("ok", 30, "bob")))
    assert [f.correlation.id for f in fired] == [INNER, OUTER]
    outer = fired[1]
    assert dict(outer.group) == {"User": "bob"}
    assert outer.uids == ("fail0", "fail10", "fail20", "ok30")  # the events, through the inner hit
    assert outer.first_ns == 20 * SECOND and outer.time_ns == 30 * SECOND


def test_a_chained_correlation_keeps_its_order_and_group() -> None:
    e = spec_engine()
    # the success comes before the failures reach the threshold; amy's failures are another group
    assert [f.correlation.id for f in e.feed(attempts(
        ("ok", 0, "bob"), ("fail", 5, "bob"), ("fail", 6, "bob"), ("fail", 7, "bob"),
        ("ok", 8, "amy"), ("fail", 9, "amy")))] == [INNER]


def test_a_referenced_correlation_is_silent_unless_generate() -> None:
    assert spec_engine().silenced_rules() == {FAILED, SUCCESS, INNER}
    loud = SPEC_EXAMPLE.replace("    timespan: 10m\nlevel: high", "    timespan: 10m\n    generate: true\nlevel: high")
    assert spec_engine(loud).silenced_rules() == {FAILED}  # the outer one shows what it names


def test_a_chained_correlation_takes_a_closed_window_at_its_end() -> None:
    quiet_user = SPEC_EXAMPLE.replace("    condition:\n        gte: 3", "    condition:\n        lt: 2")
    e = spec_engine(quiet_user)  # fewer than two failures in ten minutes, then a success
    assert e.feed(attempts(("fail", 0, "bob"), ("ok", 300, "bob"))) == []  # the window is still open
    fired = e.feed(attempts(("ok", 1300, "bob")))
    # the window (0-600s) is decided at 600s: the success at 300s came before, the one at 1300s too late
    assert [(f.correlation.id, f.time_ns) for f in fired] == [(INNER, 600 * SECOND)]
    e2 = spec_engine(quiet_user)
    assert e2.feed(attempts(("fail", 0, "bob"))) == []
    fired = e2.feed(attempts(("ok", 601, "bob")))
    assert [(f.correlation.id, f.time_ns) for f in fired] == [(INNER, 600 * SECOND), (OUTER, 601 * SECOND)]
    assert fired[1].uids == ("fail0", "ok601")


def test_chained_windows_survive_a_restart() -> None:
    first = spec_engine()
    assert first.feed(attempts(("fail", 0, "bob"), ("fail", 10, "bob"), ("fail", 20, "bob"))) != []
    second = spec_engine()
    second.load_json(first.to_json())
    assert [f.correlation.id for f in second.feed(attempts(("ok", 30, "bob")))] == [OUTER]


def test_a_loop_of_correlations_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "mr_looped.yml").write_text(looped_example())
    ruleset = load_ruleset([tmp_path], use_cache=False)
    assert ruleset.correlations == []
    reasons = {r.rule_id: r.reason for r in ruleset.refused}
    assert set(reasons) == {OUTER, INNER}
    assert "loops back" in reasons[OUTER]
    assert "successful_login_after → multiple_failed_login → successful_login_after" in reasons[OUTER]
    assert all(r.path.startswith(str(tmp_path / "mr_looped.yml")) for r in ruleset.refused)


def test_a_correlation_naming_a_rule_that_is_not_loaded_is_refused_with_the_name(tmp_path: Path) -> None:
    no_success = SPEC_EXAMPLE.split("---\ntitle: Successful login")[0]
    (tmp_path / "mr_no_success.yml").write_text(no_success)
    ruleset = load_ruleset([tmp_path], use_cache=False)
    assert [c.id for c in ruleset.correlations] == [INNER]  # it names only what is loaded
    [refusal] = ruleset.refused
    assert refusal.rule_id == OUTER
    assert refusal.reason.startswith("correlation.rules names no loaded rule: successful_login;")


def test_what_refers_to_a_correlation_refused_for_a_missing_rule_is_refused_too(tmp_path: Path) -> None:
    head, _, tail = SPEC_EXAMPLE.partition("---\ntitle: Single failed login")
    (tmp_path / "mr_no_failed.yml").write_text(head + "---\ntitle: Successful login" + tail.split(
        "---\ntitle: Successful login")[1])
    ruleset = load_ruleset([tmp_path], use_cache=False)
    assert ruleset.correlations == [] and [r.id for r in ruleset.rules] == [SUCCESS]
    reasons = {r.rule_id: r.reason for r in ruleset.refused}
    assert reasons[INNER].startswith("correlation.rules names no loaded rule: failed_login;")
    assert reasons[OUTER] == ("correlation.rules refers to the correlation 'multiple_failed_login', which is "
                              "refused; fix that one first")


def test_a_refusal_of_a_correlation_says_its_kind_from_a_cold_and_a_warm_load(tmp_path: Path) -> None:
    head, _, tail = SPEC_EXAMPLE.partition("---\ntitle: Single failed login")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mr_no_failed.yml").write_text(head + "---\ntitle: Successful login" + tail.split(
        "---\ntitle: Successful login")[1])
    cold = load_ruleset([tmp_path / "rules"], cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob("rules-*.pickle"))
    warm = load_ruleset([tmp_path / "rules"], cache_dir=tmp_path / "cache")  # refusals unpickled from the cache
    for ruleset in (cold, warm):
        kinds = {r.rule_id: r.kind for r in ruleset.refused}
        assert kinds == {INNER: RefusalKind.CORRELATION_NAMES_NO_RULE,
                         OUTER: RefusalKind.CORRELATION_REFERS_TO_REFUSED}


def test_a_refusal_of_a_chain_says_whether_it_loops_or_lacks_a_field(tmp_path: Path) -> None:
    (tmp_path / "looped").mkdir()
    (tmp_path / "looped" / "mr_looped.yml").write_text(looped_example())
    looped = load_ruleset([tmp_path / "looped"], use_cache=False)
    assert {r.rule_id: r.kind for r in looped.refused} == {OUTER: RefusalKind.CORRELATION_LOOP,
                                                           INNER: RefusalKind.CORRELATION_LOOP}
    (tmp_path / "by_host").mkdir()
    (tmp_path / "by_host" / "mr_by_host.yml").write_text(SPEC_EXAMPLE.replace(
        "    group-by:\n        - User\n    timespan: 10m\n    condition",
        "    group-by:\n        - Computer\n    timespan: 10m\n    condition"))
    [refusal] = load_ruleset([tmp_path / "by_host"], use_cache=False).refused
    assert refusal.kind is RefusalKind.CORRELATION_FIELD_NOT_CARRIED


def test_a_correlation_sent_for_a_retro_hunt_is_vetted_as_a_loaded_one() -> None:
    with pytest.raises(RuleError, match="loops back"):
        ruleset_from_text(looped_example())
    assert [c.id for c in ruleset_from_text(SPEC_EXAMPLE).correlations] == [OUTER, INNER]


def test_a_group_by_field_the_referenced_correlation_does_not_carry_is_refused(tmp_path: Path) -> None:
    by_host = SPEC_EXAMPLE.replace("    group-by:\n        - User\n    timespan: 10m\n    condition",
                                   "    group-by:\n        - Computer\n    timespan: 10m\n    condition")
    (tmp_path / "mr_by_host.yml").write_text(by_host)
    ruleset = load_ruleset([tmp_path], use_cache=False)
    assert [c.id for c in ruleset.correlations] == [INNER]
    [refusal] = ruleset.refused
    assert refusal.rule_id == OUTER
    assert "'multiple_failed_login' does not group by 'User'" in refusal.reason and "alias" in refusal.reason


def test_an_alias_carries_a_chained_field_under_another_name() -> None:
    aliased = SPEC_EXAMPLE.replace(
        "    group-by:\n        - User\n    timespan: 10m\nlevel: high",
        "    group-by:\n        - account\n    timespan: 10m\n    aliases:\n        account:\n"
        "            multiple_failed_login: User\n            successful_login: TargetUserName\nlevel: high")
    e = spec_engine(aliased)
    stream = attempts(("fail", 0, "bob"), ("fail", 1, "bob"), ("fail", 2, "bob"))
    stream.append(BaseHit(SUCCESS, 3 * SECOND, "ok3", {"TargetUserName": "bob"}))
    fired = e.feed(stream)
    assert [(f.correlation.id, dict(f.group)) for f in fired][-1] == (OUTER, {"account": "bob"})


def test_the_specification_example_fires_through_hunt(tmp_path: Path) -> None:
    result = run_hunt([logon_log(tmp_path, BRUTE_FORCE)], [spec_rules(tmp_path)], use_cache=False, workers=1)
    assert result.correlations_loaded == 2
    assert [d["rule_id"] for d in result.detections] == [OUTER]  # neither the inner one nor the base rules
    found = result.detections[0]
    assert found["fields"] == {"User": "bob"}
    assert found["time"] == "2024-05-01T00:00:30Z" and found["rule_level"] == "high"
    assert len(found["correlation"]["events"]) == 4


def test_hunt_since_and_until_apply_to_correlation_detections(tmp_path: Path) -> None:
    log, rules = logon_log(tmp_path, BRUTE_FORCE), spec_rules(tmp_path)
    after = HuntFilters(since=datetime(2024, 5, 1, 0, 0, 31, tzinfo=UTC))
    assert run_hunt([log], [rules], use_cache=False, workers=1, filters=after).detections == []
    before = HuntFilters(until=datetime(2024, 5, 1, 0, 0, 29, tzinfo=UTC))
    assert run_hunt([log], [rules], use_cache=False, workers=1, filters=before).detections == []
    around = HuntFilters(since=datetime(2024, 5, 1, 0, 0, 30, tzinfo=UTC), until=datetime(2024, 5, 1, 0, 1, tzinfo=UTC))
    assert [d["rule_id"] for d in run_hunt([log], [rules], use_cache=False, workers=1, filters=around).detections] \
        == [OUTER]


def test_a_time_range_keeps_events_and_correlations_by_one_rule_and_reads_a_naive_bound_as_utc() -> None:
    at_30s = 1_714_521_630_000_000_000  # 2024-05-01T00:00:30Z
    naive = HuntFilters(since=datetime(2024, 5, 1, 0, 0, 30), until=datetime(2024, 5, 1, 0, 1))
    aware = HuntFilters(since=datetime(2024, 5, 1, 9, 0, 30, tzinfo=timezone(timedelta(hours=9))))
    assert naive.keeps_time(at_30s) and aware.keeps_time(at_30s)  # both bounds inclusive, whatever the zone
    assert not naive.keeps_time(at_30s - 1) and not naive.keeps_time(at_30s + 30_000_000_001)
    assert not naive.keeps_time(None)  # an event of unknown time is outside any asked-for range
    assert HuntFilters().keeps_time(None)


def test_the_service_stage_fires_the_chain_across_a_restart(tmp_path: Path) -> None:
    rules = spec_rules(tmp_path)
    failures = frames(logon_log(tmp_path, BRUTE_FORCE[:3], "failures"))
    success = frames(logon_log(tmp_path, BRUTE_FORCE[3:4], "success"))
    first = SigmaStage(load_ruleset([rules], use_cache=False))
    assert [d.rule_id for frame in failures for d in first.detect(frame)] == []  # silenced: inner and base
    saved = first.state()
    second = SigmaStage(load_ruleset([rules], use_cache=False))
    second.load_state(saved)
    found = [d for frame in success for d in second.detect(frame)]
    assert [(d.rule_id, d.group) for d in found] == [(OUTER, (("User", "bob"),))]
    assert len(found[0].uids) == 4 and found[0].level == "high"


def test_the_service_stage_decides_closed_windows_as_its_stream_moves_on(tmp_path: Path) -> None:
    single_failure = SPEC_EXAMPLE.split("---\n")[2]
    quiet = ("title: A lone failed logon\nid: lone-failure\nlevel: low\ncorrelation:\n  type: event_count\n"
             "  rules: [failed_login]\n  group-by: [User]\n  timespan: 10m\n  condition: {lt: 2}\n")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mr_lone_failure.yml").write_text(single_failure + "---\n" + quiet)
    stage = SigmaStage(load_ruleset([rules], use_cache=False))
    assert [d.rule_id for d in stage.detect(frames(logon_log(tmp_path, [(4625, 0, "bob")], "first"))[0])] == []
    # a batch without a hit of any rule still moves the clock past the window (0-600s), which decides it
    [later] = frames(logon_log(tmp_path, [(4688, 601, "bob")], "later"))
    found = stage.detect(later)
    assert [(d.rule_id, d.group, len(d.uids)) for d in found] == [("lone-failure", (("User", "bob"),), 1)]
    assert stage.detect(later) == []  # decided once
