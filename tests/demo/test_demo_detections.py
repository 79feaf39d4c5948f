"""Each stage of the demo intrusion is detected by real SigmaHQ rules (the table in
``mamori/demo/data/detections.yaml``), and the background activity by none."""

from __future__ import annotations

from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import yaml
from mamori_testing import shared_data

from mamori.demo.scenario import STAGES, generate, write_logs
from mamori.hunt import run_hunt

LEVELS = ("informational", "low", "medium", "high", "critical")


def _table() -> dict[str, list[dict[str, str]]]:
    text = (resources.files("mamori.demo") / "data" / "detections.yaml").read_text("utf-8")
    stages: dict[str, list[dict[str, str]]] = yaml.safe_load(text)["stages"]
    return stages


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Rule ids that fired, by the stage of the event they fired on (``background`` included)."""
    rules = shared_data("sigmahq", "rules")
    scenario = generate()
    folder = tmp_path_factory.mktemp("demo-logs")
    path = write_logs(scenario, folder)
    stage_of = {(e.document["winlog"]["computer_name"], e.document["winlog"]["channel"],
                 str(e.document["winlog"]["record_id"])): e.stage for e in scenario.events}
    result = run_hunt([path], [rules], explain_matches=False)
    assert result.complete and result.events == len(scenario.events)
    out: dict[str, set[str]] = defaultdict(set)
    for hit in result.detections:
        out[stage_of[(hit["host"], hit["channel"], str(hit["record_id"]))]].add(hit["rule_id"])
    return out


def test_every_stage_is_detected_by_the_sigmahq_rules_the_table_names(fired: dict[str, set[str]]) -> None:
    table = _table()
    assert list(table) == list(STAGES)
    for stage, rows in table.items():
        listed = {row["id"] for row in rows}
        assert listed, stage
        assert listed == fired[stage], (stage, sorted(listed ^ fired[stage]))


def test_every_stage_has_a_detection_at_medium_or_above() -> None:
    for stage, rows in _table().items():
        assert any(LEVELS.index(row["level"]) >= LEVELS.index("medium") for row in rows), stage


def test_the_table_names_real_rule_files() -> None:
    rules = shared_data("sigmahq", "rules")
    for rows in _table().values():
        for row in rows:
            path = Path(rules, row["file"])
            assert path.is_file(), path
            assert f"id: {row['id']}" in path.read_text(encoding="utf-8"), path


def test_background_activity_fires_no_rule_at_all(fired: dict[str, set[str]]) -> None:
    assert fired.get("background", set()) == set()
