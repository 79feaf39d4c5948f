"""Which raw records hold any of a rule group's keywords, in any ASCII case.

Keyword (field-less) rules search the whole raw record, a kilobyte or more per Windows event, and
a group spanning every Windows event (Mimikatz keywords) searches every record of every batch. A
case-insensitive multi-pattern search over that much text runs at a few hundred MB/s; a
case-sensitive search for a few dozen short strings runs at several GB/s (SIMD). So the search is
done in two steps that together give exactly the case-insensitive answer:

1. a case-sensitive pass for every case spelling of a short window of each keyword (the window
   with the fewest letters, so the spellings are few): any record holding a keyword in some case
   holds that keyword's window in one of those spellings;
2. the case-insensitive search, on the few records the first pass kept.

When the spellings would be too many for the fast search (large keyword sets), the
case-insensitive search runs on every record, as before.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np
import polars as pl

WINDOWS = (4, 3)  # characters of each keyword the first pass looks for: the longest that fits
MAX_SPELLINGS = 64  # beyond this many strings the fast (SIMD) search gives way to a slower one


def raw_holding(raw: pl.Series, needles: tuple[str, ...]) -> np.ndarray:
    """Whether each record holds one of ``needles`` in any ASCII case (nulls hold nothing)."""
    if not needles or not len(raw):
        return np.zeros(len(raw), dtype=bool)
    needles = essential_needles(needles)
    prefilter = window_pattern(needles)
    if prefilter is None:
        return _holding_any_case(raw, needles)
    maybe = raw.str.contains(prefilter).fill_null(False).to_numpy()
    candidates = np.flatnonzero(maybe)
    out = np.zeros(len(raw), dtype=bool)
    if len(candidates):
        out[candidates] = _holding_any_case(raw.gather(candidates), needles)
    return out


def _holding_any_case(raw: pl.Series, needles: tuple[str, ...]) -> np.ndarray:
    held: np.ndarray = raw.str.contains_any(list(needles), ascii_case_insensitive=True).fill_null(False).to_numpy()
    return held


@lru_cache(maxsize=256)
def essential_needles(needles: tuple[str, ...]) -> tuple[str, ...]:
    """The needles without those holding another needle: a record holding ``\\\\mimilib.dll`` (the
    JSON spelling) holds ``\\mimilib.dll`` too, so "holds one of them" keeps its answer, and fewer
    needles leave room for longer, rarer windows in the first pass."""
    unique = sorted(set(needles), key=len)
    kept: list[str] = []
    for needle in unique:
        if not any(shorter in needle for shorter in kept):
            kept.append(needle)
    return tuple(sorted(kept))


@lru_cache(maxsize=256)
def window_pattern(needles: tuple[str, ...]) -> str | None:
    """A case-sensitive regular expression matching every case spelling of each needle's window
    (the longest window whose spellings stay few enough), or None when even the shortest gives too
    many (or a needle is empty: nothing to filter on)."""
    if "" in needles:
        return None
    for width in WINDOWS:
        spellings: set[str] = set()
        for needle in needles:
            spellings |= case_spellings(_window(needle, width))
            if len(spellings) > MAX_SPELLINGS:
                break
        else:
            return "|".join(re.escape(s) for s in sorted(spellings))
    return None


def _window(needle: str, width: int) -> str:
    """The ``width``-character piece of ``needle`` with the fewest ASCII letters (whole if shorter)."""
    if len(needle) <= width:
        return needle
    pieces = (needle[i : i + width] for i in range(len(needle) - width + 1))
    return min(pieces, key=lambda piece: sum(_is_letter(c) for c in piece))


def case_spellings(text: str) -> set[str]:
    """Every spelling of ``text`` that differs only in the case of its ASCII letters."""
    options = [(c.lower(), c.upper()) if _is_letter(c) else (c,) for c in text]
    return {"".join(chosen) for chosen in itertools.product(*options)}


def _is_letter(character: str) -> bool:
    return character.isascii() and character.isalpha()
