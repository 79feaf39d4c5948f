"""The real SigmaHQ rule set on the maintainers' own samples and on real attack logs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from mamori_testing import shared_data

from mamori.detect.sigma import Detector, load_ruleset
from mamori.hunt import run_hunt


def _regression_expectations(root: Path) -> list[tuple[str, str]]:
    """(rule id, evtx file name) for every regression sample: that rule must fire on that file."""
    pairs = []
    for info in sorted(root.rglob("info.yml")):
        text = info.read_text()
        ids = re.findall(r"-\s+id:\s*([0-9a-f-]{36})", text)
        paths = re.findall(r"path:\s*(\S+\.evtx)", text)
        pairs.extend((ids[0], Path(p).name) for p in paths if ids)
    return pairs


def test_every_regression_sample_fires_its_own_rule() -> None:
    sigma = shared_data("sigmahq")
    regression = sigma / "regression_data"
    result = run_hunt([regression], [sigma / "rules", sigma / "rules-threat-hunting", sigma / "rules-emerging-threats"],
                      explain_matches=False)
    fired = {(d["rule_id"], Path(d["source_file"]).name) for d in result.detections}
    expected = _regression_expectations(regression)
    missed = [pair for pair in expected if pair not in fired]
    assert len(expected) >= 200
    assert missed == []


def test_at_least_99_percent_of_windows_rules_load_and_each_refusal_has_a_reason() -> None:
    sigma = shared_data("sigmahq")
    sources = [sigma / "rules" / "windows", sigma / "rules-threat-hunting" / "windows",
               sigma / "rules-emerging-threats"]
    ruleset = load_ruleset(sources)
    windows_refused = [r for r in ruleset.refused if "windows" in r.path.lower() or "/win" in r.path.lower()]
    total = len(ruleset.rules) + len(ruleset.refused)
    assert total > 3000
    assert len(ruleset.rules) / total >= 0.99
    assert all(r.reason and r.path for r in ruleset.refused)
    assert len(windows_refused) <= len(ruleset.refused)
    detector = Detector(ruleset)
    windows_rules = [r for r in ruleset.rules if r.logsource.product == "windows"]
    unrouted = [r for r in detector.unrouted if r.logsource.product == "windows"]
    assert len(unrouted) / len(windows_rules) < 0.01


def test_attack_samples_fire_at_least_as_many_rules_as_the_peer() -> None:
    samples = shared_data("evtx-attack-samples")
    rules = shared_data("sigmahq", "rules", "windows")
    result = run_hunt([samples], [rules], explain_matches=False)
    fired = {d["rule_id"] for d in result.detections}
    tactics = Counter(t for d in result.detections for t in d["tactics"])
    assert result.complete
    assert len(fired) >= 330
    assert {"credential_access", "lateral_movement", "execution", "persistence"} <= set(tactics)
    assert all(d["rule_author"] is not None and d["rule_id"] for d in result.detections)
