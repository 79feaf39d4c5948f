"""Build event batches (Polars DataFrames) from parsed records, the one shape every source yields."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING

import polars as pl

from mamori.events import schema

if TYPE_CHECKING:  # imported where used: big batches only, and not every user of this module needs them
    import numpy as np
    import pyarrow as pa

# Below this many cells (rows x field names) a batch's columns are built from Python lists; above it
# from Arrow buffers, which skips the per-cell cost of the many empty cells of sparse fields.
LIST_BUILD_CELLS = 50_000
# Cells laid out per pass on the Arrow route (bounds its scratch arrays; the 16-byte views it makes
# are the batch's own memory, as they would be on the list route).
CHUNK_CELLS = 4_000_000


def event_uid(source: str, origin: str, offset: int) -> str:
    """Return the stable id of an event: a hash of its source, origin and offset (idempotent replays)."""
    digest = hashlib.blake2b(f"{source}\x1f{origin}\x1f{offset}".encode(), digest_size=12)
    return digest.hexdigest()


def event_uids(source: str, origins: Sequence[str], offsets: Sequence[int]) -> list[str]:
    """``event_uid`` for many events at once, hashing the source-and-origin prefix once per origin."""
    prefixes: dict[str, hashlib.blake2b] = {}
    out = []
    for origin, offset in zip(origins, offsets, strict=True):
        prefix = prefixes.get(origin)
        if prefix is None:
            prefix = prefixes[origin] = hashlib.blake2b(f"{source}\x1f{origin}\x1f".encode(), digest_size=12)
        digest = prefix.copy()
        digest.update(b"%d" % offset)
        out.append(digest.hexdigest())
    return out


def build_frame(
    records: Sequence[dict[str, str | None]],
    *,
    source: str,
    origin: str | Sequence[str],
    offsets: Sequence[int],
    times_ns: Sequence[int | None],
    hosts: Sequence[str | None],
    raws: Sequence[str],
) -> pl.DataFrame:
    """Turn parsed records (flat field -> string maps) into one event batch with the core columns.

    Fields missing from a record are null; every original field is a string column, as Sigma
    compares text. Core columns come first, in ``schema.CORE_COLUMNS`` order, then the fields in
    the order they are first met. ``origin`` is one origin for all records or one per record (a
    batch gathered from many files).
    """
    n = len(records)
    origins = [origin] * n if isinstance(origin, str) else list(origin)
    core = [
        pl.Series(schema.TIME, times_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        pl.Series(schema.SOURCE, [source] * n, dtype=pl.Utf8),
        pl.Series(schema.HOST, hosts, dtype=pl.Utf8),
        pl.Series(schema.UID, event_uids(source, origins, offsets), dtype=pl.Utf8),
        pl.Series(schema.ORIGIN, origins, dtype=pl.Utf8),
        pl.Series(schema.OFFSET, offsets, dtype=pl.Int64),
        pl.Series(schema.RAW, raws, dtype=pl.Utf8),
    ]
    return pl.DataFrame([*core, *field_columns(records)])


def field_columns(records: Sequence[dict[str, str | None]]) -> list[pl.Series]:
    """The field columns of a batch: one string column per field name (core names left out), in the
    order names are first met, null where a record lacks the field."""
    shapes = list(map(tuple, records))  # each record's field names, in order
    distinct = list(dict.fromkeys(shapes))  # records of a kind share them: the order names are met is theirs
    names = [k for k in dict.fromkeys(chain.from_iterable(distinct)) if not schema.is_core_column(k)]
    if len(names) * len(records) >= LIST_BUILD_CELLS:
        import pyarrow as pa

        try:
            return _columns_from_buffers(records, shapes, distinct, names)
        except (pa.ArrowException, TypeError, ValueError, UnicodeError):
            pass  # a value that is not text: the list route gives the same error as it always did
    return _columns_from_lists(records, names)


def _columns_from_lists(records: Sequence[dict[str, str | None]], names: list[str]) -> list[pl.Series]:
    """Build each column as a Python list (cheap for small batches)."""
    n = len(records)
    columns: dict[str, list[str | None]] = {name: [None] * n for name in names}
    for i, record in enumerate(records):
        for key, value in record.items():
            column = columns.get(key)
            if column is not None:
                column[i] = value
    return [pl.Series(name, values, dtype=pl.Utf8) for name, values in columns.items()]


def _columns_from_buffers(records: Sequence[dict[str, str | None]], shapes: list[tuple[str, ...]],
                          distinct: list[tuple[str, ...]], names: list[str]) -> list[pl.Series]:
    """Build the columns as Arrow string views laid out with numpy: every value goes once into one
    Arrow array, and each cell of the batch is a 16-byte view of it (empty cells stay zero), so no
    Python work is done per empty cell (an EVTX batch is mostly empty cells: ~400 fields, ~25 set
    per event). Polars takes string views as they are."""
    import numpy as np
    import pyarrow as pa

    n = len(records)
    index = {name: i for i, name in enumerate(names)}
    skip = len(names)  # the code of fields named like core columns: never laid out
    # the column of every value, worked out once per distinct shape of record
    shape_codes = {shape: np.fromiter(map(index.get, shape, repeat(skip)), dtype=np.int64, count=len(shape))
                   for shape in distinct}
    codes = np.concatenate(list(map(shape_codes.__getitem__, shapes)))
    rows = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, records), dtype=np.int64, count=n))
    values = pa.array(list(chain.from_iterable(map(dict.values, records))), type=pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64, count=len(values) + 1)
    data = values.buffers()[2] or pa.py_buffer(b"\x00")
    if offsets[-1] >= 2**31:
        raise ValueError("batch text too large for 32-bit string views")
    starts, lengths = offsets[:-1], np.diff(offsets)
    valid = valid_mask(values)
    step = max(1, CHUNK_CELLS // max(n, 1))
    arrays: list[pa.Array] = []
    for first in range(0, skip, step):
        last = min(skip, first + step)
        whole = last - first == skip and not (codes == skip).any()
        picked = slice(None) if whole else np.flatnonzero((codes >= first) & (codes < last))
        total = (last - first) * n
        cells = (codes[picked] - first) * n + rows[picked]
        views = _string_views(total, cells, starts[picked], lengths[picked], np.frombuffer(data, dtype=np.uint8))
        present = np.zeros(total, dtype=np.bool_)
        present[cells] = valid[picked]
        chunk = pa.Array.from_buffers(pa.string_view(), total, [
            pa.py_buffer(np.packbits(present, bitorder="little")), pa.py_buffer(views), data])
        arrays.extend(chunk.slice(j * n, n) for j in range(last - first))
    frame = pl.from_arrow(pa.Table.from_arrays(arrays, names=names))
    assert isinstance(frame, pl.DataFrame)
    columns = frame.get_columns()
    if frame.columns != names:  # Polars renames a field named "" (``column_<n>``): as the list route does
        columns = [column.alias(name) for column, name in zip(columns, names, strict=True)]
    return columns


def arrow_series(name: str, values: pa.Array) -> pl.Series:
    """An Arrow array as a Polars Series, without a copy. ``pl.Series(name, array)`` does the same but
    imports ``pyarrow.compute`` on its way (50-80 ms in every process that does it); a one-column table
    does not."""
    import pyarrow as pa

    return pl.from_arrow(pa.table({name: values})).to_series()  # type: ignore[union-attr]


def valid_mask(array: pa.Array) -> np.ndarray:
    """Which entries of an Arrow array are not null, read off its validity bitmap (``Array.is_valid``
    would import ``pyarrow.compute``, 50-80 ms, in every process that reads events or matches rules)."""
    import numpy as np

    validity = array.buffers()[0]
    if validity is None:
        return np.ones(len(array), dtype=np.bool_)
    return bitmap_bits(validity, array.offset, len(array))


def bitmap_bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """``length`` bits of an Arrow bitmap from ``offset``, as numpy booleans."""
    import numpy as np

    unpacked = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), count=offset + length, bitorder="little")
    return unpacked[offset:].view(np.bool_)  # 0/1 bytes: the same memory read as booleans


def _string_views(total: int, cells: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                  data: np.ndarray) -> np.ndarray:
    """Arrow string views (four int32 words a cell) of the values at ``starts``/``lengths`` of
    ``data``, for the ``cells`` given: length, then the bytes inline when there are 12 or fewer (zero
    padded, as the format requires), else the first four bytes, buffer 0 and the offset."""
    import numpy as np

    byte_masks = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF], dtype=np.uint32)  # the first 0..4 bytes
    views = np.zeros(total * 4, dtype=np.int32)
    words = views.reshape(total, 4)
    padded = np.zeros(len(data) + 16, dtype=np.uint8)
    padded[:len(data)] = data
    # the little-endian 32-bit word starting at every byte of the data
    word_at = np.ndarray(shape=(len(data) + 13,), dtype="<u4", buffer=padded, strides=(1,))
    words[cells, 0] = lengths
    long = lengths > 12
    at, start = cells[long], starts[long]
    words[at, 1] = word_at[start].view(np.int32)
    words[at, 3] = start
    short = ~long
    at, start, length = cells[short], starts[short], lengths[short]
    for word in range(3):
        kept = byte_masks[np.clip(length - 4 * word, 0, 4)]
        words[at, 1 + word] = (word_at[start + 4 * word] & kept).view(np.int32)
    return views


def empty_frame() -> pl.DataFrame:
    """Return an event batch with the core columns and no rows."""
    return pl.DataFrame(schema=schema.CORE_SCHEMA)


def concat_frames(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Stack batches whose field columns differ into one (missing fields become null)."""
    frames = [f for f in frames if f.height]
    if not frames:
        return empty_frame()
    return pl.concat(frames, how="diagonal_relaxed")


def joined_batch(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """``concat_frames`` for a batch about to be matched: every column in one chunk. Stacked batches
    leave columns in different numbers of chunks (a field missing from a batch is one chunk of
    nulls), and then every ``select`` on the batch realigns all its hundreds of columns again
    (20-45 ms each, several per match); joining them once costs about one such ``select``."""
    joined = concat_frames(frames)
    return joined.rechunk() if joined.n_chunks("all") and max(joined.n_chunks("all")) > 1 else joined
