"""The condition grammar: and / or / not, parentheses, quantifiers over selection names."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mamori.detect.sigma.loader import parse_rule_text

Matcher = Callable[..., list[int]]

EVENTS = [
    {"A": "1", "B": "1", "C": "1"},
    {"A": "1", "B": "0", "C": "0"},
    {"A": "0", "B": "1", "C": "1"},
    {"A": "0", "B": "0", "C": "1"},
    {"A": "0", "B": "0", "C": "0"},
]


def rule(condition: str) -> str:
    return f"""
        title: conditions
        id: 00000000-0000-0000-0000-000000000002
        logsource: {{}}
        detection:
            sel_a: {{A: '1'}}
            sel_b: {{B: '1'}}
            filter_c: {{C: '1'}}
            condition: {condition}
    """


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("sel_a", [0, 1]),
        ("sel_a and sel_b", [0]),
        ("sel_a or sel_b", [0, 1, 2]),
        ("not sel_a", [2, 3, 4]),
        ("sel_a or sel_b and filter_c", [0, 1, 2]),  # and binds tighter than or
        ("(sel_a or sel_b) and not filter_c", [1]),
        ("not (sel_a or filter_c)", [4]),
        ("1 of sel_*", [0, 1, 2]),
        ("all of sel_*", [0]),
        ("1 of them", [0, 1, 2, 3]),
        ("all of them", [0]),
        ("1 of sel_* and not 1 of filter_*", [1]),
        ("SEL_A", None),
    ],
)
def test_condition_forms(match: Matcher, condition: str, expected: list[int] | None) -> None:
    if expected is None:
        _, refused = parse_rule_text("bad.yml", rule(condition))
        assert refused and "not a selection" in refused[0].reason
        return
    assert match(rule(condition), EVENTS) == expected


def test_list_of_maps_is_or_and_map_is_and(match: Matcher) -> None:
    text = """
        title: maps
        logsource: {}
        detection:
            sel:
                - {A: '1', B: '1'}
                - {C: '1', A: '0', B: '0'}
            condition: sel
    """
    assert match(text, EVENTS) == [0, 3]


def test_condition_list_is_or(match: Matcher) -> None:
    text = """
        title: several conditions
        logsource: {}
        detection:
            sel_a: {A: '1'}
            sel_c: {C: '1'}
            condition:
                - sel_a and not sel_c
                - sel_c and not sel_a
    """
    assert match(text, EVENTS) == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("detection:\n  sel: {A: 1}\n  condition: sel and", "ends too early"),
        ("detection:\n  sel: {A: 1}\n  condition: sel | count() > 5", "correlation rule"),
        ("detection:\n  sel: {A|bogus: 1}\n  condition: sel", "unknown modifier"),
        ("detection:\n  sel: {A|re: '(unclosed'}\n  condition: sel", "invalid regular expression"),
        ("detection:\n  sel: {A: 1}\n", "condition is missing"),
        ("detection: [1, 2]", "no detection section"),
        ("detection:\n  sel: {A: 1}\n  condition: (sel", "missing ')'"),
        ("detection:\n  sel: {A|base64: 'a*b'}\n  condition: sel", "wildcards"),
        ("detection:\n  sel: {A|expand: '%nope%'}\n  condition: sel", "placeholder %nope%"),
    ],
)
def test_broken_rules_are_refused_with_the_reason(body: str, reason: str) -> None:
    _, refused = parse_rule_text("bad.yml", f"title: broken\nlogsource: {{}}\n{body}\n")
    assert len(refused) == 1
    assert refused[0].path == "bad.yml"
    assert reason in refused[0].reason


def test_invalid_yaml_is_refused_with_the_line() -> None:
    _, refused = parse_rule_text("bad.yml", "title: x\ndetection:\n  sel: [unclosed\n  condition: sel\n")
    assert refused and refused[0].path.startswith("bad.yml:")
    assert "not valid YAML" in refused[0].reason


def test_global_action_documents_merge_into_each_rule(match: Matcher) -> None:
    from mamori.detect.sigma.model import Rule

    text = (
        "action: global\ntitle: shared\nlogsource: {product: windows}\ndetection:\n  condition: sel\n---\n"
        "id: r1\ndetection:\n  sel: {A: '1'}\n---\nid: r2\ndetection:\n  sel: {B: '1'}\n"
    )
    items, refused = parse_rule_text("multi.yml", text)
    assert not refused
    rules = [i for i in items if isinstance(i, Rule)]
    assert [r.id for r in rules] == ["r1", "r2"]
    assert all(r.logsource.product == "windows" for r in rules)
