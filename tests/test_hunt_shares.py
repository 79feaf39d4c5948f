"""``mamori hunt`` with the rules split over processes finds exactly what one process finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mamori.hunt_shares import MIN_RULE_FILES, FileTickets, ShareOutcome, merge_rules, rule_file_shares

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LOGS = FIXTURES / "windows"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIGMAHQ_WINDOWS = DATA / "sigmahq" / "rules" / "windows"
ATTACK_SAMPLES = DATA / "evtx-attack-samples"

WHOAMI = (FIXTURES / "rules" / "proc_whoami.yml").read_text()
LOGON = (FIXTURES / "rules" / "logon_failed.yml").read_text()


def hunt(*args: str, workers: int, cache: Path) -> tuple[list[str], str]:
    """JSONL detections (sorted lines) and the terminal summary of one `mamori hunt` run."""
    command = [sys.executable, "-m", "mamori", "hunt", *args, "--format", "jsonl", "--workers", str(workers)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "MAMORI_CACHE_DIR": str(cache)})
    assert run.returncode in (0, 3), run.stderr
    return sorted(run.stdout.splitlines()), run.stderr


def many_rules(folder: Path, copies: int) -> Path:
    """``copies`` variants of the fixture rules over three folders (one log source each, like SigmaHQ)."""
    for number in range(copies):
        kind, text = ("process_creation", WHOAMI) if number % 3 else ("security", LOGON)
        place = folder / kind / ("more" if number % 5 == 0 else "")
        place.mkdir(parents=True, exist_ok=True)
        body = text.replace("-000000000001", f"-{number:012d}").replace("-000000000002", f"-{number:012d}")
        (place / f"rule_{number:04d}.yml").write_text(body.replace("(test rule)", f"(variant {number})"))
    return folder


def test_rules_are_shared_out_by_folder_with_similar_sizes(tmp_path: Path) -> None:
    many_rules(tmp_path, MIN_RULE_FILES + 30)
    shares = rule_file_shares([tmp_path], 2)
    assert shares is not None and len(shares) == 2
    assert sorted(p for share in shares for p in share) == sorted(tmp_path.rglob("*.yml"))
    folders_per_share = [{p.parent for p in share} for share in shares]
    whole = [f for f in {p.parent for share in shares for p in share}
             if sum(f in fs for fs in folders_per_share) == 1]
    assert whole, "folders that fit in a share stay whole"
    sizes = [sum(p.stat().st_size for p in share) for share in shares]
    assert max(sizes) <= 1.5 * min(sizes)


def test_few_rules_or_a_zip_are_not_split(tmp_path: Path) -> None:
    many_rules(tmp_path / "few", 20)
    assert rule_file_shares([tmp_path / "few"], 2) is None
    many_rules(tmp_path / "many", MIN_RULE_FILES + 1)
    with zipfile.ZipFile(tmp_path / "rules.zip", "w") as archive:
        archive.writestr("a.yml", WHOAMI)
    assert rule_file_shares([tmp_path / "many", tmp_path / "rules.zip"], 2) is None
    assert rule_file_shares([tmp_path / "many"], 1) is None


def test_files_are_handed_out_once_each_largest_first_to_whichever_process_asks(tmp_path: Path) -> None:
    files = []
    for number in range(60):
        path = tmp_path / f"log{number:02d}.evtx"
        path.write_bytes(b"x" * (number * 10 + 1))
        files.append(("evtx", path))
    tickets = FileTickets.filled(files)
    assert tickets is not None
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # a second process takes files from the same tickets
        taken = "\n".join(str(path) for _, path in tickets)
        os.write(writer, taken.encode())
        os._exit(0)
    os.close(writer)
    ours = [str(path) for _, path in tickets]
    os.waitpid(child, 0)
    with os.fdopen(reader) as pipe:
        theirs = [line for line in pipe.read().splitlines() if line]
    tickets.close()
    assert sorted(ours + theirs) == sorted(str(path) for _, path in files)
    assert ours == sorted(ours, key=lambda p: -Path(p).stat().st_size)
    assert list(FileTickets.filled([]) or []) == []


def test_an_id_loaded_in_two_shares_is_refused_once_and_its_second_copy_finds_nothing() -> None:
    first = ShareOutcome([{"rule_id": "r1", "rule_path": "b/x.yml"}], [("r1", "b/x.yml"), ("r2", "b/y.yml")], 0, [],
                         [])
    second = ShareOutcome([{"rule_id": "r1", "rule_path": "a/x.yml"}], [("r1", "a/x.yml")], 0, [], [])
    loaded, refused, dropped = merge_rules([first, second])
    assert loaded == 2
    assert [(r.path, r.reason) for r in refused] == [("b/x.yml", "duplicate rule id r1 (first in a/x.yml)")]
    assert dropped == {("r1", "b/x.yml")}


def test_split_hunt_gives_the_same_detections_refusals_and_counts_as_one_process(tmp_path: Path) -> None:
    rules = many_rules(tmp_path / "rules", MIN_RULE_FILES + 50)
    (rules / "security" / "broken.yml").write_text((FIXTURES / "rules" / "broken.yml").read_text())
    twin = (rules / "process_creation" / "rule_0001.yml").read_text()
    (rules / "security" / "twin.yml").write_text(twin)  # the same id in another folder, likely another share
    one, one_summary = hunt(str(LOGS), "--rules", str(rules), workers=1, cache=tmp_path / "c1")
    split, split_summary = hunt(str(LOGS), "--rules", str(rules), workers=2, cache=tmp_path / "c2")
    assert one and split == one
    assert "matched in one process" in one_summary and "shared out over 2 processes" in split_summary
    for summary in (one_summary, split_summary):
        assert f"{MIN_RULE_FILES + 50:,} rules" in summary
        assert "broken.yml" in summary and "nosuchmodifier" in summary
        assert "duplicate rule id 7d1c0a3e-1111-4a5b-9c2d-000000000001" in summary
    warm, _ = hunt(str(LOGS), "--rules", str(rules), workers=2, cache=tmp_path / "c2")  # from the shares' caches
    assert warm == one


def test_a_correlation_rule_makes_the_hunt_run_in_one_process_and_still_fire(tmp_path: Path) -> None:
    rules = many_rules(tmp_path / "rules", MIN_RULE_FILES + 10)
    (rules / "security" / "correlation.yml").write_text(
        "title: Whoami twice on a host (test correlation)\nid: 5e0c0000-0000-4000-8000-000000000001\n"
        "author: Mamori tests\nlevel: high\ncorrelation:\n  type: event_count\n"
        "  rules: [7d1c0a3e-1111-4a5b-9c2d-000000000001]\n  group-by: [Computer]\n  timespan: 1d\n"
        "  condition: {gte: 1}\n")
    split, summary = hunt(str(LOGS), "--rules", str(rules), workers=2, cache=tmp_path / "c")
    fired = [json.loads(line) for line in split if "test correlation" in line]
    assert fired and all(d["source"] == "correlation" for d in fired)
    assert "1 correlations" in summary and "matched in one process" in summary


@pytest.mark.skipif(not (SIGMAHQ_WINDOWS.is_dir() and ATTACK_SAMPLES.is_dir()),
                    reason="needs ../shared/data (SigmaHQ rules and evtx-attack-samples)")
def test_split_hunt_of_the_attack_samples_with_sigmahq_matches_one_process(tmp_path: Path) -> None:
    one, _ = hunt(str(ATTACK_SAMPLES), "--rules", str(SIGMAHQ_WINDOWS), workers=1, cache=tmp_path / "c1")
    split, split_summary = hunt(str(ATTACK_SAMPLES), "--rules", str(SIGMAHQ_WINDOWS), workers=2,
                                cache=tmp_path / "c2")
    assert len(one) > 1000
    assert split == one
    assert "shared out over 2 processes" in split_summary
