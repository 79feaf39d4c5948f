"""A batch joined for matching holds the stacked batches' rows, every column in one chunk."""

from __future__ import annotations

import polars as pl

from mamori.events.frame import concat_frames, joined_batch


def test_joined_batch_stacks_rows_like_concat_with_every_column_in_one_chunk() -> None:
    first = pl.DataFrame({"EventID": ["1", "4688"], "Image": ["a.exe", None]})
    second = pl.DataFrame({"EventID": ["7"], "ImageLoaded": ["b.dll"]})
    third = pl.DataFrame({"EventID": ["11"], "Image": ["c.exe"]})
    joined = joined_batch([first, second, third])
    assert joined.equals(concat_frames([first, second, third]))
    assert joined.n_chunks("all") == [1, 1, 1]
    assert joined.get_column("ImageLoaded").to_list() == [None, None, "b.dll", None]


def test_joined_batch_of_nothing_is_the_empty_batch() -> None:
    assert joined_batch([]).height == 0
