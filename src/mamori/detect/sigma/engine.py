"""Run compiled rules over event batches: route rows to the rules of their log source, evaluate in bulk.

For each batch: compute once which mapping entries every row serves and which rule-side field names
the entries alias; then evaluate every rule plan with one shared ``BatchEvaluator`` (each distinct
test runs once per batch), keeping only the rows of the rule's log source. The result is a sparse
table of (rule, row) hits.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from mamori.detect.sigma import arrow_kernels as kernels
from mamori.detect.sigma.answer_memo import AnswerMemo
from mamori.detect.sigma.evaluate import BatchEvaluator, LiteralBank, keyword_needles
from mamori.detect.sigma.model import Rule, RuleSet
from mamori.detect.sigma.plan import (
    CONTAINS,
    ENDS,
    EQ,
    FIELDREF,
    STARTS,
    Plan,
    Test,
    plan_tests,
    rule_plan,
    selection_plan,
)
from mamori.detect.sigma.required_literal import test_literal
from mamori.detect.sigma.screen import Screen
from mamori.events import schema
from mamori.events.logsources import LogSource, LogSourceTable, MappingEntry, builtin_table, entry_mask

ROW = "_row"
RULE_ID = "rule_id"
SELECTIONS = "selections"
HITS_SCHEMA = {RULE_ID: pl.Utf8, ROW: pl.UInt32}
SCREEN_AT_ONCE = 20_000  # rows: a first batch this large pays for building the screen at once


@dataclass
class RuleGroup:
    """Rules sharing one log source, with the mapping entries that route rows to them."""

    logsource: LogSource
    entry_indexes: list[int]
    rules: list[Rule] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    keyword_rules: set[str] = field(default_factory=set)  # rules searching the whole event text
    keyword_literals: set[str] = field(default_factory=set)  # what those searches need ("" = cannot tell)
    keyword_needles: list[str] | None = None


class Detector:
    """Compiled rules ready to run on any batch: from a file hunt, the live stream or a Spark partition."""

    def __init__(
        self,
        ruleset: RuleSet,
        table: LogSourceTable | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        self.ruleset = ruleset
        self.table = table or builtin_table()
        self.disabled = set(disabled)
        self.rule_seconds: dict[str, float] = defaultdict(float)
        self.unrouted: list[Rule] = []
        self.fields: set[str] = set()
        self._groups: dict[LogSource, RuleGroup] = {}
        self._selection_plans: dict[str, tuple[tuple[str, Plan], ...]] = {}
        self.routes = Routes(self.table.entries)
        self._screen: Screen | None = None
        self._batches = 0
        literal_sets: dict[tuple[str | None, bool], set[str]] = defaultdict(set)
        for rule in ruleset.rules:
            self._add(rule, literal_sets)
        for group in self._groups.values():
            if group.keyword_literals:
                group.keyword_needles = keyword_needles(group.keyword_literals)
        self.literal_bank = LiteralBank({key: sorted(values) for key, values in literal_sets.items()})
        self.literal_bank.build_all()  # now, while inputs are still being read, not in the first batch
        self.answers = AnswerMemo()  # regular-expression answers per value, kept across batches

    def _add(self, rule: Rule, literal_sets: dict[tuple[str | None, bool], set[str]]) -> None:
        group = self._groups.get(rule.logsource)
        if group is None:
            indexes = [i for i, e in enumerate(self.table.entries) if e.covers(rule.logsource)]
            if not indexes and any((rule.logsource.product, rule.logsource.category, rule.logsource.service)):
                self.unrouted.append(rule)
                return
            group = self._groups[rule.logsource] = RuleGroup(rule.logsource, indexes)
        plan = self.ruleset.plans.get(rule.id) or rule_plan(rule)
        group.rules.append(rule)
        group.plans.append(plan)
        tests = plan_tests(plan)
        for test in tests:
            if test.field is None:
                group.keyword_rules.add(rule.id)
                for literal in _keyword_literals(test):
                    group.keyword_literals.add(literal)
                    literal_sets[(None, test.cased)].add(literal)
                continue
            self.fields.add(test.field)
            if test.kind == FIELDREF:
                self.fields.add(str(test.arg[0]))
            if test.kind in {CONTAINS, STARTS, ENDS}:
                literal_sets[(test.field, test.cased)].add(str(test.arg))
            else:
                required = test_literal(test.kind, test.arg)
                if required:  # an expression runs only on the values holding its fixed text
                    literal_sets[(test.field, False)].add(required)

    @property
    def groups(self) -> list[RuleGroup]:
        """The rule groups, one per distinct log source that some mapping entry serves."""
        return list(self._groups.values())

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Enable or disable a rule without recompiling anything."""
        if enabled:
            self.disabled.discard(rule_id)
        else:
            self.disabled.add(rule_id)

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch with the rule-side field names filled in (as ``run`` gives it back), for showing
        the fields a rule matched on when the hits were found elsewhere."""
        return prepare(frame, self.table.entries, self.routes.route(frame), self.fields)

    def detect(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return the (rule_id, _row) pairs where a rule matches a row of ``frame``."""
        return self.run(frame)[0]

    def run(self, frame: pl.DataFrame, explain: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Detect, and give back the prepared batch too (rule-side field names filled in), so callers
        can show the fields a rule matched on. With ``explain``, hits carry ``selections``: the
        selections that held for that event, from the results the batch already computed."""
        if frame.height == 0 or not self._groups:
            return pl.DataFrame(schema=HITS_SCHEMA), frame
        routed = self.routes.route(frame)
        derived = derived_columns(frame, self.table.entries, routed, self.fields)
        prepared = frame.with_columns([expr.alias(name) for name, expr in derived.items()]) if derived else frame
        encoded = {name: codes for name, codes in routed.encoded.items() if name not in derived}
        evaluator = BatchEvaluator(prepared, None, self.literal_bank, answers=self.answers, encoded=encoded)
        passing, exact = self._screened(evaluator)
        rule_ids: list[str] = []
        rows: list[np.ndarray] = []
        held: list[list[str]] = []
        next_rule = 0  # rules are numbered in group order, as the screen has them
        for group in self._groups.values():
            first_rule, next_rule = next_rule, next_rule + len(group.rules)
            if group.entry_indexes:
                group_rows = routed.rows_of(group.entry_indexes)
                if not len(group_rows):
                    continue
                whole = len(group_rows) == frame.height and group.keyword_needles is None
                view = evaluator if whole else evaluator.subset(group_rows, group.keyword_needles)
            else:
                group_rows = np.arange(frame.height)
                view = evaluator if group.keyword_needles is None else evaluator.subset(group_rows,
                                                                                        group.keyword_needles)
            for number, (rule, plan) in enumerate(zip(group.rules, group.plans, strict=True), first_rule):
                if rule.id in self.disabled or not passing[number]:
                    continue
                started = time.perf_counter()
                if exact[number] or evaluator.may_match(plan):
                    bits = view.evaluate(plan)
                    if bits is not None:
                        local = np.flatnonzero(bits)
                        rule_ids.extend([rule.id] * len(local))
                        rows.append(group_rows[local])
                        if explain:
                            held.extend(self._selections_held(rule, view, local))
                self.rule_seconds[rule.id] += time.perf_counter() - started
        if not rows:
            return pl.DataFrame(schema=HITS_SCHEMA), prepared
        hits = pl.DataFrame({RULE_ID: rule_ids, ROW: np.concatenate(rows).astype(np.uint32)})
        if explain:
            hits = hits.with_columns(pl.Series(SELECTIONS, held, dtype=pl.List(pl.Utf8)))
        return hits, prepared

    def _screened(self, evaluator: BatchEvaluator) -> tuple[np.ndarray, np.ndarray]:
        """(passing, exact) per rule in group order: whether the batch can match it at all, and whether
        that answer needs no test-by-test walk (``screen``). The screen costs a sixth of a second to
        build; what it saves grows with the batch (it also rules out, for the walk, every test whose
        literal occurs nowhere): it is built at the second batch, or at the first when that is large
        already, and a detector that meets one small batch only (a small hunt) walks."""
        self._batches += 1
        if self._screen is None and (self._batches >= 2 or evaluator.rows >= SCREEN_AT_ONCE):
            self.build_screen()
        if self._screen is None:
            count = sum(len(group.rules) for group in self._groups.values())
            return np.ones(count, dtype=bool), np.zeros(count, dtype=bool)
        return self._screen.passing(evaluator), self._screen.exact

    def build_screen(self) -> None:
        """Build the screen now (``_screened``): a Detector about to be cached gets it, so every warm
        start has it from its first batch without paying for it."""
        if self._screen is None:
            self._screen = Screen([plan for group in self._groups.values() for plan in group.plans])

    def _selections_held(self, rule: Rule, evaluator: BatchEvaluator, matched: np.ndarray) -> list[list[str]]:
        """For each matched row, the names of the rule's selections that hold there."""
        plans = self._selection_plans.get(rule.id) or self.ruleset.selection_plans.get(rule.id)
        if plans is None:
            plans = self._selection_plans[rule.id] = tuple((s.name, selection_plan(s)) for s in rule.selections)
        columns = []
        for name, plan in plans:
            bits = evaluator.evaluate(plan)
            columns.append((name, bits[matched] if bits is not None else np.zeros(len(matched), dtype=bool)))
        return [[name for name, bits in columns if bits[i]] for i in range(len(matched))]


def _keyword_literals(test: Test) -> list[str]:
    """Text a keyword test cannot hold without ("" when it names none: no pre-filter then)."""
    if test.kind in {CONTAINS, STARTS, ENDS}:
        return [str(test.arg)]
    if test.kind == EQ:
        return [str(v) for v in test.arg]
    return [test_literal(test.kind, test.arg) or ""]


class Routes:
    """Which mapping entries serve each row of a batch (an entries x rows boolean matrix).

    Routing reads a handful of columns (source, channel, event id, provider) whose combinations are
    few, so the entries are tested once per distinct combination and the answers spread to rows; the
    answers are kept across batches, since a stream meets the same few hundred combinations again
    and again."""

    LIMIT = 100_000  # remembered combinations; past this the memory starts over

    def __init__(self, entries: tuple[MappingEntry, ...]) -> None:
        self.entries = entries
        columns = {schema.SOURCE} if any(e.sources for e in entries) else set()
        columns.update(name for e in entries for name, _ in e.when)
        self._columns = columns
        self._known: dict[tuple[object, ...], np.ndarray] = {}

    def route(self, frame: pl.DataFrame) -> Routed:
        """Which entries serve each row of ``frame``, kept per distinct routing combination."""
        if not self.entries:
            return Routed(np.zeros((0, 1), dtype=bool), np.zeros(frame.height, dtype=np.intp))
        present = [c for c in frame.columns if c in self._columns]
        if not present:
            matrix = _entry_table(frame, self.entries)
            return Routed(matrix, np.arange(frame.height))
        encoded: dict[str, tuple[pa.Array, np.ndarray]] = {}
        codes, first = combination_codes(frame, present, encoded)
        distinct = frame.select(present)[first]
        shape = tuple((name, str(frame.schema[name])) for name in present)
        keys = [(shape, row) for row in distinct.rows()]
        unknown = [i for i, key in enumerate(keys) if key not in self._known]
        if unknown:
            if len(self._known) + len(unknown) > self.LIMIT:
                self._known.clear()
            if all(dtype == pl.String for _, dtype in distinct.schema.items()):
                table = _entry_table_of_rows([keys[i][1] for i in unknown], present, self.entries)
            else:
                table = _entry_table(distinct[unknown], self.entries)
            for column, i in enumerate(unknown):
                self._known[keys[i]] = table[:, column]
        by_key = np.stack([self._known[key] for key in keys], axis=1)
        return Routed(by_key, codes, encoded)


class Routed:
    """The routes of one batch: an (entries x combinations) matrix and each row's combination. Rows
    are reached through the few combinations (a rule group's rows: which combinations any of its
    entries serves, then one look-up per row), never through an (entries x rows) matrix."""

    def __init__(self, by_key: np.ndarray, codes: np.ndarray,
                 encoded: dict[str, tuple[pa.Array, np.ndarray]] | None = None) -> None:
        self.by_key = by_key
        self.codes = codes
        self.encoded = encoded or {}  # the routing columns' distinct values and codes (``combination_codes``)
        self._rows: dict[tuple[int, ...], np.ndarray] = {}

    def served(self, entry: int) -> bool:
        """Whether the entry serves some row."""
        return bool(self.by_key[entry].any())

    def entry_rows(self, entry: int) -> np.ndarray:
        """Which rows the entry serves (a boolean per row)."""
        served: np.ndarray = np.take(self.by_key[entry], self.codes)
        return served

    def rows_of(self, entries: list[int]) -> np.ndarray:
        """Positions of the rows that one of ``entries`` serves, in order (memoised per entry set)."""
        key = tuple(entries)
        rows = self._rows.get(key)
        if rows is None:
            combinations = self.by_key[entries].any(axis=0)
            if not combinations.any():
                rows = _NO_ROWS
            elif combinations.all():
                rows = np.arange(len(self.codes))
            else:
                rows = np.flatnonzero(np.take(combinations, self.codes))
            self._rows[key] = rows
        return rows


_NO_ROWS = np.zeros(0, dtype=np.intp)


def combination_codes(frame: pl.DataFrame, columns: list[str],
                      kept: dict[str, tuple[pa.Array, np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct combinations of ``columns`` (null a value like any other): each row's number,
    and the first row of each number. Each column is dictionary-encoded and the codes combined, which
    costs half of ranking the rows as structs. ``kept``, if given, receives each text column's
    distinct values (null left out) and rows' codes (null: the number of values), for the rule
    evaluator to reuse rather than encode the column again."""
    try:
        codes: np.ndarray | None = None
        radix = 1
        dtypes = frame.schema
        for name in columns:
            encoded = kernels.dictionary_encode(frame.get_column(name).to_arrow(compat_level=pl.CompatLevel.newest()))
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            size = len(encoded.dictionary) + 1  # the last code: null
            column_codes = kernels.codes_or(encoded.indices, size - 1)
            if kept is not None and dtypes[name] == pl.Utf8:
                kept[name] = (encoded.dictionary, column_codes)
            if codes is None:
                codes, radix = column_codes, size
                continue
            if radix * size >= 2**62:  # numbered densely again before the product can overflow
                codes, radix = _dense(codes)
            codes, radix = codes * size + column_codes, radix * size
        assert codes is not None
        dense, count = _dense(codes)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a column type Arrow cannot encode
        ranked = frame.select(pl.struct(columns).rank("dense").alias("k")).to_series().to_numpy()
        dense = ranked.astype(np.intp) - 1
        count = int(dense.max()) + 1 if len(dense) else 0
    first = np.empty(count, dtype=np.intp)
    first[dense[::-1]] = np.arange(len(dense) - 1, -1, -1)  # (the last write of each code: its first row)
    return dense, first


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes renumbered 0..n-1 in order of first appearance, and n."""
    encoded = kernels.dictionary_encode(pa.array(codes))
    return kernels.codes_or(encoded.indices, 0), len(encoded.dictionary)


def _entry_table_of_rows(rows: list[tuple[object, ...]], columns: list[str],
                         entries: tuple[MappingEntry, ...]) -> np.ndarray:
    """``_entry_table`` for a few distinct text rows, in Python: building a Polars expression per
    entry costs more than testing a few dozen rows against a hundred entries (``entry_mask`` rules)."""
    position = {name: i for i, name in enumerate(columns)}
    source_at = position.get(schema.SOURCE)
    matrix = np.zeros((len(entries), len(rows)), dtype=bool)
    for index, entry in enumerate(entries):
        if any(name not in position for name, _ in entry.when):
            continue  # the batch lacks a column the entry tests: it serves no row
        wanted = [(position[name], frozenset(values)) for name, values in entry.when]
        sources = frozenset(entry.sources) if entry.sources else None
        for column, row in enumerate(rows):
            if sources is not None and source_at is not None and row[source_at] not in sources:
                continue
            matrix[index, column] = all(row[at] in values for at, values in wanted)
    return matrix


def _entry_table(frame: pl.DataFrame, entries: tuple[MappingEntry, ...]) -> np.ndarray:
    table = frame.select([entry_mask(e, frame).alias(f"e{i}") for i, e in enumerate(entries)])
    matrix = table.to_numpy().T.astype(bool, copy=False)
    if matrix.shape[1] != frame.height:  # every entry a constant: one row to spread
        matrix = np.repeat(matrix[:, :1], frame.height, axis=1)
    return matrix


def prepare(frame: pl.DataFrame, entries: tuple[MappingEntry, ...], routed: Routed,
            fields: set[str]) -> pl.DataFrame:
    """Give rule-side field names a column: mapping aliases where an entry serves the row (filling
    only where the event lacks the field), then names that differ only in case or spaces."""
    derived = derived_columns(frame, entries, routed, fields)
    if not derived:
        return frame
    return frame.with_columns([expr.alias(name) for name, expr in derived.items()])


def derived_columns(frame: pl.DataFrame, entries: tuple[MappingEntry, ...], routed: Routed,
                    fields: set[str]) -> dict[str, pl.Expr]:
    """The columns ``prepare`` gives (or gives again) a batch, by name, with their expressions; every
    other column is the batch's own."""
    columns = set(frame.columns)
    derived: dict[str, pl.Expr] = {}
    for index, entry in enumerate(entries):
        if not entry.fields or not routed.served(index):
            continue
        mask = pl.Series(routed.entry_rows(index))
        for rule_field, event_column in entry.fields:
            if rule_field not in fields or event_column not in columns:
                continue
            base = derived.get(rule_field)
            if base is None:
                base = pl.col(rule_field) if rule_field in columns else pl.lit(None, dtype=pl.Utf8)
            derived[rule_field] = pl.when(pl.lit(mask)).then(pl.col(event_column).cast(pl.Utf8)).otherwise(base)
    lookup = {_field_key(c): c for c in frame.columns}
    for name in fields:
        if name in derived or name in columns:
            continue
        actual = lookup.get(_field_key(name))
        if actual is not None and not _normalised(actual):
            derived[name] = pl.col(actual)
    return derived


def _normalised(column: str) -> bool:
    """Whether a column is one Mamori added (core, or an OCSF top-level attribute such as ``status``),
    not one of the event's own fields: a rule field differing from it only in case is another field."""
    return schema.is_core_column(column) or column in schema.OCSF_TOP_LEVEL


def _field_key(name: str) -> str:
    """Field names compare without case and spaces: rules say ``ThreatName``, Defender ``Threat Name``."""
    return name.lower().replace(" ", "")
