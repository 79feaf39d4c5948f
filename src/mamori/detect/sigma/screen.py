"""Which rules can match a batch at all, decided for every rule at once.

A rule cannot match when a literal every match needs occurs in no value of its field. Each rule's
plan is read once into clauses (a clause: tests of which one must hold somewhere in the batch, e.g.
the values of one ``Image|endswith`` list); per batch, each field's literal index says which tests'
literals occur, and numpy tells which rules have every clause met. Walking the 2,400 SigmaHQ plans
test by test, every batch, was a fixed cost that small batches (the live stream's) could not spread.

The clauses are a necessary condition. Where they say exactly what the test-by-test walk would
(``exact``: ands and ors of single tests, negations), the walk is skipped; elsewhere (an ``or`` of
``and`` groups, ``n of``) the rules passing the screen are walked too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mamori.detect.sigma.evaluate import BatchEvaluator
from mamori.detect.sigma.plan import (
    CONTAINS,
    ENDS,
    EQ,
    GLOB,
    REGEX,
    STARTS,
    PAnd,
    PAtLeast,
    PConst,
    Plan,
    POr,
    PTest,
    Test,
    plan_tests,
)
from mamori.detect.sigma.required_literal import test_literal

Clauses = list[frozenset[Test]]


def screened_literal(test: Test) -> tuple[str, bool, str] | None:
    """(field, cased, literal) a test cannot hold without, as the batch's literal index holds it;
    None for tests that tell nothing in advance (keyword, exists, number, regex without fixed text)."""
    if test.field is None:
        return None
    if test.kind in {CONTAINS, STARTS, ENDS}:
        return test.field, test.cased, str(test.arg)
    if test.kind in {REGEX, GLOB}:
        required = test_literal(test.kind, test.arg)
        return (test.field, False, required) if required else None
    return None


def _screenable(test: Test) -> bool:
    return (test.kind == EQ and test.field is not None) or screened_literal(test) is not None


def plan_clauses(plan: Plan) -> tuple[Clauses | None, bool]:
    """(clauses, exact): the clauses a batch must meet for ``plan`` to match somewhere (None: it never
    can), and whether meeting them is exactly what ``BatchEvaluator.may_match`` asks."""
    if isinstance(plan, PTest):
        return ([frozenset([plan.test])] if _screenable(plan.test) else []), True
    if isinstance(plan, PAnd):
        clauses: Clauses = []
        exact = True
        for part in plan.parts:
            more, part_exact = plan_clauses(part)
            if more is None:
                return None, True
            clauses.extend(more)
            exact = exact and part_exact
        return clauses, exact
    if isinstance(plan, POr | PAtLeast):
        if isinstance(plan, PAtLeast) and plan.count <= 0:
            return [], True
        return _any_of(plan.parts, exact_form=isinstance(plan, POr) or plan.count == 1)
    if isinstance(plan, PConst):
        return ([] if plan.value else None), True
    return [], True  # PNot: absence proves nothing


def _any_of(parts: Sequence[Plan], exact_form: bool) -> tuple[Clauses | None, bool]:
    """Clauses for "one of the parts": one clause joining one clause of each part."""
    joined: set[Test] = set()
    exact = exact_form
    possible = False
    for part in parts:
        clauses, part_exact = plan_clauses(part)
        if clauses is None:
            continue
        possible = True
        if not clauses:  # this part may always match: so may the whole
            return [], exact and part_exact
        exact = exact and part_exact and len(clauses) == 1
        joined |= min(clauses, key=len)
    if not possible:
        return (None, True) if exact_form else (None, False)
    return [frozenset(joined)], exact


@dataclass
class _FieldTests:
    """The screened tests of one (field, cased): by literal they need, and by value (equality)."""

    by_literal: dict[str, list[int]]
    by_value: dict[str, list[int]]
    _unannounced: tuple[Container[str], list[int]] | None = None

    def unannounced(self, announced: Container[str]) -> list[int]:
        """The tests whose literal a literal index looking for ``announced`` does not look for (kept
        for the last such set: a rule set's matchers live as long as it does)."""
        if self._unannounced is None or self._unannounced[0] is not announced:
            numbers = [n for literal, ns in self.by_literal.items() if literal not in announced for n in ns]
            self._unannounced = (announced, numbers)
        return self._unannounced[1]


class Screen:
    """Every rule's clauses, compiled for a per-batch answer (see the module docstring)."""

    def __init__(self, plans: Sequence[Plan]) -> None:
        numbers: dict[Test, int] = {}
        flat: list[int] = []
        clause_starts: list[int] = []
        rule_starts: list[int] = []
        self.never = np.zeros(len(plans), dtype=bool)
        self.exact = np.zeros(len(plans), dtype=bool)
        self.unconditional = np.zeros(len(plans), dtype=bool)
        for rule, plan in enumerate(plans):
            clauses, exact = plan_clauses(plan)
            self.exact[rule] = exact
            if clauses is None:
                self.never[rule] = True
                clauses = []
            if not clauses:
                self.unconditional[rule] = True
                continue
            rule_starts.append(len(clause_starts))
            for clause in clauses:
                clause_starts.append(len(flat))
                flat.extend(numbers.setdefault(t, len(numbers)) for t in clause)
        self.tests = list(numbers)
        self._plans = plans  # (keeps the test objects, and so their ids, alive)
        self._number_test_objects()
        self._flat = np.asarray(flat, dtype=np.intp)
        self._clause_starts = np.asarray(clause_starts, dtype=np.intp)
        self._rule_starts = np.asarray(rule_starts, dtype=np.intp)
        self._fields: dict[tuple[str, bool], _FieldTests] = defaultdict(lambda: _FieldTests({}, {}))
        for number, test in enumerate(self.tests):
            assert test.field is not None
            if test.kind == EQ:
                tests = self._fields[(test.field, test.cased)]
                for value in test.arg:
                    tests.by_value.setdefault(value, []).append(number)
            else:
                field, cased, literal = screened_literal(test)  # type: ignore[misc]
                self._fields[(field, cased)].by_literal.setdefault(literal, []).append(number)

    def _number_test_objects(self) -> None:
        """Every test object of the plans, by ``id``, with its number (equal tests may be distinct
        objects): what ``passing`` rules out for the evaluator, which keys its memos by object."""
        numbers = {test: number for number, test in enumerate(self.tests)}
        objects: dict[int, tuple[Test, int]] = {}
        for plan in self._plans:
            for test in plan_tests(plan):
                number = numbers.get(test)
                if number is not None:
                    objects[id(test)] = (test, number)
        self._test_objects = [test for test, _ in objects.values()]
        self._id_numbers = np.fromiter((number for _, number in objects.values()), dtype=np.intp, count=len(objects))
        self._test_ids = np.fromiter(objects.keys(), dtype=np.int64, count=len(objects))

    def __getstate__(self) -> dict[str, Any]:
        """What a cached Detector keeps of its screen: the test objects numbered (one pickle keeps them the
        very objects of the plans; only their ids are new on loading, where finding them again by
        walking and hashing every plan's tests took 20-30 ms of a warm hunt), not the per-field memo of
        the last literal index."""
        state = dict(self.__dict__)
        del state["_test_ids"]
        state["_fields"] = {key: _FieldTests(tests.by_literal, tests.by_value) for key, tests in self._fields.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled screen (see ``__getstate__``): the ids of its test objects as loaded."""
        self.__dict__.update(state)
        self._test_ids = np.fromiter(map(id, self._test_objects), dtype=np.int64, count=len(self._test_objects))

    def passing(self, evaluator: BatchEvaluator) -> np.ndarray:
        """For each rule (in the order given), whether the batch meets every clause of it."""
        held = np.zeros(len(self.tests) + 1, dtype=bool)
        for (field, cased), tests in self._fields.items():
            self._held_on_field(evaluator, field, cased, tests, held)
        evaluator.rule_out(self._test_ids[~held[self._id_numbers]].tolist())  # (meeting none of its literals: nowhere)
        out = ~self.never & self.unconditional
        if len(self._rule_starts):
            clause_met = np.logical_or.reduceat(held[self._flat], self._clause_starts)
            rule_met = np.logical_and.reduceat(clause_met, self._rule_starts)
            out[~self.unconditional] = rule_met
        return out

    @staticmethod
    def _held_on_field(evaluator: BatchEvaluator, field: str, cased: bool, tests: _FieldTests,
                       held: np.ndarray) -> None:
        found = evaluator.literals_found(field, cased)
        if found is None:  # the field is empty in the whole batch
            return
        occurring, announced = found
        if len(occurring) < len(tests.by_literal):  # (few literals occur: walk those, not every one)
            for literal in occurring:
                numbers = tests.by_literal.get(literal)
                if numbers is not None:
                    held[numbers] = True
            unannounced = tests.unannounced(announced)
            if unannounced:  # (cannot tell: keep)
                held[unannounced] = True
        else:
            for literal, numbers in tests.by_literal.items():
                if literal in occurring or literal not in announced:  # (unannounced: cannot tell, keep)
                    held[numbers] = True
        if tests.by_value:
            present = evaluator.values_present(field, cased)
            if len(present) < len(tests.by_value):
                for value in present:
                    holding = tests.by_value.get(value)
                    if holding is not None:
                        held[holding] = True
            else:
                for value, numbers in tests.by_value.items():
                    if value in present:
                        held[numbers] = True
