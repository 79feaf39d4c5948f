"""Say why a rule matched: re-evaluate its selections on the matched events only (bulk first, then
explain the few hits, as capa does), and name the fields and values that took part."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mamori.detect.sigma.evaluate import BatchEvaluator
from mamori.detect.sigma.model import Rule
from mamori.detect.sigma.plan import selection_plan


@dataclass(frozen=True)
class Explanation:
    """For one matched event: the selections that held and the fields they tested, with values."""

    selections: tuple[str, ...]
    fields: tuple[tuple[str, str | None], ...]

    def as_text(self) -> str:
        """A sentence an analyst reads: ``selection_img, selection_cli matched: Image=..., ...``."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.fields)
        return f"{', '.join(self.selections) or 'condition'} matched" + (f": {shown}" if shown else "")


def explain(rule: Rule, rows: pl.DataFrame, keyword_columns: list[str] | None = None) -> list[Explanation]:
    """One explanation per row of ``rows`` (the events the rule matched, already prepared)."""
    if rows.height == 0:
        return []
    evaluator = BatchEvaluator(rows, keyword_columns)
    held: dict[str, np.ndarray] = {}
    for selection in rule.selections:
        bits = evaluator.evaluate(selection_plan(selection))
        held[selection.name] = bits if bits is not None else np.zeros(rows.height, dtype=bool)
    columns = set(rows.columns)
    out = []
    for index in range(rows.height):
        names = tuple(name for name, bits in held.items() if bits[index])
        fields: dict[str, str | None] = {}
        for selection in rule.selections:
            if selection.name not in names:
                continue
            for item_map in selection.maps:
                for item in item_map:
                    if item.field and item.field in columns and item.field not in fields:
                        value = rows.get_column(item.field)[index]
                        fields[item.field] = None if value is None else str(value)
        out.append(Explanation(names, tuple(fields.items())))
    return out
