"""The demo runner's own decisions: its data folder, where its rules come from, its language, the event ids
it expects the service to give."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mamori.demo.run import MARKER, batches, expected_uids, message, pick_language, prepare_data_dir, resolve_rules
from mamori.demo.scenario import generate
from mamori.errors import MamoriError


def test_a_second_demo_in_the_same_folder_starts_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "mamori-demo"
    prepare_data_dir(folder, "en")
    (folder / "old.db").write_text("x")
    prepare_data_dir(folder, "en")
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]


def test_a_folder_the_demo_did_not_make_is_refused_and_kept(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(MamoriError, match="not a folder made by") as caught:
        prepare_data_dir(foreign, "en")
    assert caught.value.where == "--data-dir"
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_without_rules_the_error_says_how_to_pass_the_shared_sigmahq_rules(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAMORI_HOME", str(tmp_path / "home"))
    project = tmp_path / "project"
    shared = tmp_path / "shared" / "data" / "sigmahq" / "rules"
    shared.mkdir(parents=True)
    project.mkdir()
    with pytest.raises(MamoriError) as caught:
        resolve_rules((), "en", cwd=project)
    assert caught.value.hint is not None and "--rules" in caught.value.hint and "sigmahq" in caught.value.hint
    with pytest.raises(MamoriError) as missing:
        resolve_rules((tmp_path / "nowhere",), "ja", cwd=project)
    assert missing.value.where == "--rules"
    assert resolve_rules((shared,), "en") == [shared]


def test_the_language_follows_the_option_then_the_locale() -> None:
    assert pick_language("en", {"LANG": "ja_JP.UTF-8"}) == "en"
    assert pick_language(None, {"LANG": "ja_JP.UTF-8"}) == "ja"
    assert pick_language(None, {"LANG": "C.UTF-8"}) == "en"
    assert pick_language(None, {}) == "en"
    assert "インシデント" in message("ja", "visible", seconds=12.0)
    assert "12.0 s" in message("en", "visible", seconds=12.0)


def test_every_message_exists_in_both_languages_with_the_same_placeholders() -> None:
    import re

    from mamori.demo.run import _catalogue

    catalogue = _catalogue()
    assert set(catalogue["en"]) == set(catalogue["ja"])
    for key, text in catalogue["en"].items():
        names = set(re.findall(r"\{(\w+)", text))
        assert names == set(re.findall(r"\{(\w+)", catalogue["ja"][key])), key


def test_expected_event_ids_are_one_per_event_and_split_by_kind() -> None:
    scenario = generate(start=datetime(2026, 11, 30, 0, 30, tzinfo=UTC))
    fed = expected_uids(scenario)
    assert len(fed.attack) + len(fed.background) == len(scenario.events)
    assert not fed.attack & fed.background
    assert len(fed.attack) == sum(1 for e in scenario.events if e.is_attack)
    keys = [key for key, _ in batches(scenario)]
    assert len(set(keys)) == len(keys)
