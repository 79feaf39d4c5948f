"""The UEBA engine: a set of detectors over the same event batches, an allow-list fed by analyst
feedback, entity risk scoring, and save/load of everything to one directory.

Peer groups come from the baseline's behaviour (``peers.behaviour_peers``) unless the caller gives
them. An analyst's benign verdicts are kept as the anomalies themselves and taught again to the
detectors of a rebuilt engine (:meth:`UebaEngine.relearn`): what a detector learned from a verdict is
keyed on the entity and the behaviour (a host's volume ceiling, a user's hour, a source), not on the
time bucket the anomaly happened to fall in, so it outlives refits and restarts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl

from mamori.detect.anomaly.base import Detector, Peers
from mamori.detect.anomaly.beaconing import BeaconingDetector
from mamori.detect.anomaly.behaviour import BehaviourVectorDetector
from mamori.detect.anomaly.domains import SuspiciousDomainDetector
from mamori.detect.anomaly.ecod import EcodDetector
from mamori.detect.anomaly.first_seen import FIRST_SEEN_KINDS, FirstSeenDetector
from mamori.detect.anomaly.geo import GeoDatabase, GeoLogonDetector
from mamori.detect.anomaly.half_space import HalfSpaceTreesDetector
from mamori.detect.anomaly.off_hours import OffHoursDetector
from mamori.detect.anomaly.peers import behaviour_peers
from mamori.detect.anomaly.persist import read_frames, write_frames
from mamori.detect.anomaly.rarity import RARITY_KINDS, RarityDetector
from mamori.detect.anomaly.records import Anomaly, anomaly_from_record, anomaly_record
from mamori.detect.anomaly.risk import RiskIncident, RiskScorer
from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.spraying import SprayingDetector
from mamori.detect.anomaly.thresholds import Thresholds, apply_thresholds
from mamori.detect.anomaly.vector_models import VectorModelDetector
from mamori.detect.anomaly.vectors import KINDS
from mamori.detect.anomaly.volume import DEFAULT_METRICS, VolumeDetector

RISK_STATE = "entity_risk"  # the folder, beside the detectors' own, where the entity risk so far is kept

# the unsupervised models over behaviour vectors, by the name settings give them (their detectors' prefix)
VECTOR_MODELS: dict[str, type[VectorModelDetector]] = {m.prefix: m for m in (EcodDetector, HalfSpaceTreesDetector)}
DEFAULT_VECTOR_MODELS = ("ecod", "half_space")
VECTOR_ALERTS_PER_DAY = 0.25  # each vector model's false-alarm budget per entity kind (see vector_models.py)


def vector_models(names: tuple[str, ...], calendar: Calendar | None = None,
                  alerts_per_day: float = VECTOR_ALERTS_PER_DAY) -> list[Detector]:
    """The unsupervised models ``names`` asks for (``ecod``, ``half_space``), each over host and user
    behaviour vectors; a ValueError names an unknown model and the known ones."""
    unknown = sorted(set(names) - set(VECTOR_MODELS))
    if unknown:
        raise ValueError(f"unknown behaviour-vector model(s) {', '.join(unknown)}: "
                         f"choose among {', '.join(VECTOR_MODELS)}")
    return [VECTOR_MODELS[n](kind, calendar, alerts_per_day) for n in dict.fromkeys(names) for kind in KINDS]


def default_detectors(
    geo: GeoDatabase | None = None,
    calendar: Calendar | None = None,
    models: tuple[str, ...] = DEFAULT_VECTOR_MODELS,
    alerts_per_day: float = VECTOR_ALERTS_PER_DAY,
    thresholds: Thresholds | None = None,
) -> list[Detector]:
    """Every UEBA detector with its default settings (logon geography only with a ``geo`` database);
    seasonal baselines keep ``calendar``'s local hours and days (default: Asia/Tokyo). ``models`` are the
    unsupervised models over behaviour vectors (ECOD, streaming half-space trees; empty: none), each
    with a budget of ``alerts_per_day`` false alarms per entity kind. ``thresholds`` (from
    :func:`~mamori.detect.anomaly.thresholds.parse_thresholds`) change the detectors' thresholds."""
    calendar = calendar or Calendar()
    detectors: list[Detector] = [FirstSeenDetector(k) for k in FIRST_SEEN_KINDS]
    detectors += [RarityDetector(k) for k in RARITY_KINDS]
    detectors += [VolumeDetector(m, calendar=calendar) for m in DEFAULT_METRICS]
    detectors += [SprayingDetector(), BeaconingDetector(), OffHoursDetector(calendar=calendar)]
    detectors.append(BehaviourVectorDetector(calendar=calendar))
    detectors += vector_models(models, calendar, alerts_per_day)
    detectors.append(SuspiciousDomainDetector())
    if geo is not None:
        detectors.append(GeoLogonDetector(geo))
    apply_thresholds(detectors, thresholds)
    return detectors


def _blanks(geo: GeoDatabase | None) -> dict[str, Detector]:
    """Every detector :func:`default_detectors` can build (with every vector model), by name, for
    :meth:`UebaEngine.load` to restore saved states into: a detector added there loads without more."""
    return {d.name: d for d in default_detectors(geo, models=tuple(VECTOR_MODELS))}


class UebaEngine:
    """Runs the detectors over batches, applies feedback and risk scoring, and persists its state."""

    def __init__(
        self, detectors: list[Detector] | None = None, risk: RiskScorer | None = None, calendar: Calendar | None = None
    ) -> None:
        self.detectors = detectors if detectors is not None else default_detectors(calendar=calendar)
        self.risk = risk or RiskScorer()
        self.benign: set[str] = set()
        self.verdicts: list[Anomaly] = []  # every anomaly an analyst called benign, taught again after a refit
        self.peers: Peers = {}

    def fit(self, events: pl.DataFrame, peers: Peers | None = None) -> None:
        """Build every detector's baseline from stored events, then teach it the verdicts this engine
        holds. ``peers`` (entity -> peer group, e.g. departments from a directory) replaces the groups
        computed from the events' behaviour."""
        self.peers = behaviour_peers(events) if peers is None else dict(peers)
        for detector in self.detectors:
            detector.fit(events, self.peers)
        self.relearn(self.verdicts)

    def relearn(self, verdicts: list[Anomaly]) -> None:
        """Teach the detectors analysts' earlier benign verdicts (a rebuilt engine starts from baselines
        that never saw them); the verdicts become this engine's own."""
        for anomaly in verdicts:
            for detector in self.detectors:
                if detector.name == anomaly.detector:
                    detector.learn_benign(anomaly)
            self.benign.add(anomaly.key)
        known = {anomaly_key(a) for a in self.verdicts}
        self.verdicts += [a for a in verdicts if anomaly_key(a) not in known]

    def score(self, events: pl.DataFrame) -> list[Anomaly]:
        """Anomalies of a batch from every detector, minus those an analyst marked benign."""
        found: list[Anomaly] = []
        for detector in self.detectors:
            found += [a for a in detector.score(events) if a.key not in self.benign]
        found.sort(key=lambda a: (a.time, -a.score))
        for detector in self.detectors:  # first-seen items are seen from now on
            if isinstance(detector, FirstSeenDetector):
                detector.update(events)
        return found

    def score_with_risk(self, events: pl.DataFrame) -> tuple[list[Anomaly], list[RiskIncident]]:
        """Score a batch and feed its anomalies to the entity risk scorer."""
        anomalies = self.score(events)
        return anomalies, self.risk.add(anomalies)

    def mark_benign(self, anomaly: Anomaly) -> None:
        """An analyst's verdict: the detector learns it, this exact anomaly is allow-listed, and the
        verdict is kept for the next rebuild of the baselines."""
        self.relearn([anomaly])

    def save(self, directory: Path) -> None:
        """Write every detector's baselines and settings under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        for detector in self.detectors:
            frames, settings = detector.state()
            write_frames(directory / detector.name, frames, settings)
        contributions, raised = self.risk.state()
        write_frames(directory / RISK_STATE, {"contributions": contributions, "raised": raised}, {})
        manifest = {
            "detectors": [d.name for d in self.detectors],
            "benign": sorted(self.benign),
            "verdicts": [anomaly_record(a) for a in self.verdicts],
            "peers": self.peers,
            "risk": {"threshold": self.risk.threshold, "half_life_s": self.risk.half_life.total_seconds()},
        }
        tmp = directory / ".engine.json.tmp"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(directory / "engine.json")

    @classmethod
    def load(cls, directory: Path, geo: GeoDatabase | None = None) -> UebaEngine:
        """Read an engine written by :meth:`save` (baselines survive a restart); ``geo`` is the
        geolocation database when the engine had one."""
        manifest = json.loads((directory / "engine.json").read_text(encoding="utf-8"))
        blanks = _blanks(geo)
        detectors: list[Detector] = []
        for name in manifest["detectors"]:
            if name == GeoLogonDetector.name and geo is None:
                raise ValueError("saved state has the logon-geography detector: pass the geolocation database")
            if name not in blanks:
                raise ValueError(f"unknown detector {name!r} in saved state; was it saved by a newer Mamori?")
            frames, settings = read_frames(directory / name)
            detector = blanks.pop(name)
            detector.restore(frames, settings)
            detectors.append(detector)
        risk = RiskScorer(manifest["risk"]["threshold"], timedelta(seconds=manifest["risk"]["half_life_s"]))
        if (directory / RISK_STATE / "settings.json").exists():  # engines saved before risk was kept have none
            frames, _ = read_frames(directory / RISK_STATE)
            risk.restore(frames["contributions"], frames["raised"])
        engine = cls(detectors, risk)
        engine.benign = set(manifest["benign"])
        engine.verdicts = [anomaly_from_record(r) for r in manifest.get("verdicts", [])]
        engine.peers = dict(manifest.get("peers", {}))
        return engine


def anomaly_key(anomaly: Anomaly) -> str:
    """An anomaly's identity with its time: two verdicts on the same behaviour at two times are two."""
    return f"{anomaly.key}@{anomaly.time.isoformat()}"
