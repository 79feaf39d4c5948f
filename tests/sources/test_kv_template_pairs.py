"""The key=value fast paths for rows that repeat the first row's keys (``quoted_pairs_frame``, CEF
extensions) give exactly the frame of the slow path: the same columns in the same order, the same values."""

from __future__ import annotations

import random

import polars as pl
from polars.testing import assert_frame_equal

from mamori.sources.kv import QUOTED_PAIR, pairs_frame, parse_cef_extension, quoted_pairs_frame, unquote_columns


def _by_regex(lines: list[str | None]) -> pl.DataFrame:
    return pairs_frame(pl.Series(lines, dtype=pl.Utf8).str.extract_all(QUOTED_PAIR))


def _same(lines: list[str | None]) -> pl.DataFrame:
    fast = quoted_pairs_frame(pl.Series(lines, dtype=pl.Utf8))
    assert_frame_equal(fast, _by_regex(lines))
    return fast


def test_rows_repeating_the_first_rows_keys_read_as_by_the_pair_regex() -> None:
    frame = _same(['a=1 b="x y" c=', 'a=2 b="q" c=3', 'a=3 b="say \\"hi\\"" c=4'])
    assert frame.columns == ["a", "b", "c"]
    assert frame["b"].to_list() == ["x y", "q", 'say "hi"']
    assert frame["c"].to_list() == ["", "3", "4"]


def test_a_value_holding_an_equals_sign_is_read_whole() -> None:
    frame = _same(['url="http://h/?a=b" n=1', 'url="http://h/" n=2', 'url="x" n=3'])
    assert frame["url"].to_list() == ["http://h/?a=b", "http://h/", "x"]


def test_keys_first_met_in_other_rows_keep_their_place_in_the_column_order() -> None:
    frame = _same(['z=0 a=1', 'q=9 a=2 z=1', 'a=1 b=2', 'z=5 a="x=y"', 'z=1 a=2 extra=3', None, 'z=2 a=4'])
    assert frame.columns == ["z", "a", "q", "b", "extra"]


def test_a_first_row_that_is_not_read_fast_still_sets_the_column_order() -> None:
    _same(['k="a=b" m=1 n=2', 'n=1 k=2 m=3', 'k=1 m=2 n=3', 'k=4 m=5 n=6'])


def test_rows_with_other_spacing_quotes_or_junk_take_the_pair_regex() -> None:
    _same(['a=1 b=2', 'a=1  b=2', 'x a=1 b=2', 'a="1 b=2', 'a=1 b=2 ', 'a=1,b=2', 'a=1 b="2"x', 'a=1 b=2'])


def test_repeated_keys_and_keys_with_dots_and_dashes() -> None:
    _same(['k.x=1 k-y=2', 'k.x=1 k-y=2 k.x=3', 'kXx=1 k-y=2', 'k.x=5 k-y=6'])
    _same(['k=1 k=2', 'k=1 k=2', 'k=3 k=4'])  # the first row repeats a key: no fast path


def test_a_batch_of_nulls_or_without_pairs_gives_no_column() -> None:
    assert _same([None, None]).width == 0
    assert _same(["no pairs here", "none"]).width == 0


def test_random_lines_read_as_by_the_pair_regex() -> None:
    r = random.Random(11)
    keys = ["a", "b", "c.d", "e-f", "g"]
    values = ["1", "", '"x y"', '"a=b"', '"q\\"r"', "é", '"\\\\"', "x=y", '"', "p"]
    for _ in range(40):
        template = r.sample(keys, r.randint(1, len(keys)))
        lines: list[str | None] = []
        for _ in range(30):
            chosen = template if r.random() < 0.7 else r.sample(keys, r.randint(0, len(keys)))
            line = " ".join(f"{k}={r.choice(values)}" for k in chosen)
            lines.append(None if r.random() < 0.05 else line)
        _same(lines)


def test_unquote_columns_strips_quotes_and_escapes_only_of_quoted_values() -> None:
    wide = pl.DataFrame({"a": ['"x"', '"', '"a\\"b"', "plain", None], "*": ["1", "2", "3", "4", "5"]})
    out = unquote_columns(wide)
    assert out["a"].to_list() == ["x", '"', 'a"b', "plain", None]
    assert out["*"].to_list() == ["1", "2", "3", "4", "5"]


def _by_markers_only(column: pl.Series) -> pl.DataFrame:
    from mamori.sources import kv

    saved = kv.TEMPLATE_SAMPLE
    kv.TEMPLATE_SAMPLE = 0  # no sample: no template, every row through the markers
    try:
        return parse_cef_extension(column)
    finally:
        kv.TEMPLATE_SAMPLE = saved


def test_cef_extensions_repeating_the_first_ones_keys_read_as_by_the_markers() -> None:
    lines: list[str | None] = [
        "rt=1 src=10.0.0.1 msg=Policy Deny all cs1Label=Rule Name cs1=deny-1",
        "rt=2 src=10.0.0.2  msg=two  spaces\\n  cs1Label=x\tcs1=y ",
        "rt=3 src=10.0.0.3 msg=a=b cs1Label=x cs1=y",
        "rt=4 src=10.0.0.4 msg=has \\= escape cs1Label=x cs1=z",
        "rt=5 extra=1 src=1 msg=m cs1Label=l cs1=c",
        None,
        "junk rt=6 src=1 msg=m cs1Label=l cs1=c",
        "rt=7 src=1 msg=m cs1Label=l cs1=c\\\\",
    ]
    fast = parse_cef_extension(pl.Series(lines, dtype=pl.Utf8))
    assert_frame_equal(fast, _by_markers_only(pl.Series(lines, dtype=pl.Utf8)))
    assert fast.columns == ["rt", "src", "msg", "cs1Label", "cs1", "extra"]
    assert fast["msg"].to_list()[:4] == ["Policy Deny all", "two  spaces", "a=b", "has = escape"]


def test_random_cef_extensions_read_as_by_the_markers() -> None:
    r = random.Random(13)
    keys = ["rt", "src", "msg", "cs1Label", "a.b", "x[1]", "k-2"]
    values = ["1", "", "two words", "a=b", "é", "x\\=y", "t\\\\", "n\\n", "  ", "=", "-"]
    for _ in range(40):
        template = r.sample(keys, r.randint(1, len(keys)))
        lines: list[str | None] = []
        for _ in range(20):
            chosen = template if r.random() < 0.7 else r.sample(keys, r.randint(0, len(keys)))
            gap = " " if r.random() < 0.8 else r.choice(["  ", "\t", " \n "])
            line = gap.join(f"{k}={r.choice(values)}" for k in chosen)
            lines.append(None if r.random() < 0.05 else (line if r.random() < 0.9 else "junk " + line))
        column = pl.Series(lines, dtype=pl.Utf8)
        assert_frame_equal(parse_cef_extension(column), _by_markers_only(column))
