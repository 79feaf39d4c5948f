"""Rules matched in the parser process: the same detections (rows, explanations, correlations) as
matched in the service, rules switched off meanwhile stay off, a parser process that cannot load the
very rule set the service runs leaves the matching to the service, and parser processes warmed at the
start have the rules before the first batch."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from mamori.collect.spool import Entry, Spool
from mamori.service.detection import Detection, load_stage
from mamori.service.match_ahead import MatchSpec, match_batch
from mamori.service.readahead import ReadAhead, parse_for_transfer
from mamori.sources.base import ReadOptions

WHOAMI = "7f6b0a4e-1d2c-4b8a-9e55-0a1b2c3d4e5f"
NET_USER = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"


def _rule(title: str, rule_id: str, selection: str, level: str) -> str:
    return (f"title: {title}\nid: {rule_id}\nstatus: test\n"
            "logsource: {product: windows, category: process_creation}\n"
            f"detection:\n  selection:\n{selection}  condition: selection\nlevel: {level}\n")


RULE = _rule("Whoami run", WHOAMI, "    Image|endswith: '\\\\whoami.exe'\n    CommandLine|contains: '/all'\n", "high")
OTHER = _rule("Net user run", NET_USER, "    CommandLine|contains: 'net user'\n", "medium")


def _event(n: int, command: str, image: str) -> dict[str, object]:
    return {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "pc1.example.jp",
            "Provider_Name": "Microsoft-Windows-Sysmon", "Image": image, "CommandLine": command,
            "User": "CORP\\田中", "EventRecordID": n, "EventTime": "2026-11-29 10:00:00"}


def _entries() -> list[Entry]:
    lines = []
    for n in range(60):
        if n % 4 == 0:
            event = _event(n, "whoami /all", "C:\\Windows\\System32\\whoami.exe")
        elif n % 4 == 1:
            event = _event(n, "net user admin", "C:\\Windows\\System32\\net.exe")
        else:
            event = _event(n, "notepad.exe notes.txt", "C:\\Windows\\System32\\notepad.exe")
        lines.append(f"<14>1 2026-11-29T10:00:00Z pc1 nxlog - - - {orjson.dumps(event).decode()}")
    return [Entry("syslog", "tcp:127.0.0.1:1", tuple(lines), time.time_ns(), None, 0)]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "whoami.yml").write_text(RULE, encoding="utf-8")
    (folder / "net_user.yml").write_text(OTHER, encoding="utf-8")
    return folder


def _shown(detections: list[Detection]) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    return sorted((d.rule_id, d.rows, d.explain()) for d in detections)


def test_hits_found_in_the_parser_process_give_the_same_detections(rules: Path) -> None:
    stage = load_stage([rules])
    spec = stage.match_spec()
    assert spec is not None
    parsed = parse_for_transfer(_entries(), ReadOptions(), spec).parsed()
    assert parsed.hits is not None and parsed.hits.hits.height == 30
    ahead = stage.detect(parsed.frame, parsed.hits)
    here = load_stage([rules]).detect(parsed.frame)
    assert _shown(ahead) == _shown(here)
    assert {d.rule_id for d in ahead} == {WHOAMI, NET_USER}
    assert "whoami" in " ".join(next(d for d in ahead if d.level == "high").explain()).lower()
    assert set(stage.timings()) == {d.rule_id for d in ahead}  # the parser process's rule seconds count


def test_a_rule_switched_off_after_the_batch_was_matched_stays_off(rules: Path) -> None:
    stage = load_stage([rules])
    spec = stage.match_spec()
    assert spec is not None
    parsed = parse_for_transfer(_entries(), ReadOptions(), spec).parsed()
    stage.set_enabled(NET_USER, False)
    assert [d.rule_id for d in stage.detect(parsed.frame, parsed.hits)] == [WHOAMI]
    now = stage.match_spec()
    assert now is not None and now.disabled == frozenset({NET_USER})  # the next batches are matched without it


def test_a_parser_process_with_other_rules_on_disk_matches_nothing(rules: Path) -> None:
    stage = load_stage([rules])
    spec = stage.match_spec()
    assert spec is not None
    changed = MatchSpec(spec.paths, "not-the-digest-the-service-loaded", spec.disabled)
    parsed = parse_for_transfer(_entries(), ReadOptions(), changed).parsed()
    assert parsed.hits is None
    assert match_batch(parsed.frame, changed) is None
    assert len(stage.detect(parsed.frame, parsed.hits)) == 2  # the service matched it itself


def test_a_stage_not_loaded_from_paths_is_not_matched_ahead() -> None:
    assert load_stage([]).match_spec() is None


def test_warming_starts_the_parser_processes_with_the_rules_loaded_before_the_first_batch(
        rules: Path, tmp_path: Path) -> None:
    stage = load_stage([rules])
    spool = Spool(tmp_path / "spool")
    source = ReadAhead(spool, rows=1000, seconds=0.2, options=ReadOptions(), parse_processes=2,
                       match_spec=stage.match_spec)
    try:
        assert [f.result(timeout=120) for f in source.warm()] == [True, True]
        for entry in _entries():
            spool.append_wait(entry)
        batch = source.take(0)
        assert batch is not None and batch.parsed.hits is not None and batch.parsed.hits.hits.height == 30
    finally:
        source.close()
        spool.close()
    inline = ReadAhead(spool, rows=10, seconds=0.1, options=ReadOptions(), parse_processes=0)
    assert inline.warm() == []  # parsing on the reader thread: nothing to start
