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

from mamori.detect.sigma.evaluate import BatchEvaluator
from mamori.detect.sigma.model import Rule, RuleSet
from mamori.detect.sigma.plan import CONTAINS, ENDS, STARTS, Plan, plan_fields, plan_tests, rule_plan, uses_keywords
from mamori.events import schema
from mamori.events.logsources import LogSource, LogSourceTable, MappingEntry, builtin_table, entry_mask

ROW = "_row"
RULE_ID = "rule_id"
HITS_SCHEMA = {RULE_ID: pl.Utf8, ROW: pl.UInt32}


@dataclass
class RuleGroup:
    """Rules sharing one log source, with the mapping entries that route rows to them."""

    logsource: LogSource
    entry_indexes: list[int]
    rules: list[Rule] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)


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
        self.keywords = False
        self.literals: dict[tuple[str | None, bool], list[str]] = {}
        self._groups: dict[LogSource, RuleGroup] = {}
        literal_sets: dict[tuple[str | None, bool], set[str]] = defaultdict(set)
        for rule in ruleset.rules:
            self._add(rule, literal_sets)
        self.literals = {key: sorted(values) for key, values in literal_sets.items()}

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
        self.fields |= plan_fields(plan)
        self.keywords = self.keywords or uses_keywords(plan)
        for test in plan_tests(plan):
            if test.kind in {CONTAINS, STARTS, ENDS}:
                literal_sets[(test.field, test.cased)].add(str(test.arg))

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

    def detect(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return the (rule_id, _row) pairs where a rule matches a row of ``frame``."""
        if frame.height == 0 or not self._groups:
            return pl.DataFrame(schema=HITS_SCHEMA)
        masks = entry_masks(frame, self.table.entries)
        prepared = prepare(frame, self.table.entries, masks, self.fields)
        keyword_columns = [c for c in frame.columns if not schema.is_core_column(c)] if self.keywords else None
        evaluator = BatchEvaluator(prepared, keyword_columns, self.literals)
        rule_ids: list[str] = []
        rows: list[np.ndarray] = []
        for group in self._groups.values():
            if group.entry_indexes:
                group_mask = np.any(masks[group.entry_indexes], axis=0)
                if not group_mask.any():
                    continue
            else:
                group_mask = np.ones(frame.height, dtype=bool)
            for rule, plan in zip(group.rules, group.plans, strict=True):
                if rule.id in self.disabled:
                    continue
                started = time.perf_counter()
                if not evaluator.may_match(plan):
                    self.rule_seconds[rule.id] += time.perf_counter() - started
                    continue
                bits = evaluator.evaluate(plan)
                if bits is not None:
                    matched = np.flatnonzero(bits & group_mask)
                    if len(matched):
                        rule_ids.extend([rule.id] * len(matched))
                        rows.append(matched)
                self.rule_seconds[rule.id] += time.perf_counter() - started
        if not rows:
            return pl.DataFrame(schema=HITS_SCHEMA)
        return pl.DataFrame({RULE_ID: rule_ids, ROW: np.concatenate(rows).astype(np.uint32)})


def entry_masks(frame: pl.DataFrame, entries: tuple[MappingEntry, ...]) -> np.ndarray:
    """A (entries x rows) boolean matrix: which rows each mapping entry serves."""
    if not entries:
        return np.zeros((0, frame.height), dtype=bool)
    table = frame.select([entry_mask(e, frame).alias(f"e{i}") for i, e in enumerate(entries)])
    return table.to_numpy().T.astype(bool, copy=False)


def prepare(frame: pl.DataFrame, entries: tuple[MappingEntry, ...], masks: np.ndarray,
            fields: set[str]) -> pl.DataFrame:
    """Give rule-side field names a column: mapping aliases where an entry serves the row (filling
    only where the event lacks the field), then names that differ only in case or spaces."""
    columns = set(frame.columns)
    derived: dict[str, pl.Expr] = {}
    for index, entry in enumerate(entries):
        if not entry.fields or not masks[index].any():
            continue
        mask = pl.Series(masks[index])
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
        if actual is not None:
            derived[name] = pl.col(actual)
    if not derived:
        return frame
    return frame.with_columns([expr.alias(name) for name, expr in derived.items()])


def _field_key(name: str) -> str:
    """Field names compare without case and spaces: rules say ``ThreatName``, Defender ``Threat Name``."""
    return name.lower().replace(" ", "")
