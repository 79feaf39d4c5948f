"""Sigma correlation rules over detections: event_count, value_count, value_sum, value_avg, temporal,
temporal_ordered, with group-by, aliases, a timespan, and chains of correlations.

Detections are sparse, so the state is kept per correlation and group in plain Python: a window of the
detections that could still take part. The state survives a restart through ``to_json`` /
``load_json``, so a live service correlates across batches and restarts alike.

When a correlation is decided (``decided_early``):

- *early*, as soon as the condition holds: the measure only grows as events join the window
  (event_count, value_count, temporal, temporal_ordered, value_sum) and the condition has only lower
  bounds (``gt``, ``gte``). The window trails the newest event by the timespan; once it fires, its
  events are spent and the window starts afresh, so the same events never fire twice.
- *at close*, once the window is complete: any condition with an upper bound or an exact value
  (``lt``, ``lte``, ``eq``, ``neq``: "fewer than 3 within 1h" is only known when the hour is over), and
  value_avg, whose average can fall as well as rise. A window opens at a group's first event, holds
  what comes within the timespan, and is decided once, when the stream passes its end (``advance``) or
  the input ends (``close``); the next event opens the next window. A group with no event has no
  window: "fewer than" counts the events that came, it cannot fire on silence.

Chains (the specification: "Refers to one or multiple Sigma or Correlations rules. Allowing the user to
chain multiple correlations together"): a correlation's hit is an input event of the correlations that
refer to it, at the time it came true (the event that made it hold, or the end of a window decided at
close, so a hit is never older than what is already known when it is made), with its group-by values
as its fields (a correlation "only uses its own group-by", so those are all a hit carries) and its
events' uids. Correlations run in dependency order; ``refuse_unresolved`` refuses a correlation naming
a rule that is not loaded, ``check_chains`` loops and fields a chained hit cannot carry. What a
correlation refers to (rule or correlation) is not reported on its own unless some correlation
referring to it says ``generate: true`` ("only the correlation query should be generated (default)").
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mamori.detect.sigma.model import Correlation, Refusal, RefusalKind, Rule

# the first words of the reasons of a correlation refused for naming what is not loaded (in a split hunt,
# it may be in another share); code tells these refusals apart by ``Refusal.kind``, not by these words
CORRELATION_NAMES_NO_RULE = "correlation.rules names no loaded rule"
CORRELATION_REFERS_TO_REFUSED = "correlation.rules refers to the correlation"

_OPS = {
    "gt": lambda v, t: v > t,
    "gte": lambda v, t: v >= t,
    "lt": lambda v, t: v < t,
    "lte": lambda v, t: v <= t,
    "eq": lambda v, t: v == t,
    "neq": lambda v, t: v != t,
}
# measures that never fall as events join a window (value_sum: a sum that reached the threshold within
# the timespan is a fact about those events, whatever comes later)
_GROWING = frozenset({"event_count", "value_count", "temporal", "temporal_ordered", "value_sum"})

Group = tuple[tuple[str, Any], ...]
_Item = tuple[int, str, tuple[str, ...], Any]  # (time, rule or correlation id, event uids, value)


@dataclass(frozen=True)
class BaseHit:
    """One detection of a rule that a correlation refers to."""

    rule_id: str
    time_ns: int
    uid: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class CorrelationHit:
    """A correlation that fired: which, when it came true (the event that made it hold, or the end of a
    window decided at close), for which group, on what value, from which events (the uids of the base
    detections, through any chained correlations) and the first of them."""

    correlation: Correlation
    time_ns: int
    group: Group
    value: float
    uids: tuple[str, ...]
    first_ns: int

    @property
    def summary(self) -> str:
        """What held, in one line (a hunt's detection record and a service alert both show it)."""
        corr = self.correlation
        return f"{corr.type} = {self.value:g} within {corr.timespan_ns // 1_000_000_000}s for {dict(self.group)}"


@dataclass
class _Window:
    items: list[_Item] = field(default_factory=list)  # in time order
    start_ns: int = 0  # when it opened (windows decided at close)


def decided_early(corr: Correlation) -> bool:
    """Whether ``corr`` fires as soon as its condition holds (a growing measure, lower bounds only)
    rather than when its window closes (see the module docstring)."""
    return corr.type in _GROWING and all(op in {"gt", "gte"} for op, _ in corr.condition)


def _time(item: _Item) -> int:
    return item[0]


def _label(corr: Correlation) -> str:
    return corr.name or corr.id


def check_chains(correlations: Sequence[Correlation], rules: Sequence[Rule]) -> tuple[list[Correlation],
                                                                                   list[Refusal]]:
    """Split correlations into those that can run and refusals saying why not: a chain that loops back
    to a correlation (it would wait on its own hits), a group-by or value field a referenced
    correlation's hits do not carry (they carry only its group-by fields), and anything that refers to
    a refused correlation."""
    ids = _name_to_id(correlations, rules)
    by_id = {c.id: c for c in correlations}
    deps = {c.id: [ids.get(r, r) for r in c.rules if ids.get(r, r) in by_id] for c in correlations}
    reasons: dict[str, tuple[RefusalKind, str]] = {}
    for corr in correlations:
        loop = _loop_from(corr.id, deps)
        if loop:
            path = " → ".join(_label(by_id[c]) for c in loop)
            reasons[corr.id] = RefusalKind.CORRELATION_LOOP, (
                f"correlation.rules loops back to this correlation ({path}): a correlation cannot take its own "
                "hits as input; remove one reference of the loop")
    for corr in correlations:
        if corr.id in reasons:
            continue
        aliases = _aliases(corr, ids)
        for dep in deps[corr.id]:
            inner = by_id[dep]
            wanted = [("group-by", name, aliases.get(name, {}).get(dep, name)) for name in corr.group_by]
            if corr.condition_field:
                wanted.append(("condition.field", corr.condition_field, corr.condition_field))
            for where, name, source in wanted:
                if source not in inner.group_by:
                    reasons[corr.id] = RefusalKind.CORRELATION_FIELD_NOT_CARRIED, (
                        f"correlation.{where} {name!r}: the referenced correlation {_label(inner)!r} does not "
                        f"group by {source!r}, and a correlation's hits carry only its group-by fields; add "
                        f"{source!r} to its group-by or map {name!r} to one of its fields with an alias")
                    break
            if corr.id in reasons:
                break
    changed = True
    while changed:  # what refers to a refused correlation would silently never see its hits
        changed = False
        for corr in correlations:
            bad = next((d for d in deps[corr.id] if d in reasons), None)
            if corr.id not in reasons and bad is not None:
                reasons[corr.id] = RefusalKind.CORRELATION_REFERS_TO_REFUSED, (
                    f"{CORRELATION_REFERS_TO_REFUSED} {_label(by_id[bad])!r}, which is refused; fix that one first")
                changed = True
    kept = [c for c in correlations if c.id not in reasons]
    return kept, [Refusal(c.path, reasons[c.id][1], c.id, kind=reasons[c.id][0]) for c in correlations
                  if c.id in reasons]


def refuse_unresolved(correlations: Sequence[Correlation], rules: Sequence[Rule]) -> tuple[list[Correlation],
                                                                                       list[Refusal]]:
    """Split correlations into those whose every reference is loaded and refusals for the rest: a
    correlation naming a rule that is not loaded would wait for hits that never come (a temporal one
    never fires, a count undercounts) and say nothing; what refers to a refused correlation goes too."""
    kept = list(correlations)
    refused: list[Refusal] = []
    gone: dict[str, Correlation] = {}  # names and ids of refused correlations
    while True:
        known = ({r.id for r in rules} | {r.name for r in rules if r.name}
                 | {c.id for c in kept} | {c.name for c in kept if c.name})
        missing = {c.id: [name for name in c.rules if name not in known] for c in kept}
        bad = [c for c in kept if missing[c.id]]
        if not bad:
            return kept, refused
        for corr in bad:
            lost = [gone[name] for name in missing[corr.id] if name in gone]
            if lost:
                kind = RefusalKind.CORRELATION_REFERS_TO_REFUSED
                reason = f"{CORRELATION_REFERS_TO_REFUSED} {_label(lost[0])!r}, which is refused; fix that one first"
            else:
                kind = RefusalKind.CORRELATION_NAMES_NO_RULE
                reason = (f"{CORRELATION_NAMES_NO_RULE}: {', '.join(dict.fromkeys(missing[corr.id]))}; load the "
                          "rules it names (by id or name) with it")
            refused.append(Refusal(corr.path, reason, corr.id, kind=kind))
            gone[corr.id] = corr
            if corr.name:
                gone[corr.name] = corr
        kept = [c for c in kept if not missing[c.id]]


def vet_correlations(correlations: Sequence[Correlation], rules: Sequence[Rule]) -> tuple[list[Correlation],
                                                                                      list[Refusal]]:
    """The correlations that can run beside ``rules``, and refusals with the reason for the rest: names
    no loaded rule has (``refuse_unresolved``), loops and fields a chained hit cannot carry
    (``check_chains``). Every way of loading rules goes through it."""
    kept, unresolved = refuse_unresolved(correlations, rules)
    kept, chained = check_chains(kept, rules)
    return kept, unresolved + chained


def _name_to_id(correlations: Sequence[Correlation], rules: Sequence[Rule]) -> dict[str, str]:
    ids = {r.name: r.id for r in rules if r.name}
    ids.update({c.name: c.id for c in correlations if c.name})
    return ids


def _aliases(corr: Correlation, ids: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """alias -> (referenced rule id -> field); the spec keys aliases by rule name, ids work too."""
    return {alias: {ids.get(ref, ref): source for ref, source in mapping} for alias, mapping in corr.aliases}


def _loop_from(start: str, deps: Mapping[str, list[str]]) -> list[str]:
    """A path of references from ``start`` back to itself (``[start, ..., start]``), or [] if none."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in deps.get(node, []):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return []


def _dependency_order(correlations: Sequence[Correlation], ids: Mapping[str, str]) -> list[Correlation]:
    """Correlations with every referenced correlation before the ones that refer to it (no loops:
    ``check_chains`` removed them); otherwise in the given order."""
    by_id = {c.id: c for c in correlations}
    done: set[str] = set()
    out: list[Correlation] = []

    def visit(corr: Correlation) -> None:
        if corr.id in done:
            return
        done.add(corr.id)
        for ref in corr.rules:
            inner = by_id.get(ids.get(ref, ref))
            if inner is not None:
                visit(inner)
        out.append(corr)

    for corr in correlations:
        visit(corr)
    return out


class CorrelationEngine:
    """Runs every correlation of a rule set over a time-ordered stream of base detections, feeding the
    hits of referenced correlations to the correlations that chain on them."""

    def __init__(self, correlations: Sequence[Correlation], rules: Sequence[Rule]) -> None:
        kept, self.refused = check_chains(correlations, rules)
        ids = _name_to_id(kept, rules)
        self.correlations = _dependency_order(kept, ids)
        self._order = {c.id: n for n, c in enumerate(self.correlations)}
        self._members = {c.id: [ids.get(ref, ref) for ref in c.rules] for c in self.correlations}
        self._aliases = {c.id: _aliases(c, ids) for c in self.correlations}
        self._early = {c.id: decided_early(c) for c in self.correlations}
        self._readers: dict[str, list[Correlation]] = {}
        for corr in self.correlations:
            for member in dict.fromkeys(self._members[corr.id]):
                self._readers.setdefault(member, []).append(corr)
        self._windows: dict[str, dict[Group, _Window]] = {c.id: {} for c in self.correlations}
        self._deadlines: list[tuple[int, int, str, Group]] = []  # (window end, tie, correlation, group)
        self._tie = 0

    def referenced_rules(self) -> set[str]:
        """Ids of the rules (and correlations) some correlation refers to."""
        return set(self._readers)

    def silenced_rules(self) -> set[str]:
        """Rules and correlations whose own detections are not reported: referenced only by
        correlations with ``generate: false`` (the Sigma default: "only the correlation query should be
        generated"). A referenced correlation's hits still feed the correlations chained on it."""
        loud = {rid for c in self.correlations if c.generate for rid in self._members[c.id]}
        return self.referenced_rules() - loud

    def fields_needed(self) -> set[str]:
        """Event fields the correlations read (group-by, aliases, value fields)."""
        out: set[str] = set()
        for corr in self.correlations:
            aliases = self._aliases[corr.id]
            for name in corr.group_by:
                out.add(name)
                out.update(aliases.get(name, {}).values())
            if corr.condition_field:
                out.add(corr.condition_field)
        return out

    def feed(self, hits: Iterable[BaseHit], skip: Collection[str] = ()) -> list[CorrelationHit]:
        """Take base detections (in time order) and return the correlations that fire, chained ones
        included; each detection first closes the windows that ended before it. ``skip``: correlations
        switched off (they take nothing in and fire nothing)."""
        fired: list[CorrelationHit] = []
        for hit in hits:
            fired.extend(self.advance(hit.time_ns, skip))
            fired.extend(self._dispatch(hit.rule_id, hit.time_ns, (hit.uid,), hit.fields, skip))
        return fired

    def advance(self, now_ns: int, skip: Collection[str] = ()) -> list[CorrelationHit]:
        """The stream has reached ``now_ns``: decide the windows that ended before it (those of
        correlations decided at close), referenced correlations first."""
        fired: list[CorrelationHit] = []
        while self._deadlines and self._deadlines[0][0] < now_ns:
            due: list[tuple[int, int, str, Group]] = []
            while self._deadlines and self._deadlines[0][0] < now_ns:
                due.append(heapq.heappop(self._deadlines))
            for end, _, cid, group in sorted(due, key=lambda d: (self._order.get(d[2], -1), d[0], d[1])):
                window = self._windows.get(cid, {}).get(group)
                if window is not None and window.start_ns + self._span(cid) == end:
                    fired.extend(self._decide(cid, group, skip))
        return fired

    def expire(self, now_ns: int) -> None:
        """Drop the windows of correlations decided early whose events have all left the timespan by
        ``now_ns``: they can no longer fire, and a live service would otherwise keep (and save) one per
        group ever seen. Once per batch, not per detection: it looks at every window."""
        for corr in self.correlations:
            if self._early[corr.id]:
                windows = self._windows[corr.id]
                for group in [g for g, w in windows.items() if w.items[-1][0] < now_ns - corr.timespan_ns]:
                    del windows[group]

    def close(self, skip: Collection[str] = ()) -> list[CorrelationHit]:
        """The input has ended: decide every open window of the correlations decided at close (a hunt's
        input is all the evidence there is), referenced correlations first."""
        fired: list[CorrelationHit] = []
        for corr in self.correlations:
            if not self._early[corr.id]:
                for group in list(self._windows[corr.id]):
                    fired.extend(self._decide(corr.id, group, skip))
        self._deadlines.clear()
        return fired

    def _span(self, cid: str) -> int:
        return self.correlations[self._order[cid]].timespan_ns

    def _dispatch(self, rule_id: str, time_ns: int, uids: tuple[str, ...], fields: Mapping[str, Any],
                  skip: Collection[str]) -> list[CorrelationHit]:
        """Give one input event to every correlation reading ``rule_id``; a hit goes on down the chain."""
        fired: list[CorrelationHit] = []
        for corr in self._readers.get(rule_id, ()):
            if corr.id in skip:
                continue
            group = self._group(corr, rule_id, fields)
            value = fields.get(corr.condition_field) if corr.condition_field else None
            item: _Item = (time_ns, rule_id, uids, value)
            if self._early[corr.id]:
                hit = self._add_early(corr, group, item)
                if hit is not None:
                    fired.extend(self._emit(hit, skip))
            else:
                fired.extend(self._add_at_close(corr, group, item, skip))
        return fired

    def _emit(self, hit: CorrelationHit, skip: Collection[str]) -> list[CorrelationHit]:
        """A hit, then what it sets off in the correlations chained on it."""
        if hit.correlation.id in skip:
            return []
        return [hit, *self._dispatch(hit.correlation.id, hit.time_ns, hit.uids, dict(hit.group), skip)]

    def _add_early(self, corr: Correlation, group: Group, item: _Item) -> CorrelationHit | None:
        windows = self._windows[corr.id]
        window = windows.setdefault(group, _Window(start_ns=item[0]))
        insort(window.items, item, key=_time)
        stale = bisect_left(window.items, window.items[-1][0] - corr.timespan_ns, key=_time)
        del window.items[:stale]
        hit = self._measured(corr, group, window.items)
        if hit is not None:
            del windows[group]  # its events are spent
        return hit

    def _add_at_close(self, corr: Correlation, group: Group, item: _Item,
                      skip: Collection[str]) -> list[CorrelationHit]:
        fired: list[CorrelationHit] = []
        window = self._windows[corr.id].get(group)
        if window is not None and item[0] > window.start_ns + corr.timespan_ns:
            fired.extend(self._decide(corr.id, group, skip))
            window = None
        if window is None:
            window = self._windows[corr.id][group] = _Window(start_ns=item[0])
            self._tie += 1
            heapq.heappush(self._deadlines, (item[0] + corr.timespan_ns, self._tie, corr.id, group))
        insort(window.items, item, key=_time)
        return fired

    def _decide(self, cid: str, group: Group, skip: Collection[str]) -> list[CorrelationHit]:
        """Close one window and fire if its condition holds."""
        window = self._windows[cid].pop(group, None)
        if window is None or not window.items:
            return []
        hit = self._measured(self.correlations[self._order[cid]], group, window.items,
                             window.start_ns + self._span(cid))
        return [] if hit is None else self._emit(hit, skip)

    def _group(self, corr: Correlation, rule_id: str, fields: Mapping[str, Any]) -> Group:
        aliases = self._aliases[corr.id]
        return tuple((name, fields.get(aliases.get(name, {}).get(rule_id, name))) for name in corr.group_by)

    def _measured(self, corr: Correlation, group: Group, items: list[_Item],
                  at: int | None = None) -> CorrelationHit | None:
        """The hit of a window whose measure meets the condition (at ``at``, else at its newest event),
        else None."""
        value = _measure(corr, self._members[corr.id], items)
        if value is None or not all(_OPS[op](value, threshold) for op, threshold in corr.condition):
            return None
        uids = tuple(dict.fromkeys(uid for _, _, event_uids, _ in items for uid in event_uids))
        return CorrelationHit(corr, items[-1][0] if at is None else at, group, value, uids, items[0][0])

    def to_json(self) -> bytes:
        """Serialise the open windows so correlation survives a restart."""
        return orjson.dumps([
            {"c": cid, "g": [list(pair) for pair in group], "s": window.start_ns,
             "i": [[t, rule, list(uids), value] for t, rule, uids, value in window.items]}
            for cid, windows in self._windows.items() for group, window in windows.items()
        ])

    def load_json(self, data: bytes) -> None:
        """Restore windows saved by ``to_json`` (unknown correlations are dropped; windows saved before
        chaining, with one uid per item and no start, are read too)."""
        for entry in orjson.loads(data):
            cid = entry["c"]
            if cid not in self._windows:
                continue
            group = tuple((str(k), v) for k, v in entry["g"])
            items: list[_Item] = sorted(
                ((int(t), str(rule), (uids,) if isinstance(uids, str) else tuple(uids), value)
                 for t, rule, uids, value in entry["i"]), key=_time)
            if not items:
                continue
            window = _Window(items, int(entry.get("s", items[0][0])))
            self._windows[cid][group] = window
            if not self._early[cid]:
                self._tie += 1
                heapq.heappush(self._deadlines, (window.start_ns + self._span(cid), self._tie, cid, group))


def _measure(corr: Correlation, members: list[str], items: list[_Item]) -> float | None:
    """The window's value for the correlation type (None: no value to compare, e.g. no numbers)."""
    if corr.type == "event_count":
        return float(len(items))
    if corr.type == "value_count":
        return float(len({v for _, _, _, v in items if v is not None}))
    if corr.type in {"value_sum", "value_avg"}:
        present = [n for n in (_number(v) for _, _, _, v in items) if n is not None]
        if not present:
            return None
        return sum(present) if corr.type == "value_sum" else sum(present) / len(present)
    if corr.type == "temporal":
        return float(len({r for _, r, _, _ in items}))
    # temporal_ordered: the members in their order, each after the previous one
    return float(_ordered_prefix(members, [r for _, r, _, _ in items]))


def _number(value: Any) -> float | None:
    """A field value as a finite number, else None (text, missing, NaN and infinities are not amounts)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ordered_prefix(members: list[str], seen: list[str]) -> int:
    """How many of ``members`` occur in ``seen`` in their order (a subsequence)."""
    matched = 0
    for rule in seen:
        if matched < len(members) and rule == members[matched]:
            matched += 1
    return matched
