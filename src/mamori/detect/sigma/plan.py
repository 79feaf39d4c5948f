"""Compile rules into plans: a tree of primitive column tests, shared across all rules.

A primitive test (``Test``) is one operation on one field: equality with a set of values, a
substring, a prefix, a suffix, a regular expression, a network, a number comparison, presence.
Identical tests in different rules are the same value, so a batch evaluates each one once; a rule's
plan then only combines boolean columns (``And`` / ``Or`` / ``Not`` / ``AtLeast``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mamori.detect.sigma.condition import expand_of
from mamori.detect.sigma.model import (
    CLASS,
    LIT,
    ONE,
    STAR,
    And,
    CidrValue,
    DetectionItem,
    ExistsValue,
    FieldRefValue,
    Filter,
    Node,
    Not,
    NullValue,
    NumberValue,
    OfPattern,
    Or,
    Ref,
    RegexValue,
    Rule,
    Selection,
    StrPattern,
    TimePartValue,
    Value,
)

EQ = "eq"  # arg: frozenset of values
CONTAINS = "contains"
STARTS = "startswith"
ENDS = "endswith"
GLOB = "glob"  # arg: anchored regular expression from a wildcard pattern
REGEX = "regex"  # arg: (pattern, flags text)
CIDR = "cidr"  # arg: tuple of networks
NUMBER = "number"  # arg: (op, number)
EXISTS = "exists"  # arg: bool
NULL = "null"
FIELDREF = "fieldref"  # arg: (other field, mode)
ANY = "any"  # the field has a value (``*``)
TIMEPART = "timepart"  # arg: (part, op, number): a part of a date-time value compared with a number

_REGEX_META = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Test:
    """One primitive test on one field (``None``: the keyword text of the whole event)."""

    field: str | None
    kind: str
    arg: Any = None  # per kind: frozenset, str, (pattern, flags), (networks...), (op, number), bool
    cased: bool = False

    def __hash__(self) -> int:
        # tests key every per-batch memo: hash once, not on each of the ~100,000 look-ups a batch makes
        # (read as an attribute: a third cheaper per look-up than ``self.__dict__.get``)
        try:
            return self._hash  # type: ignore[no-any-return,attr-defined]
        except AttributeError:
            known = hash((self.field, self.kind, self.arg, self.cased))
            object.__setattr__(self, "_hash", known)
            return known

    def __getstate__(self) -> dict[str, Any]:
        # string hashes differ between processes: a cached rule set must not carry them
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state


@dataclass(frozen=True)
class PTest:
    test: Test


@dataclass(frozen=True)
class PAnd:
    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class POr:
    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class PNot:
    part: Plan


@dataclass(frozen=True)
class PAtLeast:
    count: int
    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class PConst:
    value: bool


Plan = PTest | PAnd | POr | PNot | PAtLeast | PConst


def regex_escape(text: str) -> str:
    """Escape text for a regular expression (RE2 / Rust / Python all accept these escapes)."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def glob_regex(pattern: StrPattern, lower: bool) -> str:
    """An anchored regular expression for a wildcard pattern."""
    parts = []
    for kind, text in pattern.tokens:
        if kind == LIT:
            parts.append(regex_escape(text.lower() if lower else text))
        elif kind == STAR:
            parts.append(".*")
        elif kind == ONE:
            parts.append(".")
        elif kind == CLASS:
            parts.append("[" + "".join(regex_escape(c) for c in text) + "]")
    return "(?s)^" + "".join(parts) + "$"


def _string_tests(field: str | None, pattern: StrPattern) -> Test:
    cased = pattern.cased and field is not None
    tokens = pattern.tokens
    kinds = [k for k, _ in tokens]
    low = (lambda s: s) if cased else str.lower
    if not tokens:
        return Test(field, EQ, frozenset({""}), cased)
    if kinds == [LIT]:
        return Test(field, EQ, frozenset({low(tokens[0][1])}), cased)
    if kinds == [STAR]:
        return Test(field, ANY)
    if kinds == [STAR, LIT, STAR]:
        return Test(field, CONTAINS, low(tokens[1][1]), cased)
    if kinds == [LIT, STAR]:
        return Test(field, STARTS, low(tokens[0][1]), cased)
    if kinds == [STAR, LIT]:
        return Test(field, ENDS, low(tokens[1][1]), cased)
    return Test(field, GLOB, glob_regex(pattern, lower=not cased), cased)


_VALUE_PLANS: dict[tuple[str | None, Value], Plan] = {}


def _value_plan(field: str | None, value: Value) -> Plan:
    """The test of one value on one field; the same value on the same field, in any rule, is one object
    (thousands of SigmaHQ rules repeat the same values: built once, and pickled once in the cache)."""
    key = (field, value)
    plan = _VALUE_PLANS.get(key)
    if plan is None:
        plan = _VALUE_PLANS[key] = _new_value_plan(field, value)
    return plan


def _new_value_plan(field: str | None, value: Value) -> Plan:
    if isinstance(value, StrPattern):
        return PTest(_string_tests(field, value))
    if isinstance(value, RegexValue):
        flags = ("i" if value.ignore_case else "") + ("m" if value.multiline else "") + ("s" if value.dotall else "")
        return PTest(Test(field, REGEX, (value.pattern, flags), True))
    if field is None:
        return PConst(False)
    if isinstance(value, CidrValue):
        return PTest(Test(field, CIDR, (value.network,), True))
    if isinstance(value, NumberValue):
        return PTest(Test(field, NUMBER, (value.op, value.number), True))
    if isinstance(value, ExistsValue):
        return PTest(Test(field, EXISTS, value.present, True))
    if isinstance(value, NullValue):
        return PTest(Test(field, NULL, None, True))
    if isinstance(value, FieldRefValue):
        return PTest(Test(field, FIELDREF, (value.field, value.mode), value.cased))
    if isinstance(value, TimePartValue):
        return PTest(Test(field, TIMEPART, (value.part, value.op, value.number), True))
    raise TypeError(f"unknown value {value!r}")


def _any(parts: list[Plan]) -> Plan:
    """OR of plans, with equality tests on one field merged into one set-membership test."""
    merged: dict[tuple[str | None, bool], set[str]] = {}
    others: list[Plan] = []
    for part in parts:
        if isinstance(part, PTest) and part.test.kind == EQ:
            key = (part.test.field, part.test.cased)
            merged.setdefault(key, set()).update(part.test.arg)
        else:
            others.append(part)
    out: list[Plan] = [PTest(Test(f, EQ, frozenset(v), c)) for (f, c), v in merged.items()] + others
    if len(out) == 1:
        return out[0]
    return POr(tuple(out)) if out else PConst(False)


def _all(parts: list[Plan]) -> Plan:
    return parts[0] if len(parts) == 1 else PAnd(tuple(parts))


def item_plan(item: DetectionItem) -> Plan:
    """One detection item: its values OR'ed (AND'ed under ``all``), negated under ``neq``."""
    alternatives = [_any([_value_plan(item.field, v) for v in alt]) for alt in item.alternatives]
    plan = _all(alternatives) if item.all_values else _any(
        [_value_plan(item.field, v) for alt in item.alternatives for v in alt])
    return PNot(plan) if item.negate else plan


def selection_plan(selection: Selection) -> Plan:
    """A selection: OR over its maps, AND within each."""
    maps = [_all([item_plan(i) for i in m]) if m else PConst(True) for m in selection.maps]
    return maps[0] if len(maps) == 1 else POr(tuple(maps))


def condition_plan(node: Node, selections: dict[str, Plan], names: list[str]) -> Plan:
    """Combine selection plans as the condition says."""
    if isinstance(node, Ref):
        return selections[node.name]
    if isinstance(node, Not):
        return PNot(condition_plan(node.operand, selections, names))
    if isinstance(node, And):
        return PAnd(tuple(condition_plan(o, selections, names) for o in node.operands))
    if isinstance(node, Or):
        return POr(tuple(condition_plan(o, selections, names) for o in node.operands))
    if isinstance(node, OfPattern):
        members = tuple(selections[n] for n in expand_of(node, names))
        if not members:
            return PConst(False)
        if node.quantifier == "all":
            return PAnd(members)
        if node.quantifier == "1":
            return POr(members)
        return PAtLeast(int(node.quantifier), members)
    raise TypeError(f"unknown condition node {node!r}")


SelectionPlans = tuple[tuple[str, Plan], ...]


def rule_plan(rule: Rule) -> Plan:
    """The whole rule as one plan."""
    return rule_plans(rule)[0]


def rule_plans(rule: Rule) -> tuple[Plan, SelectionPlans]:
    """The whole rule as one plan, and each selection's plan (what explanations evaluate: which
    selections held); the rule plan shares the selections' plan objects. A rule tuned by meta-filters
    holds where its condition does and none of theirs does (``(rule) and not (filter)``, as pySigma
    rewrites the condition); the selection plans stay the rule's own."""
    selections = {s.name: selection_plan(s) for s in rule.selections}
    plan = condition_plan(rule.condition, selections, [s.name for s in rule.selections])
    if rule.filters:
        plan = PAnd((plan, *(PNot(filter_plan(f)) for f in rule.filters)))
    return plan, tuple(selections.items())


def filter_plan(meta_filter: Filter) -> Plan:
    """A meta-filter's condition over its own selections, as one plan."""
    selections = {s.name: selection_plan(s) for s in meta_filter.selections}
    return condition_plan(meta_filter.condition, selections, [s.name for s in meta_filter.selections])


def plan_tests(plan: Plan) -> list[Test]:
    """Every primitive test in a plan."""
    if isinstance(plan, PTest):
        return [plan.test]
    if isinstance(plan, PAnd | POr | PAtLeast):
        return [t for p in plan.parts for t in plan_tests(p)]
    if isinstance(plan, PNot):
        return plan_tests(plan.part)
    return []


def plan_fields(plan: Plan) -> set[str]:
    """Fields a plan reads (the other side of a field reference included)."""
    out: set[str] = set()
    for test in plan_tests(plan):
        if test.field is not None:
            out.add(test.field)
        if test.kind == FIELDREF:
            out.add(str(test.arg[0]))
    return out


def uses_keywords(plan: Plan) -> bool:
    """Whether a plan searches the keyword text of the whole event."""
    return any(t.field is None for t in plan_tests(plan))
