"""JSON records read by the template of their text: a service writes the events of one kind with the
same keys in the same order, compact, so such records differ only in their string values.

A template is a record taken apart (``template_of``): the text between its string values and the
columns its values go to, as ``batch.flatten`` names and renders them. A record is the template's when
the template's text with the record's own values put in is the record's text and those values hold no
escape and no control character: then ``orjson`` reads it as the template's record with those strings,
so its columns are the template's, in the same order, with the record's values. Records are cut at
their quotes with one split, which costs a fraction of decoding them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

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


def template_rows(texts: pl.Series, template: Template) -> tuple[pl.Series, list[pl.Series]]:
    """The rows of ``texts`` that are ``template``'s records, and their string values, one Series per value."""
    count = len(template.quotes)
    frame = pl.DataFrame({"t": texts}).with_columns(pl.col("t").str.split('"').alias("p")).select(
        "t", *[pl.col("p").list.get(q, null_on_oob=True).alias(str(j)) for j, q in enumerate(template.quotes)])
    rebuilt = [pl.lit(template.texts[0])]
    for j in range(count):
        rebuilt += [pl.col(str(j)), pl.lit(template.texts[j + 1])]
    fits = pl.concat_str(rebuilt) == pl.col("t")
    if count:  # a string holding a control character is not JSON (no backslash in the batch: no escape)
        fits = fits & ~pl.concat_str([pl.col(str(j)) for j in range(count)]).str.contains(r"[\x00-\x1f]")
    ok = frame.select(fits.fill_null(False)).to_series()
    kept = frame.filter(ok)
    return ok.arg_true(), [kept[str(j)] for j in range(count)]


def template_fields(texts: pl.Series, accept: Callable[[dict[str, Any]], str | None] | None = None
                    ) -> pl.DataFrame | None:
    """``batch.json_fields(texts, accept)`` for a batch whose records are all those of a few templates
    (``TEMPLATES``; each made of the first record no earlier template reads), or None: a batch holding a
    backslash or a null, a record no template reads, or a kind of record seldom met. Rows picked across
    the batch are tried first, so that a batch of many kinds costs little more than that to decline."""
    n = len(texts)
    if n == 0 or texts.null_count() or texts.str.contains("\\", literal=True).any():
        return None
    if n > SAMPLE_ROWS and _read_by_templates(texts.gather_every(n // SAMPLE_ROWS), accept, TEMPLATES) is None:
        return None
    return _read_by_templates(texts, accept, TEMPLATE_SHARE)


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
