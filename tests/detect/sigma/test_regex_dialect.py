"""Rule regular expressions run in Polars mean what RE2 (Arrow) makes of them: ASCII classes, plain
characters inside brackets, and every SigmaHQ pattern agreeing on real values."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from mamori_testing import shared_data

from mamori.detect.sigma import load_ruleset
from mamori.detect.sigma.engine import Detector
from mamori.detect.sigma.evaluate import polars_regex_bits
from mamori.detect.sigma.plan import GLOB, REGEX, plan_tests
from mamori.detect.sigma.regex_dialect import polars_pattern

ODD_VALUES = ["abc_123", "ＡＢＣ１２３", "日本語 テキスト", "tab\there", "nbsp\u00a0here", "é\u00e9É",
              "C:\\Windows\\x.exe", "a<b>c", "[x]", "line\nbreak", "", "1\u0663", "word-boundary ok", "ß SS"]


def _re2_bits(values: list[str], pattern: str) -> list[bool]:
    return pc.match_substring_regex(pa.array(values), pattern=pattern).to_pylist()  # type: ignore[no-any-return]


def _polars_bits(values: list[str], pattern: str) -> list[bool] | None:
    bits = polars_regex_bits(pa.array(values), pattern)
    return None if bits is None else bits.tolist()


@pytest.mark.parametrize("pattern", [r"\w+", r"^\w+$", r"\d", r"\s", r"\S+\s", r"\bok\b", r"\Bound", r"[\w]+$",
                                     r"[\d\s]", r"(?i)é", r"(?i)ss", r"\\Windows\\", r"a\<b", r"\[x\]",
                                     r"(?s)line.break", r"line.break", r"^$", r"[^\\]{1,3}$", r"[]x]", r"[^]a]",
                                     r"[[:alpha:]]+\d"])
def test_a_pattern_matches_the_same_values_in_polars_as_in_re2(pattern: str) -> None:
    assert _polars_bits(ODD_VALUES, pattern) == _re2_bits(ODD_VALUES, pattern)


@pytest.mark.parametrize("pattern", [r"[\W]", r"[a[b]]", r"[a&&b]", r"[a--b]", r"[a~~b]", "[abc", "abc\\"])
def test_a_pattern_with_no_faithful_polars_form_is_left_to_re2(pattern: str) -> None:
    assert polars_pattern(pattern) is None


def test_ascii_classes_are_spelled_out_for_polars() -> None:
    assert polars_pattern(r"\w\d\s\b[\w\-]") == r"(?-u:\w)[0-9][\t\n\f\r ](?-u:\b)[0-9A-Za-z_\x{2D}]"


def test_every_sigmahq_windows_regex_agrees_on_the_attack_samples_values() -> None:
    sigma = shared_data("sigmahq")
    samples = shared_data("evtx-attack-samples")
    from mamori.sources.evtx import read_evtx_files

    frames = [r.frame for r in read_evtx_files(sorted(samples.rglob("*.evtx")))]
    detector = Detector(load_ruleset([sigma / "rules" / "windows"]))
    tests = {t for group in detector.groups for plan in group.plans for t in plan_tests(plan)
             if t.kind in {REGEX, GLOB} and t.field is not None}
    checked = 0
    for test in sorted(tests, key=repr):
        values = sorted({v for f in frames if test.field in f.columns
                         for v in f.get_column(test.field).cast(str).drop_nulls().to_list()})[:300]
        values = values + ODD_VALUES
        if test.kind == GLOB:
            pattern, values = str(test.arg), [v.lower() for v in values]
        else:
            text, flags = test.arg
            pattern = f"(?{flags}){text}" if flags else text
        try:
            expected = _re2_bits(values, pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # RE2 refuses it: Python's re runs it, Polars never does
        got = _polars_bits(values, pattern)
        if got is not None:
            assert got == expected, pattern
            checked += 1
    assert checked > 250  # of the 400-odd regular expression and wildcard tests


def test_a_pattern_arrow_compiles_slowly_gives_the_same_bits_from_polars() -> None:
    from mamori.detect.sigma import evaluate

    pattern = r"(?:[Pp]rogram[Dd]ata|%[Aa]pp[Dd]ata%)\\[^\\]{1,256}$"
    values = ["C:\\ProgramData\\x.exe", "%appdata%\\a\\b", "%APPDATA%\\tool.exe", "日本\\ProgramData\\ファイル"]
    before = evaluate._regex_bits(pa.array(values), pattern, 0).tolist()
    evaluate._COMPILES_SLOWLY.add(pattern)
    try:
        assert evaluate._regex_bits(pa.array(values), pattern, 0).tolist() == before == [True, False, False, True]
    finally:
        evaluate._COMPILES_SLOWLY.discard(pattern)
