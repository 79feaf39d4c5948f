"""Retro-hunt: run rules (new, changed, or one loaded rule) over the events stored in the lake.

Used by ``mamori hunt --store`` and by the API's hunt and rule-test calls. Streams the lake in
batches, so memory is bounded whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from mamori.detect.sigma.correlation import vet_correlations
from mamori.detect.sigma.loader import parse_rule_text
from mamori.detect.sigma.model import Correlation, Filter, Rule, RuleSet
from mamori.detect.sigma.plan import rule_plan
from mamori.detect.sigma.ruleset import apply_filters
from mamori.errors import RuleError
from mamori.events import schema
from mamori.service.detection import Detection, SigmaStage
from mamori.store.lake import Lake


@dataclass(frozen=True)
class HuntHit:
    """One stored event a rule matches."""

    rule_id: str
    rule_title: str
    level: str
    uid: str
    time: str | None
    host: str | None
    source: str | None
    explanation: str


def ruleset_from_text(text: str, where: str = "<request>", loaded: RuleSet | None = None) -> RuleSet:
    """A rule set from one Sigma YAML text (rules and correlations); refusals raise with the reason. A
    correlation may name rules the text does not hold: they are taken from ``loaded`` (the service's
    rules), so a new correlation over loaded rules can be tried on history; a name found in neither is
    refused, not left to wait for hits that never come."""
    items, refused = parse_rule_text(where, text)
    if refused:
        raise RuleError(refused[0].reason, where=where, hint="fix the rule and send it again")
    ruleset = RuleSet()
    filters: list[Filter] = []
    for item in items:
        if isinstance(item, Correlation):
            ruleset.correlations.append(item)
        elif isinstance(item, Rule):
            ruleset.rules.append(item)
            ruleset.plans[item.id] = rule_plan(item)
        else:
            filters.append(item)
    if not ruleset.rules and not ruleset.correlations:
        raise RuleError("no rule in the text", where=where)
    _borrow_named(ruleset, loaded)
    apply_filters(ruleset, filters)  # a meta-filter sent with its rules tunes them, as when loaded from files
    ruleset.correlations, vetted = vet_correlations(ruleset.correlations, ruleset.rules)
    if ruleset.refused or vetted:
        raise RuleError((ruleset.refused + vetted)[0].reason, where=where,
                        hint="send the rules a correlation or filter names in the same text, or load them in "
                             "the service first")
    return ruleset


def _borrow_named(ruleset: RuleSet, loaded: RuleSet | None) -> None:
    """Add to ``ruleset`` the rules and correlations of ``loaded`` that its correlations name and it
    lacks (with what those name in turn); the text's own rules win over loaded ones of the same id."""
    if loaded is None or not ruleset.correlations:
        return
    own = {r.id for r in ruleset.rules} | {r.name for r in ruleset.rules if r.name}
    own |= {c.id for c in ruleset.correlations} | {c.name for c in ruleset.correlations if c.name}
    named = {name for c in ruleset.correlations for name in c.rules if name not in own}
    wanted = [r.id for r in loaded.rules if r.id in named or r.name in named]
    wanted += [c.id for c in loaded.correlations if c.id in named or c.name in named]
    if not wanted:
        return
    borrowed = subset(loaded, wanted)
    ids = {r.id for r in ruleset.rules} | {c.id for c in ruleset.correlations}
    for rule in borrowed.rules:
        if rule.id not in ids:
            ruleset.rules.append(rule)
            ruleset.plans[rule.id] = borrowed.plans.get(rule.id) or rule_plan(rule)
    ruleset.correlations += [c for c in borrowed.correlations if c.id not in ids]


def subset(ruleset: RuleSet, rule_ids: Sequence[str]) -> RuleSet:
    """The rules of ``ruleset`` with these ids, and what their correlations need: the rules and the
    correlations they name, and what those name in turn (a chain runs whole or not at all)."""
    wanted = set(rule_ids)
    chosen: list[Correlation] = []
    pending = [c for c in ruleset.correlations if c.id in wanted]
    while pending:
        correlation = pending.pop()
        if correlation in chosen:
            continue
        chosen.append(correlation)
        named = set(correlation.rules)
        pending += [c for c in ruleset.correlations if (c.id in named or c.name in named) and c not in chosen]
    out = RuleSet()
    out.correlations = [c for c in ruleset.correlations if c in chosen]  # in the rule set's order
    needed = wanted | {r for c in out.correlations for r in c.rules}
    out.rules = [r for r in ruleset.rules if r.id in needed or r.name in needed]
    out.plans = {k: v for k, v in ruleset.plans.items() if k in {r.id for r in out.rules}}
    return out


def hunt_lake(lake: Lake, ruleset: RuleSet, since: datetime | None = None, until: datetime | None = None,
              limit: int = 1000) -> tuple[list[HuntHit], int, int]:
    """Run ``ruleset`` over stored events in the time range; return (first ``limit`` hits, all hits, events)."""
    stage = SigmaStage(ruleset)
    hits: list[HuntHit] = []
    total = 0
    events = 0
    frame: pl.DataFrame | None = None

    def keep(detection: Detection) -> None:
        nonlocal total
        rows = list(detection.rows)
        texts = detection.explain()
        total += len(rows) or len(detection.uids)
        picked: list[dict[str, Any]] = []
        if rows and frame is not None:
            picked = frame[rows].select(schema.UID, schema.TIME, schema.HOST, schema.SOURCE).to_dicts()
        for index, row in enumerate(picked):
            if len(hits) >= limit:
                break
            when = row[schema.TIME]
            explanation = texts[index] if index < len(texts) else ""
            hits.append(HuntHit(detection.rule_id, detection.title, detection.level, row[schema.UID],
                                when.astimezone(UTC).isoformat() if when else None, row[schema.HOST],
                                row[schema.SOURCE], explanation))
        if not rows and len(hits) < limit:
            hits.append(HuntHit(detection.rule_id, detection.title, detection.level, ",".join(detection.uids),
                                None, None, "correlation", "; ".join(texts)))

    for frame in lake.frames(since.date() if since else None, until.date() if until else None):
        if since is not None:
            frame = frame.filter(frame.get_column(schema.TIME) >= since)
        if until is not None:
            frame = frame.filter(frame.get_column(schema.TIME) <= until)
        events += frame.height
        for detection in stage.detect(frame):
            keep(detection)
    for detection in stage.finish():  # the stored events have ended: windows decided at close are decided now
        keep(detection)
    return hits, total, events


def hunt_store(data_dir: Path, rule_paths: Sequence[Path], since: datetime | None = None,
               until: datetime | None = None, limit: int = 100_000,
               placeholders: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """``mamori hunt --store``: run the rules at ``rule_paths`` (their ``|expand`` placeholders given
    ``placeholders``) over the lake of the service in ``data_dir``."""
    from mamori.detect.sigma.ruleset import load_ruleset

    ruleset = load_ruleset(list(rule_paths), placeholders=placeholders)
    hits, _, _ = hunt_lake(Lake(data_dir / "lake"), ruleset, since, until, limit)
    return [hit.__dict__ for hit in hits]
