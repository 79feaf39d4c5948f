"""The few Arrow compute kernels the rule engine calls, reached without ``import pyarrow.compute``.

Importing ``pyarrow.compute`` builds a Python wrapper for every one of Arrow's kernels, 50-80 ms at
every start of a hunt (in every hunt process); the engine calls a dozen of them. ``call_function``
runs the same kernels with the same options (``pyarrow.compute`` is itself built on it). Array methods
such as ``cast``, ``take``, ``fill_null`` or ``is_valid`` import ``pyarrow.compute`` behind the scenes:
the functions here stand in for them, the null handling read from the validity bitmaps with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mamori.events.frame import bitmap_bits, valid_mask

try:
    from pyarrow._compute import CastOptions, MatchSubstringOptions, SetLookupOptions, call_function
except ImportError:  # a pyarrow that moved its internals: the public module has them too
    from pyarrow.compute import (  # type: ignore[attr-defined]
        CastOptions,
        MatchSubstringOptions,
        SetLookupOptions,
        call_function,
    )


def dictionary_encode(values: Any) -> Any:
    """Distinct values and each row's code (an Arrow dictionary array); null rows have a null code.
    (Arrow's option to make null a distinct value of its own gives string views a plain "" instead.)"""
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


def to_large_string(values: Any) -> Any:
    """The values as ``large_string`` (64-bit offsets), what the string kernels are given."""
    return call_function("cast", [values], CastOptions.safe(pa.large_string()))


def take(values: Any, positions: Any) -> Any:
    """The values at ``positions``, in that order."""
    return call_function("take", [values, pa.array(positions)])


def true_mask(array: Any) -> np.ndarray:
    """A boolean array as numpy booleans, null read as false."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    bits = bitmap_bits(array.buffers()[1], array.offset, len(array))
    validity = array.buffers()[0]
    return bits if validity is None else bits & bitmap_bits(validity, array.offset, len(array))


def non_null_views(array: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """A ``string_view`` array's non-null values, in row order, and the rows they come from (None: not
    a single ``string_view`` array). Only the 16-byte views are gathered (numpy), the text buffers are
    shared: a third cheaper than Polars' ``drop_nulls``, a kernel call and a hand-over to its thread
    pool, for each of the hundred-odd mostly-null columns of a Windows batch."""
    if not isinstance(array, pa.Array) or array.type != pa.string_view():
        return None
    positions = np.flatnonzero(valid_mask(array))
    buffers = array.buffers()
    views = np.frombuffer(buffers[1], dtype=np.complex128)  # (one 16-byte item a view)
    kept = views.take(positions + array.offset if array.offset else positions)
    compact = pa.Array.from_buffers(pa.string_view(), len(positions), [None, pa.py_buffer(kept), *buffers[2:]])
    return compact, positions


def codes_or(indices: pa.Array, null_code: int) -> np.ndarray:
    """A dictionary array's codes as numpy integers, ``null_code`` where the value is null."""
    codes = np.frombuffer(indices.buffers()[1], dtype=indices.type.to_pandas_dtype(),
                          count=indices.offset + len(indices))[indices.offset:]
    if not indices.null_count:
        return codes.astype(np.intp)
    return np.where(valid_mask(indices), codes, null_code).astype(np.intp, copy=False)
