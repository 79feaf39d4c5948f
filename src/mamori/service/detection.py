"""The detection stage of the live pipeline: a small Protocol, and its implementation on the Sigma engine.

The stage takes one event batch and returns detections (rule metadata, matched rows, explanation);
correlation windows carry over between batches and, through ``state``/``load_state``, across restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import polars as pl

from mamori.detect.sigma.correlation import BaseHit, CorrelationEngine, CorrelationHit
from mamori.detect.sigma.engine import ROW, RULE_ID, SELECTIONS, Detector
from mamori.detect.sigma.explain import explanation_text, selection_fields
from mamori.detect.sigma.model import Rule, RuleSet
from mamori.events import schema
from mamori.service.match_ahead import MatchSpec, RuleHits

MAX_EXPLAINED = 20  # rows explained per rule and batch: enough for the analyst, bounded cost


@dataclass(frozen=True)
class RuleInfo:
    """A rule as the API lists it."""

    id: str
    title: str
    level: str
    author: str
    tags: tuple[str, ...]
    logsource: str
    path: str
    enabled: bool
    correlation: bool = False


@dataclass(frozen=True)
class Detection:
    """A rule matching some rows of a batch (``rows``), or a correlation firing on events (``uids``)."""

    rule_id: str
    title: str
    level: str
    author: str
    tags: tuple[str, ...]
    rows: tuple[int, ...] = ()
    uids: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()
    time_ns: int | None = None
    group: tuple[tuple[str, str | None], ...] = field(default_factory=tuple)
    explainer: Callable[[], tuple[str, ...]] | None = field(default=None, compare=False, repr=False)

    def explain(self) -> tuple[str, ...]:
        """The explanation texts, computed on demand (only new alerts need them)."""
        if self.explanations or self.explainer is None:
            return self.explanations
        try:
            return self.explainer()
        except Exception as exc:  # an explanation must never stop alerting
            return (f"matched (no explanation: {exc})",)


class DetectionStage(Protocol):
    """What the pipeline needs from a detector."""

    def detect(self, frame: pl.DataFrame, ahead: RuleHits | None = None) -> list[Detection]:
        """Detections in one batch (correlations included); ``ahead``: the rule hits a parser process
        already found on it (see ``match_spec``)."""
        ...

    def match_spec(self) -> MatchSpec | None:
        """What a parser process needs to match this stage's rules on the batches it parses (None:
        the stage matches itself)."""
        ...

    def state(self) -> bytes:
        """Correlation state to commit with the batch."""
        ...

    def load_state(self, data: bytes) -> None:
        """Restore correlation state saved by ``state``."""
        ...

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Switch a rule on or off at once."""
        ...

    def rules(self) -> list[RuleInfo]:
        """Every loaded rule with its current switch."""
        ...

    def timings(self) -> dict[str, float]:
        """Seconds spent per rule since start."""
        ...


class ShownRows:
    """The rows a batch's explanations show, with the rule-side field names filled in: the prepared
    batch when the rules ran here; when a parser process ran them, just those rows, prepared on the
    first explanation asked for (most batches explain nothing new)."""

    def __init__(self, detector: Detector, frame: pl.DataFrame, prepared: pl.DataFrame | None,
                 rows: list[int]) -> None:
        self._detector = detector
        self._frame = frame
        self._prepared = prepared
        self._rows = rows
        self._position: dict[int, int] | None = None  # batch row -> row of the prepared few

    def values(self, rows: list[int], fields: list[str]) -> list[dict[str, object]]:
        """The values of ``fields`` (those the batch has) in each of ``rows`` (rows it was made with)."""
        if self._prepared is None:
            self._prepared = self._detector.prepare(self._frame[self._rows])
            self._position = {row: i for i, row in enumerate(self._rows)}
        present = [f for f in fields if f in self._prepared.columns]
        if not present:
            return [{} for _ in rows]
        at = rows if self._position is None else [self._position[r] for r in rows]
        return self._prepared[at].select(present).to_dicts()


class SigmaStage:
    """Detection with the compiled Sigma rules (the same engine as ``mamori hunt``)."""

    def __init__(self, ruleset: RuleSet, disabled: Sequence[str] = (), paths: Sequence[Path] = (),
                 placeholders: Mapping[str, Sequence[str]] | None = None) -> None:
        self.ruleset = ruleset
        self.paths = tuple(str(p) for p in paths)  # where the rule set was loaded from (parser processes load it too)
        # and with which |expand placeholder values (the parser processes need the same)
        self.placeholders = tuple(sorted((name, tuple(values)) for name, values in (placeholders or {}).items()))
        self.detector = Detector(ruleset, disabled=disabled)
        self.correlations = CorrelationEngine(ruleset.correlations, ruleset.rules)
        self.silenced = self.correlations.silenced_rules()
        self.by_id: dict[str, Rule] = ruleset.by_id()

    def detect(self, frame: pl.DataFrame, ahead: RuleHits | None = None) -> list[Detection]:
        """Run every enabled rule over the batch (or take the hits a parser process found), then feed
        the correlations."""
        prepared: pl.DataFrame | None = None
        if ahead is None:
            hits, prepared = self.detector.run(frame, explain=True)
        else:
            hits = ahead.hits
            if self.detector.disabled:  # switched off since the parser process started on the batch
                hits = hits.filter(~pl.col(RULE_ID).is_in(list(self.detector.disabled)))
            for rule_id, seconds in ahead.rule_seconds.items():
                self.detector.rule_seconds[rule_id] += seconds
        if hits.height == 0:
            return self._correlate(frame, hits)  # the stream moved on: windows may have closed
        groups = [(self.by_id[str(rule_id)], group) for (rule_id,), group in hits.group_by(RULE_ID, maintain_order=True)
                  if str(rule_id) not in self.silenced]
        shown = ShownRows(self.detector, frame, prepared,
                          sorted({int(r) for _, group in groups for r in group.get_column(ROW).head(MAX_EXPLAINED)}))
        out: list[Detection] = []
        for rule, group in groups:
            rows = tuple(int(r) for r in group.get_column(ROW).to_list())
            held = group.get_column(SELECTIONS).head(MAX_EXPLAINED).to_list() if SELECTIONS in group.columns else []
            out.append(Detection(rule.id, rule.title, rule.level, rule.author, tuple(rule.tags), rows,
                                 explainer=self._explainer(rule, shown, rows, held)))
        out.extend(self._correlate(frame, hits))
        return out

    @staticmethod
    def _explainer(rule: Rule, shown: ShownRows, rows: tuple[int, ...],
                   held: list[list[str] | None]) -> Callable[[], tuple[str, ...]]:
        done: list[tuple[str, ...]] = []

        def run() -> tuple[str, ...]:
            if not done:  # once per rule and batch, however many alert groups ask
                picked = list(rows[:MAX_EXPLAINED])
                values = shown.values(picked, selection_fields(rule, [s.name for s in rule.selections]))
                done.append(tuple(explanation_text(rule, selections or [], row)
                                  for row, selections in zip(values, held or [None] * len(picked), strict=False)))
            return done[0]

        return run

    def _correlate(self, frame: pl.DataFrame, hits: pl.DataFrame) -> list[Detection]:
        """Feed the batch's hits of referenced rules to the correlations (chained ones follow from
        them), then move their clock to the batch's newest event, which decides the windows that ended
        before it; correlations switched off take nothing in."""
        if not self.correlations.correlations:
            return []
        disabled = self.detector.disabled
        base: list[BaseHit] = []
        wanted = self.correlations.referenced_rules()
        chosen = hits.filter(pl.col(RULE_ID).is_in(list(wanted)) & ~pl.col(RULE_ID).is_in(list(disabled))) \
            if hits.height else hits
        if chosen.height:
            needed = [f for f in self.correlations.fields_needed() if f in frame.columns]
            rows = frame[chosen.get_column(ROW).to_numpy()].select([schema.TIME, schema.UID, *needed])
            times = rows.get_column(schema.TIME).dt.epoch("ns").fill_null(0).to_list()
            uids = rows.get_column(schema.UID).to_list()
            values = {f: rows.get_column(f).to_list() for f in needed}
            base = sorted((BaseHit(rid, times[i], uids[i], {f: values[f][i] for f in needed})
                           for i, rid in enumerate(chosen.get_column(RULE_ID).to_list())), key=lambda h: h.time_ns)
        fired = self.correlations.feed(base, skip=disabled)
        newest = frame.get_column(schema.TIME).max() if schema.TIME in frame.columns and frame.height else None
        if isinstance(newest, datetime):
            fired += self.correlations.advance(schema.time_ns(newest), skip=disabled)
            self.correlations.expire(schema.time_ns(newest))
        return self._correlation_detections(fired)

    def finish(self) -> list[Detection]:
        """The input has ended (a bounded run such as a retrohunt): decide every open correlation
        window, as ``mamori hunt`` does at the end of its input."""
        return self._correlation_detections(self.correlations.close(skip=self.detector.disabled))

    def _correlation_detections(self, fired: list[CorrelationHit]) -> list[Detection]:
        """Correlation hits as detections, but for referenced correlations with ``generate: false``
        (their hits only feed the correlations chained on them)."""
        out = []
        for hit in fired:
            corr = hit.correlation
            if corr.id in self.detector.disabled or corr.id in self.silenced:
                continue
            when = datetime.fromtimestamp(hit.time_ns / 1e9, UTC).isoformat()
            text = f"{hit.summary} (at {when})"
            out.append(Detection(corr.id, corr.title, corr.level, corr.author, tuple(corr.tags), (),
                                 tuple(hit.uids), (text,), hit.time_ns, hit.group))
        return out

    def match_spec(self) -> MatchSpec | None:
        """The rule paths, the rule set's digest and the rules switched off (None when the rule set was
        not loaded from paths: a parser process could not load it)."""
        if not self.paths or not self.ruleset.digest:
            return None
        return MatchSpec(self.paths, self.ruleset.digest, frozenset(self.detector.disabled), self.placeholders)

    def state(self) -> bytes:
        """Open correlation windows, serialised."""
        return self.correlations.to_json()

    def load_state(self, data: bytes) -> None:
        """Restore the correlation windows."""
        if data:
            self.correlations.load_json(data)

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Switch a rule (or correlation) on or off without recompiling."""
        self.detector.set_enabled(rule_id, enabled)

    def rules(self) -> list[RuleInfo]:
        """Every rule and correlation, with its switch."""
        disabled = self.detector.disabled
        out = [RuleInfo(r.id, r.title, r.level, r.author, tuple(r.tags), r.logsource.label(), r.path,
                        r.id not in disabled) for r in self.ruleset.rules]
        out += [RuleInfo(c.id, c.title, c.level, c.author, tuple(c.tags), "correlation", c.path,
                         c.id not in disabled, True) for c in self.ruleset.correlations]
        return out

    def timings(self) -> dict[str, float]:
        """Seconds spent per rule since start."""
        return dict(self.detector.rule_seconds)


def load_stage(rule_paths: Sequence[Path], disabled: Sequence[str] = (),
               placeholders: Mapping[str, Sequence[str]] | None = None) -> SigmaStage:
    """Load the rules (compiled cache when warm) into a Sigma stage, their ``|expand`` placeholders given
    ``placeholders``; no paths gives an empty stage."""
    from mamori.detect.sigma.ruleset import load_ruleset

    ruleset = load_ruleset(list(rule_paths), placeholders=placeholders) if rule_paths else RuleSet()
    return SigmaStage(ruleset, disabled, rule_paths, placeholders)
