"""When each correlation type is decided: growing measures with lower bounds as soon as they hold,
value_avg and conditions with an upper bound or an exact value once their window has closed; value_sum
and value_avg on numbers only; value_percentile refused with the reason."""

from __future__ import annotations

import orjson
from mamori_testing import ruleset_from

from mamori.detect.sigma.correlation import BaseHit, CorrelationEngine
from mamori.detect.sigma.loader import parse_rule_text

TRANSFER = """
title: outbound transfer
id: transfer
name: transfer
logsource: {}
detection:
    sel: {EventID: 3}
    condition: sel
"""
LOGON = """
title: logon
id: logon
name: logon
logsource: {}
detection:
    sel: {EventID: 4624}
    condition: sel
"""
SECOND = 1_000_000_000


def engine(body: str) -> CorrelationEngine:
    text = f"title: corr\nid: corr-1\nlevel: high\ncorrelation:\n{body}\n"
    ruleset = ruleset_from(TRANSFER, LOGON, text)
    return CorrelationEngine(ruleset.correlations, ruleset.rules)


def transfers(*items: tuple[int, object], host: str = "ws1") -> list[BaseHit]:
    return [BaseHit("transfer", t * SECOND, f"t{t}", {"Host": host, "Bytes": v}) for t, v in items]


def logons(*times: int, user: str = "bob") -> list[BaseHit]:
    return [BaseHit("logon", t * SECOND, f"l{t}", {"User": user}) for t in times]


def test_value_sum_fires_once_the_window_sum_reaches_the_threshold() -> None:
    e = engine("  type: value_sum\n  rules: [transfer]\n  group-by: [Host]\n  timespan: 1m\n"
               "  condition: {field: Bytes, gte: 1000}")
    fired = e.feed(transfers((0, 400), (10, "300"), (20, 200), (30, 150), (40, 10)))
    assert [(f.value, f.uids) for f in fired] == [(1050.0, ("t0", "t10", "t20", "t30"))]
    assert fired[0].first_ns == 0 and fired[0].time_ns == 30 * SECOND


def test_value_sum_adds_only_the_numbers_within_the_timespan() -> None:
    e = engine("  type: value_sum\n  rules: [transfer]\n  group-by: [Host]\n  timespan: 30s\n"
               "  condition: {field: Bytes, gt: 500}")
    # 400 at 0s has left the window when 200 arrives at 40s; text and missing values are not amounts
    assert e.feed(transfers((0, 400), (40, 200), (50, "n/a"), (55, None), (60, 250))) == []
    assert [f.value for f in e.feed(transfers((65, 100)))] == [550.0]


def test_value_avg_fires_once_when_the_window_average_crosses() -> None:
    e = engine("  type: value_avg\n  rules: [transfer]\n  group-by: [Host]\n  timespan: 1m\n"
               "  condition: {field: Bytes, gte: 100}")
    stream = transfers((0, 150), (10, 150), (20, 150), (30, 150))
    assert e.feed(stream) == []  # an average is known once its window is over
    fired = e.advance(61 * SECOND)
    assert [(f.value, len(f.uids)) for f in fired] == [(150.0, 4)]
    assert e.close() == []  # decided once


def test_value_avg_does_not_fire_when_the_whole_window_averages_below() -> None:
    e = engine("  type: value_avg\n  rules: [transfer]\n  group-by: [Host]\n  timespan: 1m\n"
               "  condition: {field: Bytes, gt: 100}")
    # the first event alone is above 100; the window it opened is not
    assert e.feed(transfers((0, 250), (20, 10), (40, 20))) == []
    assert e.close() == []


def test_value_avg_windows_follow_one_another_per_group() -> None:
    e = engine("  type: value_avg\n  rules: [transfer]\n  group-by: [Host]\n  timespan: 1m\n"
               "  condition: {field: Bytes, gt: 100}")
    stream = sorted(transfers((0, 50), (30, 70)) + transfers((5, 500), host="ws2") + transfers((90, 300), (100, 200)),
                    key=lambda h: h.time_ns)
    fired = e.feed(stream)  # 90s closes ws1's first window (0-60s, average 60) and ws2's (500)
    assert [(dict(f.group)["Host"], f.value) for f in fired] == [("ws2", 500.0)]
    assert [(dict(f.group)["Host"], f.value, f.first_ns) for f in e.close()] == [("ws1", 250.0, 90 * SECOND)]


def test_event_count_lt_waits_for_the_window_to_close() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1h\n  condition: {lt: 3}")
    assert e.feed(logons(0, 600)) == []  # two logons so far: a third may still come within the hour
    assert e.advance(3599 * SECOND) == []
    fired = e.advance(3601 * SECOND)
    assert [(dict(f.group)["User"], f.value, f.uids) for f in fired] == [("bob", 2.0, ("l0", "l600"))]
    assert fired[0].time_ns == 3600 * SECOND and fired[0].first_ns == 0  # decided at the window's end


def test_event_count_lt_does_not_fire_when_the_window_fills() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1h\n  condition: {lt: 3}")
    assert e.feed(logons(0, 600, 1200)) == []
    assert e.close() == []


def test_event_count_lte_is_decided_by_the_next_event_after_the_window() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 10m\n  condition: {lte: 1}")
    fired = e.feed(logons(0, 700, 750))  # 700s is past the first window (0-600s): it held one logon
    assert [(f.value, f.uids) for f in fired] == [(1.0, ("l0",))]
    assert e.close() == []  # the second window holds two


def test_event_count_range_needs_the_closed_window() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1m\n"
               "  condition: {gte: 2, lte: 3}")
    assert e.feed(logons(0, 10, 20, 30)) == []  # four within the minute: not two to three
    assert e.close() == []
    e2 = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1m\n"
                "  condition: {gte: 2, lte: 3}")
    assert e2.feed(logons(0, 10)) == []
    assert [f.value for f in e2.close()] == [2.0]


def test_event_count_gte_still_fires_at_once_and_spends_its_events() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 2}")
    fired = e.feed(logons(0, 5, 10, 15, 20))
    assert [f.uids for f in fired] == [("l0", "l5"), ("l10", "l15")]


def test_windows_that_can_no_longer_fire_are_dropped_from_the_state() -> None:
    e = engine("  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 3}")
    e.feed(logons(0, user="bob") + logons(50, user="amy"))
    e.expire(100 * SECOND)  # bob's logon left the minute at 60s; amy's is still in it
    assert [entry["g"] for entry in orjson.loads(e.to_json())] == [[["User", "amy"]]]


def test_windows_decided_at_close_survive_a_restart() -> None:
    body = "  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1h\n  condition: {lt: 3}"
    first = engine(body)
    assert first.feed(logons(0, 60)) == []
    second = engine(body)
    second.load_json(first.to_json())
    assert [(f.value, f.uids) for f in second.advance(3601 * SECOND)] == [(2.0, ("l0", "l60"))]


def test_state_saved_before_chaining_still_loads() -> None:
    body = "  type: event_count\n  rules: [logon]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 3}"
    e = engine(body)
    e.load_json(b'[{"c": "corr-1", "g": [["User", "bob"]], "i": [[0, "logon", "old0", null], '
                b'[1000000000, "logon", "old1", null]]}]')
    assert [f.uids for f in e.feed(logons(2))] == [("old0", "old1", "l2")]


def test_value_percentile_is_refused_with_the_reason() -> None:
    text = ("title: p95\nid: p95\ncorrelation:\n  type: value_percentile\n  rules: [transfer]\n"
            "  group-by: [Host]\n  timespan: 1h\n  condition: {field: Bytes, percentile: 95, gte: 1000}\n")
    items, refused = parse_rule_text("p95.yml", text)
    assert items == []
    assert len(refused) == 1 and refused[0].path == "p95.yml" and refused[0].rule_id == "p95"
    assert "value_percentile" in refused[0].reason and "does not define it" in refused[0].reason
