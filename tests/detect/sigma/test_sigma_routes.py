"""Which mapping entries serve a row: the Python reading of a few distinct rows agrees with Polars'."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from mamori.detect.sigma.engine import _entry_table, _entry_table_of_rows
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
