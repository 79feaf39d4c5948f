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
    wide = pl.DataFrame([column for column, _ in _key_columns(long, n)])
    return unquote_columns(wide) if unquote else wide


def _key_columns(long: pl.DataFrame, n: int) -> list[tuple[pl.Series, int]]:
    """One full-height column per key of ``long`` (pairs already filtered, row by row in order), the
    first value of a row winning, in the order the keys are first met; each with the row it is first
    met in."""
    columns = []
    # One part per key, its rows in order: a repeated key's later values follow its first one.
    for (key,), part in long.partition_by("key", maintain_order=True, as_dict=True).items():
        rows = part["_r"]
        if rows.n_unique() != len(rows):
            first = rows.is_first_distinct()
            part, rows = part.filter(first), rows.filter(first)
        columns.append((nulls(n, str(key)).scatter(rows, part["value"]), int(rows[0])))
    return columns


def unquote_columns(wide: pl.DataFrame, *, whole: bool = False) -> pl.DataFrame:
    """``wide`` with its ``"..."`` values (two bytes at least) unquoted, then ``\\"`` and ``\\\\`` unescaped.

    Only the columns holding a quoted value are touched, and the escapes only looked for in the columns
    holding a backslash (by position: a key may read as a column pattern, like ``*``). ``whole``: every
    value that starts with a quote is known to be a whole quoted value (no need to look at its end)."""
    if wide.width == 0:
        return wide
    quoted_any = wide.select(pl.all().str.starts_with('"').any()).row(0)
    quoted = [i for i, any_quoted in enumerate(quoted_any) if any_quoted]
    if not quoted:
        return wide
    escapes = wide.select(pl.nth(quoted).str.contains("\\", literal=True).any()).row(0)
    for i, escaped in zip(quoted, escapes, strict=True):
        wide.replace_column(i, wide.to_series(i).to_frame("v").select(_unquote(pl.col("v"), escaped, whole))
                            .to_series().alias(wide.columns[i]))
    return wide


def _unquote(v: pl.Expr, escapes: bool = True, whole: bool = False) -> pl.Expr:
    """``v`` with ``"..."`` values unquoted and, when ``escapes`` (the column holds a backslash), unescaped
    (values not so quoted are kept); ``whole`` as for ``unquote_columns``."""
    inner = v.str.head(-1).str.tail(-1)  # where used, the first and last characters are the quotes
    unescaped = pl.when(inner.str.contains("\\", literal=True)).then(
        inner.str.replace_all('\\"', '"', literal=True).str.replace_all("\\\\", "\\", literal=True)
    ).otherwise(inner) if escapes else inner
    quoted = v.str.starts_with('"') if whole else v.str.starts_with('"') & v.str.ends_with('"') & (
        v.str.len_bytes() >= 2)
    return pl.when(quoted).then(unescaped).otherwise(v)


def parse_kv(texts: pl.Series, pattern: str = QUOTED_PAIR, *, commas: bool = True) -> pl.DataFrame:
    """Parse ``key=value`` messages; with ``commas``, a comma before ``key=`` also separates pairs
    (old FortiGate ``date=...,time=...``)."""
    column = texts.cast(pl.Utf8)
    if commas:
        with_commas = column.str.contains(r'^\s*[\w.\-]+=[^\s"]*,[\w.\-]+=')
        if with_commas.any():
            column = pl.select(
                pl.when(with_commas).then(column.str.replace_all(r',([A-Za-z_][\w.\-]*=)', " $1")).otherwise(column)
            ).to_series()
    if pattern == QUOTED_PAIR:
        return quoted_pairs_frame(column)
    return pairs_frame(column.str.extract_all(pattern))


VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'  # the value part of QUOTED_PAIR
TEMPLATE_SAMPLE = 64  # rows that tell whether the first row's keys are worth the fast path
_KEY_SPECIAL = str.maketrans({".": r"\.", "-": r"\-"})


def quoted_pairs_frame(column: pl.Series) -> pl.DataFrame:
    """``pairs_frame(column.str.extract_all(QUOTED_PAIR))``, faster for the rows that are the first row's
    pairs again (the same keys in the same order, one space apart: a device's lines of one kind).

    Those rows are picked with one regex made of the first row's keys and cut at their ``=`` with a plain
    split, which costs much less than gathering each pair with the pair regex; a row whose values hold an
    ``=`` of their own, and every other row, takes the pair regex. Columns, their order and values are
    the same either way."""
    keys = _template_keys(column)
    if keys is None:
        return pairs_frame(column.str.extract_all(QUOTED_PAIR))
    template = "^" + " ".join(k.translate(_KEY_SPECIAL) + "=" + VALUE for k in keys) + "$"
    fits = column.str.contains(template).fill_null(False)
    if not fits.any():
        return pairs_frame(column.str.extract_all(QUOTED_PAIR))
    split = column.str.split("=")
    fast = fits & (split.list.len() == len(keys) + 1).fill_null(False)  # no value holds an "=" of its own
    if not fast.any():
        return pairs_frame(column.str.extract_all(QUOTED_PAIR))
    every = bool(fast.all())
    pieces = pl.DataFrame({"p": split if every else split.filter(fast)}).select([
        # piece i is value i, a space and key i + 1 (the last piece the last value)
        (pl.col("p").list.get(i + 1).str.head(-(len(keys[i + 1]) + 1)) if i + 1 < len(keys)
         else pl.col("p").list.get(i + 1)).alias(str(i))
        for i in range(len(keys))
    ])
    slow = ~fast
    rest = None
    if not every:
        exploded = (pl.DataFrame({"kv": column.filter(slow).str.extract_all(QUOTED_PAIR), "_r": slow.arg_true()})
                    .explode("kv").drop_nulls("kv"))
        split = exploded["kv"].str.splitn("=", 2)
        rest = pl.DataFrame({"_r": exploded["_r"], "key": split.struct.field("field_0"),
                             "value": split.struct.field("field_1")})
    # a value of a row read fast that starts with a quote is a whole quoted value (the template's ``VALUE``)
    return unquote_columns(merge_fast_rows(keys, pieces.get_columns(), fast, rest), whole=every)


def merge_fast_rows(keys: list[str], values: list[pl.Series], fast: pl.Series,
                    rest: pl.DataFrame | None) -> pl.DataFrame:
    """The frame ``pairs_frame`` gives for a batch read two ways: the rows of ``fast`` (their values of
    ``keys``, one Series per key, in the order of those rows) and the other rows' pairs ``rest`` (``_r``,
    ``key``, ``value``, as ``widen`` takes them). A key's column takes its values from both; the columns
    come in the order their keys are first met, row by row."""
    n = len(fast)
    rows = fast.arg_true()
    every = len(rows) == n
    first = int(rows[0])
    found: dict[str, tuple[pl.Series, tuple[int, int]]] = {
        key: (column.alias(key) if every else nulls(n, key).scatter(rows, column), (first, i))
        for i, (key, column) in enumerate(zip(keys, values, strict=True))
    }
    if rest is not None:
        rest = rest.filter(pl.col("value").is_not_null() & (pl.col("key") != ""))
        for position, (column, row) in enumerate(_key_columns(rest, n) if rest.height else []):
            key = column.name
            if key in found:  # rows of the two kinds never overlap
                kept, place = found[key]
                found[key] = (kept.fill_null(column), min(place, (row, position)))
            else:
                found[key] = (column, (row, position))
    # keys in the order first met: by row, then by place in the row (rows are of one kind only)
    return pl.DataFrame([column for column, _ in sorted(found.values(), key=lambda item: item[1])])


def _template_keys(column: pl.Series) -> list[str] | None:
    """The keys of the first non-null row when it is pairs only (one space apart, each key once) and at
    least half of the first rows hold those pairs again; else None."""
    sample = column.head(TEMPLATE_SAMPLE).drop_nulls()
    if len(sample) == 0:
        return None
    line = str(sample[0])
    pairs = pl.Series([line]).str.extract_all(QUOTED_PAIR)[0].to_list()
    keys = [pair.split("=", 1)[0] for pair in pairs]
    if not pairs or " ".join(pairs) != line or len(set(keys)) != len(keys):
        return None
    template = "^" + " ".join(k.translate(_KEY_SPECIAL) + "=" + VALUE for k in keys) + "$"
    if int(sample.str.contains(template).sum()) * 2 < len(sample):
        return None
    return keys


def parse_cef_extension(extension: pl.Series) -> pl.DataFrame:
    """Parse CEF/ArcSight extensions: ``key=value`` where a value runs to the next `` key=`` and
    ``\\=``, ``\\\\``, ``\\n`` are escapes; ``csNLabel=Name`` pairs stay as sent (mapping files alias them)."""
    frame = _cef_pairs(extension.cast(pl.Utf8))
    if frame.width == 0:
        return frame
    escaped = frame.select(pl.all().str.contains("\\", literal=True).any()).row(0)
    return frame.select([
        pl.col(c).str.replace_all(r"\\=", "=").str.replace_all(r"\\n", "\n").str.replace_all(r"\\r", "\r")
        .str.replace_all(r"\\\\", "\\").str.strip_chars_end()
        if has_escape else pl.col(c).str.strip_chars_end()  # the escapes need a backslash: skip the columns without
        for c, has_escape in zip(frame.columns, escaped, strict=True)
    ])


CEF_MARKER = r"(?:^|\s+)([A-Za-z_][\w.\-\[\]]*)="  # where a CEF extension pair starts
_CEF_KEY_SPECIAL = str.maketrans({".": r"\.", "-": r"\-", "[": r"\[", "]": r"\]"})


def _cef_long(column: pl.Series, rows: pl.Series) -> pl.DataFrame:
    """The pairs of CEF extensions (``rows`` their row numbers) as ``_r``, ``key``, ``value``: each marker
    (a key after a blank, or at the start) starts a part; the parts holding an ``=`` are the pairs."""
    marked = column.str.replace_all(CEF_MARKER, SEPARATOR + "${1}=")
    # filtered once exploded: cheaper than a filter inside each list
    exploded = pl.DataFrame({"kv": marked.str.split(SEPARATOR), "_r": rows}).explode("kv").filter(
        pl.col("kv").str.contains("=", literal=True))
    split = exploded["kv"].str.splitn("=", 2)
    return pl.DataFrame({"_r": exploded["_r"], "key": split.struct.field("field_0"),
                         "value": split.struct.field("field_1")})


def _cef_pairs(column: pl.Series) -> pl.DataFrame:
    """CEF extension pairs to columns (values not yet unescaped, perhaps with blanks at their end).

    The extensions that are the first one's keys again, each key once and no ``=`` but theirs (a regex
    made of those keys, a count of markers and a split at ``=`` tell), are cut at their ``=`` with a plain
    split: a value is then its piece less the next key (the blanks before that key are left at its end,
    for the caller strips every value's end). The other extensions are marked and split at the markers."""
    n = len(column)
    keys = _cef_template_keys(column)
    fast = None
    if keys is not None:
        template = "^" + r"\s+".join(k.translate(_CEF_KEY_SPECIAL) + "=(?s:.*?)" for k in keys) + "$"
        pieces = column.str.split("=")
        fast = (column.str.contains(template) & (column.str.count_matches(CEF_MARKER) == len(keys))
                & (pieces.list.len() == len(keys) + 1)).fill_null(False)
    if keys is None or fast is None or not fast.any():  # (``fast`` is None just when ``keys`` is)
        long = _cef_long(column, pl.int_range(n, eager=True, dtype=pl.UInt32))
        return widen(long, n, unquote=False)
    every = bool(fast.all())
    values = pl.DataFrame({"p": pieces if every else pieces.filter(fast)}).select([
        # piece i is value i, blanks and key i + 1 (the last piece the last value)
        (pl.col("p").list.get(i + 1).str.head(-len(keys[i + 1])) if i + 1 < len(keys)
         else pl.col("p").list.get(i + 1)).alias(str(i))
        for i in range(len(keys))
    ]).get_columns()
    slow = ~fast
    rest = None if every else _cef_long(column.filter(slow), slow.arg_true())
    return merge_fast_rows(keys, values, fast, rest)


def _cef_template_keys(column: pl.Series) -> list[str] | None:
    """The keys of the first non-null CEF extension when it starts with a pair and holds each key once,
    and at least half of the first extensions hold those keys again; else None."""
    sample = column.head(TEMPLATE_SAMPLE).drop_nulls()
    if len(sample) == 0:
        return None
    line = str(sample[0])
    keys = _cef_long(sample.head(1), pl.Series([0], dtype=pl.UInt32))["key"].to_list()
    if not keys or len(set(keys)) != len(keys) or "" in keys or not line.startswith(keys[0] + "="):
        return None
    template = "^" + r"\s+".join(k.translate(_CEF_KEY_SPECIAL) + "=(?s:.*?)" for k in keys) + "$"
    if int(sample.str.contains(template).sum()) * 2 < len(sample):
        return None
    return keys


def split_kv(texts: pl.Series, pair_separator: str, key_value_separator: str = "=") -> pl.DataFrame:
    """Parse messages whose pairs are split by one known separator (LEEF's tab, ``|`` or ``^``)."""
    lists = texts.cast(pl.Utf8).str.split(pair_separator)
    if key_value_separator != "=":
        lists = lists.list.eval(pl.element().str.replace(key_value_separator, "=", literal=True))
    return pairs_frame(lists, unquote=False)
