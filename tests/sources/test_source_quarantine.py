"""Bar 3: malformed records never stop a read; they are counted and kept in a quarantine file with
the reason and the line number."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mamori.sources.base import ReadOptions, ReadProblem
from mamori.sources.quarantine import QuarantineCount, read_quarantine, split_where, write_quarantine
from mamori.sources.registry import all_sources


def _read(source: str, path: Path, **options: object) -> tuple[pl.DataFrame, list[ReadProblem]]:
    results = list(all_sources()[source].read(path, ReadOptions(**options)))  # type: ignore[arg-type]
    frames = [r.frame for r in results if r.frame.height]
    return pl.concat(frames, how="diagonal_relaxed"), [p for r in results for p in r.problems]


def test_bad_lines_between_good_ones_are_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    log = tmp_path / "cef.log"
    log.write_text("CEF:0|V|P|1|1|a|1|src=1.1.1.1\nnot cef at all\n\nCEF:0|V|P|1|2|b|1|src=2.2.2.2\ngarbage\n",
                   encoding="utf-8")
    frame, problems = _read("cef", log)
    assert frame["src"].to_list() == ["1.1.1.1", "2.2.2.2"]
    assert frame["_offset"].to_list() == [1, 4]
    assert [p.where for p in problems] == [f"{log}:2", f"{log}:5"]
    target = tmp_path / "q" / "quarantine.jsonl"
    count = QuarantineCount()
    assert write_quarantine(problems, target, count) == 2
    records = read_quarantine(target)
    assert [(r["path"], r["line"], r["raw"]) for r in records] == [(str(log), 2, "not cef at all"),
                                                                  (str(log), 5, "garbage")]
    assert all("CEF header" in str(r["reason"]) for r in records)
    assert count.total == 2


def test_quarantine_appends_across_reads(tmp_path: Path) -> None:
    target = tmp_path / "quarantine.jsonl"
    write_quarantine([ReadProblem("a.log:1", "bad", "x")], target)
    write_quarantine([ReadProblem("b.log@77", "worse", "y")], target)
    assert [(r["path"], r["line"]) for r in read_quarantine(target)] == [("a.log", 1), ("b.log", 77)]


def test_invalid_json_lines_do_not_stop_a_json_read(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text('{"event_type":"flow","timestamp":"2024-01-01T00:00:00Z"}\n{"event_type": \n[1,2]\n'
                   '{"event_type":"dns","timestamp":"2024-01-01T00:00:01Z"}\n', encoding="utf-8")
    frame, problems = _read("suricata", log)
    assert frame["event_type"].to_list() == ["flow", "dns"]
    assert {p.where.rsplit(":", 1)[1] for p in problems} == {"2", "3"}


def test_zeek_rows_with_the_wrong_column_count_are_quarantined(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_text("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\n1700000000.0\tC1\t10.0.0.1\n"
                   "1700000001.0\tC2\n", encoding="utf-8")
    frame, problems = _read("zeek", log)
    assert frame["uid"].to_list() == ["C1"]
    assert frame["zeek_path"].to_list() == ["conn"]
    assert problems[0].where.endswith(":5") and "3 tab-separated columns" in problems[0].reason


def test_split_where_reads_line_numbers_and_byte_offsets() -> None:
    assert split_where("/var/log/a:b.log:12") == ("/var/log/a:b.log", 12)
    assert split_where("x.evtx@4096") == ("x.evtx", 4096)
    assert split_where("stdin") == ("stdin", None)
