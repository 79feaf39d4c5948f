"""IOC matching in the live pipeline: the threat-intel room's matcher beside the Sigma rules.

Every batch meets the indicators in force; an indicator that arrives later is first hunted over the
stored events (the lake). Matches become detections like any rule's, named ``intel:<indicator id>``,
and a STIX sighting is recorded by the intel store.
"""

from __future__ import annotations

import polars as pl

from mamori.intel.live import IntelMatching
from mamori.intel.store import IntelStore
from mamori.service.detection import Detection, DetectionStage, RuleInfo
from mamori.service.match_ahead import MatchSpec, RuleHits
from mamori.store.lake import Lake


class IntelStage:
    """A detection stage: the inner stage's detections plus indicator matches."""

    def __init__(self, inner: DetectionStage, store: IntelStore, lake: Lake) -> None:
        self.inner = inner
        self.lake = lake
        self.matching = IntelMatching(store, history=self._history)

    def _history(self) -> pl.LazyFrame:
        files = self.lake.glob()
        if not files:
            return pl.LazyFrame()
        return pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")

    def detect(self, frame: pl.DataFrame, ahead: RuleHits | None = None) -> list[Detection]:
        """Sigma detections (found ahead by a parser process or now), then indicator matches, for one batch."""
        detections = self.inner.detect(frame, ahead)
        for alert in self.matching.process(frame):
            detections.append(Detection(
                rule_id=f"intel:{alert.indicator_id}", title=alert.title, level=alert.level,
                author=", ".join(alert.sources) or "threat intel", tags=("intel",),
                uids=alert.event_uids, explanations=(alert.explanation,)))
        return detections

    def match_spec(self) -> MatchSpec | None:
        """The inner stage's (indicators are matched here, against the live indicator set)."""
        return self.inner.match_spec()

    def state(self) -> bytes:
        """The inner stage's correlation state."""
        return self.inner.state()

    def load_state(self, data: bytes) -> None:
        """Restore the inner stage's correlation state."""
        self.inner.load_state(data)

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Switch a rule on or off."""
        self.inner.set_enabled(rule_id, enabled)

    def rules(self) -> list[RuleInfo]:
        """The inner stage's rules."""
        return self.inner.rules()

    def timings(self) -> dict[str, float]:
        """Seconds per rule."""
        return self.inner.timings()
