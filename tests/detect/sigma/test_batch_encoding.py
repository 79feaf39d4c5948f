"""How a batch's columns are encoded and its tests answered: a column null in most rows is encoded on
its non-null rows only, yet every test (null and the empty text told apart) gives the rows a dense
column gives, in the whole batch and in a rule group's subset; tests the screen rules out answer
nothing at once; field references compare only rows where both fields have a value; an OR of tests
on one field, folded over the distinct values, gives the rows of its tests one by one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from mamori.detect.sigma import plan
from mamori.detect.sigma.answer_memo import SeenBudget
from mamori.detect.sigma.evaluate import BatchEvaluator, LiteralBank, LiteralMatcher
from mamori.detect.sigma.plan import CONTAINS, ENDS, EQ, EXISTS, FIELDREF, NULL, REGEX, STARTS, POr, PTest
from mamori.detect.sigma.screen import Screen

# ten rows; "Sparse" holds values on three of them only (null elsewhere), "Dense" on all but two
SPARSE = [None, "C:\\Tools\\Evil.EXE", None, None, "", None, None, "c:\\tools\\evil.exe", None, None]
DENSE = ["x", "C:\\Tools\\Evil.EXE", "y", None, "", "z", "x", "c:\\tools\\evil.exe", None, "y"]
LITERALS = {("Sparse", False): ["\\evil.exe", "c:\\tools"], ("Dense", False): ["\\evil.exe", "c:\\tools"],
            ("Sparse", True): ["Evil"], ("Dense", True): ["Evil"]}

TESTS = [
    (EQ, frozenset({""}), False),
    (EQ, frozenset({"c:\\tools\\evil.exe"}), False),
    (CONTAINS, "\\evil.exe", False),
    (STARTS, "c:\\tools", False),
    (ENDS, "\\evil.exe", False),
    (CONTAINS, "Evil", True),
    (NULL, None, True),
    (EXISTS, True, True),
    (EXISTS, False, True),
    (REGEX, ("^c:.*exe$", "i"), True),
]


def _evaluator() -> BatchEvaluator:
    frame = pl.DataFrame({"Sparse": SPARSE, "Dense": DENSE}, schema={"Sparse": pl.Utf8, "Dense": pl.Utf8})
    return BatchEvaluator(frame, None, LiteralBank(LITERALS))


def _rows(bits: np.ndarray | None) -> list[int]:
    return [] if bits is None else np.flatnonzero(bits).tolist()


def _expected(values: list[str | None], kind: str, arg: object) -> list[int]:
    def holds(value: str | None) -> bool:
        if kind == NULL:
            return value is None or value == ""
        if kind == EXISTS:
            return (value is not None) == arg
        if value is None:
            return False
        if kind == EQ:
            return value.lower() in arg  # type: ignore[operator]
        if kind == CONTAINS:
            return str(arg) in value if arg == "Evil" else str(arg) in value.lower()
        if kind == STARTS:
            return value.lower().startswith(str(arg))
        if kind == ENDS:
            return value.lower().endswith(str(arg))
        return value.lower().startswith("c:") and value.lower().endswith("exe")

    return [i for i, value in enumerate(values) if holds(value)]


@pytest.mark.parametrize(("kind", "arg", "cased"), TESTS)
def test_a_column_null_in_most_rows_answers_every_test_as_a_dense_one_does(kind: str, arg: object,
                                                                           cased: bool) -> None:
    evaluator = _evaluator()
    for field, values in (("Sparse", SPARSE), ("Dense", DENSE)):
        assert _rows(evaluator.test(plan.Test(field, kind, arg, cased))) == _expected(values, kind, arg), field


@pytest.mark.parametrize(("kind", "arg", "cased"), TESTS)
def test_a_rule_groups_subset_reads_its_own_rows_of_a_sparse_column(kind: str, arg: object, cased: bool) -> None:
    index = np.array([1, 2, 4, 7, 9])
    for warm_whole_batch in (False, True):  # the subset reads the sparse codes, or the batch's codes
        evaluator = _evaluator()
        if warm_whole_batch:
            evaluator.test(plan.Test("Sparse", kind, arg, cased))
        subset = evaluator.subset(index)
        whole = _expected(SPARSE, kind, arg)
        expected = [position for position, row in enumerate(index.tolist()) if row in whole]
        assert _rows(subset.test(plan.Test("Sparse", kind, arg, cased))) == expected


def test_null_and_the_empty_text_stay_apart_in_the_distinct_values() -> None:
    evaluator = _evaluator()
    assert _rows(evaluator.test(plan.Test("Dense", EQ, frozenset({""})))) == [4]
    assert _rows(evaluator.test(plan.Test("Dense", NULL, None, True))) == [3, 4, 8]


def test_tests_the_screen_rules_out_answer_nothing_at_once() -> None:
    never = plan.Test("Sparse", ENDS, "\\nothere.exe")
    here = plan.Test("Sparse", ENDS, "\\evil.exe")
    plans = [PTest(never), PTest(here)]
    bank = LiteralBank({("Sparse", False): ["\\nothere.exe", "\\evil.exe"]})
    evaluator = BatchEvaluator(_evaluator().frame, None, bank)
    assert Screen(plans).passing(evaluator).tolist() == [False, True]
    assert id(never) in evaluator._never and id(here) not in evaluator._never
    assert evaluator.test(never) is None
    assert _rows(evaluator.test(here)) == [1, 7]
    assert not evaluator.may_match(plans[0])


def test_a_field_reference_compares_only_rows_where_both_fields_have_a_value() -> None:
    frame = pl.DataFrame({"A": ["x", None, "abc", "B", None, "q"], "B": ["x", "y", "b", "b", None, None]})
    evaluator = BatchEvaluator(frame)
    assert _rows(evaluator.test(plan.Test("A", FIELDREF, ("B", "equals"), False))) == [0, 3]
    assert _rows(evaluator.test(plan.Test("A", FIELDREF, ("B", "contains"), False))) == [0, 2, 3]
    assert _rows(evaluator.test(plan.Test("A", FIELDREF, ("B", "equals"), True))) == [0]
    subset = evaluator.subset(np.array([2, 3, 5]))
    assert _rows(subset.test(plan.Test("A", FIELDREF, ("B", "contains"), False))) == [0, 1]
    assert evaluator.test(plan.Test("A", FIELDREF, ("Nothing", "equals"), False)) is None


def test_field_matchers_leave_the_keyword_literals_to_the_raw_records() -> None:
    bank = LiteralBank({("Image", False): ["\\evil.exe"], (None, False): ["mimikatz"]})
    assert bank.matcher("Image", False, keywords=False).literals == ["\\evil.exe"]
    assert bank.matcher("Image", False).literals == ["\\evil.exe", "mimikatz"]
    without_raw = pl.DataFrame({"Image": ["C:\\MIMIKATZ\\x.exe"]})
    keyword = plan.Test(None, CONTAINS, "mimikatz")
    assert _rows(BatchEvaluator(without_raw, None, bank).test(keyword)) == [0]
    with_raw = without_raw.with_columns(pl.lit('{"Image":"C:\\\\MIMIKATZ\\\\x.exe"}').alias("_raw"))
    assert _rows(BatchEvaluator(with_raw, None, bank).test(keyword)) == [0]


def test_the_literals_remembered_across_batches_give_the_same_occurrences() -> None:
    matcher = LiteralMatcher(["evil", "\\evil.exe", ".exe", "tools"])
    values = pa.array(["c:\\tools\\evil.exe", None, "", "evil evil", "nothing", "c:\\tools\\evil.exe.exe"],
                      type=pa.large_string())
    first = matcher.occurrences(values)
    assert first == {"tools": [0, 5], "evil": [0, 3, 5], "\\evil.exe": [0, 5], ".exe": [0, 5]}
    assert matcher.occurrences(values) == first  # from what it remembers
    matcher.budget.limit = 10  # a memory too small: it starts over, and answers the same
    assert matcher.occurrences(values) == first


def test_the_matchers_of_a_rule_set_remember_values_within_one_bound_together() -> None:
    literals: dict[tuple[str | None, bool], list[str]] = {("Image", False): ["evil"], ("CommandLine", False): ["evil"]}
    bank = LiteralBank(literals, SeenBudget(limit=25))
    images = pa.array([f"img-evil-{n}" for n in range(3)], type=pa.large_string())  # 10 characters each
    assert bank.matcher("Image", False).occurrences(images) == {"evil": [0, 1, 2]}
    assert bank.budget.chars == 10  # the third value went past the bound: all forgotten, then it was kept
    commands = pa.array(["evil --all"], type=pa.large_string())
    assert bank.matcher("CommandLine", False).occurrences(commands) == {"evil": [0]}
    assert bank.budget.chars == 20  # counted with the other field's
    assert bank.matcher("CommandLine", False).occurrences(pa.array(["x" * 7], type=pa.large_string())) == {}
    assert bank.budget.chars == 7  # past the bound together: the image field's memory went too
    assert bank.matcher("Image", False).occurrences(images) == {"evil": [0, 1, 2]}  # and it answers the same


def test_a_subset_of_a_subset_reads_its_own_rows_of_a_sparse_column() -> None:
    evaluator = _evaluator()
    inner = evaluator.subset(np.array([0, 1, 4, 5, 7, 9])).subset(np.array([1, 2, 4, 5]))  # rows 1, 4, 7, 9
    contains = plan.Test("Sparse", CONTAINS, "\\evil.exe")
    assert _rows(inner.test(contains)) == [0, 2]
    assert _rows(inner.test(plan.Test("Sparse", EQ, frozenset({""})))) == [1]


def _or_cases() -> list[list[plan.Test]]:
    ends, starts = plan.Test("Sparse", ENDS, "\\evil.exe"), plan.Test("Dense", STARTS, "y")
    return [
        [plan.Test("Dense", EQ, frozenset({"x"})), starts, plan.Test("Dense", CONTAINS, "Evil", True)],
        [ends, plan.Test("Sparse", NULL, None, True), plan.Test("Dense", EQ, frozenset({"z"})), starts],
        [plan.Test("Sparse", ENDS, "\\nothere.exe"), plan.Test("Absent", NULL, None, True)],
        [plan.Test("Absent", CONTAINS, "x"), plan.Test("Sparse", REGEX, ("^c:", "i"), True), ends],
        [plan.Test("Dense", FIELDREF, ("Sparse", "equals"), False), plan.Test("Sparse", EXISTS, False, True)],
    ]


@pytest.mark.parametrize("tests", _or_cases())
def test_an_or_of_tests_on_one_field_gives_the_rows_of_its_tests_one_by_one(tests: list[plan.Test]) -> None:
    def one_by_one(evaluator: BatchEvaluator) -> list[int]:
        rows: set[int] = set()
        for test in tests:
            rows.update(_rows(evaluator.test(test)))
        return sorted(rows)

    index = np.array([0, 1, 3, 4, 7, 8])
    for warm in (False, True):  # the tests' rows not known yet, or some of them known already
        whole, expected = _evaluator(), one_by_one(_evaluator())
        subset, expected_subset = whole.subset(index), one_by_one(_evaluator().subset(index))
        if warm:
            whole.test(tests[0])
            subset.test(tests[-1])
        assert _rows(whole.evaluate(POr(tuple(PTest(t) for t in tests)))) == expected
        assert _rows(subset.evaluate(POr(tuple(PTest(t) for t in tests)))) == expected_subset


def test_an_or_leaves_out_the_tests_the_screen_ruled_out() -> None:
    never, here = plan.Test("Sparse", ENDS, "\\nothere.exe"), plan.Test("Sparse", ENDS, "\\evil.exe")
    evaluator = _evaluator()
    evaluator.rule_out([id(never)])
    assert _rows(evaluator.evaluate(POr((PTest(never), PTest(here))))) == [1, 7]
    assert evaluator.evaluate(POr((PTest(never),))) is None


@pytest.mark.parametrize("mode", ["equals", "contains", "startswith", "endswith"])
@pytest.mark.parametrize("cased", [False, True])
def test_a_field_reference_on_distinct_pairs_gives_the_rows_a_row_by_row_comparison_gives(mode: str,
                                                                                        cased: bool) -> None:
    users = ["CORP\\alice", "corp\\alice", None, "CORP\\bob", "", "CORP\\alice", "x", None, "CORP\\Bob", "ab"]
    parents = ["CORP\\alice", "CORP\\ALICE", "CORP\\alice", None, "", "CORP\\bob", "x", None, "corp\\bob", "a"]
    frame = pl.DataFrame({"User": users * 3, "ParentUser": parents * 3})
    evaluator = BatchEvaluator(frame, None, LiteralBank({}))

    def holds(mine: str | None, theirs: str | None) -> bool:
        if mine is None or theirs is None:
            return False
        if not cased:
            mine, theirs = mine.lower(), theirs.lower()
        return {"contains": theirs in mine, "startswith": mine.startswith(theirs),
                "endswith": mine.endswith(theirs)}.get(mode, mine == theirs)

    expected = [i for i, (u, p) in enumerate(zip(users * 3, parents * 3, strict=True)) if holds(u, p)]
    assert expected
    assert _rows(evaluator.test(plan.Test("User", FIELDREF, ("ParentUser", mode), cased))) == expected
    subset = evaluator.subset(np.arange(10, 30))
    assert _rows(subset.test(plan.Test("User", FIELDREF, ("ParentUser", mode), cased))) == [
        i - 10 for i in expected if i >= 10]


def test_columns_encoded_by_routing_answer_every_test_as_the_evaluators_own_encoding_does() -> None:
    from mamori.detect.sigma.engine import combination_codes

    frame = pl.DataFrame({"Sparse": SPARSE, "Dense": DENSE}, schema={"Sparse": pl.Utf8, "Dense": pl.Utf8})
    kept: dict[str, tuple[pa.Array, np.ndarray]] = {}
    combination_codes(frame, ["Sparse", "Dense"], kept)
    assert set(kept) == {"Sparse", "Dense"}
    shared = BatchEvaluator(frame, None, LiteralBank(LITERALS), encoded=kept)
    own = _evaluator()
    for kind, arg, cased in TESTS:
        for field in ("Sparse", "Dense"):
            test = plan.Test(field, kind, arg, cased)
            assert _rows(shared.test(test)) == _rows(own.test(test)), (field, kind, arg)
