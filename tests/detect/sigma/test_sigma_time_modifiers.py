"""The Sigma time modifiers (``minute``, ``hour``, ``day``, ``week``, ``month``, ``year``; modifiers
appendix 2.1.0): a part of a date-time value, compared with a number, on events written here."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from mamori.detect.sigma.evaluate import time_parts
from mamori.detect.sigma.loader import parse_rule_text

Matcher = Callable[..., list[int]]


def one(item: str) -> str:
    """A rule with one selection holding one detection item."""
    return f"""
        title: t
        id: 00000000-0000-0000-0000-000000000001
        logsource: {{}}
        detection:
            sel:
                {item}
            condition: sel
        level: high
    """


# written in three zones and shapes; the parts are those written (no zone conversion, as the appendix says)
STAMPS = [
    {"LogonTime": "2024-12-30T03:15:00Z"},  # a Monday of ISO week 1 of 2025
    {"LogonTime": "2024-06-15T22:45:10.123+09:00"},  # week 24
    {"LogonTime": "2024-06-15 03:59:59.1234567"},  # a space instead of T, no zone
    {"LogonTime": "not a date"},
    {"Other": "2024-06-15T03:00:00Z"},
]


def windows_event(system_time: str) -> dict[str, object]:
    """A Windows event whose time (``_time``, OCSF ``time``) is ``system_time``."""
    return {"System": {"EventID": 1, "TimeCreated": {"#attributes": {"SystemTime": system_time}}}}


def test_hour_matches_the_hour_written_in_the_value(match: Matcher) -> None:
    assert match(one("LogonTime|hour: 3"), STAMPS) == [0, 2]
    assert match(one("LogonTime|hour: 22"), STAMPS) == [1]


def test_each_part_of_an_iso_8601_value(match: Matcher) -> None:
    assert match(one("LogonTime|minute: 45"), STAMPS) == [1]
    assert match(one("LogonTime|day: 15"), STAMPS) == [1, 2]
    assert match(one("LogonTime|week: 1"), STAMPS) == [0]
    assert match(one("LogonTime|week: 24"), STAMPS) == [1, 2]
    assert match(one("LogonTime|month: 12"), STAMPS) == [0]
    assert match(one("LogonTime|year: 2024"), STAMPS) == [0, 1, 2]


def test_a_time_part_combines_with_numeric_comparisons_and_value_lists(match: Matcher) -> None:
    assert match(one("LogonTime|hour|gte: 22"), STAMPS) == [1]
    assert match(one("LogonTime|hour|lt: 6"), STAMPS) == [0, 2]
    assert match(one("LogonTime|minute|lte: 15"), STAMPS) == [0]
    assert match(one("LogonTime|hour:\n                    - 1\n                    - 22"), STAMPS) == [1]
    assert match(one("LogonTime|month|neq: 6"), STAMPS) == [0, 3, 4]  # neq: absent and undated differ too


def test_a_value_that_is_no_date_time_matches_no_time_part(match: Matcher) -> None:
    events = [{"T": "2024-02-31T03:00:00Z"}, {"T": "2024-06-15T24:00:00Z"}, {"T": "3"}, {"T": ""},
              {"T": "2024-06-15"}]
    assert match(one("T|day|gte: 1"), events) == [4]  # a date alone has a day...
    assert match(one("T|hour|gte: 0"), events) == []  # ...but no hour


def test_time_modifiers_read_the_event_time_column(match: Matcher) -> None:
    events = [windows_event("2024-05-01T03:04:05.1234567Z"), windows_event("2024-05-01T22:04:05Z")]
    assert match(one("_time|hour: 3"), events) == [0]
    assert match(one("_time|hour|gt: 12"), events) == [1]
    assert match(one("_time|week: 18"), events) == [0, 1]


def test_time_modifiers_read_ocsf_millisecond_timestamps_in_utc(match: Matcher) -> None:
    events = [windows_event("2024-05-01T03:04:05Z"), windows_event("2024-05-01T22:04:05Z"), {"Count": "3"}]
    assert match(one("time|hour: 3"), events) == [0]  # OCSF ``time``: 1714532645000
    assert match(one("time|minute: 4"), events) == [0, 1]
    assert match(one("Count|year|gte: 0"), events) == []  # a small number is no time


def test_time_parts_of_distinct_values_in_one_columnar_pass() -> None:
    parts = time_parts(pa.array(["2023-11-14 22:13:20.123456789+00:00", "1714532645123", None, "x"],
                                type=pa.large_string()))
    assert parts.rows() == [(13, 22, 14, 46, 11, 2023), (4, 3, 1, 18, 5, 2024),
                            (None,) * 6, (None,) * 6]


@pytest.mark.parametrize(("item", "reason"), [
    ("T|hour: 'three'", "the hour modifier needs a whole number"),
    ("T|minute: 1.5", "the minute modifier needs a whole number"),
    ("T|hour: 24", "the hour modifier's number is between 0 and 23, got 24"),
    ("T|month: 0", "between 1 and 12"),
    ("T|hour|contains: 3", "the hour modifier takes one of gt, gte, lt, lte (or neq) beside it, not contains"),
    ("T|hour|minute: 3", "not minute"),
    ("T|year: true", "needs a whole number"),
])
def test_a_time_modifier_with_a_value_that_is_not_a_number_is_refused_with_the_reason(item: str,
                                                                                       reason: str) -> None:
    rules, refused = parse_rule_text("r.yml", one(item).replace("\n        ", "\n"))
    assert not rules
    assert len(refused) == 1 and reason in refused[0].reason and "detection.sel" in refused[0].reason
