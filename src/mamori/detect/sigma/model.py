"""The lean Sigma rule model: values after modifiers, detection items, selections, rules, correlations.

Parsed from YAML by ``loader`` (pySigma's parse of the same rules is the reference in tests) and
compiled to column expressions by ``compile``. Everything here is a frozen value: cacheable, picklable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from mamori.events.logsources import LogSource

if TYPE_CHECKING:
    from mamori.detect.sigma.plan import Plan

# --- string patterns -------------------------------------------------------------------------

LIT = "lit"  # literal text
STAR = "star"  # any run of characters (Sigma ``*``)
ONE = "one"  # any single character (Sigma ``?``)
CLASS = "class"  # one character out of a set (windash), text holds the characters


@dataclass(frozen=True)
class StrPattern:
    """A Sigma string value: literal runs and wildcards; ``cased`` when case matters."""

    tokens: tuple[tuple[str, str], ...]
    cased: bool = False

    def literal_runs(self) -> list[str]:
        """Return the literal pieces between wildcards (for pre-filtering and explanations)."""
        return [text for kind, text in self.tokens if kind == LIT]

    def is_plain(self) -> bool:
        """True when the pattern has no wildcard at all (an exact value)."""
        return all(kind == LIT for kind, _ in self.tokens)

    def text(self) -> str:
        """Render back to Sigma notation (for messages)."""
        out = []
        for kind, text in self.tokens:
            if kind == LIT:
                out.append(text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
            elif kind == STAR:
                out.append("*")
            elif kind == ONE:
                out.append("?")
            else:
                out.append(f"[{text}]")
        return "".join(out)


@dataclass(frozen=True)
class RegexValue:
    """A regular expression (``|re``), with Sigma's i/m/s flags."""

    pattern: str
    ignore_case: bool = False
    multiline: bool = False
    dotall: bool = False


@dataclass(frozen=True)
class CidrValue:
    """A network (``|cidr``): matches addresses inside it."""

    network: str


@dataclass(frozen=True)
class NumberValue:
    """A numeric comparison (``|gt``, ``|gte``, ``|lt``, ``|lte``)."""

    op: str
    number: float


@dataclass(frozen=True)
class ExistsValue:
    """Field presence (``|exists``)."""

    present: bool


@dataclass(frozen=True)
class NullValue:
    """Sigma ``null``: the field is absent or empty."""


@dataclass(frozen=True)
class TimePartValue:
    """A part of a date-time field compared with a number (``|minute``, ``|hour``, ``|day``, ``|week``,
    ``|month``, ``|year``, alone for equality or with ``|gt``, ``|gte``, ``|lt``, ``|lte``)."""

    part: str  # minute, hour, day, week, month, year
    op: str  # eq, gt, gte, lt, lte
    number: int


@dataclass(frozen=True)
class FieldRefValue:
    """Compare with another field of the same event (``|fieldref``), whole or part."""

    field: str
    mode: str = "eq"  # eq, contains, startswith, endswith
    cased: bool = False


Value = (StrPattern | RegexValue | CidrValue | NumberValue | ExistsValue | NullValue | FieldRefValue
         | TimePartValue)


@dataclass(frozen=True)
class DetectionItem:
    """One ``field|modifiers: values`` line; ``field`` None for keywords; values OR'ed unless ``all``.

    ``alternatives`` groups the variants one written value expands to (base64offset, windash): a
    value matches when any of its variants does, also under ``all``.
    """

    field: str | None
    alternatives: tuple[tuple[Value, ...], ...]
    all_values: bool = False
    modifiers: tuple[str, ...] = ()
    negate: bool = False  # ``|neq``


@dataclass(frozen=True)
class Selection:
    """A named search identifier: an OR of maps, each map an AND of detection items."""

    name: str
    maps: tuple[tuple[DetectionItem, ...], ...]


# --- condition AST ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A reference to one selection by name."""

    name: str


@dataclass(frozen=True)
class OfPattern:
    """``1 of x*`` / ``all of them``: quantifier over the selections whose names match."""

    quantifier: str  # "1" or "all"
    pattern: str  # "them" or a name with * wildcards


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Ref | OfPattern | Not | And | Or


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A Sigma meta-filter document (filters specification 2.x): a detection of its own whose matches
    are taken out of the named rules' matches, where those rules' log source is inside the filter's.

    ``rules`` holds the rule ids or names it names; empty for ``any`` / ``all`` (or an empty list, as
    pySigma reads it): every rule of the log source."""

    id: str
    title: str
    logsource: LogSource
    rules: tuple[str, ...]
    selections: tuple[Selection, ...]
    condition: Node
    path: str
    description: str = ""
    author: str = ""

    def applies_to(self, rule: Rule) -> bool:
        """Whether the filter tunes ``rule``: the rule is named (by id or name, or ``any``) and its log
        source is inside the filter's (every part the filter gives is the rule's, as pySigma checks)."""
        named = not self.rules or rule.id in self.rules or (bool(rule.name) and rule.name in self.rules)
        return named and all(
            mine is None or mine == theirs
            for mine, theirs in ((self.logsource.product, rule.logsource.product),
                                 (self.logsource.category, rule.logsource.category),
                                 (self.logsource.service, rule.logsource.service)))


@dataclass(frozen=True)
class Rule:
    """A Sigma detection rule with the metadata every detection carries (id and author for the DRL)."""

    id: str
    title: str
    level: str
    status: str
    author: str
    tags: tuple[str, ...]
    logsource: LogSource
    selections: tuple[Selection, ...]
    condition: Node
    path: str
    description: str = ""
    falsepositives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: str = ""
    name: str = ""
    fields: tuple[str, ...] = ()
    # meta-filters applied (``ruleset``): the rule matches where its condition holds and no filter's
    # does; its own selections, condition, id and author stay as written
    filters: tuple[Filter, ...] = ()

    def selection(self, name: str) -> Selection:
        """Return the selection called ``name``."""
        for sel in self.selections:
            if sel.name == name:
                return sel
        raise KeyError(name)

    def referenced_fields(self) -> list[str]:
        """Every field the rule tests, in first-use order (for output and explanations)."""
        seen: dict[str, None] = {}
        for sel in self.selections:
            for item_map in sel.maps:
                for item in item_map:
                    if item.field:
                        seen.setdefault(item.field, None)
                    for alternative in item.alternatives:
                        for value in alternative:
                            if isinstance(value, FieldRefValue):
                                seen.setdefault(value.field, None)
        return list(seen)


@dataclass(frozen=True)
class Correlation:
    """A Sigma correlation rule over the detections of other rules."""

    id: str
    title: str
    level: str
    status: str
    author: str
    tags: tuple[str, ...]
    type: str  # event_count, value_count, temporal, temporal_ordered, value_sum, value_avg
    rules: tuple[str, ...]  # referenced rule ids or names, in order (temporal_ordered)
    group_by: tuple[str, ...]
    timespan_ns: int
    condition: tuple[tuple[str, float], ...]  # ((op, threshold), ...), all must hold
    condition_field: str | None
    aliases: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # alias -> ((rule, field), ...)
    generate: bool
    path: str
    description: str = ""
    name: str = ""


class RefusalKind(StrEnum):
    """Why a rule, correlation or meta-filter was refused, as a closed set: code tells refusals apart by
    this, never by the reason's words (those are for people and may be reworded)."""

    INVALID = "invalid"  # not YAML, not a mapping, or a field or condition the loader cannot take
    CANNOT_COMPILE = "cannot_compile"  # parsed, but no column plan could be made of it
    DUPLICATE_ID = "duplicate_id"  # a rule, correlation or filter id already loaded from another file
    CORRELATION_NAMES_NO_RULE = "correlation_names_no_rule"  # correlation.rules names what is not loaded
    CORRELATION_REFERS_TO_REFUSED = "correlation_refers_to_refused"  # it names a refused correlation
    CORRELATION_LOOP = "correlation_loop"  # a chain of correlations leads back to this one
    CORRELATION_FIELD_NOT_CARRIED = "correlation_field_not_carried"  # a field a chained hit does not carry
    FILTER_NAMES_NO_RULE = "filter_names_no_rule"  # a meta-filter naming only rules that are not loaded
    FILTER_APPLIES_TO_NONE = "filter_applies_to_none"  # a meta-filter whose log source no (named) rule has


@dataclass(frozen=True)
class Refusal:
    """A rule that could not be used: its file, the reason, the rule id when known, and the kind of
    refusal (``RefusalKind``; a loader's ``INVALID`` unless the refusing code says otherwise)."""

    path: str
    reason: str
    rule_id: str = ""
    severity: str = "error"
    kind: RefusalKind = RefusalKind.INVALID


@dataclass
class RuleSet:
    """Loaded rules, correlations and refusals, with the content hash the compile cache is keyed by."""

    rules: list[Rule] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    digest: str = ""
    plans: dict[str, Plan] = field(default_factory=dict)  # rule id -> compiled plan (see plan.py)
    selection_plans: dict[str, tuple[tuple[str, Plan], ...]] = field(default_factory=dict)  # for explanations
    filters: list[Filter] = field(default_factory=list)  # meta-filters in use (each applies to some rule)

    def by_id(self) -> dict[str, Rule]:
        """Map rule id -> rule."""
        return {r.id: r for r in self.rules}
