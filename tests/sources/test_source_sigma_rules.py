"""SigmaHQ rules for non-Windows products fire on the events Mamori reads for them and stay silent
on near misses (tests/fixtures/sources/sigma_rules.expect.yaml): the readers' field names and the
log-source mappings (events/logsources/*.yaml) meet the rules as SigmaHQ wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mamori_testing import shared_data

import mamori.detect.sigma as sigma
from mamori.sources.batch import PARSERS, parse_records
from mamori.sources.registry import all_sources

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "sigma_rules.expect.yaml"
FAMILIES: dict[str, list[dict[str, Any]]] = yaml.safe_load(CASES.read_text("utf-8"))["families"]

pytestmark = pytest.mark.skipif(not hasattr(sigma, "Detector"), reason="the Sigma engine is not there yet")


def _params() -> list[Any]:
    return [pytest.param(family, case, id=f"{family}: {Path(case['rule']).stem} on {case['source']}")
            for family, cases in FAMILIES.items() for case in cases]


def _hits(rule_path: Path, source: str, texts: list[str]) -> tuple[set[int], int]:
    ruleset = sigma.load_ruleset([rule_path], use_cache=False)
    assert not ruleset.refused, ruleset.refused
    assert len(ruleset.rules) == 1
    all_sources()
    result = parse_records(texts, PARSERS[source], source=source)
    assert not result.problems, [p.reason for p in result.problems]
    hits = sigma.Detector(ruleset).detect(result.frame)
    return set(hits["_row"].to_list()), result.frame.height


@pytest.mark.parametrize(("family", "case"), _params())
def test_sigmahq_rule_fires_on_positives_and_not_on_near_misses(family: str, case: dict[str, Any]) -> None:
    rule_path = shared_data("sigmahq", "rules", *case["rule"].split("/"))
    positives, negatives = case["positive"], case["negative"]
    rows, height = _hits(rule_path, case["source"], [*positives, *negatives])
    assert height == len(positives) + len(negatives)
    assert rows == set(range(len(positives))), (
        f"expected hits on rows {list(range(len(positives)))} (positives), got {sorted(rows)}")


def test_each_product_family_has_five_rules_or_more() -> None:
    for family, cases in FAMILIES.items():
        assert len({c["rule"] for c in cases}) >= 5, family
