"""Sigma meta-filter documents (filters specification 2.x): a filter takes its matches out of the rules
it names, whose log source is inside its own; on rule folders and events written here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mamori.detect.sigma.engine import Detector
from mamori.detect.sigma.model import RuleSet
from mamori.detect.sigma.ruleset import load_ruleset
from mamori.errors import RuleError
from mamori.hunt import run_hunt
from mamori.hunt_shares import MIN_RULE_FILES, rule_file_shares
from mamori.service.retrohunt import ruleset_from_text
from mamori.sources.winjson import records_to_frame

REPO = Path(__file__).resolve().parents[3]
LOGS = REPO / "tests" / "fixtures" / "windows"
WHOAMI = (REPO / "tests" / "fixtures" / "rules" / "proc_whoami.yml").read_text()
WHOAMI_ID = "7d1c0a3e-1111-4a5b-9c2d-000000000001"

RULE_A = """
    title: Net user from a shell
    id: aaaaaaaa-0000-4000-8000-000000000001
    name: net_user_shell
    author: Rule Author A
    level: high
    logsource: {product: windows, category: process_creation}
    detection:
        selection:
            CommandLine|contains: 'net user'
        condition: selection
"""
RULE_B = """
    title: Net user anywhere
    id: bbbbbbbb-0000-4000-8000-000000000002
    author: Rule Author B
    level: medium
    logsource: {product: windows, category: process_creation}
    detection:
        selection:
            CommandLine|contains: 'net'
        condition: selection
"""
SYSMON = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}
EVENTS = [{**SYSMON, "CommandLine": "net user bob", "User": "CORP\\adm_jo"},
          {**SYSMON, "CommandLine": "net user eve", "User": "CORP\\eve"}]


def filter_doc(rules: str, logsource: str = "{product: windows, category: process_creation}",
               condition: str = "selection") -> str:
    return f"""
        title: Administrators run net user
        id: ffffffff-0000-4000-8000-00000000000f
        author: Tuning Team
        logsource: {logsource}
        filter:
            rules: {rules}
            selection:
                User|contains: '\\adm_'
            condition: {condition}
    """


def rule_folder(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yml").write_text(textwrap.dedent(text))
    return folder


def hits(ruleset: RuleSet, events: list[dict[str, Any]]) -> dict[str, list[int]]:
    found = Detector(ruleset).detect(records_to_frame(events, "test"))
    out: dict[str, list[int]] = {}
    for rule_id, row in found.iter_rows():
        out.setdefault(rule_id, []).append(row)
    return {k: sorted(v) for k, v in out.items()}


def test_a_filter_takes_its_events_out_of_the_rule_it_names_by_id_only(tmp_path: Path) -> None:
    folder = rule_folder(tmp_path / "rules", a=RULE_A, b=RULE_B,
                         mf_admins=filter_doc("[aaaaaaaa-0000-4000-8000-000000000001]"))
    ruleset = load_ruleset([folder], use_cache=False)
    assert not ruleset.refused
    assert hits(ruleset, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [1],
                                     "bbbbbbbb-0000-4000-8000-000000000002": [0, 1]}
    tuned = ruleset.by_id()["aaaaaaaa-0000-4000-8000-000000000001"]
    assert tuned.author == "Rule Author A" and [s.name for s in tuned.selections] == ["selection"]
    assert [f.id for f in tuned.filters] == ["ffffffff-0000-4000-8000-00000000000f"]
    assert [name for name, _ in ruleset.selection_plans[tuned.id]] == ["selection"]  # explanations: the rule's own
    assert not ruleset.by_id()["bbbbbbbb-0000-4000-8000-000000000002"].filters


def test_a_detection_of_a_tuned_rule_names_the_filters_that_tuned_it(tmp_path: Path) -> None:
    folder = rule_folder(tmp_path / "rules", a=RULE_A, b=RULE_B,
                         mf_admins=filter_doc("[aaaaaaaa-0000-4000-8000-000000000001]"))
    log = tmp_path / "sysmon.jsonl"
    log.write_text("\n".join(json.dumps({**e, "Computer": "ws1", "TimeCreated_SystemTime": "2024-05-01T00:00:00Z"})
                             for e in EVENTS))
    found = run_hunt([log], [folder], use_cache=False, workers=1).detections
    tuned = [d for d in found if d["rule_id"] == "aaaaaaaa-0000-4000-8000-000000000001"]
    assert len(tuned) == 1 and tuned[0]["filters"] == [
        {"id": "ffffffff-0000-4000-8000-00000000000f", "title": "Administrators run net user",
         "path": str(folder / "mf_admins.yml")}]
    assert all("filters" not in d for d in found if d["rule_id"] == "bbbbbbbb-0000-4000-8000-000000000002")


def test_a_filter_sent_with_its_rule_for_a_retro_hunt_tunes_it() -> None:
    text = textwrap.dedent(RULE_A) + "---\n" + textwrap.dedent(filter_doc("[aaaaaaaa-0000-4000-8000-000000000001]"))
    ruleset = ruleset_from_text(text)
    assert hits(ruleset, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [1]}
    with pytest.raises(RuleError, match="the filter names no loaded rule"):
        ruleset_from_text(textwrap.dedent(RULE_B) + "---\n" + textwrap.dedent(filter_doc("[no-such-rule]")))


def test_a_filter_names_a_rule_by_its_name_and_any_names_every_rule_of_the_log_source(tmp_path: Path) -> None:
    by_name = load_ruleset([rule_folder(tmp_path / "n", a=RULE_A, b=RULE_B, mf=filter_doc("net_user_shell"))],
                           use_cache=False)
    assert hits(by_name, EVENTS)["aaaaaaaa-0000-4000-8000-000000000001"] == [1]
    assert hits(by_name, EVENTS)["bbbbbbbb-0000-4000-8000-000000000002"] == [0, 1]
    for every in ("any", "[]"):
        tuned = load_ruleset([rule_folder(tmp_path / every, a=RULE_A, b=RULE_B, mf=filter_doc(every))],
                             use_cache=False)
        assert hits(tuned, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [1],
                                       "bbbbbbbb-0000-4000-8000-000000000002": [1]}


def test_a_filter_whose_log_source_the_rule_is_not_inside_does_not_apply(tmp_path: Path) -> None:
    folder = rule_folder(tmp_path / "rules", a=RULE_A, b=RULE_B,
                         mf=filter_doc("any", logsource="{product: linux, category: process_creation}"),
                         mf_windows=filter_doc("[net_user_shell]", logsource="{product: windows}").replace(
                             "ffffffff-0000-4000-8000-00000000000f", "ffffffff-0000-4000-8000-0000000000aa"))
    ruleset = load_ruleset([folder], use_cache=False)
    # the linux filter tunes nothing (and says so); a product-only filter holds process_creation rules
    assert hits(ruleset, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [1],
                                     "bbbbbbbb-0000-4000-8000-000000000002": [0, 1]}
    assert [(Path(r.path).name, r.reason) for r in ruleset.refused] == [
        ("mf.yml", "the filter applies to no rule: no rule has a log source inside linux/process_creation/- "
                   "(product/category/service)")]


def test_a_filter_naming_no_loaded_rule_or_with_a_broken_condition_is_refused_with_the_reason(
        tmp_path: Path) -> None:
    folder = rule_folder(tmp_path / "rules", a=RULE_A,
                         mf_nothing=filter_doc("[no-such-rule]"),
                         mf_broken=filter_doc("any", condition="selection and not other").replace("0f", "01"),
                         mf_norules=filter_doc("any").replace("rules: any", "").replace("0f", "02"))
    ruleset = load_ruleset([folder], use_cache=False)
    reasons = {Path(r.path).name: r.reason for r in ruleset.refused}
    assert reasons["mf_nothing.yml"] == ("the filter names no loaded rule: no-such-rule; name loaded rules by id "
                                         "or name")
    assert reasons["mf_broken.yml"].startswith("filter.condition:") and "other" in reasons["mf_broken.yml"]
    assert reasons["mf_norules.yml"].startswith("filter.rules is missing")
    assert not ruleset.filters and not ruleset.rules[0].filters
    assert hits(ruleset, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [0, 1]}


def test_filters_reach_the_service_rule_sets_and_the_warm_cache(tmp_path: Path) -> None:
    from mamori.service.detection import load_stage

    folder = rule_folder(tmp_path / "rules", a=RULE_A, mf=filter_doc("[net_user_shell]"))
    cold = load_ruleset([folder], cache_dir=tmp_path / "cache")
    warm = load_ruleset([folder], cache_dir=tmp_path / "cache")
    stage = load_stage([folder])
    for ruleset in (cold, warm, stage.ruleset):
        assert hits(ruleset, EVENTS) == {"aaaaaaaa-0000-4000-8000-000000000001": [1]}


def test_rules_list_shows_which_filters_apply_to_which_rule(tmp_path: Path) -> None:
    folder = rule_folder(tmp_path / "rules", a=RULE_A, b=RULE_B, mf=filter_doc("[net_user_shell]"),
                         mf_nothing=filter_doc("[gone]").replace("0f", "03"))
    env = {**os.environ, "MAMORI_CACHE_DIR": str(tmp_path / "cache")}
    listed = subprocess.run([sys.executable, "-m", "mamori", "rules", "list", "--rules", str(folder),
                             "--format", "jsonl"], capture_output=True, text=True, env=env, timeout=120)
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert by_id["aaaaaaaa-0000-4000-8000-000000000001"]["filters"] == ["ffffffff-0000-4000-8000-00000000000f"]
    assert by_id["bbbbbbbb-0000-4000-8000-000000000002"]["filters"] == []
    assert by_id["ffffffff-0000-4000-8000-00000000000f"]["status"] == "filter"
    assert by_id["ffffffff-0000-4000-8000-00000000000f"]["rules"] == ["aaaaaaaa-0000-4000-8000-000000000001"]
    assert by_id["ffffffff-0000-4000-8000-000000000003"]["status"] == "refused"
    assert by_id["ffffffff-0000-4000-8000-000000000003"]["kind"] == "filter_names_no_rule"
    table = subprocess.run([sys.executable, "-m", "mamori", "rules", "list", "--rules", str(folder)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert ("filter Administrators run net user (ffffffff-0000-4000-8000-00000000000f" in table.stdout
            and "applies to 1 rule: Net user from a shell (aaaaaaaa-0000-4000-8000-000000000001)" in table.stdout)
    assert "the filter names no loaded rule: gone" in table.stdout


def whoami_rules(folder: Path, copies: int) -> None:
    """``copies`` whoami rules (ids ...000000000000 up) in two folders, as the hunt shares them out."""
    for number in range(copies):
        place = folder / ("a" if number % 2 else "b")
        place.mkdir(parents=True, exist_ok=True)
        (place / f"rule_{number:04d}.yml").write_text(
            WHOAMI.replace("-000000000001", f"-{number:012d}").replace("(test rule)", f"(variant {number})"))


def hunt(rules: Path, workers: int, cache: Path) -> tuple[list[dict[str, Any]], str]:
    command = [sys.executable, "-m", "mamori", "hunt", str(LOGS), "--rules", str(rules), "--format", "jsonl",
               "--workers", str(workers)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "MAMORI_CACHE_DIR": str(cache)})
    assert run.returncode in (0, 3), run.stderr
    return sorted((json.loads(line) for line in run.stdout.splitlines()),
                  key=lambda d: (d["rule_id"], d["host"])), run.stderr


def test_a_filter_reaches_its_rule_in_another_share_of_a_split_hunt(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    whoami_rules(rules, MIN_RULE_FILES + 20)
    tuned = [f"7d1c0a3e-1111-4a5b-9c2d-{n:012d}" for n in (3, 4)]  # one in each folder
    (rules / "tuning").mkdir()
    (rules / "tuning" / "mf_ws02.yml").write_text(textwrap.dedent(f"""
        title: ws02 is the admins' host
        id: eeeeeeee-0000-4000-8000-000000000001
        logsource: {{product: windows}}
        filter:
            rules: [{tuned[0]}, {tuned[1]}]
            selection:
                Computer: ws02.corp.local
            condition: selection
    """))
    (rules / "tuning" / "mf_unused.yml").write_text(textwrap.dedent("""
        title: names no rule
        id: eeeeeeee-0000-4000-8000-000000000002
        logsource: {product: windows}
        filter:
            rules: [no-such-rule]
            selection:
                Computer: ws02.corp.local
            condition: selection
    """))
    shares = rule_file_shares([rules], 2, tmp_path / "c0")
    assert shares is not None and len(shares) == 2
    assert all(rules / "tuning" / "mf_ws02.yml" in share for share in shares)  # every share has every filter
    assert {p.parent.name for p in shares[0] if p.parent.name != "tuning"} != {
        p.parent.name for p in shares[1] if p.parent.name != "tuning"}
    one, one_summary = hunt(rules, 1, tmp_path / "c1")
    split, split_summary = hunt(rules, 2, tmp_path / "c2")
    assert "matched in one process" in one_summary and "shared out over 2 processes" in split_summary
    assert split == one
    hosts = {rule_id: sorted(d["host"] for d in one if d["rule_id"] == rule_id) for rule_id in {*tuned, WHOAMI_ID}}
    assert hosts == {tuned[0]: ["ws01.corp.local"], tuned[1]: ["ws01.corp.local"],
                     WHOAMI_ID: ["ws01.corp.local", "ws02.corp.local"]}
    for summary in (one_summary, split_summary):  # refused once, however many shares loaded it
        assert summary.count("the filter names no loaded rule: no-such-rule") == 1, summary
        assert "mf_ws02.yml" not in summary


def test_a_file_holding_both_a_filter_and_a_rule_keeps_the_hunt_in_one_process(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    whoami_rules(rules, MIN_RULE_FILES + 2)
    (rules / "a" / "mixed.yml").write_text(textwrap.dedent(RULE_A) + "---\n" + textwrap.dedent(
        filter_doc("[net_user_shell]")))
    assert rule_file_shares([rules], 2, tmp_path / "cache") is None  # (every share would load its rule)
    assert rule_file_shares([rules], 2, tmp_path / "cache") is None  # the same, from the cached scan
    (rules / "a" / "mixed.yml").unlink()
    shares = rule_file_shares([rules], 2, tmp_path / "cache")
    assert shares is not None and sorted(p for s in shares for p in s) == sorted(rules.rglob("*.yml"))


def test_split_hunts_refuse_a_filter_once_and_only_when_no_share_used_it() -> None:
    from mamori.detect.sigma.model import Refusal, RefusalKind
    from mamori.hunt_shares import ShareOutcome, merge_rules

    unused_here = Refusal("mf.yml", "the filter names no loaded rule: r9; name loaded rules by id or name", "f1",
                          kind=RefusalKind.FILTER_NAMES_NO_RULE)
    unused_everywhere = Refusal("mf2.yml", "the filter names no loaded rule: gone; name ...", "f2",
                                kind=RefusalKind.FILTER_NAMES_NO_RULE)
    broken = Refusal("mf3.yml", "filter.condition: unknown name", "f3")
    first = ShareOutcome([], [("r1", "a/r1.yml")], 0, [unused_here, unused_everywhere, broken], [])
    second = ShareOutcome([], [("r9", "b/r9.yml")], 0, [unused_everywhere, broken], [])
    _, refused, _ = merge_rules([first, second])
    assert sorted(r.path for r in refused) == ["mf2.yml", "mf3.yml"]
