"""The shared read path of the text and JSON sources: frame a file into records, parse a batch of
records with the format's column-wise parser, add the core columns and the OCSF fields.

A format module supplies one ``Parser``: a Utf8 Series of record texts in, a DataFrame of the same
height out, holding the original fields as Utf8 columns plus, optionally, ``_time`` (UTC), ``_host``
and ``_error`` (why a record cannot be read; such records go to quarantine, not to the batch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from mamori.events import schema
from mamori.events.frame import event_uids
from mamori.sources.base import ReadOptions, ReadProblem, ReadResult, Sniffer, SourceSpec
from mamori.sources.text import decode, iter_line_columns, open_binary
from mamori.sources.timeparse import parse_auto

ERROR = "_error"
Parser = Callable[[pl.Series, ReadOptions], pl.DataFrame]
UTC_NS = pl.Datetime("ns", "UTC")
MAX_RAW_PROBLEM = 4000


def finish(parsed: pl.DataFrame, raws: pl.Series, offsets: Sequence[int], *, source: str, origin: str,
           normalise: bool = True, lines: Sequence[int] | None = None) -> ReadResult:
    """Turn a parser's output into a ReadResult: drop and report the rows with ``_error``, add the
    core columns (``_time``, ``_source``, ``_host``, ``_uid``, ``_origin``, ``_offset``, ``_raw``) and the
    OCSF fields. ``lines`` are the line numbers problems are reported at when they differ from the
    offsets (several JSON records on one line)."""
    n = len(raws)
    where = lines if lines is not None else offsets
    frame = parsed
    problems: list[ReadProblem] = []
    offset_series = pl.Series(schema.OFFSET, list(offsets), dtype=pl.Int64)
    raw_series = raws.cast(pl.Utf8).alias(schema.RAW)
    if ERROR in frame.columns:
        bad = frame[ERROR].is_not_null()
        if bad.any():
            for row in bad.arg_true().to_list():
                problems.append(ReadProblem(f"{origin}:{where[row]}", str(frame[ERROR][row]),
                                            str(raws[row] or "")[:MAX_RAW_PROBLEM]))
            keep = ~bad
            frame = frame.filter(keep)
            offset_series = offset_series.filter(keep)
            raw_series = raw_series.filter(keep)
            n = frame.height
        frame = frame.drop(ERROR)
    times = frame[schema.TIME].cast(UTC_NS) if schema.TIME in frame.columns else pl.Series(
        schema.TIME, [None] * n, dtype=UTC_NS)
    hosts = frame[schema.HOST].cast(pl.Utf8) if schema.HOST in frame.columns else pl.Series(
        schema.HOST, [None] * n, dtype=pl.Utf8)
    fields = frame.drop([c for c in (schema.TIME, schema.HOST) if c in frame.columns])
    clashes = {c: f"{c}_field" for c in fields.columns if schema.is_core_column(c)}
    # cast as a whole frame: a field may be named "*" or "^...$", which pl.col() would read as a pattern
    fields = fields.rename(clashes).cast(pl.Utf8)
    core = pl.DataFrame([
        times.alias(schema.TIME),
        pl.repeat(source, n, dtype=pl.Utf8, eager=True).alias(schema.SOURCE),  # no Python string per row
        hosts.alias(schema.HOST),
        pl.Series(schema.UID, event_uids(source, [origin] * n, offset_series.to_list()), dtype=pl.Utf8),
        pl.repeat(origin, n, dtype=pl.Utf8, eager=True).alias(schema.ORIGIN),
        offset_series,
        raw_series,
    ])
    out = pl.concat([core, fields], how="horizontal") if fields.width else core
    if normalise:
        from mamori.events.ocsf import normalise as add_ocsf

        out = add_ocsf(out, source)
    return ReadResult(out, problems)


def parse_records(texts: Sequence[str] | pl.Series, parser: Parser, *, source: str, origin: str = "<records>",
                  offsets: Sequence[int] | None = None, options: ReadOptions | None = None,
                  lines: Sequence[int] | None = None) -> ReadResult:
    """Parse records already split (syslog datagrams, HTTP ingest, test samples) into one batch."""
    numbers = list(offsets) if offsets is not None else list(range(1, len(texts) + 1))
    raws = texts.alias(schema.RAW) if isinstance(texts, pl.Series) else pl.Series(schema.RAW, list(texts),
                                                                                    dtype=pl.Utf8)
    options = options or ReadOptions()
    if len(raws) == 0:
        return finish(pl.DataFrame(), raws, numbers, source=source, origin=origin)
    return finish(parser(raws, options), raws, numbers, source=source, origin=origin, lines=lines)


def read_lines(path: Path, options: ReadOptions, parser: Parser, *, source: str) -> Iterator[ReadResult]:
    """Read a text log one line per record, in batches; blank lines are skipped."""
    origin = str(path)
    for first, column in iter_line_columns(path, options.encoding):
        numbers = pl.int_range(first, first + len(column), eager=True)
        blank = ~column.str.contains(r"\S")  # only white space (the same test as strip_chars, without copying)
        if blank.any():
            column, numbers = column.filter(~blank), numbers.filter(~blank)
        for start in range(0, len(column), options.batch_rows):
            texts = column.slice(start, options.batch_rows)
            yield parse_records(texts, parser, source=source, origin=origin,
                                offsets=numbers.slice(start, options.batch_rows).to_list(), options=options)


# ---------------------------------------------------------------- JSON records

def flatten(value: Any, prefix: str, out: dict[str, str | None]) -> None:
    """Flatten nested objects to dotted keys (``userIdentity.type``); lists stay JSON text, an empty
    object is ``{}``, booleans ``true``/``false``. (Hot path: exact type tests, no recursion per leaf.)"""
    if type(value) is not dict:
        if prefix:
            out[prefix] = scalar_text(value)
        return
    _flatten_into(value, f"{prefix}." if prefix else "", out)


def _flatten_into(value: dict[str, Any], prefix: str, out: dict[str, str | None]) -> None:
    for key, item in value.items():
        name = prefix + key
        kind = type(item)
        if kind is str:
            out[name] = item
        elif kind is dict:
            if item:
                _flatten_into(item, name + ".", out)
            else:
                out[name] = "{}"
        elif item is None:
            out[name] = None
        elif item is True:
            out[name] = "true"
        elif item is False:
            out[name] = "false"
        elif kind is int or kind is float:
            out[name] = str(item)
        else:
            out[name] = orjson.dumps(item).decode()


def scalar_text(value: Any) -> str | None:
    """Render a JSON value as the text Sigma compares: strings as is, true/false, numbers, JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def columns_frame(rows: Sequence[dict[str, str | None]]) -> pl.DataFrame:
    """Build a frame of Utf8 columns from flat records (missing keys are null)."""
    n = len(rows)
    columns: dict[str, list[str | None]] = {}
    for i, row in enumerate(rows):
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * n
            column[i] = value
    if not columns:
        return pl.DataFrame()
    return pl.DataFrame([pl.Series(k, v, dtype=pl.Utf8) for k, v in columns.items()])


def json_fields(texts: pl.Series, accept: Callable[[dict[str, Any]], str | None] | None = None,
                accept_any: Sequence[str] | None = None) -> pl.DataFrame:
    """Decode JSON record texts and flatten them straight into columns; bad records get an ``_error``.

    ``accept`` returns None for an object the source reads, or why it refuses it. ``accept_any``, when
    given, names top-level keys of which ``accept`` takes any object holding one: a batch where every
    object holds one of them with a value may take the vectorised path (see ``_fast_json_fields``).
    A batch the vectorised path cannot read exactly as the per-record path does goes record by record.
    """
    if accept is None or accept_any:
        fast = _fast_json_fields(texts, accept_any if accept is not None else None)
        if fast is not None:
            return fast
    values = texts.to_list()
    n = len(values)
    columns: dict[str, list[str | None]] = {}
    for i, text in enumerate(values):
        try:
            value = orjson.loads(text or "")
        except orjson.JSONDecodeError as exc:
            _put(columns, ERROR, i, n, f"not valid JSON: {exc}")
            continue
        if type(value) is not dict:
            _put(columns, ERROR, i, n, "JSON value is not an object")
            continue
        reason = accept(value) if accept is not None else None
        if reason:
            _put(columns, ERROR, i, n, reason)
            continue
        _flatten_columns(value, "", columns, i, n)
    if not columns:
        return pl.DataFrame()
    return pl.DataFrame([pl.Series(k, v, dtype=pl.Utf8) for k, v in columns.items()])


_FAST_LEAVES = (pl.String, pl.Int64, pl.Boolean, pl.Null)
_FAST_ORDER_ROWS = 256  # rows flattened one by one, at most, to learn the column order
_FAST_SAMPLE_ROWS = 1000  # rows Arrow infers the types on before reading the batch
# Arrow reads the batch as one block: within a block it refuses a name whose values change kind;
# across blocks it converts them silently (and has crashed doing so), so a batch is never split.
_FAST_MAX_BYTES = 1 << 30


def _arrow_json(data: bytes, schema: Any = None) -> Any:
    """Read JSON Lines bytes with Arrow's strict reader on this thread (one block for the batch)."""
    import pyarrow.json as pa_json

    return pa_json.read_json(
        pa.BufferReader(data),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
        parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
    )


def _arrow_types(schema: Any) -> Iterator[Any]:
    """Every type in an Arrow schema, nested ones too."""
    stack = [f.type for f in schema]
    while stack:
        kind = stack.pop()
        yield kind
        if pa.types.is_struct(kind):
            stack.extend(f.type for f in kind)


def _text_schema(schema: Any) -> Any:
    """The Arrow schema with every inferred timestamp read back as text (the original is kept as is)."""
    def fix(kind: Any) -> Any:
        if pa.types.is_timestamp(kind):
            return pa.string()
        if pa.types.is_struct(kind):
            return pa.struct([pa.field(f.name, fix(f.type)) for f in kind if not pa.types.is_null(f.type)])
        return kind

    return pa.schema([pa.field(f.name, fix(f.type)) for f in schema if not pa.types.is_null(f.type)])


def _fast_json_fields(texts: pl.Series, accept_any: Sequence[str] | None = None) -> pl.DataFrame | None:
    """``json_fields`` for a whole batch at once with Arrow's JSON reader, or None when the batch holds
    anything this path might render differently from the per-record path: invalid JSON, a value that
    is not an object, a name given twice, a name whose values change type (Arrow refuses all of these),
    floats, lists, empty or null objects, integers beyond 64 bits, one column name reached two ways,
    records ``accept_any`` would not take, or columns first met late in the batch. Otherwise the
    columns, their order and every value are the same as the per-record path's."""
    n = len(texts)
    if n == 0 or texts.null_count() or texts.str.contains("\n", literal=True).any():
        return None
    data = joined_lines(texts)
    if len(data) > _FAST_MAX_BYTES:
        return None
    try:  # types learnt on the first records (times kept as text; never-set names left to infer)
        sample = data if n <= _FAST_SAMPLE_ROWS else "\n".join(texts.slice(0, _FAST_SAMPLE_ROWS).to_list()).encode()
        table = _arrow_json(data, _text_schema(_arrow_json(sample).schema))
        fixed = _text_schema(table.schema)
        if any(pa.types.is_timestamp(t) for t in _arrow_types(table.schema)):  # names first met later
            table = _arrow_json(data, fixed)
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows != n or table.num_columns == 0:
        return None
    try:
        frame = pl.from_arrow(table)
    except pl.exceptions.PolarsError:  # names Polars cannot take over as they are (a NUL ends them there)
        return None
    if not isinstance(frame, pl.DataFrame):
        return None
    decoded = frame.to_struct("r")
    leaves: dict[str, pl.Series] = {}
    if not _fast_leaves(decoded, "", leaves):
        return None
    if accept_any is not None:
        held = [leaves[k].is_not_null() for k in accept_any if k in leaves]
        if not held or not pl.select(pl.any_horizontal(held)).to_series().all():
            return None
    order = _fast_order(texts, leaves)
    if order is None:
        return None
    return pl.DataFrame([leaves[name] for name in order])


def _fast_leaves(struct: pl.Series, prefix: str, out: dict[str, pl.Series]) -> bool:
    """Flatten a decoded struct column into Utf8 leaf columns named like ``flatten``'s; False when a
    value would render differently from the per-record path (see ``_fast_json_fields``)."""
    fields = struct.struct.fields
    if not fields:
        return False
    children = struct.struct.unnest()
    if pl.select(pl.all_horizontal([c.is_null() for c in children.get_columns()])).to_series().any():
        return False  # ``{}``, ``{"k": null}`` and (at the top) ``null`` look alike here
    for child in children.get_columns():
        name = prefix + child.name
        if isinstance(child.dtype, pl.Struct):
            if child.null_count() or not _fast_leaves(child, name + ".", out):
                return False  # a null object keeps its own column in the per-record path
            continue
        text = _fast_text(child)
        if text is None or name in out:
            return False
        out[name] = text.alias(name)
    return True


def _fast_text(values: pl.Series) -> pl.Series | None:
    """A decoded leaf column as the per-record path writes it (``str(int)``, ``true``/``false``,
    ``repr`` of a float, ``orjson.dumps`` of a list), or None where that cannot be told apart or
    reproduced: a float with no fraction (``5`` and ``5.0`` decode alike) or below 1e-4 (written with
    an exponent), a list holding anything but strings without escapes, integers or booleans."""
    kind = values.dtype
    if kind in _FAST_LEAVES:
        return values.cast(pl.Utf8)
    if kind == pl.Float64:
        size = values.abs()
        if ((values.floor() == values) | (size < 1e-4)).any():
            return None
        return values.cast(pl.Utf8)
    if not isinstance(kind, pl.List):
        return None
    inner = kind.inner
    frame = pl.DataFrame({"v": values})
    if inner == pl.Null:
        return None if (values.list.len() > 0).any() else frame.select(
            pl.when(pl.col("v").is_not_null()).then(pl.lit("[]"))).to_series()
    if inner not in (pl.String, pl.Int64, pl.Boolean):
        return None
    if frame.select(pl.col("v").list.eval(pl.element().is_null()).list.any()).to_series().any():
        return None
    if inner == pl.String:
        if frame.select(pl.col("v").list.eval(pl.element().str.contains(r'["\\\x00-\x1f]')).list.any()
                        ).to_series().any():
            return None  # orjson's escapes are not reproduced here
        element = pl.lit('"') + pl.element() + pl.lit('"')
    else:
        element = pl.element().cast(pl.Utf8)
    joined = pl.col("v").list.eval(element).list.join(",")
    return frame.select(pl.when(pl.col("v").is_not_null()).then(pl.lit("[") + joined + pl.lit("]"))).to_series()


def _fast_order(texts: pl.Series, leaves: dict[str, pl.Series]) -> list[str] | None:
    """The per-record path's column order (first met, record by record), learnt by flattening records
    until every column has been met; None when that takes more than ``_FAST_ORDER_ROWS`` records."""
    seen: dict[str, list[str | None]] = {}
    for text in texts.slice(0, _FAST_ORDER_ROWS).to_list():
        _flatten_columns(orjson.loads(text), "", seen, 0, 1)
        if len(seen) >= len(leaves):
            break
    return list(seen) if seen.keys() == leaves.keys() else None


def _put(columns: dict[str, list[str | None]], name: str, row: int, n: int, value: str | None) -> None:
    column = columns.get(name)
    if column is None:
        column = columns[name] = [None] * n
    column[row] = value


def _flatten_columns(value: dict[str, Any], prefix: str, columns: dict[str, list[str | None]], row: int,
                     n: int) -> None:
    """``flatten`` writing into per-column lists (the hot path of every JSON source)."""
    for key, item in value.items():
        name = prefix + key
        kind = type(item)
        if kind is dict:
            if item:
                _flatten_columns(item, name + ".", columns, row, n)
                continue
            text: str | None = "{}"
        elif kind is str:
            text = item
        elif item is None:
            text = None
        elif item is True:
            text = "true"
        elif item is False:
            text = "false"
        elif kind is int or kind is float:
            text = str(item)
        else:
            text = orjson.dumps(item).decode()
        column = columns.get(name)
        if column is None:
            column = columns[name] = [None] * n
        column[row] = text


def first_present(frame: pl.DataFrame, names: Sequence[str]) -> pl.Series | None:
    """Return the first non-null value across the named columns, row by row (None if none exist)."""
    present = [n for n in names if n in frame.columns]
    if not present:
        return None
    return frame.select(pl.coalesce([pl.col(n) for n in present]).alias("v")).to_series()


def iter_json_values(path: Path, options: ReadOptions) -> Iterator[tuple[int, str | None, str]]:
    """Yield ``(line, compact JSON text or None, error or raw text)`` for every JSON value of a file:
    JSON Lines, one document, an array, pretty-printed values one after another, and
    ``{"Records": [...]}`` / ``{"records": [...]}`` / ``{"value": [...]}`` envelopes (CloudTrail, Azure,
    Graph). Good values come as ``(line, text, text)``; bad ones as ``(line, None, reason + raw)``."""
    for part in _json_parts(path, options):
        if len(part) == 3:
            yield part
        else:
            first, texts = part
            for i, text in enumerate(texts.to_list()):
                yield first + i, text, text


JsonPart = tuple[int, str | None, str] | tuple[int, pl.Series]
ENVELOPE_KEYS = ("Records", "records", "value")  # CloudTrail, Azure, Graph: a document of records
ENVELOPE_MARKS = tuple(f'"{key}"' for key in ENVELOPE_KEYS)  # what an envelope's first 40 characters hold


def envelope_items(value: Any) -> list[Any] | None:
    """The records of a ``{"Records": [...]}`` / ``{"records": [...]}`` / ``{"value": [...]}`` envelope
    (at most three keys, a list of objects), one event each; None when ``value`` is not one. The file
    readers and the live inputs open envelopes by this one rule."""
    if not isinstance(value, dict) or len(value) > 3:
        return None
    for key in ENVELOPE_KEYS:
        inner = value.get(key)
        if isinstance(inner, list) and all(isinstance(item, dict) for item in inner):
            return inner
    return None


def _json_parts(path: Path, options: ReadOptions) -> Iterator[JsonPart]:
    """``iter_json_values``'s values, with runs of lines that each hold one plain object (JSON Lines'
    usual case, told apart in bulk) given as ``(first line, texts)``."""
    with open_binary(path) as handle:
        head = handle.read(1 << 20)
    stripped = decode(head[:4096], options.encoding).lstrip("\ufeff \t\r\n")
    if stripped.startswith(("[", "{")) and not _looks_like_json_lines(head):
        with open_binary(path) as handle:
            text = decode(handle.read(), options.encoding)
        yield from _values_from_text(text)
        return
    envelope = list(ENVELOPE_MARKS)
    for first, column in iter_line_columns(path, options.encoding):
        # The lines ``_expand`` passes on as they are, when they start with ``{`` itself.
        plain = column.str.starts_with("{") & ~column.str.slice(0, 40).str.contains_any(envelope)
        start = 0
        for other in (~plain).arg_true().to_list():
            if other > start:
                yield first + start, column.slice(start, other - start)
            line = column[other]
            if line.strip():
                yield from _expand(first + other, line)
            start = other + 1
        if start < len(column):
            yield first + start, column.slice(start) if start else column


def _looks_like_json_lines(head: bytes) -> bool:
    """JSON Lines when the first non-blank line is a whole JSON object on its own (a pretty-printed
    document's first line is not)."""
    for line in head.split(b"\n"):
        if line.strip():
            try:
                return isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError:
                return False
    return False


def _expand(line: int, text: str) -> Iterator[tuple[int, str | None, str]]:
    head = text[:40].lstrip()
    if head.startswith("{") and not any(k in head for k in ENVELOPE_MARKS):
        yield line, text, text  # one object per line: decoded once, by the parser
        return
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        yield line, None, f"not valid JSON: {exc}\x00{text}"
        return
    yield from _expand_value(line, value, text)


def _expand_value(line: int, value: Any, text: str | None) -> Iterator[tuple[int, str | None, str]]:
    if isinstance(value, list):
        for item in value:
            yield from _expand_value(line, item, None)
        return
    items = envelope_items(value)
    if items is not None:
        for item in items:
            dumped = orjson.dumps(item).decode()
            yield line, dumped, dumped
        return
    dumped = text if text is not None else orjson.dumps(value).decode()
    yield line, dumped, dumped


def _values_from_text(text: str) -> Iterator[tuple[int, str | None, str]]:
    decoder = json.JSONDecoder()
    position, length = 0, len(text)
    while position < length:
        while position < length and text[position] in " \t\r\n\ufeff,":
            position += 1
        if position >= length:
            break
        line = text.count("\n", 0, position) + 1
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            newline = text.find("\n", position)
            end = length if newline < 0 else newline + 1
            yield line, None, f"not valid JSON: {exc.msg} (column {exc.colno})\x00{text[position:end].strip()}"
            position = end
            continue
        yield from _expand_value(line, value, None)
        position = end


class _Texts:
    """Record texts waiting to be parsed, in order: runs of lines as they came (Series) and single
    values (a record list, several records on a line), taken a batch at a time as one Series."""

    def __init__(self) -> None:
        self.parts: list[pl.Series] = []
        self.singles: list[str] = []
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, text: str) -> None:
        self.singles.append(text)
        self.count += 1

    def add_run(self, run: pl.Series) -> None:
        self._close_singles()
        self.parts.append(run)
        self.count += len(run)

    def take(self, count: int) -> pl.Series:
        """Remove and return the first ``count`` texts."""
        self._close_singles()
        if not self.parts:
            return pl.Series("t", [], dtype=pl.Utf8)
        column = pl.concat(self.parts) if len(self.parts) > 1 else self.parts[0]
        rest = column.slice(count)
        self.parts = [rest] if len(rest) else []
        self.count -= count
        return column.slice(0, count)

    def _close_singles(self) -> None:
        if self.singles:
            self.parts.append(pl.Series("t", self.singles, dtype=pl.Utf8))
            self.singles = []


def read_json(path: Path, options: ReadOptions, parser: Parser, *, source: str) -> Iterator[ReadResult]:
    """Read a JSON log (any framing, see ``iter_json_values``) in batches with a JSON ``parser``."""
    origin = str(path)
    texts = _Texts()
    numbers: list[int] = []
    lines: list[int] = []
    problems: list[ReadProblem] = []
    last = 0
    size = options.batch_rows

    def flush(count: int) -> ReadResult:
        result = parse_records(texts.take(count), parser, source=source, origin=origin, offsets=numbers[:count],
                               options=options, lines=lines[:count])
        result.problems[:0] = problems
        del numbers[:count], lines[:count], problems[:]
        return result

    for part in _json_parts(path, options):
        if len(part) == 2:  # a run of lines holding one object each
            first, run = part
            count = len(run)
            texts.add_run(run)
            lines.extend(range(first, first + count))
            if first > last:  # offsets are the line numbers
                numbers.extend(range(first, first + count))
                last = first + count - 1
            else:  # after a line that held several records
                for line in range(first, first + count):
                    last = line if line > last else last + 1
                    numbers.append(last)
            while len(texts) >= size:
                yield flush(size)
            continue
        line, text, other = part
        if text is None:
            reason, _, raw = other.partition("\x00")
            problems.append(ReadProblem(f"{origin}:{line}", reason, raw[:MAX_RAW_PROBLEM]))
            continue
        texts.add(text)
        last = line if line > last else last + 1  # unique offsets when one line holds several records
        numbers.append(last)
        lines.append(line)
        if len(texts) >= size:
            yield flush(size)
    if texts or problems:
        yield flush(len(texts))


# ---------------------------------------------------------------- source specs

PARSERS: dict[str, Parser] = {}


def text_source(name: str, description: str, parser: Parser, sniff: Sniffer, priority: int = 50) -> SourceSpec:
    """A SourceSpec reading a text log one line per record with ``parser`` (also kept in ``PARSERS``,
    so records that arrive one by one — syslog datagrams, samples — parse the same way)."""
    PARSERS[name] = parser

    def read(path: Path, options: ReadOptions) -> Iterator[ReadResult]:
        return read_lines(path, options, parser, source=name)

    return SourceSpec(name, description, read, sniff, priority)


def json_source(name: str, description: str, parser: Parser, sniff: Sniffer, priority: int = 50) -> SourceSpec:
    """A SourceSpec reading JSON records (any framing, gzip too) with ``parser``."""
    PARSERS[name] = parser

    def read(path: Path, options: ReadOptions) -> Iterator[ReadResult]:
        return read_json(path, options, parser, source=name)

    return SourceSpec(name, description, read, sniff, priority)


def json_parser(time_fields: Sequence[str], host_fields: Sequence[str] = (),
                accept: Callable[[dict[str, Any]], str | None] | None = None,
                extra: Callable[[pl.DataFrame, ReadOptions], pl.DataFrame] | None = None,
                zone: str | None = "UTC", accept_any: Sequence[str] | None = None) -> Parser:
    """A parser for JSON records: flatten each object, take the time from the first of ``time_fields``
    present (ISO 8601 or epoch) and the host from ``host_fields``; ``extra`` may add columns. Times
    without a zone are read in ``zone`` (cloud services write UTC), or the options' default zone
    when ``zone`` is None. ``accept_any``: see ``json_fields``."""

    def parse(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
        frame = json_fields(texts, accept, accept_any)
        return finish_json(frame, options, time_fields, host_fields, extra, zone)

    return parse


def finish_json(frame: pl.DataFrame, options: ReadOptions, time_fields: Sequence[str],
                host_fields: Sequence[str] = (),
                extra: Callable[[pl.DataFrame, ReadOptions], pl.DataFrame] | None = None,
                zone: str | None = None) -> pl.DataFrame:
    """Add ``_time`` and ``_host`` to flattened JSON records (and what ``extra`` computes). A record's own
    ``_time`` or ``_host`` field is kept as ``_time_field`` / ``_host_field``, as ``finish`` keeps the other
    core names (left as they were, it would be taken for the event's time or host, or fail the batch)."""
    if frame.width == 0:
        return frame
    own = {c: f"{c}_field" for c in (schema.TIME, schema.HOST) if c in frame.columns}
    if own:
        frame = frame.rename(own)
    if extra is not None:
        frame = extra(frame, options)
    stamp = first_present(frame, time_fields)
    columns = []
    if stamp is not None:
        columns.append(parse_auto(stamp, zone or options.default_timezone).alias(schema.TIME))
    host = first_present(frame, host_fields)
    if host is not None:
        columns.append(host.alias(schema.HOST))
    return frame.with_columns(columns) if columns else frame


def head_text(head: bytes) -> str:
    """The first bytes of a file as text for sniffing (BOM and leading blanks removed)."""
    return decode(head[:8192]).lstrip("\ufeff \t\r\n")


def json_head_has(head: bytes, *markers: str, need: int = 1) -> bool:
    """Sniff helper: the file starts like JSON and at least ``need`` of ``markers`` appear early on."""
    text = head_text(head)
    return text.startswith(("{", "[")) and sum(m in text for m in markers) >= need


def dispatch(texts: pl.Series, options: ReadOptions, routes: Sequence[tuple[str | tuple[str, ...], Parser]],
             fallback: Parser | None = None) -> pl.DataFrame:
    """Parse a batch whose records come in several shapes (a vendor's CSV, JSON and CEF): each record
    goes to the first route whose regex finds a match in it (a route may give several regexes, any of
    which will do), the rest to ``fallback`` (or gets an ``_error``). Row order is kept."""
    n = len(texts)
    taken = pl.Series([False] * n)
    parts: list[pl.DataFrame] = []
    for pattern, parser in routes:
        mask = contains_any(texts, pattern).fill_null(False) & ~taken
        if mask.any():
            index = mask.arg_true()
            parts.append(parser(texts.filter(mask), options).with_columns(index.alias("_i")))
            taken = taken | mask
    if not taken.all():
        index = (~taken).arg_true()
        rest = texts.filter(~taken)
        if fallback is not None:
            part = fallback(rest, options)
        else:
            part = pl.DataFrame({ERROR: ["no known message shape"] * len(rest)})
        parts.append(part.with_columns(index.alias("_i")) if part.width else pl.DataFrame({"_i": index}))
    if not parts:
        return pl.DataFrame()
    if len(parts) == 1:  # one shape: the rows are in order already
        return parts[0].drop("_i")
    return pl.concat(parts, how="diagonal_relaxed").sort("_i").drop("_i")


def contains_any(texts: pl.Series, patterns: str | tuple[str, ...]) -> pl.Series:
    """Where any of ``patterns`` finds a match (null where the text is null): ``str.contains`` of their
    alternation, but each regex run on its own and only on the texts none before it matched (an
    alternation of an anchored regex and an unanchored one costs much more than the two, and the
    anchored form of a regex, tried first, spares the unanchored one most texts)."""
    if isinstance(patterns, str):
        return texts.str.contains(patterns)
    found = texts.str.contains(patterns[0])
    for pattern in patterns[1:]:
        missing = (~found).fill_null(False)
        if missing.all():
            found = texts.str.contains(pattern)
        elif missing.any():
            found = found.scatter(missing.arg_true(), texts.filter(missing).str.contains(pattern))
    return found


def coalesce(*columns: pl.Series) -> pl.Series:
    """Row by row, the first non-null value of the given Series (named after the first)."""
    return pl.select(pl.coalesce([c.alias(f"c{i}") for i, c in enumerate(columns)])).to_series().alias(columns[0].name)


def hstack(*frames: pl.DataFrame) -> pl.DataFrame:
    """Put frames of the same height side by side, skipping those with no column (a key=value pass
    that found no pair yields a frame with no column and no row)."""
    kept = [f for f in frames if f.width]
    if not kept:
        return pl.DataFrame()
    return pl.concat(kept, how="horizontal")


def groups(texts: pl.Series, pattern: str) -> pl.DataFrame:
    """Match ``pattern`` (with named groups) against every text: one column per group, null where it
    does not match."""
    return pl.DataFrame({"t": texts}).select(pl.col("t").str.extract_groups(pattern).alias("g")).unnest("g")


def groups_rest(texts: pl.Series, head: str, rest: str) -> pl.DataFrame:
    """``groups(texts, head + "(?P<rest>(?s:.*))$")`` (with ``rest`` the column's name): the groups of ``head``
    and, where it matches, the text after its match. The rest is cut off, not captured: a regex group
    costs time over every character it spans, and the rest is most of a line."""
    text = pl.col("t")
    return pl.DataFrame({"t": texts}).select(
        text.str.extract_groups(head).alias("g"),
        pl.when(text.str.contains(head)).then(text.str.replace(f"^(?s:.*?)(?:{head})", "")).alias(rest),
    ).unnest("g")


def joined_lines(texts: pl.Series) -> bytes:
    """``"\\n".join(texts) + "\\n"`` as UTF-8 bytes (nulls read as empty), taken from the Arrow buffer of the
    texts with a line break each: no Python string per text (for readers that take a whole file, like CSV)."""
    if len(texts) == 0:
        return b""
    lines = pl.select(pl.lit(texts.fill_null("")).cast(pl.Utf8) + "\n").to_series().to_arrow()
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.type != pa.large_string():
        lines = lines.cast(pa.large_string())
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return bytes(data.slice(int(bounds[0]), int(bounds[-1] - bounds[0])).to_pybytes())


def nulls(n: int, name: str = "", dtype: pl.DataType | type[pl.DataType] = pl.Utf8) -> pl.Series:
    """A column of ``n`` nulls (made at once: building one from a Python list costs a call per row)."""
    return pl.repeat(None, n, dtype=dtype, eager=True).alias(name)


def error_where(bad: pl.Series, reason: str) -> pl.Series:
    """An ``_error`` column: ``reason`` where ``bad`` is true (or null), null elsewhere."""
    return pl.select(pl.when(bad.fill_null(True)).then(pl.lit(reason)).otherwise(None)).to_series().alias(ERROR)
