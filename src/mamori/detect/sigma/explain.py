"""Say why a rule matched: the selections that held (computed in bulk by the engine, from the test
results the batch already had, as capa returns *why*) and the fields they tested, with the values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mamori.detect.sigma.model import Rule


def selection_fields(rule: Rule, selections: Sequence[str]) -> list[str]:
    """The fields the given selections of a rule test, in rule order."""
    wanted = set(selections)
    out: dict[str, None] = {}
    for selection in rule.selections:
        if selection.name in wanted:
            for item_map in selection.maps:
                for item in item_map:
                    if item.field:
                        out.setdefault(item.field, None)
    return list(out)


def explanation_text(rule: Rule, selections: Sequence[str], values: Mapping[str, object]) -> str:
    """A sentence an analyst reads: ``selection_img, selection_cli matched: Image='...', ...``."""
    shown = ", ".join(f"{f}={values.get(f)!r}" for f in selection_fields(rule, selections) if f in values)
    return f"{', '.join(selections) or 'condition'} matched" + (f": {shown}" if shown else "")
