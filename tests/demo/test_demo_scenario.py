"""The demo scenario: deterministic for a seed and start, real Winlogbeat documents Mamori reads back whole,
every attack stage present, the background spread over the company's hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from mamori.demo.scenario import BACKGROUND, STAGES, document_lines, generate, write_logs
from mamori.sources.windows_event import flatten_any, looks_like_windows_event
from mamori.sources.winjson import read_winjson, sniff_winjson

START = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)


def test_same_seed_and_start_give_the_same_bytes() -> None:
    first = document_lines(generate(7, START).events)
    second = document_lines(generate(7, START).events)
    assert first == second
    assert document_lines(generate(8, START).events) != first


def test_every_attack_stage_happens_in_order_within_the_window() -> None:
    scenario = generate(start=START)
    counts = scenario.stage_counts()
    assert set(STAGES) <= set(counts)
    assert counts[BACKGROUND] > 2000
    first_seen: dict[str, datetime] = {}
    for event in scenario.events:
        assert START <= event.time <= START + timedelta(hours=3, minutes=1)
        first_seen.setdefault(event.stage, event.time)
    assert [s for s in sorted(STAGES, key=first_seen.__getitem__)] == list(STAGES)
    assert scenario.attack_hosts == {"WS-SATO01", "FS01", "DC01"}
    background_hosts = {e.host for e in scenario.events if not e.is_attack}
    assert len(background_hosts) == 20


def test_documents_are_windows_events_with_the_fields_sigma_addresses() -> None:
    scenario = generate(start=START)
    seen_ids: set[tuple[str, str]] = set()
    for event in scenario.events:
        assert looks_like_windows_event(event.document)
        flat, time_text = flatten_any(event.document)
        assert time_text is not None and time_text.endswith("Z")
        assert flat["Computer"] == event.document["host"]["name"]
        assert str(flat["Computer"]).split(".")[0] == event.host
        seen_ids.add((str(flat["Channel"]), str(flat["EventID"])))
        if flat["Channel"] == "Microsoft-Windows-Sysmon/Operational" and flat["EventID"] == "1":
            for name in ("Image", "CommandLine", "ParentImage", "User", "ProcessGuid", "ParentProcessGuid",
                         "IntegrityLevel", "Hashes", "OriginalFileName"):
                assert flat.get(name), (name, flat)
    sysmon = "Microsoft-Windows-Sysmon/Operational"
    for expected in ((sysmon, "1"), (sysmon, "3"), (sysmon, "10"), (sysmon, "11"), (sysmon, "13"), (sysmon, "17"),
                     (sysmon, "22"), ("Security", "4624"), ("Security", "4672"), ("Security", "4698"),
                     ("Security", "4768"), ("Security", "4769"), ("Security", "4776"), ("Security", "5140"),
                     ("Security", "5145"), ("System", "7045"),
                     ("Microsoft-Windows-PowerShell/Operational", "4104")):
        assert expected in seen_ids, expected


def test_the_written_logs_are_read_back_whole_by_the_winjson_reader(tmp_path: Path) -> None:
    scenario = generate(start=START)
    path = write_logs(scenario, tmp_path)
    assert sniff_winjson(path.read_bytes()[:4096], path.name)
    results = list(read_winjson(path))
    assert sum(len(r.problems) for r in results) == 0
    assert sum(r.frame.height for r in results) == len(scenario.events)
    first = orjson.loads(path.read_bytes().split(b"\n", 1)[0])
    assert first == scenario.events[0].document


def test_the_intrusion_uses_the_techniques_the_story_tells() -> None:
    lines = [orjson.dumps(e.document).decode() for e in generate(start=START).events if e.is_attack]
    text = "\n".join(lines)
    for marker in ("WINWORD.EXE", "-enc ", "comsvcs.dll, MiniDump", "lsass.exe", "PsExec64.exe", "PSEXESVC",
                   "7z.exe\\\" a -t7z -mhe=on -p", "rclone.exe copy", "mega.co.nz", "fodhelper.exe",
                   "CurrentVersion\\\\Run\\\\OneDriveSync"):
        assert marker in text, marker
