"""The two-step raw-record keyword search gives exactly the case-insensitive answer."""

from __future__ import annotations

import random

import numpy as np
import polars as pl

from mamori.detect.sigma.keyword_scan import (
    MAX_SPELLINGS,
    case_spellings,
    essential_needles,
    raw_holding,
    window_pattern,
)

NEEDLES = ("sekurlsa::", "kerberos::golden", "\\\\mimilib.dll", "kiwi legit printer", "a.b", "(x)", "ｍｉｍｉ",
           "gentilkiwi.com")


def _expected(raw: list[str | None], needles: tuple[str, ...]) -> np.ndarray:
    lowered = [n.lower() if n.isascii() else n for n in needles]
    return np.array([text is not None and any(n in _ascii_lower(text) for n in lowered) for text in raw])


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def test_keywords_are_found_in_any_ascii_case_and_nowhere_else() -> None:
    generator = random.Random(7)
    records: list[str | None] = [None, ""]
    for _ in range(2_000):
        needle = generator.choice(NEEDLES)
        spelled = "".join(c.upper() if generator.random() < 0.5 else c for c in needle)
        if generator.random() < 0.4:  # a near miss: one character dropped
            cut = generator.randrange(len(spelled))
            spelled = spelled[:cut] + spelled[cut + 1 :]
        records.append(f'{{"CommandLine":"cmd {spelled} /c","x":{generator.random()}}}')
    holding = raw_holding(pl.Series(records, dtype=pl.Utf8), NEEDLES)
    assert holding.tolist() == _expected(records, NEEDLES).tolist()
    assert 0 < holding.sum() < len(records)


def test_non_ascii_letters_keep_their_case() -> None:
    records = ["ｍｉｍｉ here", "ＭＩＭＩ here"]
    assert raw_holding(pl.Series(records), ("ｍｉｍｉ",)).tolist() == [True, False]


def test_spellings_cover_every_ascii_case_of_the_window() -> None:
    assert case_spellings("a:1b") == {"a:1b", "A:1b", "a:1B", "A:1B"}


def test_large_keyword_sets_fall_back_to_the_plain_search() -> None:
    many = tuple(f"keyword{i}word" for i in range(MAX_SPELLINGS))
    assert window_pattern(many) is None
    records = ["has KEYWORD3word", "has none"]
    assert raw_holding(pl.Series(records), many).tolist() == [True, False]


def test_an_empty_keyword_disables_the_prefilter() -> None:
    assert window_pattern(("", "abc")) is None


def test_needles_holding_another_needle_are_left_out_and_the_answer_kept() -> None:
    needles = ("\\\\mimilib.dll", "\\mimilib.dll", "sekurlsa::", "sekurlsa::logonpasswords", "kiwi")
    assert essential_needles(needles) == ("\\mimilib.dll", "kiwi", "sekurlsa::")
    records: list[str | None] = ['{"x":"C:\\\\MIMILIB.DLL"}', "SEKURLSA::LogonPasswords", "kiw", None, "KiWi"]
    assert raw_holding(pl.Series(records, dtype=pl.Utf8), needles).tolist() == [True, True, False, False, True]
