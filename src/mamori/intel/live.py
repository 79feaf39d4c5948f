"""IOC matching as a pipeline stage: match each live batch, and retro-hunt history for new indicators.

``IntelMatching`` keeps a compiled index of the indicators in force and rebuilds it when the store's
indicator set changes (feeds run hourly, batches arrive every second). Indicators that arrived since
the last refresh are hunted in stored events, so an IOC published today finds yesterday's traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from mamori.intel.alerts import IntelAlert, alerts_from_matches, record_sightings
from mamori.intel.matcher import ColumnSource, IndicatorIndex, IndicatorInput, Matcher, load_mapping
from mamori.intel.retrohunt import retro_hunt
from mamori.intel.store import IntelStore

HistorySource = Callable[[], pl.LazyFrame]


class IntelMatching:
    """Live IOC matching over batches, with retro-hunts of new indicators over stored events."""

    def __init__(
        self,
        store: IntelStore,
        *,
        history: HistorySource | None = None,
        mapping: Sequence[ColumnSource] | None = None,
        record: bool = True,
    ) -> None:
        self.store = store
        self.history = history
        self.mapping = tuple(mapping) if mapping is not None else load_mapping()
        self.record = record
        self._seen: str | None = None  # None: never loaded (the first load hunts nothing)
        self._matcher = Matcher(IndicatorIndex.build([]), self.mapping)

    @property
    def index(self) -> IndicatorIndex:
        """The compiled index in use."""
        return self._matcher.index

    def refresh(self) -> list[IndicatorInput]:
        """Rebuild the index if indicators changed; return the indicators new since the last refresh."""
        changed = self.store.last_indicator_change()
        if changed == self._seen:
            return []
        frame = self.store.indicator_frame()
        new: list[IndicatorInput] = []
        if self._seen is not None:
            fresh = frame.filter(pl.col("date_added") > self._seen)
            new = [
                IndicatorInput(
                    r["indicator_id"],
                    r["pattern"],
                    r["name"],
                    r["sources"],
                    r["confidence"],
                    r["pattern_type"],
                )
                for r in fresh.iter_rows(named=True)
            ]
        self._matcher = Matcher(IndicatorIndex.from_frame(frame.drop("date_added")), self.mapping)
        self._seen = changed
        return new

    def _alerts(self, matches: pl.DataFrame) -> list[IntelAlert]:
        alerts = alerts_from_matches(matches)
        if alerts and self.record:
            record_sightings(self.store, alerts)
        return alerts

    def process(self, events: pl.DataFrame) -> list[IntelAlert]:
        """Match one batch of live events; new indicators are hunted in history first."""
        alerts: list[IntelAlert] = []
        new = self.refresh()
        if new and self.history is not None:
            alerts.extend(self.hunt(new))
        alerts.extend(self._alerts(self._matcher.match(events)))
        return alerts

    def hunt(self, indicators: Sequence[IndicatorInput]) -> list[IntelAlert]:
        """Retro-hunt indicators over the stored events."""
        if self.history is None or not indicators:
            return []
        return self._alerts(retro_hunt(indicators, self.history(), mapping=self.mapping))
