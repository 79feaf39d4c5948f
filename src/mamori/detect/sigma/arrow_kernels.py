"""The few Arrow compute kernels the rule engine calls, reached without ``import pyarrow.compute``.

Importing ``pyarrow.compute`` builds a Python wrapper for every one of Arrow's kernels, 50-80 ms at
every start of a hunt; the engine calls ten of them. ``call_function`` runs the same kernels with the
same options (``pyarrow.compute`` is itself built on it).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

try:
    from pyarrow._compute import MatchSubstringOptions, SetLookupOptions, call_function
except ImportError:  # a pyarrow that moved its internals: the public module has all three too
    from pyarrow.compute import MatchSubstringOptions, SetLookupOptions, call_function  # type: ignore[attr-defined]


def dictionary_encode(values: Any) -> Any:
    """Distinct values and each row's code (an Arrow dictionary array)."""
    return call_function("dictionary_encode", [values])


def utf8_lower(values: Any) -> Any:
    """The values lower-cased (Unicode)."""
    return call_function("utf8_lower", [values])


def is_in(values: Any, value_set: pa.Array) -> Any:
    """Whether each value is one of ``value_set``."""
    return call_function("is_in", [values], SetLookupOptions(value_set))


def match_substring(values: Any, pattern: str) -> Any:
    """Whether each value holds ``pattern``."""
    return call_function("match_substring", [values], MatchSubstringOptions(pattern))


def starts_with(values: Any, pattern: str) -> Any:
    """Whether each value starts with ``pattern``."""
    return call_function("starts_with", [values], MatchSubstringOptions(pattern))


def ends_with(values: Any, pattern: str) -> Any:
    """Whether each value ends with ``pattern``."""
    return call_function("ends_with", [values], MatchSubstringOptions(pattern))


def match_substring_regex(values: Any, pattern: str) -> Any:
    """Whether each value matches the RE2 ``pattern`` somewhere."""
    return call_function("match_substring_regex", [values], MatchSubstringOptions(pattern))


def equal(values: Any, other: Any) -> Any:
    """Whether each value equals ``other``."""
    return call_function("equal", [values, pa.scalar(other, type=values.type)])


def total_length(values: Any) -> int:
    """Characters over all values."""
    return int(call_function("sum", [call_function("utf8_length", [values])]).as_py() or 0)
