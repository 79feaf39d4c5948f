"""Run the Sigma rules in the parser process, right after it parses a batch.

The service's own process receives input, writes the lake and the alerts and groups alerts into
incidents, all on Python threads sharing one interpreter lock; rule matching there competes with
every one of them. The parser process has an interpreter to itself, so matching the batch it has
just parsed costs the service's process nothing but reading back the hits (rule id, row, the
selections that held). Correlations, indicator matches and explanations stay in the service, which
owns their state.

The parser process loads the rule set from the same paths; unless the rule set it gets is the one
the service loaded (same content digest), it matches nothing and the service matches as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from mamori.events.transfer import frame_from_bytes, frame_to_bytes

if TYPE_CHECKING:
    from mamori.detect.sigma.engine import Detector

log = logging.getLogger("mamori.service")


@dataclass(frozen=True)
class MatchSpec:
    """What a parser process needs to match a batch: where the rules are, the digest of the rule set
    the service loaded, the rules switched off now, and the values of the rules' ``|expand``
    placeholders (name, values)."""

    paths: tuple[str, ...]
    digest: str
    disabled: frozenset[str]
    placeholders: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class RuleHits:
    """A batch's rule hits found in the parser process (``rule_id``, ``_row``, ``selections``), and
    the seconds each rule took there (for the per-rule timings)."""

    hits: pl.DataFrame
    rule_seconds: dict[str, float]


@dataclass(frozen=True)
class HitsForTransfer:
    """``RuleHits`` as they cross back from the parser process (hits as Parquet bytes)."""

    hits: bytes
    rule_seconds: dict[str, float]

    def rule_hits(self) -> RuleHits:
        """The hits back as the service uses them."""
        return RuleHits(frame_from_bytes(self.hits), self.rule_seconds)


_DETECTORS: dict[tuple[tuple[str, ...], str], Detector | None] = {}


def match_batch(frame: pl.DataFrame, spec: MatchSpec) -> HitsForTransfer | None:
    """In a parser process: the hits of every enabled rule on ``frame`` (None when this process cannot
    load the very rule set the service runs)."""
    detector = _detector(spec)
    if detector is None or frame.height == 0:
        return None
    detector.disabled = set(spec.disabled)
    detector.rule_seconds.clear()  # this batch's seconds only: the service keeps the totals
    hits, _ = detector.run(frame, explain=True)
    return HitsForTransfer(frame_to_bytes(hits), dict(detector.rule_seconds))


def rules_loaded(spec: MatchSpec | None) -> bool:
    """In a parser process: load the rule set the service runs now, ahead of the first batch (a start
    would otherwise keep that batch, and its alerts, waiting seconds for it); whether it is there."""
    return spec is not None and _detector(spec) is not None


def _detector(spec: MatchSpec) -> Detector | None:
    key = (spec.paths, spec.digest)
    if key not in _DETECTORS:
        from mamori.detect.sigma.engine import Detector
        from mamori.detect.sigma.ruleset import load_ruleset

        started = time.perf_counter()
        try:
            ruleset = load_ruleset([Path(p) for p in spec.paths], placeholders=dict(spec.placeholders) or None)
        except Exception:  # the service matches itself; say why once
            log.exception("parser process: cannot load the rules; the service matches the batches itself")
            ruleset = None
        if ruleset is not None and ruleset.digest != spec.digest:
            log.warning("parser process: the rules on disk changed since the service loaded them; the "
                        "service matches the batches itself until it restarts")
            ruleset = None
        _DETECTORS[key] = Detector(ruleset) if ruleset is not None else None
        log.info("parser process: rules ready in %.1f s", time.perf_counter() - started)
    return _DETECTORS[key]

