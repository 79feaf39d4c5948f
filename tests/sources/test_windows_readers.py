"""Windows event readers: EVTX through the evtx package, JSON in every common shape, bad input kept
apart with a clear problem naming the file and where."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
from evtx import PyEvtxParser
from mamori_testing import shared_data
from polars.testing import assert_frame_equal

from mamori.sources.base import ReadOptions
from mamori.sources.evtx import read_evtx, read_evtx_files
from mamori.sources.registry import get_source, sniff_source
from mamori.sources.winjson import read_winjson, records_to_frame

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


def test_not_an_evtx_file_is_one_fatal_problem(tmp_path: Path) -> None:
    bad = tmp_path / "x.evtx"
    bad.write_bytes(b"ElfFile\x00" + b"\x00" * 20)
    results = list(read_evtx(bad))
    assert sum(r.frame.height for r in results) == 0
    assert [p.fatal for r in results for p in r.problems] == [True]


def test_winjson_offset_is_the_line_an_event_starts_on_and_raw_its_text_as_written(tmp_path: Path) -> None:
    first = '{"EventID": 1, "Channel": "Security",  "Computer": "a"}'
    pretty = '{\n  "EventID": 2,\n  "Channel": "Security",\n  "Computer": "b"\n}'
    third = '{"EventID": 3, "Channel": "Security", "Computer": "c"}'
    fourth = '{"EventID": 4, "Channel": "Security", "Computer": "d"}'
    path = tmp_path / "events.jsonl"
    path.write_text(f"{first}\n\n{pretty}\n{third} {fourth}\n", encoding="utf-8")
    frame = _read([r.frame for r in read_winjson(path)])
    assert frame.get_column("EventID").to_list() == ["1", "2", "3", "4"]
    assert frame.get_column("_offset").to_list() == [1, 3, 8, 9]  # two events on line 8: the second takes 9
    assert frame.get_column("_raw").to_list() == [first, pretty, third, fourth]
    assert frame.get_column("_uid").n_unique() == 4


def test_winjson_lines_file_raw_is_found_at_its_offset() -> None:
    path = FIXTURES / "sysmon_flat.jsonl"
    lines = path.read_text("utf-8").splitlines()
    frame = _read([r.frame for r in read_winjson(path)])
    assert frame.get_column("_offset").to_list() == [1, 2, 3]
    assert all(raw == lines[offset - 1] for raw, offset in frame.select("_raw", "_offset").iter_rows())


def test_winjson_array_items_take_distinct_offsets_from_one() -> None:
    frame = _read([r.frame for r in read_winjson(FIXTURES / "winlogbeat.json")])
    assert frame.get_column("_offset").to_list() == [1, 2]
    assert [json.loads(raw)["winlog"]["event_id"] for raw in frame.get_column("_raw")] == [4625, 3]


def test_same_events_look_the_same_read_from_evtx_or_as_json(tmp_path: Path) -> None:
    """EVTX files, their records as JSON lines (the evtx rendering) read from a file, and the same
    records handed over decoded (network ingest) give the same fields, OCSF fields, time, host and
    raw text."""
    files = sorted(shared_data("evtx-attack-samples", "Credential Access").rglob("*.evtx"))
    texts = [str(r["data"]) for f in files for r in PyEvtxParser(str(f)).records_json() if r is not None]
    lines = tmp_path / "records.jsonl"
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    from_evtx = _read([r.frame for r in read_evtx_files(files, ocsf=True)])
    from_file = _read([r.frame for r in read_winjson(lines)])
    from_ingest = records_to_frame([orjson.loads(t) for t in texts], "http:winlogbeat:k", raws=texts)
    assert from_evtx.height == len(texts) > 700
    assert from_evtx.get_column("EventID").null_count() == 0 and "TargetUserName" in from_evtx.columns
    ids = ["_source", "_uid", "_origin", "_offset"]
    assert_frame_equal(from_evtx.drop(ids), from_file.drop(ids))
    assert_frame_equal(from_evtx.drop(ids), from_ingest.drop(ids))
    assert from_file.get_column("_offset").to_list() == list(range(1, len(texts) + 1))
    classes = set(from_evtx.get_column("class_uid").unique())
    assert {"3002", "1007", "4001", "1008"} <= classes  # logons, processes, connections, log clearing
    for name in ("type_uid", "status", "user.name", "src_endpoint.ip", "process.file.path", "metadata.event_code"):
        assert from_evtx.get_column(name).null_count() < from_evtx.height, name


def test_the_registered_evtx_reader_adds_the_ocsf_fields_and_the_bulk_reader_only_on_request() -> None:
    """`mamori hunt` reads EVTX in bulk and its rules need the original fields only; readers that keep
    events (the registered reader, JSON files, network ingest) add the OCSF fields."""
    path = shared_data("evtx-attack-samples", "UACME_59_Sysmon.evtx")
    plain = _read([r.frame for r in read_evtx_files([path])])
    registered = _read([r.frame for r in get_source("evtx").read(path, ReadOptions())])
    assert "class_uid" not in plain.columns
    assert registered.drop([c for c in registered.columns if c not in plain.columns]).equals(plain)
    assert registered.get_column("class_uid").null_count() == 0
    sysmon = registered.filter(pl.col("Channel") == "Microsoft-Windows-Sysmon/Operational")
    assert sysmon.height and (sysmon.get_column("class_uid") != "0").all()
    assert "class_uid" in _read([r.frame for r in read_winjson(FIXTURES / "winlogbeat.json")]).columns
    assert "class_uid" not in records_to_frame([{"EventID": 1, "Channel": "Security"}], "x", ocsf=False).columns


def test_nxlog_names_become_the_common_ones_unless_the_event_holds_those_already() -> None:
    nxlog = {"EventID": 4688, "Hostname": "WS01", "SourceName": "Microsoft-Windows-Security-Auditing",
             "ProcessID": 4, "Channel": "Security"}
    # a flat export of an EVTX record: 5156's own ProcessID beside the system one
    exported = {"EventID": "5156", "Channel": "Security", "Computer": "WS02", "Execution_ProcessID": "4",
                "ProcessID": "984", "Application": "\\device\\harddiskvolume2\\windows\\system32\\svchost.exe"}
    frame = records_to_frame([nxlog, exported], "test", ocsf=False)
    assert frame.get_column("Computer").to_list() == ["WS01", "WS02"]
    assert frame.get_column("Provider_Name").to_list() == ["Microsoft-Windows-Security-Auditing", None]
    assert frame.get_column("Execution_ProcessID").to_list() == ["4", "4"]
    assert frame.get_column("ProcessID").to_list() == [None, "984"]
