"""Service metrics in the Prometheus text format: counters, gauges and latency histograms.

Kept in-process (no dependency): the pipeline and inputs update them, ``/metrics`` renders them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# a tenth of a second apart between 0.5 s and 1.5 s, where the ingest-to-alert latency of a loaded service
# lies and its 1-second goal is judged (at 0.25 s apart, 1.01 s and 1.25 s read alike)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 2.0, 3.0, 5.0,
                   7.5, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    """A cumulative histogram with fixed buckets (seconds)."""

    buckets: Sequence[float] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float, times: int = 1) -> None:
        """Record ``value`` ``times`` times."""
        self.counts[bisect.bisect_left(self.buckets, value)] += times
        self.total += value * times
        self.n += times

    def quantile(self, q: float) -> float:
        """An upper bound of the ``q`` quantile (the bucket edge), inf when above the last bucket."""
        if self.n == 0:
            return 0.0
        target = q * self.n
        running = 0
        for edge, count in zip([*self.buckets, float("inf")], self.counts, strict=True):
            running += count
            if running >= target:
                return edge
        return float("inf")


class Metrics:
    """The registry: named counters (with one label set each) and histograms, plus gauges read on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.histograms: dict[str, Histogram] = {}
        self.gauges: dict[str, Callable[[], float]] = {}
        self.help: dict[str, str] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + value

    def counter(self, name: str, **labels: str) -> float:
        """A counter's value."""
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def observe(self, name: str, value: float, times: int = 1) -> None:
        """Record a value in a histogram."""
        with self._lock:
            self.histograms.setdefault(name, Histogram()).observe(value, times)

    def gauge(self, name: str, read: Callable[[], float], help_text: str = "") -> None:
        """Register a gauge read when metrics are rendered."""
        self.gauges[name] = read
        if help_text:
            self.help[name] = help_text

    def render(self, extra: Sequence[str] = ()) -> str:
        """The Prometheus text exposition."""
        lines: list[str] = []
        with self._lock:
            seen: set[str] = set()
            for (name, labels), value in sorted(self.counters.items()):
                if name not in seen:
                    lines.append(f"# TYPE {name} counter")
                    seen.add(name)
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
            for name, hist in sorted(self.histograms.items()):
                lines.append(f"# TYPE {name} histogram")
                running = 0
                for edge, count in zip(hist.buckets, hist.counts, strict=False):
                    running += count
                    lines.append(f'{name}_bucket{{le="{edge:g}"}} {running}')
                lines.append(f'{name}_bucket{{le="+Inf"}} {hist.n}')
                lines.append(f"{name}_sum {hist.total:g}")
                lines.append(f"{name}_count {hist.n}")
        for name, read in sorted(self.gauges.items()):
            if name in self.help:
                lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            try:
                lines.append(f"{name} {read():g}")
            except Exception:  # a gauge that cannot be read is left out, never breaks /metrics
                lines.pop()
        lines.extend(extra)
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
