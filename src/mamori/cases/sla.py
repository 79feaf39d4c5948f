"""Service levels of incidents: deadlines to acknowledge and to resolve per severity (``data/sla.yaml``),
breach flags per incident, and the mean times to acknowledge (MTTA) and to resolve (MTTR).

The clock starts when the incident is opened (``created_at``). Acknowledged means its status left
``new`` or an owner was set (``acknowledged_at``); resolved means it was closed as resolved or
false_positive (``resolved_at``). Incidents merged into another count for neither.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from mamori.cases.records import Incident
from mamori.detect.attack import LEVELS
from mamori.errors import MamoriError
from mamori.store.records import utcnow

SLA_FILE = "mamori/cases/data/sla.yaml"


@dataclass(frozen=True)
class SlaTarget:
    """How long an incident of one severity may wait to be acknowledged and to be resolved."""

    acknowledge: timedelta
    resolve: timedelta


def parse_targets(document: Any, source: str) -> dict[str, SlaTarget]:
    """SLA targets from a parsed YAML document; a missing severity or a bad number names the file and key."""
    if not isinstance(document, dict):
        raise MamoriError("the SLA file must map each severity to its targets", where=source)
    out: dict[str, SlaTarget] = {}
    for severity in LEVELS:
        entry = document.get(severity)
        where = f"{source}: {severity}"
        if not isinstance(entry, dict):
            raise MamoriError(f"no targets for severity {severity}", where=where,
                              hint="give acknowledge_minutes and resolve_minutes")
        try:
            acknowledge = float(entry["acknowledge_minutes"])
            resolve = float(entry["resolve_minutes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MamoriError(f"bad or missing value: {exc}", where=where,
                              hint="acknowledge_minutes and resolve_minutes are numbers of minutes") from exc
        if acknowledge <= 0 or resolve <= 0:
            raise MamoriError("targets must be positive", where=where)
        out[severity] = SlaTarget(timedelta(minutes=acknowledge), timedelta(minutes=resolve))
    unknown = sorted(set(document) - set(LEVELS))
    if unknown:
        raise MamoriError(f"unknown severities {unknown}", where=source, hint=f"severities: {', '.join(LEVELS)}")
    return out


@functools.cache
def _default_targets() -> dict[str, SlaTarget]:
    text = (resources.files("mamori.cases") / "data" / "sla.yaml").read_text("utf-8")
    return parse_targets(yaml.safe_load(text), SLA_FILE)


def load_targets(path: Path | None = None) -> Mapping[str, SlaTarget]:
    """The SLA targets of ``path``, or the built-in ``data/sla.yaml``."""
    if path is None:
        return _default_targets()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MamoriError(f"cannot read the SLA targets: {exc}", where=str(path)) from exc
    return parse_targets(document, str(path))


@dataclass(frozen=True)
class SlaStatus:
    """One incident against its targets: deadlines, whether each was met or missed, time left."""

    severity: str
    acknowledge_due: datetime
    resolve_due: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    acknowledge_breached: bool
    resolve_breached: bool
    acknowledge_seconds_left: float | None  # None once acknowledged; negative when overdue
    resolve_seconds_left: float | None  # None once resolved; negative when overdue


def sla_status(incident: Incident, now: datetime, targets: Mapping[str, SlaTarget] | None = None) -> SlaStatus:
    """Where an incident stands against the SLA of its severity at ``now``."""
    target = (targets or load_targets()).get(incident.severity) or (targets or load_targets())["medium"]
    ack_due = incident.created_at + target.acknowledge
    resolve_due = incident.created_at + target.resolve
    acked, resolved = incident.acknowledged_at, incident.resolved_at
    return SlaStatus(
        incident.severity, ack_due, resolve_due, acked, resolved,
        acknowledge_breached=(acked or now) > ack_due, resolve_breached=(resolved or now) > resolve_due,
        acknowledge_seconds_left=None if acked else (ack_due - now).total_seconds(),
        resolve_seconds_left=None if resolved else (resolve_due - now).total_seconds())


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def sla_dict(status: SlaStatus) -> dict[str, Any]:
    """An SLA status as JSON."""
    return {"severity": status.severity, "acknowledge_due": _iso(status.acknowledge_due),
            "resolve_due": _iso(status.resolve_due), "acknowledged_at": _iso(status.acknowledged_at),
            "resolved_at": _iso(status.resolved_at), "acknowledge_breached": status.acknowledge_breached,
            "resolve_breached": status.resolve_breached,
            "acknowledge_seconds_left": status.acknowledge_seconds_left,
            "resolve_seconds_left": status.resolve_seconds_left}


@dataclass(frozen=True)
class ResponseFigures:
    """MTTA and MTTR over a set of incidents, with how many each mean is over, and the breaches."""

    incidents: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None
    acknowledge_breaches: int
    resolve_breaches: int


@dataclass(frozen=True)
class ResponseMetrics:
    """MTTA/MTTR overall and per severity (every severity listed, empty ones with None means)."""

    overall: ResponseFigures
    by_severity: Mapping[str, ResponseFigures]


def _figures(rows: list[tuple[Incident, SlaStatus]]) -> ResponseFigures:
    ack = [(i.acknowledged_at - i.created_at).total_seconds() for i, _ in rows if i.acknowledged_at]
    res = [(i.resolved_at - i.created_at).total_seconds() for i, _ in rows if i.resolved_at]
    return ResponseFigures(len(rows), len(ack), len(res), sum(ack) / len(ack) if ack else None,
                           sum(res) / len(res) if res else None, sum(s.acknowledge_breached for _, s in rows),
                           sum(s.resolve_breached for _, s in rows))


def response_metrics(incidents: Iterable[Incident], now: datetime,
                     targets: Mapping[str, SlaTarget] | None = None) -> ResponseMetrics:
    """MTTA and MTTR of some incidents (merged ones left out), overall and per severity."""
    rows = [(i, sla_status(i, now, targets)) for i in incidents if i.merged_into is None]
    return ResponseMetrics(_figures(rows), {s: _figures([r for r in rows if r[0].severity == s]) for s in LEVELS})


def mtta_mttr(session: Session, now: datetime | None = None, since: datetime | None = None,
              until: datetime | None = None, targets: Mapping[str, SlaTarget] | None = None) -> ResponseMetrics:
    """MTTA/MTTR of the incidents opened between ``since`` and ``until`` (all when not given)."""
    query = select(Incident).where(Incident.merged_into.is_(None))
    if since is not None:
        query = query.where(Incident.created_at >= since)
    if until is not None:
        query = query.where(Incident.created_at <= until)
    return response_metrics(session.scalars(query), now or utcnow(), targets)


def figures_dict(figures: ResponseFigures) -> dict[str, Any]:
    """MTTA/MTTR figures as JSON."""
    return {"incidents": figures.incidents, "acknowledged": figures.acknowledged, "resolved": figures.resolved,
            "mtta_seconds": figures.mtta_seconds, "mttr_seconds": figures.mttr_seconds,
            "acknowledge_breaches": figures.acknowledge_breaches, "resolve_breaches": figures.resolve_breaches}


def metrics_dict(metrics: ResponseMetrics) -> dict[str, Any]:
    """MTTA/MTTR overall and per severity as JSON."""
    return {"overall": figures_dict(metrics.overall),
            "by_severity": {s: figures_dict(f) for s, f in metrics.by_severity.items()}}
