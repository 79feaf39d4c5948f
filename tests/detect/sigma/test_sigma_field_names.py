"""Which event column a rule's field name reads: its own name, else one differing only in case or
spaces, but never a column Mamori added (OCSF's normalised fields, the core columns)."""

from __future__ import annotations

from collections.abc import Callable

Matcher = Callable[..., list[int]]

RULE = """
title: t
logsource: {product: windows}
detection:
    selection: {FIELD: VALUE}
    condition: selection
"""


def _rule(field: str, value: str) -> str:
    return RULE.replace("FIELD", field).replace("VALUE", value)


def test_a_field_differing_only_in_case_or_spaces_is_the_same_field(match: Matcher) -> None:
    events = [{"EventID": 1116, "Threat Name": "Trojan:Win32/Emotet"}, {"EventID": 1116, "Threat Name": "Other"}]
    assert match(_rule("ThreatName", "Trojan:Win32/Emotet"), events) == [0]


def test_a_rule_field_is_never_read_from_an_ocsf_column_of_the_same_name(match: Matcher) -> None:
    events = [{"EventID": 4625, "status": "Failure", "message": "An account failed to log on"},
              {"EventID": 4625, "Status": "Failure"}]
    assert match(_rule("Status", "Failure"), events) == [1]
    assert match(_rule("Message|contains", "failed"), events) == []


def test_a_rule_naming_the_ocsf_column_exactly_reads_it(match: Matcher) -> None:
    events = [{"EventID": 4625, "status": "Failure"}]
    assert match(_rule("status", "Failure"), events) == [0]
