"""``mamori hunt`` and ``mamori rules`` as a user runs them: outputs, filters, refusals, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RULES = FIXTURES / "rules"
LOGS = FIXTURES / "windows"
JSONL_CONTRACT = {"rule_id", "rule_title", "rule_level", "rule_author", "tags", "time", "host", "channel",
                  "event_id", "record_id", "source_file", "fields"}


def mamori(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mamori", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_jsonl_output_keeps_the_contract_and_both_process_creation_sources() -> None:
    run = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "--workers", "1")
    assert run.returncode == 0, run.stderr
    detections = [json.loads(line) for line in run.stdout.splitlines()]
    whoami = [d for d in detections if d["rule_title"].startswith("Whoami")]
    assert {d["host"] for d in whoami} == {"ws01.corp.local", "ws02.corp.local"}  # Sysmon 1 and Security 4688
    for detection in detections:
        assert detection.keys() >= JSONL_CONTRACT
        assert detection["rule_author"] == "Mamori tests"
        assert detection["time"].endswith("Z")
    sysmon = next(d for d in whoami if d["host"] == "ws01.corp.local")
    assert sysmon["fields"]["CommandLine"] == "whoami /priv"
    assert sysmon["record_id"] == "101"
    assert "selection_cli" in sysmon["match"]
    failed = [d for d in detections if d["rule_title"].startswith("Failed")]
    assert [d["fields"] for d in failed] == [{"EventID": "4625", "LogonType": "3"}]


def test_refused_rule_is_named_with_its_reason_while_the_others_run() -> None:
    run = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "--workers", "1")
    assert "broken.yml" in run.stderr and "unknown modifier nosuchmodifier" in run.stderr
    assert run.stdout.strip()


def test_filters_by_level_rule_tag_and_time(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    run = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "csv", "--output", str(out),
                 "--min-level", "medium", "-q", "--workers", "1")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["rule_level"] for r in rows} == {"medium"} and len(rows) == 2
    by_tag = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "--tag", "attack.credential_access")
    assert {json.loads(x)["rule_level"] for x in by_tag.stdout.splitlines()} == {"low"}
    late = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "--since", "2024-05-01T09:00:30Z")
    assert {json.loads(x)["host"] for x in late.stdout.splitlines()} == {"ws02.corp.local", "dc1.corp.local"}


def test_a_rule_id_or_tag_no_loaded_rule_has_is_named_in_a_warning() -> None:
    run = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "-q", "--rule", "no-such-rule",
                 "--tag", "attack.credential_access", "--tag", "attack.t9999")
    assert run.returncode == 0, run.stderr
    assert "warning: no loaded rule has rule no-such-rule, tag attack.t9999" in run.stderr
    assert run.stdout == ""
    known = mamori("hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl", "-q", "--tag", "attack.discovery")
    assert "warning" not in known.stderr and known.stdout


ADMIN_WHOAMI = """
title: Whoami On An Admin Workstation
id: 0c1a0000-0000-4000-8000-00000000e001
status: test
level: high
author: Mamori tests
logsource: {product: windows, category: process_creation}
detection:
    selection:
        CommandLine|contains: whoami
        Computer|expand: '%Admin_Workstations%'
    condition: selection
"""


def test_placeholders_file_gives_expand_rules_their_values(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "admin_whoami.yml").write_text(ADMIN_WHOAMI)
    values = tmp_path / "placeholders.yml"
    values.write_text("Admin_Workstations: [ws01.corp.local, adm-ws99]\n")
    run = mamori("hunt", str(LOGS), "--rules", str(rules), "--format", "jsonl", "-q", "--placeholders", str(values))
    assert [json.loads(line)["host"] for line in run.stdout.splitlines()] == ["ws01.corp.local"]
    without = mamori("hunt", str(LOGS), "--rules", str(rules), "--format", "jsonl")
    assert "placeholder %Admin_Workstations% has no values" in without.stderr and without.stdout == ""


KEYWORD_RULE = """
title: Whoami Anywhere In The Record
id: 0c1a0000-0000-4000-8000-00000000e004
status: test
level: low
author: Mamori tests
logsource: {product: windows}
detection:
    keywords:
        - 'WHOAMI /PRIV'
        - 'no-such-text'
    condition: keywords
"""


def test_a_keyword_detection_names_the_keywords_it_found(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "keyword.yml").write_text(KEYWORD_RULE)
    run = mamori("hunt", str(LOGS), "--rules", str(rules), "--format", "jsonl", "-q")
    detections = [json.loads(line) for line in run.stdout.splitlines()]
    assert detections and all(d["keywords"] == ["WHOAMI /PRIV"] for d in detections)
    assert all(d["match"] == "keywords matched: keyword 'WHOAMI /PRIV'" for d in detections)


def test_summary_names_levels_tactics_hosts_and_speed() -> None:
    run = mamori("hunt", str(LOGS), "--rules", str(RULES), "--workers", "1")
    assert run.returncode == 0
    for text in ("By level", "By ATT&CK tactic", "Discovery (TA0007)", "By host", "events/s", "Files read"):
        assert text in run.stderr


def test_unreadable_input_sets_exit_code_3_and_names_the_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.jsonl").write_bytes((LOGS / "sysmon_flat.jsonl").read_bytes())
    (logs / "cut.evtx").write_bytes(b"ElfFile\x00" + b"\x00" * 30)
    run = mamori("hunt", str(logs), "--rules", str(RULES), "--format", "jsonl", "--workers", "1")
    assert run.returncode == 3
    assert "cut.evtx" in run.stderr and "not a readable EVTX file" in run.stderr
    assert run.stdout.strip()  # what was readable was still hunted


def test_bad_records_go_to_the_quarantine_file_with_line_and_reason(tmp_path: Path) -> None:
    quarantine = tmp_path / "q.jsonl"
    run = mamori("hunt", str(LOGS / "sysmon_flat.jsonl"), "--rules", str(RULES), "-q", "--quarantine", str(quarantine))
    assert run.returncode == 0
    records = [json.loads(x) for x in quarantine.read_text().splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in records] == [(4, "not valid JSON"),
                                                                         (5, "JSON value is not a Windows event")]


def test_missing_input_is_a_clear_error() -> None:
    run = mamori("hunt", "/nonexistent/logs", "--rules", str(RULES))
    assert run.returncode == 2
    assert "no such file or folder" in run.stderr and "Traceback" not in run.stderr


def test_rules_update_from_a_folder_then_hunt_uses_the_store(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "MAMORI_HOME": str(tmp_path / "home")}
    update = mamori("rules", "update", "--from", str(RULES), env=env)
    assert update.returncode == 0 and "3 rule files" in update.stdout
    listed = mamori("rules", "list", env=env)
    assert "2 rules and 0 correlations loaded, 1 refused" in listed.stdout
    assert "broken.yml" in listed.stdout
    run = mamori("hunt", str(LOGS), "--format", "jsonl", env=env)
    assert len(run.stdout.splitlines()) == 3


def test_hunt_store_runs_rules_over_the_service_lake(tmp_path: Path) -> None:
    from mamori.sources.winjson import read_winjson
    from mamori.store.lake import Lake

    frame = next(iter(read_winjson(LOGS / "sysmon_flat.jsonl"))).frame
    Lake(tmp_path / "data" / "lake").write(frame, 0, frame.height)
    run = mamori("hunt", "--store", str(tmp_path / "data"), "--rules", str(RULES), "--format", "jsonl")
    assert run.returncode == 0, run.stderr
    hits = [json.loads(line) for line in run.stdout.splitlines()]
    assert {h["host"] for h in hits} == {"ws01.corp.local", "ws02.corp.local"}
    assert "2 detections in the stored events" in run.stderr


def test_a_hunt_called_inside_another_program_returns_to_it() -> None:
    from click.testing import CliRunner

    from mamori.cli import main

    result = CliRunner().invoke(main, ["hunt", str(LOGS), "--rules", str(RULES), "--format", "jsonl",
                                       "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert any(json.loads(line)["rule_title"].startswith("Whoami") for line in result.stdout.splitlines())
