"""Health, statistics, quarantine and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from mamori.api.auth import Admin, Analyst, Principal, Viewer, audit
from mamori.api.deps import service_of
from mamori.store.query import count_events
from mamori.store.records import Alert, QuarantineRecord

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness (no token needed, no detail given)")
def healthz() -> dict[str, str]:
    """Says the process answers."""
    return {"status": "ok"}


@router.get("/api/v1/health", summary="Health of every part")
def health(request: Request, principal: Principal = Viewer) -> dict[str, Any]:
    """Pipeline, spool, inputs and the anomaly worker: degraded when the pipeline fails or lags, the
    spool is full or the last anomaly round failed."""
    service = service_of(request)
    pipeline = service.pipeline
    lag = pipeline.lag_seconds()
    anomaly = service.anomaly_worker.status()
    status = "ok"
    if pipeline.error or service.spool.full or lag > 60 or anomaly["last_error"]:
        status = "degraded"
    return {"status": status, "uptime_seconds": round(time.time() - service.started_at, 1),
            "pipeline": {"committed": pipeline.committed, "lag_seconds": round(lag, 3), "error": pipeline.error,
                         "parsers_ready": pipeline.parsers_ready()},
            "spool": {"pending_bytes": service.spool.pending_bytes, "full": service.spool.full},
            "inputs": service.ports, "rules": len(service.stage.rules()), "anomaly": anomaly}


@router.get("/api/v1/stats", summary="Ingest statistics")
def stats(request: Request, principal: Principal = Viewer) -> dict[str, Any]:
    """Events received and stored, per input and source; quarantine and alert counts; lake size."""
    service = service_of(request)
    metrics = service.metrics
    received = {dict(labels).get("input", ""): value for (name, labels), value in metrics.counters.items()
                if name == "mamori_events_received_total"}
    with service.sessions() as session:
        quarantined = session.scalar(select(func.count()).select_from(QuarantineRecord)) or 0
        alerts = session.scalar(select(func.count()).select_from(Alert)) or 0
    return {"received": received, "stored_total": metrics.counter("mamori_events_stored_total"),
            "stored_by_source": count_events(service.lake), "lake_bytes_by_source": service.lake.size_by_source(),
            "quarantined": quarantined, "alerts": alerts, "udp_dropped": service.counters.dropped,
            "spool_pending_bytes": service.spool.pending_bytes, "lag_seconds": service.pipeline.lag_seconds()}


@router.get("/api/v1/quarantine", summary="Inputs the service could not use")
def quarantine(request: Request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
               principal: Principal = Analyst) -> dict[str, Any]:
    """Quarantined records, newest first, with where they came from and why."""
    with service_of(request).sessions() as session:
        total = session.scalar(select(func.count()).select_from(QuarantineRecord)) or 0
        rows = session.scalars(select(QuarantineRecord).order_by(QuarantineRecord.id.desc())
                               .limit(limit).offset(offset)).all()
        return {"total": total, "records": [
            {"id": r.id, "received_at": r.received_at.isoformat(), "input": r.input, "reason": r.reason,
             "raw": r.raw} for r in rows]}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request, principal: Principal = Viewer) -> PlainTextResponse:
    """Ingest rate, lag, queue depth, quarantined records, stage and rule timings."""
    service = service_of(request)
    return PlainTextResponse(service.metrics.render(service.rule_timing_lines()),
                             media_type="text/plain; version=0.0.4")


@router.post("/api/v1/pipeline/pause", summary="Pause detection and storage (inputs keep spooling)")
def pause(request: Request, principal: Principal = Admin) -> dict[str, Any]:
    """Stop taking batches (maintenance); inputs keep accepting until the spool limit, then push back."""
    service = service_of(request)
    service.pipeline.paused.set()
    with service.sessions.begin() as session:
        audit(session, principal.user, "pipeline.pause")
    return {"paused": True}


@router.post("/api/v1/pipeline/resume", summary="Resume detection and storage")
def resume(request: Request, principal: Principal = Admin) -> dict[str, Any]:
    """Take batches again."""
    service = service_of(request)
    service.pipeline.paused.clear()
    with service.sessions.begin() as session:
        audit(session, principal.user, "pipeline.resume")
    return {"paused": False}
