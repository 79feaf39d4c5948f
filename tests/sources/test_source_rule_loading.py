"""Bar 2, loading: every SigmaHQ rule for the non-Windows products loads (or is listed with the reason
it is refused), and the rules of the products Mamori reads are routed to a source by the log-source
mappings."""

from __future__ import annotations

from collections import Counter

import pytest
from mamori_testing import shared_data

import mamori.detect.sigma as sigma

pytestmark = pytest.mark.skipif(not hasattr(sigma, "Detector"), reason="the Sigma engine is not there yet")

FOLDERS = ("linux", "macos", "cloud", "identity", "network", "web", "application")
READ = {"linux", "aws", "azure", "m365", "okta", "gcp", "zeek", "fortigate", "github", "kubernetes"}
READ_CATEGORIES = {"dns", "firewall", "webserver", "proxy"}


@pytest.fixture(scope="module")
def loaded() -> tuple[sigma.RuleSet, sigma.Detector]:
    rules = shared_data("sigmahq", "rules")
    ruleset = sigma.load_ruleset([rules / f for f in FOLDERS], use_cache=False)
    return ruleset, sigma.Detector(ruleset)


def test_non_windows_sigmahq_rules_load_at_98_percent_or_better(loaded: tuple[sigma.RuleSet, sigma.Detector]) -> None:
    ruleset, _ = loaded
    total = len(ruleset.rules) + len(ruleset.refused)
    assert total > 600
    assert len(ruleset.refused) <= 0.02 * total, [(r.path, r.reason) for r in ruleset.refused]
    for refusal in ruleset.refused:
        assert refusal.reason


def test_rules_of_products_mamori_reads_are_all_routed(loaded: tuple[sigma.RuleSet, sigma.Detector]) -> None:
    _, detector = loaded
    unrouted = Counter(
        r.logsource.label() for r in detector.unrouted
        if (r.logsource.product in READ and r.logsource.service not in {"bgp", "ldp"})
        or (r.logsource.product is None and r.logsource.category in READ_CATEGORIES)
    )
    assert not unrouted, unrouted
