"""Each source parses the hand-written cases of tests/fixtures/sources/*.cases.yaml (written from the
format's specification, odd cases included) to the expected fields, compared field by field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from mamori.sources.base import ReadOptions
from mamori.sources.batch import PARSERS, parse_records
from mamori.sources.registry import all_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
CASE_FILES = sorted(FIXTURES.glob("*.cases.yaml"))


def _cases() -> list[Any]:
    params = []
    for path in CASE_FILES:
        data = yaml.safe_load(path.read_text("utf-8"))
        for case in data["cases"]:
            params.append(pytest.param(data["source"], case, path, id=f"{data['source']}: {case['name']}"))
    return params


def _options(case: dict[str, Any]) -> ReadOptions:
    return ReadOptions(**case.get("options", {}))


def _rows(source: str, case: dict[str, Any], path: Path, tmp_path: Path) -> tuple[pl.DataFrame, list[Any]]:
    options = _options(case)
    if "file" in case:
        spec = all_sources()[source]
        target = FIXTURES / case["file"]
        if "encode" in case:  # write the text in a legacy encoding (CP932) for the reader to detect
            target = tmp_path / case["file"]
            target.write_bytes((FIXTURES / case["file"]).read_text("utf-8").encode(case["encode"]))
        results = list(spec.read(target, options))
        frames = [r.frame for r in results if r.frame.height]
        problems = [p for r in results for p in r.problems]
        return (pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()), problems
    texts = case["input"] if isinstance(case["input"], list) else [case["input"]]
    result = parse_records(texts, PARSERS[source], source=source, origin=str(path), options=options)
    return result.frame, result.problems


def _render(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        raise AssertionError("times are compared as text, see _with_time_text")
    return value


def _with_time_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Render ``_time`` as ISO 8601 UTC text with nanoseconds, trailing zeros dropped."""
    if frame.height == 0:
        return frame
    text = frame["_time"].dt.strftime("%Y-%m-%dT%H:%M:%S%.9f").str.replace(r"\.?0+$", "") + "Z"
    return frame.with_columns(text.alias("_time"))


@pytest.mark.parametrize(("source", "case", "path"), _cases())
def test_source_parses_fixture_case_to_expected_fields(source: str, case: dict[str, Any], path: Path,
                                                       tmp_path: Path) -> None:
    all_sources()
    frame, problems = _rows(source, case, path, tmp_path)
    expected_rows = case["expect"] if isinstance(case["expect"], list) else [case["expect"]]
    assert len(problems) == case.get("problems", 0), [p.reason for p in problems]
    assert frame.height == len(expected_rows), f"{frame.height} rows, expected {len(expected_rows)}"
    frame = _with_time_text(frame)
    for index, expected in enumerate(expected_rows):
        row = frame.row(index, named=True)
        for field, value in expected.items():
            got = _render(row.get(field))
            assert got == value, f"row {index} field {field!r}: got {got!r}, expected {value!r}"
        if "input" in case:
            texts = case["input"] if isinstance(case["input"], list) else [case["input"]]
            assert row["_raw"] == texts[row["_offset"] - 1], "the raw text must be kept unchanged"


def test_every_source_has_fixture_cases() -> None:
    all_sources()
    covered = {yaml.safe_load(p.read_text("utf-8"))["source"] for p in CASE_FILES}
    mine = set(PARSERS) - {"winjson", "evtx"}
    assert mine <= covered, f"sources without fixture cases: {sorted(mine - covered)}"


def test_every_fixture_file_is_used_by_a_case() -> None:
    used = set()
    for path in CASE_FILES:
        for case in yaml.safe_load(path.read_text("utf-8"))["cases"]:
            if "file" in case:
                used.add(case["file"])
    data_files = {p.name for p in FIXTURES.iterdir() if not p.name.endswith((".cases.yaml", ".expect.yaml"))}
    assert data_files <= used, f"orphan fixture files: {sorted(data_files - used)}"
