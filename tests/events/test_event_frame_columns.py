"""``build_frame`` lays out the field columns of big batches from Arrow buffers (string views) and of
small ones from Python lists; both routes must give the very same frame (values, dtypes, column
order), whatever the values: empty, absent, null, multi-byte, around the 12-byte inline limit."""

from __future__ import annotations

from unittest.mock import patch

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mamori.events import frame as frame_module
from mamori.events.frame import build_frame, event_uid, event_uids

KEYS = ["Image", "CommandLine", "EventID", "Data", "_time", "_raw", "Provider_Name", "名前", ""]
VALUES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "x" * 12, "x" * 13, "é" * 6, "日本語テキスト", "C:\\Windows\\System32\\cmd.exe"]),
)
RECORDS = st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=len(KEYS)), max_size=40)


def _build(records: list[dict[str, str | None]]) -> pl.DataFrame:
    n = len(records)
    return build_frame(records, source="evtx", origin=[f"file{i % 3}" for i in range(n)],
                       offsets=list(range(1, n + 1)), times_ns=[None] * n,
                       hosts=[r.get("Computer") for r in records], raws=[str(r) for r in records])


@settings(max_examples=150, deadline=None)
@given(RECORDS, st.integers(min_value=1, max_value=50))
def test_arrow_and_list_routes_build_the_same_batch(records: list[dict[str, str | None]], chunk: int) -> None:
    with patch.object(frame_module, "LIST_BUILD_CELLS", 10**12):
        by_lists = _build(records)
    with patch.object(frame_module, "LIST_BUILD_CELLS", 0), patch.object(frame_module, "CHUNK_CELLS", chunk):
        by_buffers = _build(records)
    assert_frame_equal(by_lists, by_buffers)


def test_fields_are_text_columns_in_first_met_order_with_nulls_where_absent() -> None:
    records: list[dict[str, str | None]] = [{"B": "1", "A": "x" * 20}, {"C": "é", "B": None}, {}, {"_raw": "clash"}]
    with patch.object(frame_module, "LIST_BUILD_CELLS", 0):
        frame = _build(records)
    assert frame.columns[7:] == ["B", "A", "C"]
    assert frame.get_column("A").to_list() == ["x" * 20, None, None, None]
    assert frame.get_column("B").to_list() == ["1", None, None, None]
    assert frame.get_column("C").to_list() == [None, "é", None, None]
    assert frame.get_column("_raw").to_list() == [str(r) for r in records]
    assert all(frame.schema[c] == pl.Utf8 for c in ("A", "B", "C"))


def test_batch_ids_match_the_single_event_id() -> None:
    origins, offsets = ["a.evtx", "a.evtx", "b.evtx"], [1, 2, 1]
    assert event_uids("evtx", origins, offsets) == [event_uid("evtx", o, n) for o, n in zip(origins, offsets,
                                                                                             strict=True)]
