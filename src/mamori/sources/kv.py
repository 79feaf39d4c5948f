"""``key=value`` messages (FortiGate, Sophos, netfilter, CEF and LEEF extensions) to columns, in bulk.

Pairs are found with one regex pass over the column, exploded, and pivoted back to one row per
message, so no Python runs per line. Quoted values may hold spaces, ``=`` and escaped quotes.
"""

from __future__ import annotations

import polars as pl

from mamori.sources.batch import nulls

# key="quoted \"value\"" | key=bare  (FortiGate, Sophos, netfilter, Check Point)
QUOTED_PAIR = r'[A-Za-z_][\w.\-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
SEPARATOR = "\x1f"


def pairs_frame(pairs: pl.Series, *, unquote: bool = True) -> pl.DataFrame:
    """Pivot a column of lists of ``key=value`` strings into one Utf8 column per key (first one wins),
    the columns in the order their keys are first met.

    Quoted values lose their quotes and their ``\\"`` / ``\\\\`` escapes when ``unquote`` is set. A batch
    with no pair at all gives a frame with no column."""
    exploded = pl.DataFrame({"kv": pairs}).with_row_index("_r").explode("kv").drop_nulls("kv")
    split = exploded["kv"].str.splitn("=", 2)
    long = pl.DataFrame({"_r": exploded["_r"], "key": split.struct.field("field_0"),
                         "value": split.struct.field("field_1")})
    return widen(long, len(pairs), unquote=unquote)


def widen(long: pl.DataFrame, n: int, *, unquote: bool = True) -> pl.DataFrame:
    """``pairs_frame`` from pairs already split: ``_r`` (row number), ``key`` and ``value``, row by row in
    order; pairs with no value or an empty key are left out."""
    long = long.filter(pl.col("value").is_not_null() & (pl.col("key") != ""))
    if long.height == 0:
        return pl.DataFrame()
    columns = []
    # One part per key, its rows in order: a repeated key's later values follow its first one.
    for (key,), part in long.partition_by("key", maintain_order=True, as_dict=True).items():
        rows = part["_r"]
        if rows.n_unique() != len(rows):
            first = rows.is_first_distinct()
            part, rows = part.filter(first), rows.filter(first)
        columns.append(nulls(n, str(key)).scatter(rows, part["value"]))
    wide = pl.DataFrame(columns)
    if not unquote:
        return wide
    # ``"..."`` (two bytes at least) loses its quotes, then ``\"`` and ``\\`` their escape: only in the
    # columns holding a quoted value (by position: a key may read as a column pattern, like ``*``).
    quoted_any = wide.select(pl.all().str.starts_with('"').any()).row(0)
    for i, quoted in enumerate(quoted_any):
        if quoted:
            wide.replace_column(i, wide.to_series(i).to_frame("v").select(_unquote(pl.col("v"))).to_series()
                                .alias(wide.columns[i]))
    return wide


def _unquote(v: pl.Expr) -> pl.Expr:
    """``v`` with ``"..."`` values unquoted and unescaped (values not so quoted are kept)."""
    inner = v.str.strip_prefix('"').str.strip_suffix('"')
    unescaped = pl.when(inner.str.contains("\\", literal=True)).then(
        inner.str.replace_all('\\"', '"', literal=True).str.replace_all("\\\\", "\\", literal=True)
    ).otherwise(inner)
    quoted = v.str.starts_with('"') & v.str.ends_with('"') & (v.str.len_bytes() >= 2)
    return pl.when(quoted).then(unescaped).otherwise(v)


def parse_kv(texts: pl.Series, pattern: str = QUOTED_PAIR, *, commas: bool = True) -> pl.DataFrame:
    """Parse ``key=value`` messages; with ``commas``, a comma before ``key=`` also separates pairs
    (old FortiGate ``date=...,time=...``)."""
    column = texts.cast(pl.Utf8)
    if commas:
        column = pl.select(
            pl.when(column.str.contains(r'^\s*[\w.\-]+=[^\s"]*,[\w.\-]+='))
            .then(column.str.replace_all(r',([A-Za-z_][\w.\-]*=)', " $1"))
            .otherwise(column)
        ).to_series()
    return pairs_frame(column.str.extract_all(pattern))


def parse_cef_extension(extension: pl.Series) -> pl.DataFrame:
    """Parse CEF/ArcSight extensions: ``key=value`` where a value runs to the next `` key=`` and
    ``\\=``, ``\\\\``, ``\\n`` are escapes; ``csNLabel=Name`` pairs stay as sent (mapping files alias them)."""
    marked = extension.cast(pl.Utf8).str.replace_all(r"(?:^|\s+)([A-Za-z_][\w.\-\[\]]*)=", SEPARATOR + "${1}=")
    lists = marked.str.split(SEPARATOR).list.eval(pl.element().filter(pl.element().str.contains("=")))
    frame = pairs_frame(lists, unquote=False)
    if frame.width == 0:
        return frame
    escaped = frame.select(pl.all().str.contains("\\", literal=True).any()).row(0)
    return frame.select([
        pl.col(c).str.replace_all(r"\\=", "=").str.replace_all(r"\\n", "\n").str.replace_all(r"\\r", "\r")
        .str.replace_all(r"\\\\", "\\").str.strip_chars_end()
        if has_escape else pl.col(c).str.strip_chars_end()  # the escapes need a backslash: skip the columns without
        for c, has_escape in zip(frame.columns, escaped, strict=True)
    ])


def split_kv(texts: pl.Series, pair_separator: str, key_value_separator: str = "=") -> pl.DataFrame:
    """Parse messages whose pairs are split by one known separator (LEEF's tab, ``|`` or ``^``)."""
    lists = texts.cast(pl.Utf8).str.split(pair_separator)
    if key_value_separator != "=":
        lists = lists.list.eval(pl.element().str.replace(key_value_separator, "=", literal=True))
    return pairs_frame(lists, unquote=False)
