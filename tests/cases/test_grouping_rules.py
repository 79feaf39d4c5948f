"""The pure grouping decisions: shared entities within a window link alerts, common values never do,
low-level alerts never open an incident alone, severity is explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mamori.cases.grouping import (
    AlertFacts,
    OpenCase,
    alert_entities,
    decide,
    derive_severity,
    load_rules,
    process_tree_values,
)
from mamori.errors import MamoriError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = load_rules()


def facts(alert_id: int, minutes: float, level: str = "high", **values: list[object]) -> AlertFacts:
    when = T0 + timedelta(minutes=minutes)
    return AlertFacts(alert_id, level, when, when, alert_entities(values, RULES))


def case(incident_id: int, minutes: float, untouched: bool = True, **values: list[object]) -> OpenCase:
    when = T0 + timedelta(minutes=minutes)
    return OpenCase(incident_id, when, when, alert_entities(values, RULES), untouched)


def test_an_alert_on_the_same_host_within_the_window_joins_the_incident() -> None:
    decision = decide(facts(2, 90, host=["ws01"]), [case(7, 0, host=["WS01"])], RULES)
    assert decision.action == "join"
    assert decision.incident_id == 7
    assert "host=ws01" in decision.reason


def test_an_alert_on_the_same_host_outside_the_window_opens_a_new_incident() -> None:
    decision = decide(facts(2, 121, host=["ws01"]), [case(7, 0, host=["ws01"])], RULES)
    assert decision.action == "open"


def test_an_alert_before_the_incident_is_measured_from_its_first_sighting() -> None:
    earlier = facts(2, -30, host=["ws01"])
    assert decide(earlier, [case(7, 0, host=["ws01"])], RULES).action == "join"


@pytest.mark.parametrize("account", ["SYSTEM", "NT AUTHORITY\\SYSTEM", "LOCAL SERVICE", "-", "", "  system "])
def test_common_account_names_do_not_link_incidents(account: str) -> None:
    decision = decide(facts(2, 5, host=["ws02"], user=[account]), [case(7, 0, host=["ws01"], user=[account])], RULES)
    assert decision.action == "open"
    assert "user" not in alert_entities({"user": [account]}, RULES)


def test_localhost_and_loopback_addresses_do_not_link() -> None:
    decision = decide(facts(2, 5, host=["localhost"], ip=["127.0.0.1"]),
                      [case(7, 0, host=["localhost"], ip=["127.0.0.1"])], RULES)
    assert decision.action == "open"


def test_a_named_user_links_alerts_on_different_hosts() -> None:
    decision = decide(facts(2, 5, host=["ws02"], user=["CORP\\alice"]), [case(7, 0, host=["ws01"],
                                                                                   user=["corp\\alice"])], RULES)
    assert (decision.action, decision.incident_id) == ("join", 7)


@pytest.mark.parametrize("level", ["informational", "low"])
def test_low_level_alerts_alone_do_not_open_an_incident(level: str) -> None:
    assert decide(facts(2, 0, level=level, host=["ws01"]), [], RULES).action == "skip"


def test_a_low_level_alert_joins_an_incident_it_shares_an_entity_with() -> None:
    decision = decide(facts(2, 10, level="low", host=["ws01"]), [case(7, 0, host=["ws01"])], RULES)
    assert (decision.action, decision.incident_id) == ("join", 7)


def test_the_source_ip_window_is_shorter_than_the_host_window() -> None:
    alert = facts(2, 90, ip=["203.0.113.9"])
    assert decide(alert, [case(7, 0, ip=["203.0.113.9"])], RULES).action == "open"
    assert decide(facts(3, 30, ip=["203.0.113.9"]), [case(7, 0, ip=["203.0.113.9"])], RULES).action == "join"


def test_a_child_process_links_to_the_alert_on_its_parent() -> None:
    parent = process_tree_values([{"ProcessGuid": "{AAAA-1}", "ParentProcessGuid": "{ROOT-0}"}])
    child = process_tree_values([{"ProcessGuid": "{BBBB-2}", "ParentProcessGuid": "{aaaa-1}"}])
    decision = decide(facts(2, 10, host=["ws02"], process_tree=list(child)),
                      [case(7, 0, host=["ws01"], process_tree=list(parent))], RULES)
    assert (decision.action, decision.incident_id) == ("join", 7)
    assert "process_tree=guid:aaaa-1" in decision.reason


def test_process_ids_without_guids_are_qualified_by_host() -> None:
    values = process_tree_values([{"ProcessId": "4242", "ParentProcessId": "100", "_host": "WS01"}])
    assert values == {"pid:ws01:4242", "pid:ws01:100"}


def test_an_alert_bridging_two_incidents_joins_the_oldest_and_merges_the_untouched_one() -> None:
    older = case(7, 0, host=["ws01"])
    newer = case(9, 10, user=["bob"])
    owned = case(11, 20, untouched=False, user=["bob"])
    decision = decide(facts(2, 30, host=["ws01"], user=["bob"]), [newer, owned, older], RULES)
    assert (decision.action, decision.incident_id, decision.merge_ids) == ("join", 7, (9,))


def test_severity_is_the_highest_alert_level() -> None:
    assert derive_severity(["low", "high", "medium"], 1, 1, RULES) == ("high", "highest alert level high")


def test_severity_is_raised_one_step_when_the_incident_spans_many_hosts() -> None:
    severity, basis = derive_severity(["medium"], 3, 1, RULES)
    assert severity == "high"
    assert "raised to high" in basis and "3 hosts" in basis


def test_severity_is_raised_when_the_incident_spans_many_tactics_but_never_beyond_critical() -> None:
    assert derive_severity(["high"], 1, 3, RULES)[0] == "critical"
    assert derive_severity(["critical"], 5, 5, RULES)[0] == "critical"


def test_a_grouping_file_with_a_bad_entity_names_the_file_and_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "grouping.yaml"
    path.write_text("link_by:\n  - {entity: mailbox, window_minutes: 10}\n", encoding="utf-8")
    with pytest.raises(MamoriError) as caught:
        load_rules(path)
    assert caught.value.where == f"{path}: link_by[0]"


def test_a_grouping_file_can_change_the_minimum_level_and_the_windows(tmp_path: Path) -> None:
    path = tmp_path / "grouping.yaml"
    path.write_text("link_by:\n  - {entity: host, window_minutes: 5}\nmin_level_to_open: low\n", encoding="utf-8")
    rules = load_rules(path)
    alert = AlertFacts(1, "low", T0 + timedelta(minutes=6), T0 + timedelta(minutes=6),
                       alert_entities({"host": ["ws01"], "user": ["alice"]}, rules))
    other = OpenCase(7, T0, T0, alert_entities({"host": ["ws01"], "user": ["alice"]}, rules))
    assert decide(alert, [other], rules).action == "open"


def test_an_incident_never_grows_beyond_its_maximum_span() -> None:
    long_running = OpenCase(7, T0, T0 + timedelta(hours=23, minutes=30), alert_entities({"host": ["ws01"]}, RULES))
    assert decide(facts(2, 23 * 60 + 50, host=["ws01"]), [long_running], RULES).action == "join"
    assert decide(facts(3, 24 * 60 + 10, host=["ws01"]), [long_running], RULES).action == "open"
