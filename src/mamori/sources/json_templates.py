"""JSON records read by the template of their text: a service writes the events of one kind with the
same keys in the same order, compact, so such records differ only in their string values.

A template is a record taken apart (``template_of``): the text between its string values and the
columns its values go to, as ``batch.flatten`` names and renders them. A record is the template's when
the template's text with the record's own values put in is the record's text and those values hold no
escape and no control character: then ``orjson`` reads it as the template's record with those strings,
so its columns are the template's, in the same order, with the record's values. Records are cut with
one split (at their keys' ``":"``, else at their quotes), which costs a fraction of decoding them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from mamori.sources.batch import flatten, nulls

TEMPLATES = 8  # templates tried on one batch, at most (kinds of records)
SAMPLE_ROWS = 256  # rows picked across a batch that must be read by that many templates, or it is not tried
TEMPLATE_SHARE = 32  # a template reading less than 1/32 of the rows left: the batch is declined (1/8 in the sample)
_SLOT = "\x01"  # stands for a string value while a template is made (orjson writes it as ``\u0001``)


@dataclass(frozen=True)
class Template:
    """A record's text cut around its string values: ``texts[0]``, value 1, ``texts[1]``... (each value
    within its quotes); ``quotes[j]``, the place of value ``j`` among the pieces of the text cut at its
    quotes; ``columns``, each column's name and either the number of the value it holds or its text."""

    texts: tuple[str, ...]
    quotes: tuple[int, ...]
    columns: tuple[tuple[str, int | str | None], ...]


def template_of(text: str, accept: Callable[[dict[str, Any]], str | None] | None = None) -> Template | None:
    """The template of a record, or None when the record is not one ``orjson`` writes back as it is
    (spaces, escapes, a key given twice, numbers written otherwise...), holds a name twice once flattened,
    has no column, or is one ``accept`` refuses."""
    if "\\" in text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict or orjson.dumps(value).decode() != text or (accept and accept(value)):
        return None
    flat: dict[str, str | None] = {}
    flatten(value, "", flat)
    marked: dict[str, str | None] = {}
    count = _mark(value, "", marked)
    if not flat or list(flat) != list(marked) or count != sum(v == _SLOT for v in marked.values()):
        return None  # a column reached two ways (``a.b`` and ``a`` holding ``b``)
    texts = orjson.dumps(_marked_copy(value)).decode().split("\\u0001")
    if len(texts) != count + 1:
        return None
    quotes, seen = [], 0
    for part in texts[:-1]:
        seen += part.count('"')
        quotes.append(seen)
    slots = iter(range(count))
    columns = tuple((name, next(slots) if marked[name] == _SLOT else flat[name]) for name in flat)
    return Template(tuple(texts), tuple(quotes), columns)


def _mark(value: dict[str, Any], prefix: str, out: dict[str, str | None]) -> int:
    """``flatten``'s names, each string value (outside lists) written as ``_SLOT``; the count of those."""
    count = 0
    for key, item in value.items():
        name = prefix + key
        if type(item) is dict and item:
            count += _mark(item, name + ".", out)
        elif type(item) is str:
            out[name] = _SLOT
            count += 1
        else:
            out[name] = ""
    return count


def _marked_copy(value: dict[str, Any]) -> dict[str, Any]:
    """The record with each string value (outside lists) made ``_SLOT``."""
    return {key: _marked_copy(item) if type(item) is dict else _SLOT if type(item) is str else item
            for key, item in value.items()}


_MEMBER = '":"'  # a key's closing quote, the colon and a string value's opening quote (compact JSON)


def template_rows(texts: pl.Series, template: Template) -> tuple[pl.Series, list[pl.Series]]:
    """The rows of ``texts`` that are ``template``'s records, and their string values, one Series per value.
    Every string value of a template follows its key's ``":"``: a row is cut at its first ``":"`` into as
    many pieces as the template has values and one (the last keeps the rest); it is the template's when
    its first piece is the template's text up to the first value and each other piece is a value holding
    no quote followed by the template's text up to the next ``":"`` (or the end). Then the row is that
    text with those values put in: four times fewer pieces than cutting at every quote. A template with a
    ``":"`` anywhere else (a list of objects) is read by ``_rows_by_quotes``. (The caller has
    made sure no text holds a backslash or a control character, so no value needs looking into further.)"""
    texts_of = template.texts
    count = len(template.quotes)
    after = [text[: -len(_MEMBER)] for text in texts_of[1:-1]] + [texts_of[-1]]  # the text after each value
    if not count or _MEMBER in texts_of[-1] or not all(after) or any(
            text.find(_MEMBER) != len(text) - len(_MEMBER) for text in texts_of[:-1]):
        return _rows_by_quotes(texts, template)  # a ``":"`` elsewhere (in a list): cut where no value is
    cut = pl.DataFrame({"t": texts}).select(pl.col("t").str.split_exact(_MEMBER, count).alias("p")).unnest("p")
    names = cut.columns
    values = [pl.col(names[j + 1]).str.head(-len(after[j])).alias(str(j)) for j in range(count)]
    checks = [(pl.col(names[0]) == texts_of[0][: -len(_MEMBER)]).alias("_first"),
              *[pl.col(names[j + 1]).str.ends_with(after[j]).alias(f"_after{j}") for j in range(count)]]
    found = cut.select(*values, *checks)
    fits = pl.all_horizontal([*[pl.col(c.meta.output_name()) for c in checks],
                              *[~pl.col(str(j)).str.contains('"', literal=True) for j in range(count)]])
    ok = found.select(fits.fill_null(False)).to_series()
    kept = found.select([str(j) for j in range(count)])
    if not ok.all():
        kept = kept.filter(ok)
    return ok.arg_true(), kept.get_columns()


def _rows_by_quotes(texts: pl.Series, template: Template) -> tuple[pl.Series, list[pl.Series]]:
    """``template_rows`` for any template: rows cut at their quotes.
    A row is cut at its first quotes into as many pieces as the template's text has (the last piece keeps
    the rest): it is the template's when every piece between two values is the template's own piece (so it
    has the template's quotes, no more), and its values are the pieces in between. Comparing pieces costs
    less than putting the record's text back together and comparing that. The caller has made sure no text
    holds a backslash or a control character (``template_fields``), so no value needs looking into."""
    pieces = "".join(template.texts).split('"')  # the template's text with its values empty, cut at quotes
    slots = set(template.quotes)
    cut = pl.DataFrame({"t": texts}).select(pl.col("t").str.split_exact('"', len(pieces) - 1).alias("p")).unnest("p")
    names = cut.columns
    fits = pl.all_horizontal([pl.col(names[i]) == piece for i, piece in enumerate(pieces) if i not in slots])
    ok = cut.select(fits.fill_null(False)).to_series()
    values = cut.select([names[q] for q in template.quotes])
    if not ok.all():
        values = values.filter(ok)
    return ok.arg_true(), values.get_columns()


def template_fields(texts: pl.Series, accept: Callable[[dict[str, Any]], str | None] | None = None
                    ) -> pl.DataFrame | None:
    """``batch.json_fields(texts, accept)`` for a batch whose records are all those of a few templates
    (``TEMPLATES``; each made of the first record no earlier template reads), or None: a batch holding a
    backslash, a control character or a null, a record no template reads, or a kind of record seldom met.
    Rows picked across the batch are tried first, so that a batch of many kinds costs little more than that
    to decline."""
    n = len(texts)
    if n == 0 or texts.null_count() or _holds_escape_or_control(texts):
        return None
    if n > SAMPLE_ROWS and _read_by_templates(texts.gather_every(n // SAMPLE_ROWS), accept, TEMPLATES) is None:
        return None
    return _read_by_templates(texts, accept, TEMPLATE_SHARE)


def _holds_escape_or_control(texts: pl.Series) -> bool:
    """Whether a text holds a backslash or a control character (a byte below 0x20), read off the Arrow
    buffer of the texts at once. No template reads such a record: ``orjson`` writes neither as it is
    (a control character in a string is escaped, and none is written between tokens), so a batch
    holding one would be declined anyway, after trying its templates."""
    array = texts.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[array.offset: array.offset + len(array) + 1]
    held = np.frombuffer(data, dtype=np.uint8)[int(bounds[0]): int(bounds[-1])] if data is not None else None
    return held is not None and len(held) > 0 and bool((held < 0x20).any() or (held == 0x5C).any())


Part = tuple[pl.Series, Template, list[pl.Series]]  # rows a template reads, the template, their string values


def _read_by_templates(texts: pl.Series, accept: Callable[[dict[str, Any]], str | None] | None, share: int
                       ) -> pl.DataFrame | None:
    """The columns of ``texts`` read template by template, or None when a record is read by none or a
    template reads less than ``1/share`` of the rows left (a batch of many kinds: declined early)."""
    n = len(texts)
    left = pl.repeat(True, n, eager=True)  # rows no template has read
    parts: list[Part] = []
    for _ in range(TEMPLATES):
        remaining = int(left.sum())
        row = int(left.arg_true()[0])
        template = template_of(str(texts[row]), accept)
        if template is None:
            return None
        rows, values = template_rows(texts if not parts else texts.filter(left), template)
        if len(rows) * share < remaining:
            return None  # a kind seldom met: more would follow, each template costing a pass
        parts.append((rows if not parts else left.arg_true().gather(rows), template, values))
        left = left.scatter(parts[-1][0], False)
        if not left.any():
            return _columns(n, parts)
    return None


def _columns(n: int, parts: list[Part]) -> pl.DataFrame:
    """The frame of a batch every row of which a template read: a column per name, in the order names are
    first met (by row, then by place in the row), each value in its row."""
    found: dict[str, tuple[list[pl.Series], list[pl.Series], tuple[int, int]]] = {}  # rows, values, place
    for rows, template, values in parts:
        first = int(rows[0])
        for place, (name, source) in enumerate(template.columns):
            value = values[source] if isinstance(source, int) else pl.repeat(source, len(rows), dtype=pl.Utf8,
                                                                              eager=True)
            read_by, values_of, where = found.get(name, ([], [], (first, place)))
            found[name] = ([*read_by, rows], [*values_of, value], min(where, (first, place)))
    columns = []
    for name, (read_by, values_of, where) in found.items():
        if len(read_by) == 1 and len(read_by[0]) == n:  # every row, in order
            column = values_of[0].alias(name)
        else:
            column = nulls(n, name).scatter(pl.concat(read_by), pl.concat(values_of))
        columns.append((where, column))
    return pl.DataFrame([column for _, column in sorted(columns, key=lambda item: item[0])])
