"""Run one Sigma rule (YAML text) over small events written in the test, and say which matched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mamori_testing import ruleset_from

from mamori.detect.sigma.engine import Detector
from mamori.sources.winjson import records_to_frame


@pytest.fixture
def match() -> Callable[..., list[int]]:
    """``match(rule_yaml, events)`` -> indexes of the events the rule matches."""

    def run(rule: str, events: list[dict[str, Any]], placeholders: dict[str, list[str]] | None = None) -> list[int]:
        ruleset = ruleset_from(rule, placeholders=placeholders)
        frame = records_to_frame(events, "test")
        detector = Detector(ruleset)
        hits = detector.detect(frame)
        screened = detector.detect(frame)  # from the second batch on, rules are screened first (``screen``)
        assert screened.equals(hits), "screening the rules changed what they match"
        return sorted(hits.get_column("_row").to_list())

    return run
