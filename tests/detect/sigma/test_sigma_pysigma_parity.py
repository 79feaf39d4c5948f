"""Our lean rule parser reads SigmaHQ rules as pySigma (the reference implementation) does."""

from __future__ import annotations

import pytest
from mamori_testing import shared_data

from mamori.detect.sigma.loader import parse_rule_text
from mamori.detect.sigma.model import Rule

pysigma = pytest.importorskip("sigma.rule", reason="pySigma is a test dependency (pip install -e .[dev])")


def _pysigma_items(rule: object) -> set[tuple[str | None, tuple[str, ...]]]:
    out: set[tuple[str | None, tuple[str, ...]]] = set()

    def walk(node: object) -> None:
        items = getattr(node, "detection_items", None)
        if items is None:
            out.add((getattr(node, "field", None),
                     tuple(sorted(m.__name__.replace("Sigma", "").replace("Modifier", "").lower()
                                  for m in getattr(node, "modifiers", [])))))
            return
        for child in items:
            walk(child)

    for detection in rule.detection.detections.values():  # type: ignore[attr-defined]
        walk(detection)
    return out


def test_rule_metadata_fields_and_modifiers_match_pysigma() -> None:
    rules_dir = shared_data("sigmahq", "rules", "windows")
    files = sorted(rules_dir.rglob("*.yml"))[::8]  # a fixed sample across every folder
    compared = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        reference = pysigma.SigmaRule.from_yaml(text)
        items, refused = parse_rule_text(str(path), text)
        assert not refused, (path, refused)
        ours = items[0]
        assert isinstance(ours, Rule)
        assert ours.id == str(reference.id)
        assert ours.title == reference.title
        assert ours.level == reference.level.name.lower()
        assert ours.logsource.category == reference.logsource.category
        assert ours.logsource.product == reference.logsource.product
        assert {s.name for s in ours.selections} == set(reference.detection.detections)
        our_fields = {i.field for s in ours.selections for m in s.maps for i in m}
        their_fields = {f for f, _ in _pysigma_items(reference)}
        assert our_fields == their_fields, path
        compared += 1
    assert compared > 250
