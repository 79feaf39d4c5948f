"""The JSON sources' whole-batch path (Arrow's JSON reader) promises the very output of the
per-record path: the same frames (values, dtypes, column order) and the same quarantine entries
(place, reason, raw text). Each file here is read twice, once as shipped and once with the batch
decoder patched to decline every batch (so ``json_fields`` goes record by record), and compared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mamori.events import schema
from mamori.sources import batch
from mamori.sources.base import ReadOptions, ReadProblem
from mamori.sources.registry import all_sources

JSON_SOURCES = [
    "azure",
    "cloudtrail",
    "gcp_audit",
    "github_audit",
    "journald",
    "k8s_audit",
    "m365",
    "ocsf",
    "okta",
    "suricata",
    "zeek",
]

# Fields every record carries, so that each source takes it (CloudTrail wants an event key) and finds
# a time and a host somewhere.
BASE: dict[str, Any] = {
    "eventVersion": "1.08",
    "eventName": "GetObject",
    "eventSource": "s3.amazonaws.com",
    "eventTime": "2024-05-01T10:00:00Z",
    "timestamp": "2024-05-01T10:00:00Z",
    "host": "sensor-1",
}


def _rec(**fields: Any) -> str:
    return json.dumps({**BASE, **fields}, ensure_ascii=False)


def _uniform() -> list[str]:
    return [_rec(user={"name": f"u{i}", "id": i}, ok=i % 2 == 0, n=i * 7, msg=f"m{i}") for i in range(6)]


CASES: dict[str, list[str]] = {
    "uniform": _uniform(),
    "late_column": [_rec(a="x") for _ in range(4)] + [_rec(a="y", late="z"), _rec(a="w", deep={"late": 1})],
    "int_then_string": [_rec(code=1), _rec(code=2), _rec(code="three"), _rec(code=4)],
    "null_line": [_rec(a="1"), "null", _rec(a="2")],
    "null_object_field": [
        _rec(userIdentity={"type": "Root"}),
        _rec(userIdentity=None),
        _rec(userIdentity={"type": "IAM"}),
    ],
    "empty_object_line": [_rec(a="1"), "{}", _rec(a="2")],
    "empty_object_field": [_rec(extra={}), _rec(extra={"k": "v"}), _rec(extra={})],
    "list_of_objects_field": [_rec(items=[{"a": 1}, {"b": "x"}]), _rec(items=[])],
    "list_of_objects_line": [_rec(a="first"), json.dumps([{**BASE, "a": "x"}, {**BASE, "a": "y"}]), _rec(a="last")],
    "lists_of_scalars": [
        _rec(ips=["10.0.0.1", "10.0.0.2"], ports=[80, 443], flags=[True, False]),
        _rec(ips=["10.0.0.3"], ports=[], flags=[False]),
        _rec(ips=[], ports=[22], flags=[]),
    ],
    "list_of_escaped_strings": [_rec(tags=['a"b', "c\\d", "tab\there", "ログ"]), _rec(tags=["plain"])],
    "list_mixed_and_nulls": [_rec(v=[1, "a", None, 1.5]), _rec(v=[None]), _rec(v=[[1, 2], [3]])],
    "float_integral": [_rec(x=1.0), _rec(x=2.0)],
    "float_fraction": [_rec(x=1.5), _rec(x=-2.25), _rec(x=0.30000000000000004), _rec(x=1714557600.123456)],
    "float_tiny": [_rec(x=1e-7), _rec(x=0.5)],
    "float_small_edge": [_rec(x=0.0001), _rec(x=0.00012), _rec(x=0.5)],
    "float_mixed_int": [_rec(x=1), _rec(x=1.5)],
    "zeek_ts": [_rec(ts=1714557600.5 + i / 8, uid=f"C{i}") for i in range(4)],
    "big_int": [_rec(n=2**63 - 1), _rec(n=-(2**63)), _rec(n=2**64)],
    "unicode_escapes": [
        '{"eventName": "\\u30ed\\u30b0\\u30a4\\u30f3", "eventTime": "2024-05-01T10:00:00Z",'
        ' "q": "\\"quoted\\" \\\\ back \\n newline \\t tab \\u0000 nul \\ud83d\\ude00"}',
        _rec(eventName="ログイン失敗", q="ユーザー「山田」"),
        _rec(eventName="plain", q="ascii"),
    ],
    "japanese_text": [_rec(msg="不正なログインを検知しました", user={"name": "山田太郎"}) for _ in range(3)],
    "duplicate_keys": [_rec(a="1"), '{"eventName": "X", "a": "1", "a": "2"}', _rec(a="3")],
    "duplicate_via_dots": [_rec(**{"a.b": "flat"}, a={"c": "n"}), _rec(**{"a": {"b": "nested"}})],
    "bad_line_middle": [_rec(a="1"), _rec(a="2"), '{"eventName": "broken", ', _rec(a="4")],
    "not_object_lines": [_rec(a="1"), "42", '"text"', "[1, 2]", _rec(a="2")],
    "blank_lines": [_rec(a="1"), "", "   ", _rec(a="2"), "", _rec(a="3")],
    "timestamps_as_text": [_rec(when="2024-05-01T10:00:00Z", d="2024-05-01"), _rec(when="2024-05-01 10:00:00", d="x")],
    "no_event_key": [_rec(a="1"), '{"other": "not cloudtrail"}', _rec(a="2")],
}


def _problems(results: list[Any]) -> list[ReadProblem]:
    return [p for r in results for p in r.problems]


def _read_both(
    source: str, path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> tuple[list[Any], list[Any], int]:
    """(batch results, per-record results, batches the batch decoder took)."""
    spec = all_sources()[source]
    options = ReadOptions(batch_rows=batch_rows)
    real = batch._fast_json_fields
    taken = 0

    def spy(*args: Any, **kwargs: Any) -> pl.DataFrame | None:
        nonlocal taken
        out = real(*args, **kwargs)
        taken += out is not None
        return out

    with monkeypatch.context() as patch:
        patch.setattr(batch, "_fast_json_fields", spy)
        fast = list(spec.read(path, options))
    with monkeypatch.context() as patch:
        patch.setattr(batch, "_fast_json_fields", lambda *args, **kwargs: None)
        slow = list(spec.read(path, options))
    return fast, slow, taken


def _assert_same(fast: list[Any], slow: list[Any]) -> None:
    assert len(fast) == len(slow)
    for one, other in zip(fast, slow, strict=True):
        assert_frame_equal(one.frame, other.frame, check_column_order=True, check_dtypes=True, check_exact=True)
        assert one.frame.columns == other.frame.columns
    assert _problems(fast) == _problems(slow)


def _write(tmp_path: Path, source: str, lines: list[str]) -> Path:
    path = tmp_path / ("conn.log" if source == "zeek" else f"{source}.jsonl")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _params() -> Iterator[Any]:
    for source in JSON_SOURCES:
        for case in CASES:
            yield pytest.param(source, case, id=f"{source}-{case}")


@pytest.mark.parametrize(("source", "case"), list(_params()))
def test_batch_path_reads_like_per_record_path(
    source: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, source, CASES[case])
    for batch_rows in (50_000, 3):
        fast, slow, _ = _read_both(source, path, monkeypatch, batch_rows)
        _assert_same(fast, slow)


@pytest.mark.parametrize("source", JSON_SOURCES)
@pytest.mark.parametrize("case", ["uniform", "lists_of_scalars", "float_fraction", "japanese_text", "zeek_ts"])
def test_batch_path_is_really_taken(source: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above means something: these batches do go through Arrow, not the fallback."""
    path = _write(tmp_path, source, CASES[case])
    fast, slow, taken = _read_both(source, path, monkeypatch, 50_000)
    assert taken == 1
    assert sum(r.frame.height for r in fast) == len(CASES[case])
    _assert_same(fast, slow)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
# Core column names (``_time``, ``_raw``...) are left out: a record holding one fails in ``finish`` on
# both paths alike, which is not what this file is about.
_key = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8).filter(
    lambda k: not schema.is_core_column(k)
)
_value = st.one_of(_text, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())
_flat = st.dictionaries(_key, _value, max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_flat, min_size=1, max_size=8))
def test_random_flat_objects_read_alike(
    records: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [json.dumps({**BASE, **r}, ensure_ascii=bool(i % 2)) for i, r in enumerate(records)]
    path = _write(tmp_path, "okta", lines)
    for source in ("okta", "cloudtrail"):
        fast, slow, _ = _read_both(source, path, monkeypatch, 50_000)
        _assert_same(fast, slow)


def _many(n: int, **late: Any) -> list[str]:
    """``n`` alike records (more than Arrow's type sample of 1000), then one with ``late`` fields."""
    return [_rec(u={"a": str(i)}, code=str(i)) for i in range(n)] + [_rec(**{"u": {"a": "z"}, **late})]


BIG_CASES: dict[str, list[str]] = {
    "nested_field_after_sample": _many(1001, u={"a": "z", "b": "new"}),
    "nested_object_after_sample": _many(1001, u={"a": "z", "c": {"d": 1}}),
    "top_field_after_sample": _many(1001, late="z"),
    "number_after_sample_of_strings": _many(1001, code=1.5),
    "time_text_after_sample": _many(1001, code="2024-05-01T10:00:00Z", u={"a": "z", "t": "2024-05-01"}),
    "column_met_early_and_after_sample": [
        _rec(u={"a": "1", **({"b": "q"} if i in (5, 1010) else {})}) for i in range(1020)
    ],
}


@pytest.mark.parametrize("source", ["cloudtrail", "okta", "zeek"])
@pytest.mark.parametrize("case", list(BIG_CASES))
def test_batches_longer_than_the_type_sample(
    source: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, source, BIG_CASES[case])
    fast, slow, _ = _read_both(source, path, monkeypatch, 50_000)
    _assert_same(fast, slow)


@pytest.mark.parametrize("key", ["_raw", "_source", "_uid", "_origin", "_time", "_host"])
def test_a_record_field_named_like_a_core_column_is_kept_beside_it(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field that happens to carry a core column's name is kept as ``<name>_field``, on both paths."""
    path = _write(tmp_path, "okta", [_rec(**{key: "from the record"}), _rec()])
    fast, slow, _ = _read_both("okta", path, monkeypatch, 50_000)
    _assert_same(fast, slow)
    frame = fast[0].frame
    assert frame[f"{key}_field"].to_list() == ["from the record", None]
    assert frame[key].to_list() != ["from the record", None]


@pytest.mark.parametrize("key", ["_time", "_host"])
def test_a_record_field_named_time_or_host_is_kept_when_no_record_has_the_sources_own(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``eventTime`` anywhere in the batch: a ``_time`` (or ``_host``) field is still a field, not the
    event's time, and the batch reads on both paths."""
    records = [{"eventVersion": "1.08", "eventName": "GetObject", key: "from the record"},
               {"eventVersion": "1.08", "eventName": "PutObject"}]
    path = _write(tmp_path, "cloudtrail", [json.dumps(r) for r in records])
    fast, slow, taken = _read_both("cloudtrail", path, monkeypatch, 50_000)
    _assert_same(fast, slow)
    assert taken == 1
    frame = fast[0].frame
    assert frame[f"{key}_field"].to_list() == ["from the record", None]
    assert frame[key].to_list() == [None, None]
    assert frame[schema.TIME].dtype == pl.Datetime("ns", "UTC")
