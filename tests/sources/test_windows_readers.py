"""Windows event readers: EVTX through the evtx package, JSON in every common shape, bad input kept
apart with a clear problem naming the file and where."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from mamori_testing import shared_data

from mamori.sources.evtx import read_evtx
from mamori.sources.registry import sniff_source
from mamori.sources.winjson import read_winjson

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "windows"


def _read(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames, how="diagonal_relaxed")


def test_flat_json_lines_keep_fields_raw_and_utc_time() -> None:
    results = list(read_winjson(FIXTURES / "sysmon_flat.jsonl"))
    frame = _read([r.frame for r in results])
    assert frame.height == 3
    assert frame.get_column("EventID").to_list() == ["1", "1", "4688"]
    assert frame.get_column("_host").to_list() == ["ws01.corp.local", "ws01.corp.local", "ws02.corp.local"]
    assert str(frame.get_column("_time")[0]) == "2024-05-01 09:00:00.123456+00:00"
    assert "議事録" in frame.get_column("CommandLine")[1]
    assert all('"EventID"' in raw for raw in frame.get_column("_raw").to_list())
    assert frame.get_column("_uid").n_unique() == 3


def test_broken_json_lines_are_reported_with_file_and_line() -> None:
    problems = [p for r in read_winjson(FIXTURES / "sysmon_flat.jsonl") for p in r.problems]
    wheres = sorted(p.where.rsplit(":", 1)[1] for p in problems)
    assert wheres == ["4", "5"]
    assert any("not valid JSON" in p.reason for p in problems)
    assert any("not a Windows event" in p.reason for p in problems)


def test_winlogbeat_documents_map_to_sigma_field_names() -> None:
    frame = _read([r.frame for r in read_winjson(FIXTURES / "winlogbeat.json")])
    first = frame.row(0, named=True)
    assert first["Channel"] == "Security"
    assert first["EventID"] == "4625"
    assert first["Computer"] == "dc1.corp.local"
    assert first["TargetUserName"] == "administrator"
    assert first["EventRecordID"] == "5511"
    assert frame.row(1, named=True)["DestinationPort"] == "4444"


def test_sniffing_picks_the_windows_readers() -> None:
    spec = sniff_source(FIXTURES / "winlogbeat.json")
    assert spec is not None and spec.name == "winjson"


def test_evtx_reader_flattens_system_and_event_data() -> None:
    path = shared_data("evtx-attack-samples", "UACME_59_Sysmon.evtx")
    frame = _read([r.frame for r in read_evtx(path)])
    assert frame.height > 0
    row = frame.row(0, named=True)
    assert row["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert row["EventID"] == "10"
    assert row["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert row["Computer"] == "LAPTOP-JU4M3I0E"
    assert row["TargetImage"] == "C:\\Windows\\System32\\cmd.exe"
    assert row["_source"] == "evtx" and row["_offset"] > 0


def test_truncated_evtx_yields_what_is_readable_and_names_the_offset(tmp_path: Path) -> None:
    source = shared_data("evtx-attack-samples", "AutomatedTestingTools", "PanacheSysmon_vs_AtomicRedTeam01.evtx")
    whole = sum(r.frame.height for r in read_evtx(source))
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(source.read_bytes()[:300_000])
    results = list(read_evtx(cut))
    read = sum(r.frame.height for r in results)
    problems = [p for r in results for p in r.problems]
    assert 0 < read < whole
    assert problems and problems[0].where == str(cut)
    assert "truncated at byte offset 300000" in problems[0].reason


def test_corrupted_evtx_chunk_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    source = shared_data("evtx-attack-samples", "AutomatedTestingTools", "PanacheSysmon_vs_AtomicRedTeam01.evtx")
    data = bytearray(source.read_bytes())
    for offset in range(200_000, 260_000, 7):
        data[offset] ^= 0x5A
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(bytes(data))
    results = list(read_evtx(bad))
    problems = [p for r in results for p in r.problems]
    assert sum(r.frame.height for r in results) > 0
    assert problems and problems[0].where.startswith(f"{bad}@record ")


def test_not_an_evtx_file_is_one_fatal_problem(tmp_path: Path) -> None:
    bad = tmp_path / "x.evtx"
    bad.write_bytes(b"ElfFile\x00" + b"\x00" * 20)
    results = list(read_evtx(bad))
    assert sum(r.frame.height for r in results) == 0
    assert [p.fatal for r in results for p in r.problems] == [True]
