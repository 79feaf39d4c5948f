"""Behaviour baselines and anomaly detection that explain themselves (UEBA and ML models).

Detectors are small modules over Polars event batches (first-seen, rare for the entity and its peers,
volume spikes, spraying, beaconing, off-hours, generated domains, logon geography); each returns
:class:`Anomaly` records with observed vs typical values, the baseline window, the peer group, the
events behind it and an explanation in Japanese and English. :class:`UebaEngine` runs them together,
learns from analyst feedback, scores entity risk with decay and saves/loads its baselines; their
thresholds are settings (:func:`parse_thresholds`). Seasons follow the
organisation's clock (:class:`Calendar`, Asia/Tokyo by default); peer groups come from behaviour
(:func:`behaviour_peers`); logon geography reads the database :func:`open_geo_database` opens. Over
host and user behaviour vectors run ECOD (batch) and half-space trees (streaming), which name the
features behind a score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mamori.detect.anomaly.beaconing import BeaconingDetector
from mamori.detect.anomaly.behaviour import BehaviourVectorDetector
from mamori.detect.anomaly.domains import DomainNameModel, SuspiciousDomainDetector
from mamori.detect.anomaly.ecod import EcodDetector
from mamori.detect.anomaly.engine import UebaEngine, default_detectors
from mamori.detect.anomaly.first_seen import FirstSeenDetector
from mamori.detect.anomaly.geo import GeoLogonDetector, Ip2LocationCsv, MaxMindDatabase, open_geo_database
from mamori.detect.anomaly.half_space import HalfSpaceTreesDetector
from mamori.detect.anomaly.off_hours import OffHoursDetector
from mamori.detect.anomaly.peers import behaviour_peers
from mamori.detect.anomaly.rarity import RarityDetector
from mamori.detect.anomaly.records import Anomaly, Explanation
from mamori.detect.anomaly.risk import RiskIncident, RiskScorer
from mamori.detect.anomaly.seasons import Calendar
from mamori.detect.anomaly.spraying import SprayingDetector
from mamori.detect.anomaly.syscalls import CallSetModel, NgramSequenceModel, TraceAnomalyModel
from mamori.detect.anomaly.thresholds import parse_thresholds
from mamori.detect.anomaly.volume import VolumeDetector

if TYPE_CHECKING:
    from mamori.detect.anomaly.tabular import TabularKnnModel


def __getattr__(name: str) -> object:
    """``TabularKnnModel`` is imported when asked for: it needs scikit-learn (over a second to import),
    which the service's anomaly worker and the UEBA detectors do not."""
    if name == "TabularKnnModel":
        from mamori.detect.anomaly.tabular import TabularKnnModel

        return TabularKnnModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Anomaly",
    "BeaconingDetector",
    "BehaviourVectorDetector",
    "Calendar",
    "CallSetModel",
    "DomainNameModel",
    "EcodDetector",
    "Explanation",
    "FirstSeenDetector",
    "GeoLogonDetector",
    "HalfSpaceTreesDetector",
    "Ip2LocationCsv",
    "MaxMindDatabase",
    "NgramSequenceModel",
    "OffHoursDetector",
    "RarityDetector",
    "RiskIncident",
    "RiskScorer",
    "SprayingDetector",
    "SuspiciousDomainDetector",
    "TabularKnnModel",
    "TraceAnomalyModel",
    "UebaEngine",
    "VolumeDetector",
    "behaviour_peers",
    "default_detectors",
    "open_geo_database",
    "parse_thresholds",
]
