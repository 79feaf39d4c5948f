"""Regular-expression answers remembered across batches: the same bits as running the pattern on
every value, the pattern run on the values no batch met before only, the memory bounded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mamori.detect.sigma import evaluate, plan
from mamori.detect.sigma.answer_memo import AnswerMemo
from mamori.detect.sigma.evaluate import BatchEvaluator, LiteralBank
from mamori.detect.sigma.plan import REGEX

PATTERN = r"(?i)\\(?:cmd|powershell)\.exe$"


def _fresh(values: pa.Array) -> np.ndarray:
    return evaluate._regex_bits(values, PATTERN, 0)


def test_remembered_answers_give_the_bits_a_fresh_run_gives() -> None:
    memo = AnswerMemo()
    batches = [
        ["C:\\Windows\\cmd.exe", "C:\\x\\notepad.exe", None, "c:\\POWERSHELL.EXE"],
        ["c:\\POWERSHELL.EXE", "", "C:\\Windows\\cmd.exe", "C:\\y\\cmd.exe", None],  # some met before
        ["C:\\x\\notepad.exe"],
    ]
    for texts in batches:
        values = pa.array(texts, type=pa.large_string())
        assert memo.bits(PATTERN, values, _fresh).tolist() == _fresh(values).tolist()


def test_the_pattern_runs_only_on_values_no_batch_met_before() -> None:
    memo = AnswerMemo()
    seen: list[list[str | None]] = []

    def counted(values: pa.Array) -> np.ndarray:
        seen.append(values.to_pylist())
        return _fresh(values)

    memo.bits(PATTERN, pa.array(["a\\cmd.exe", "b.exe"]), counted)
    bits = memo.bits(PATTERN, pa.array(["b.exe", "c\\cmd.exe", "a\\cmd.exe"]), counted)
    assert bits.tolist() == [False, True, True]
    assert seen == [["a\\cmd.exe", "b.exe"], ["c\\cmd.exe"]]
    memo.bits(PATTERN, pa.array(["a\\cmd.exe", "c\\cmd.exe"]), counted)
    assert len(seen) == 2  # every value known: the pattern did not run


def test_the_memory_starts_over_past_its_bound_and_still_answers() -> None:
    memo = AnswerMemo(limit=20, longest=8)
    first = pa.array(["x\\cmd.exe", "0123456789"])  # 9 and 10 characters: too long to keep
    assert memo.bits(PATTERN, first, _fresh).tolist() == [True, False]
    many = pa.array([f"{i:07d}" for i in range(10)])  # 70 characters: past the bound
    assert not memo.bits(PATTERN, many, _fresh).any()
    assert memo.budget.chars <= 70


def test_an_evaluator_answers_a_regex_test_alike_with_and_without_remembered_answers() -> None:
    import polars as pl

    frame = pl.DataFrame({"Image": ["C:\\Windows\\cmd.exe", None, "C:\\x\\a.exe", "c:\\POWERSHELL.EXE"] * 3})
    test = plan.Test("Image", REGEX, (r"\\(?:cmd|powershell)\.exe$", "i"), True)
    memo = AnswerMemo()
    expected = BatchEvaluator(frame, None, LiteralBank({})).test(test)
    for _ in range(3):  # later batches read the remembered answers
        got = BatchEvaluator(frame, None, LiteralBank({}), answers=memo).test(test)
        assert got is not None and expected is not None
        assert got.tolist() == expected.tolist() == [True, False, False, True] * 3
