"""Rules: list, enable and disable without restart, test a loaded rule or hunt with a new one over
stored events (retro-hunt)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from mamori.api.auth import Admin, Analyst, Principal, Viewer, audit
from mamori.api.deps import parse_time, service_of
from mamori.service.retrohunt import hunt_lake, ruleset_from_text, subset
from mamori.store.records import RuleSetting, utcnow

router = APIRouter(prefix="/api/v1", tags=["rules"])


@router.get("/rules", summary="List the loaded rules")
def list_rules(request: Request, enabled: bool | None = None, level: str | None = None,
               limit: int = Query(500, ge=1, le=5000), offset: int = Query(0, ge=0),
               principal: Principal = Viewer) -> dict[str, Any]:
    """Rules with their switch; filter by enabled and level."""
    rules = service_of(request).stage.rules()
    chosen = [r for r in rules if (enabled is None or r.enabled == enabled) and (level is None or r.level == level)]
    return {"total": len(chosen), "rules": [r.__dict__ for r in chosen[offset:offset + limit]]}


def _switch(request: Request, rule_id: str, enabled: bool, principal: Principal) -> dict[str, Any]:
    service = service_of(request)
    if rule_id not in {r.id for r in service.stage.rules()}:
        raise HTTPException(404, detail=f"no loaded rule {rule_id}")
    with service.sessions.begin() as session:
        setting = session.get(RuleSetting, rule_id)
        if setting is None:
            session.add(RuleSetting(rule_id=rule_id, enabled=enabled, updated_by=principal.user))
        else:
            setting.enabled, setting.updated_by, setting.updated_at = enabled, principal.user, utcnow()
        audit(session, principal.user, "rule.enable" if enabled else "rule.disable", f"rule {rule_id}")
    service.stage.set_enabled(rule_id, enabled)
    return {"id": rule_id, "enabled": enabled}


@router.post("/rules/{rule_id}/enable", summary="Enable a rule (takes effect at the next batch)")
def enable(request: Request, rule_id: str, principal: Principal = Admin) -> dict[str, Any]:
    """Switch a rule on."""
    return _switch(request, rule_id, True, principal)


@router.post("/rules/{rule_id}/disable", summary="Disable a rule (takes effect at the next batch)")
def disable(request: Request, rule_id: str, principal: Principal = Admin) -> dict[str, Any]:
    """Switch a rule off."""
    return _switch(request, rule_id, False, principal)


class HuntRequest(BaseModel):
    """A retro-hunt: a Sigma rule (YAML) or nothing (for a loaded rule), a time range, a hit limit."""

    rule: str | None = Field(default=None, max_length=200_000, description="Sigma rule YAML")
    since: str | None = None
    until: str | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


async def _hunt(request: Request, body: HuntRequest, rule_id: str | None) -> dict[str, Any]:
    service = service_of(request)
    stage = service.sigma_stage()
    if rule_id is not None:
        if stage is None or rule_id not in {r.id for r in stage.rules()}:
            raise HTTPException(404, detail=f"no loaded rule {rule_id}")
        ruleset = subset(stage.ruleset, [rule_id])
    else:
        if not body.rule:
            raise HTTPException(422, detail="give the rule to hunt with as Sigma YAML in 'rule'")
        ruleset = ruleset_from_text(body.rule, loaded=stage.ruleset if stage is not None else None)
    since, until = parse_time(body.since, "since"), parse_time(body.until, "until")
    hits, total, events = await asyncio.to_thread(hunt_lake, service.lake, ruleset, since, until, body.limit)
    return {"events_scanned": events, "total": total, "hits": [h.__dict__ for h in hits]}


@router.post("/rules/{rule_id}/test", summary="Run a loaded rule over stored events")
async def test_rule(request: Request, rule_id: str, body: HuntRequest, principal: Principal = Analyst
                    ) -> dict[str, Any]:
    """Which stored events the rule matches (nothing is alerted)."""
    return await _hunt(request, body, rule_id)


@router.post("/hunt", summary="Retro-hunt: run a new or changed Sigma rule over stored events")
async def hunt(request: Request, body: HuntRequest, principal: Principal = Analyst) -> dict[str, Any]:
    """Which stored events the given rule matches (nothing is alerted)."""
    result = await _hunt(request, body, None)
    with service_of(request).sessions.begin() as session:
        audit(session, principal.user, "hunt", "store", hits=result["total"])
    return result
