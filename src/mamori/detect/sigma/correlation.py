"""Sigma correlation rules over detections: event_count, value_count, value_sum, value_avg, temporal,
temporal_ordered, with group-by, aliases and a timespan.

Detections are sparse, so the state is kept per correlation and group in plain Python: a sliding
window of the base detections that could still take part. The state survives a restart through
``to_json`` / ``from_json``, so a live service correlates across batches and restarts alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mamori.detect.sigma.model import Correlation, Rule

_OPS = {
    "gt": lambda v, t: v > t,
    "gte": lambda v, t: v >= t,
    "lt": lambda v, t: v < t,
    "lte": lambda v, t: v <= t,
    "eq": lambda v, t: v == t,
    "neq": lambda v, t: v != t,
}


@dataclass(frozen=True)
class BaseHit:
    """One detection of a rule that a correlation refers to."""

    rule_id: str
    time_ns: int
    uid: str
    fields: Mapping[str, str | None]


@dataclass(frozen=True)
class CorrelationHit:
    """A correlation that fired: which, when, for which group, on what value, from which detections."""

    correlation: Correlation
    time_ns: int
    group: tuple[tuple[str, str | None], ...]
    value: float
    uids: tuple[str, ...]
    first_ns: int


@dataclass
class _Window:
    items: deque[tuple[int, str, str, str | None]] = field(default_factory=deque)  # (time, rule, uid, value)


class CorrelationEngine:
    """Runs every correlation of a rule set over a time-ordered stream of base detections."""

    def __init__(self, correlations: Sequence[Correlation], rules: Sequence[Rule]) -> None:
        self.correlations = list(correlations)
        by_name = {r.name: r.id for r in rules if r.name}
        by_name.update({c.name: c.id for c in correlations if c.name})
        self._members: dict[str, list[str]] = {}
        for corr in self.correlations:
            self._members[corr.id] = [by_name.get(ref, ref) for ref in corr.rules]
        self._windows: dict[tuple[str, tuple[tuple[str, str | None], ...]], _Window] = {}

    def referenced_rules(self) -> set[str]:
        """Ids of the rules some correlation refers to."""
        return {rid for members in self._members.values() for rid in members}

    def silenced_rules(self) -> set[str]:
        """Rules whose own detections are not reported: referenced only by correlations with
        ``generate: false`` (the Sigma default)."""
        loud = {rid for c in self.correlations if c.generate for rid in self._members[c.id]}
        return self.referenced_rules() - loud

    def fields_needed(self) -> set[str]:
        """Event fields the correlations read (group-by, aliases, value fields)."""
        out: set[str] = set()
        for corr in self.correlations:
            aliased = {alias: dict(mapping) for alias, mapping in corr.aliases}
            for name in corr.group_by:
                out.update(aliased.get(name, {}).values() or [name])
            if corr.condition_field:
                out.add(corr.condition_field)
        return out

    def feed(self, hits: Iterable[BaseHit]) -> list[CorrelationHit]:
        """Take base detections (in time order) and return the correlations that fire."""
        fired: list[CorrelationHit] = []
        for hit in hits:
            for corr in self.correlations:
                members = self._members[corr.id]
                if hit.rule_id not in members:
                    continue
                group = self._group(corr, hit)
                if group is None:
                    continue
                value = hit.fields.get(corr.condition_field) if corr.condition_field else None
                window = self._windows.setdefault((corr.id, group), _Window())
                window.items.append((hit.time_ns, hit.rule_id, hit.uid, value))
                while window.items and window.items[0][0] < hit.time_ns - corr.timespan_ns:
                    window.items.popleft()
                result = self._evaluate(corr, members, window)
                if result is not None:
                    fired.append(CorrelationHit(corr, hit.time_ns, group, result,
                                                tuple(uid for _, _, uid, _ in window.items), window.items[0][0]))
                    window.items.clear()
        return fired

    def _group(self, corr: Correlation, hit: BaseHit) -> tuple[tuple[str, str | None], ...] | None:
        aliases = {alias: dict(mapping) for alias, mapping in corr.aliases}
        key = []
        for name in corr.group_by:
            source = aliases.get(name, {}).get(hit.rule_id, name) if name in aliases else name
            key.append((name, hit.fields.get(source)))
        return tuple(key)

    def _evaluate(self, corr: Correlation, members: list[str], window: _Window) -> float | None:
        items = window.items
        if corr.type == "event_count":
            value: float = float(len(items))
        elif corr.type == "value_count":
            value = float(len({v for _, _, _, v in items if v is not None}))
        elif corr.type in {"value_sum", "value_avg"}:
            numbers = [_number(v) for _, _, _, v in items]
            present = [n for n in numbers if n is not None]
            if not present:
                return None
            value = sum(present) if corr.type == "value_sum" else sum(present) / len(present)
        elif corr.type == "temporal":
            value = float(len({r for _, r, _, _ in items}))
        else:  # temporal_ordered: the members in their order, each after the previous one
            value = float(_ordered_prefix(members, [r for _, r, _, _ in items]))
        if all(_OPS[op](value, threshold) for op, threshold in corr.condition):
            return value
        return None

    def to_json(self) -> bytes:
        """Serialise the open windows so correlation survives a restart."""
        return orjson.dumps([
            {"c": cid, "g": list(group), "i": list(window.items)} for (cid, group), window in self._windows.items()
        ])

    def load_json(self, data: bytes) -> None:
        """Restore windows saved by ``to_json`` (unknown correlations are dropped)."""
        known = {c.id for c in self.correlations}
        for entry in orjson.loads(data):
            if entry["c"] not in known:
                continue
            group = tuple((str(k), v) for k, v in entry["g"])
            self._windows[(entry["c"], group)] = _Window(deque(tuple(i) for i in entry["i"]))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ordered_prefix(members: list[str], seen: list[str]) -> int:
    """How many of ``members`` occur in ``seen`` in their order (a subsequence)."""
    matched = 0
    for rule in seen:
        if matched < len(members) and rule == members[matched]:
            matched += 1
    return matched
