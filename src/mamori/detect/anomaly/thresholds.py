"""Detector thresholds as settings: ``"spraying.min_users=10, beaconing.max_jitter=0.2"``.

Each entry is ``detector.parameter=value``. The detector is named by its family (``spraying``,
``volume``, ``rarity``... every detector of the family takes the value) or by its own name
(``processes_host``, ``rare_process``... only that one; it wins over its family). The parameters are
the detectors' constructor parameters listed in :data:`FAMILIES`, each with the values it accepts;
anything else is a ValueError naming the entry, the detector or parameter and what to give instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mamori.detect.anomaly.base import Detector
from mamori.detect.anomaly.beaconing import BeaconingDetector
from mamori.detect.anomaly.behaviour import BehaviourVectorDetector
from mamori.detect.anomaly.domains import SuspiciousDomainDetector
from mamori.detect.anomaly.ecod import EcodDetector
from mamori.detect.anomaly.first_seen import FIRST_SEEN_KINDS, FirstSeenDetector
from mamori.detect.anomaly.geo import GeoLogonDetector
from mamori.detect.anomaly.half_space import HalfSpaceTreesDetector
from mamori.detect.anomaly.off_hours import OffHoursDetector
from mamori.detect.anomaly.rarity import RARITY_KINDS, RarityDetector
from mamori.detect.anomaly.spraying import SprayingDetector
from mamori.detect.anomaly.vector_models import VectorModelDetector
from mamori.detect.anomaly.vectors import KINDS
from mamori.detect.anomaly.volume import DEFAULT_METRICS, VolumeDetector

Thresholds = dict[str, dict[str, float]]  # detector family or name -> parameter -> value


@dataclass(frozen=True)
class Threshold:
    """One parameter a setting may change, and the values it takes: ``low`` up to ``high`` (``low``
    itself excluded when ``above``), whole numbers only when ``whole``."""

    name: str
    whole: bool
    low: float
    high: float = math.inf
    above: bool = False

    def describe(self) -> str:
        """The values this parameter takes, as a hint (``an integer ≥ 1``, ``a number in (0, 1]``)."""
        what = "an integer" if self.whole else "a number"
        if self.high < math.inf:
            return f"{what} in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"
        return f"{what} {'>' if self.above else '≥'} {self.low:g}"

    def convert(self, text: str) -> float:
        """The value ``text`` gives, or a ValueError when it is not one this parameter takes."""
        try:
            value = float(text)
        except ValueError:
            raise ValueError(self.describe()) from None
        if not math.isfinite(value) or (self.whole and not value.is_integer()):
            raise ValueError(self.describe())
        if value < self.low or (self.above and value == self.low) or value > self.high:
            raise ValueError(self.describe())
        return int(value) if self.whole else value


def _t(name: str, whole: bool, low: float, high: float = math.inf, above: bool = False) -> Threshold:
    return Threshold(name, whole, low, high, above)


# family -> (detector class, its thresholds)
FAMILIES: dict[str, tuple[type, tuple[Threshold, ...]]] = {
    "first_seen": (FirstSeenDetector, (_t("min_history", True, 0), _t("min_score", False, 0))),
    "volume": (
        VolumeDetector,
        (_t("factor", False, 1), _t("min_observed", False, 0), _t("min_buckets", True, 1)),
    ),
    "spraying": (
        SprayingDetector,
        (
            _t("min_users", True, 2),
            _t("max_attempts_per_user", False, 0, above=True),
            _t("factor", False, 0, above=True),
        ),
    ),
    "beaconing": (
        BeaconingDetector,
        (
            _t("min_count", True, 3),
            _t("max_jitter", False, 0, 1),
            _t("min_period_s", False, 0),
            _t("max_peer_hosts", True, 1),
        ),
    ),
    "off_hours": (OffHoursDetector, (_t("max_share", False, 0, 1), _t("min_logons", True, 1))),
    "behaviour": (BehaviourVectorDetector, (_t("min_z", False, 0, above=True),)),
    "domains": (SuspiciousDomainDetector, (_t("quantile", False, 0, 1, above=True),)),
    "geo": (GeoLogonDetector, (_t("max_kmh", False, 0, above=True), _t("min_km", False, 0))),
    "ecod": (EcodDetector, (_t("alerts_per_day", False, 0, above=True),)),
    "half_space": (HalfSpaceTreesDetector, (_t("alerts_per_day", False, 0, above=True),)),
    "rarity": (
        RarityDetector,
        (
            _t("max_entity_count", True, 0),
            _t("min_entity_count", True, 0),
            _t("max_entity_share", False, 0, 1, above=True),
            _t("max_peer_share", False, 0, 1, above=True),
            _t("min_history", True, 0),
            _t("min_peer_events", True, 0),
        ),
    ),
}

# every detector's own name -> its family (the vector models' names as the engine builds them)
NAMES: dict[str, str] = {
    **{k.name: "first_seen" for k in FIRST_SEEN_KINDS},
    **{m.name: "volume" for m in DEFAULT_METRICS},
    SprayingDetector.name: "spraying",
    BeaconingDetector.name: "beaconing",
    OffHoursDetector.name: "off_hours",
    BehaviourVectorDetector.name: "behaviour",
    SuspiciousDomainDetector.name: "domains",
    GeoLogonDetector.name: "geo",
    **{
        f"{cls.prefix}_{kind}": family
        for family, (cls, _) in FAMILIES.items()
        if issubclass(cls, VectorModelDetector)
        for kind in KINDS
    },
    **{k.name: "rarity" for k in RARITY_KINDS},
}

SETTING = "anomaly_thresholds"
EXAMPLE = "spraying.min_users=10, beaconing.max_jitter=0.2, rarity.max_peer_share=0.001"


def parse_thresholds(text: str) -> Thresholds:
    """The detector thresholds a setting gives (``"spraying.min_users=10, rare_process.max_entity_count=1"``):
    detector family or name -> parameter -> value. A ValueError names the entry and the unknown
    detector or parameter (with the known ones) or the value a parameter does not take."""
    out: Thresholds = {}
    for entry in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
        target, dot, rest = entry.partition(".")
        param, equals, value = rest.partition("=")
        target, param, value = target.strip(), param.strip(), value.strip()
        if not dot or not equals or not target or not param or not value:
            raise ValueError(f"{SETTING}: {entry!r} is not detector.parameter=value (e.g. {EXAMPLE})")
        family = target if target in FAMILIES else NAMES.get(target)
        if family is None:
            raise ValueError(
                f"{SETTING}: unknown detector {target!r} in {entry!r}: choose among {', '.join(FAMILIES)} "
                f"or one detector's name ({', '.join(sorted(NAMES))})"
            )
        known = {t.name: t for t in FAMILIES[family][1]}
        if param not in known:
            raise ValueError(
                f"{SETTING}: detector {target!r} has no threshold {param!r} (in {entry!r}): "
                f"choose among {', '.join(known)}"
            )
        try:
            out.setdefault(target, {})[param] = known[param].convert(value)
        except ValueError as exc:
            raise ValueError(f"{SETTING}: {target}.{param} must be {exc}, not {value!r} (in {entry!r})") from None
    for target, params in out.items():
        low, high = params.get("min_entity_count"), params.get("max_entity_count")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{SETTING}: {target}.min_entity_count ({low:g}) is above "
                             f"{target}.max_entity_count ({high:g})")
    return out


def family_of(detector: Detector) -> str | None:
    """The family a detector's thresholds are set under (None for one without settable thresholds)."""
    return next((f for f, (cls, _) in FAMILIES.items() if isinstance(detector, cls)), None)


def apply_thresholds(detectors: list[Detector], thresholds: Mapping[str, Mapping[str, float]] | None) -> None:
    """Set the thresholds on the detectors they name: a family's first, then a detector's own name's."""
    if not thresholds:
        return
    for detector in detectors:
        for target in (family_of(detector), detector.name):
            for param, value in (thresholds.get(target or "") or {}).items():
                setattr(detector, param, value)


def current_thresholds(detector: Detector) -> tuple[tuple[str, float], ...]:
    """A detector's settable thresholds and their values now (what a restart with other settings must
    rebuild the baselines for)."""
    family = family_of(detector)
    if family is None:
        return ()
    return tuple((t.name, float(getattr(detector, t.name))) for t in FAMILIES[family][1])
