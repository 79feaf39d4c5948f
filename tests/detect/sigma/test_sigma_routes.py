"""Which mapping entries serve a row: the Python reading of a few distinct rows agrees with Polars'."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from mamori.detect.sigma.engine import Routes, _entry_table, _entry_table_of_rows, combination_codes
from mamori.events import schema
from mamori.events.logsources import builtin_table


def test_rows_tested_in_python_get_the_entries_polars_gives_them() -> None:
    entries = builtin_table().entries
    values = {
        schema.SOURCE: ["evtx", "winjson", "zeek", "syslog", "azure", "nosuch", None],
        "Channel": ["Security", "Microsoft-Windows-Sysmon/Operational", "System", "Windows PowerShell", None],
        "EventID": ["1", "4688", "4104", "7045", "3", None],
        "zeek_path": ["conn", "dns", "http", None],
        "azure_log": ["activitylogs", "signinlogs", None],
        "program": ["sshd", "sudo", None],
    }
    rows = list(itertools.product(*values.values()))
    frame = pl.DataFrame(rows, schema={name: pl.String for name in values}, orient="row")
    expected = _entry_table(frame, entries)
    got = _entry_table_of_rows(rows, list(values), entries)
    assert expected.any() and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_an_entry_testing_a_column_the_batch_lacks_serves_no_row() -> None:
    entries = builtin_table().entries
    rows = [("evtx",)]
    got = _entry_table_of_rows(rows, [schema.SOURCE], entries)
    expected = _entry_table(pl.DataFrame({schema.SOURCE: ["evtx"]}), entries)
    np.testing.assert_array_equal(got, expected)


def test_combinations_of_columns_are_numbered_with_null_a_value_of_its_own() -> None:
    frame = pl.DataFrame({"a": ["x", "x", None, "y", "x", None, ""], "b": ["1", "2", "1", "1", "1", "1", "1"]})
    codes, first = combination_codes(frame, ["a", "b"])
    rows = frame.rows()
    for i in range(frame.height):
        for j in range(frame.height):
            assert (codes[i] == codes[j]) == (rows[i] == rows[j])
    assert sorted(first.tolist()) == [0, 1, 2, 3, 6]
    assert all(codes[row] == number for number, row in enumerate(first.tolist()))


def test_a_groups_rows_are_the_rows_any_of_its_entries_serves() -> None:
    entries = builtin_table().entries
    frame = pl.DataFrame({
        schema.SOURCE: ["evtx", "evtx", "evtx", "zeek", "evtx"],
        "Channel": ["Security", "Microsoft-Windows-Sysmon/Operational", "System", None, "Security"],
        "EventID": ["4688", "1", "7045", None, "4624"],
    })
    routed = Routes(entries).route(frame)
    masks = _entry_table(frame, entries)  # entry by entry over every row: what routing stands for
    assert masks.shape == (len(entries), frame.height)
    for entry in range(len(entries)):
        np.testing.assert_array_equal(routed.entry_rows(entry), masks[entry])
        assert routed.served(entry) == bool(masks[entry].any())
    for group in ([0], [1, 2], list(range(len(entries)))):
        np.testing.assert_array_equal(routed.rows_of(group), np.flatnonzero(masks[group].any(axis=0)))


def test_routing_keeps_each_text_columns_distinct_values_and_codes_for_the_evaluator() -> None:
    frame = pl.DataFrame({"a": ["x", "x", None, "y", ""], "n": [1, 2, 1, 1, 1]})
    kept: dict[str, tuple[object, np.ndarray]] = {}
    combination_codes(frame, ["a", "n"], kept)  # type: ignore[arg-type]
    assert set(kept) == {"a"}  # (a number column is the evaluator's to cast and encode)
    values, codes = kept["a"]
    distinct = values.to_pylist()  # type: ignore[attr-defined]
    assert None not in distinct
    assert [distinct[c] if c < len(distinct) else None for c in codes.tolist()] == frame.get_column("a").to_list()
