"""The anomaly worker over HTTP: what it holds, and a rebuild of its baselines while the service runs
(``mamori anomaly rebuild`` works on a stopped service's data folder only)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from mamori.api.auth import Admin, Analyst, Principal, audit
from mamori.api.deps import service_of

router = APIRouter(prefix="/api/v1/anomaly", tags=["anomaly"])


@router.get("", summary="The anomaly worker's baselines and progress")
def anomaly_status(request: Request, principal: Principal = Analyst) -> dict[str, Any]:
    """When the baselines were built, how far the stored events were scored, the detectors, the
    allow-listed anomalies and the alerts remembered for verdicts."""
    return service_of(request).anomaly_worker.status()


@router.post("/rebuild", summary="Build the behaviour baselines again from the stored events")
async def rebuild(request: Request, principal: Principal = Admin) -> dict[str, Any]:
    """Build the baselines again from the stored events of the baseline window (after a big import or
    a change of the environment); the analysts' verdicts and the entity risk carry over. It waits for a
    scoring round under way to finish. Audited; 409 when the stored history is still too short."""
    service = service_of(request)
    started = time.perf_counter()
    built = await asyncio.to_thread(service.anomaly_worker.rebuild)
    seconds = round(time.perf_counter() - started, 1)
    with service.sessions.begin() as session:
        audit(session, principal.user, "anomaly.rebuild", "anomaly baselines", built=built, seconds=seconds)
    if not built:
        raise HTTPException(409, detail="too little stored history for a baseline (a day at least); "
                                        "the baselines are unchanged")
    return {"rebuilt": True, "seconds": seconds, **service.anomaly_worker.status()}
