"""Rule management: the loaded rules with their switch, enable and disable (admin), and a test run of a
rule over the stored events (analyst) shown in place with htmx."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mamori.api.auth import audit
from mamori.api.deps import service_of
from mamori.service.retrohunt import hunt_lake, subset
from mamori.store.records import RuleSetting, utcnow
from mamori.web.context import ConsoleUser, Reader, checked_form, page_error, reader_translator, render
from mamori.web.timeparse import local_time

router = APIRouter()
PAGE = 100


@router.get("/rules", response_class=HTMLResponse, summary="Rules")
def rules_page(request: Request, q: str = "", level: str = "", state: str = "", page: int = 1,
               user: ConsoleUser = Reader) -> Response:
    """Loaded rules filtered by title text, level and state (enabled / disabled)."""
    rules = service_of(request).stage.rules()
    text = q.strip().lower()
    chosen = [r for r in rules if (not text or text in r.title.lower() or text in r.id.lower())
              and (not level or r.level == level)
              and (not state or r.enabled == (state == "enabled"))]
    page = max(page, 1)
    return render(request, "rules.html", user, rules=chosen[(page - 1) * PAGE:page * PAGE], total=len(chosen),
                  page=page, pages=max((len(chosen) - 1) // PAGE + 1, 1), q=q, level=level, state=state,
                  message=request.query_params.get("done", ""))


async def _switch(request: Request, rule_id: str, enabled: bool, user: ConsoleUser) -> Response:
    form = await checked_form(request, user, "admin")
    service = service_of(request)
    if rule_id not in {r.id for r in service.stage.rules()}:
        raise page_error(404, "error.no_rule", id=rule_id)
    with service.sessions.begin() as session:
        setting = session.get(RuleSetting, rule_id)
        if setting is None:
            session.add(RuleSetting(rule_id=rule_id, enabled=enabled, updated_by=user.name))
        else:
            setting.enabled, setting.updated_by, setting.updated_at = enabled, user.name, utcnow()
        audit(session, user.name, "rule.enable" if enabled else "rule.disable", f"rule {rule_id}", via="console")
    service.stage.set_enabled(rule_id, enabled)
    return RedirectResponse(f"/console/rules?{form.get('back_query', '')}", 303)


@router.post("/rules/{rule_id}/enable", summary="Enable a rule")
async def enable(request: Request, rule_id: str, user: ConsoleUser = Reader) -> Response:
    """Switch a rule on at the next batch (admin only); audited like the API does."""
    return await _switch(request, rule_id, True, user)


@router.post("/rules/{rule_id}/disable", summary="Disable a rule")
async def disable(request: Request, rule_id: str, user: ConsoleUser = Reader) -> Response:
    """Switch a rule off at the next batch (admin only); audited like the API does."""
    return await _switch(request, rule_id, False, user)


@router.post("/rules/{rule_id}/test", response_class=HTMLResponse, summary="Test a rule over stored events")
async def test_rule(request: Request, rule_id: str, user: ConsoleUser = Reader) -> Response:
    """Which stored events the rule matches in the chosen time range (nothing is alerted)."""
    form = await checked_form(request, user, "analyst")
    service = service_of(request)
    stage = service.sigma_stage()
    if stage is None or rule_id not in {r.id for r in stage.rules()}:
        raise page_error(404, "error.no_rule", id=rule_id)
    t = reader_translator(request, user)
    try:
        since = local_time(str(form.get("since", "")), t.time_zone)
        until = local_time(str(form.get("until", "")), t.time_zone)
    except ValueError:
        template = "rule_test.html" if request.headers.get("hx-request") else "rule_test_page.html"
        return render(request, template, user, error=t("events.bad_time"), hits=[], total=0, scanned=0,
                      rule_id=rule_id)
    hits, total, scanned = await asyncio.to_thread(hunt_lake, service.lake, subset(stage.ruleset, [rule_id]),
                                                   since, until, 50)
    with service.sessions.begin() as session:
        audit(session, user.name, "rule.test", f"rule {rule_id}", hits=total, via="console")
    template = "rule_test.html" if request.headers.get("hx-request") else "rule_test_page.html"  # no JS: a page
    return render(request, template, user, error="", hits=[h.__dict__ for h in hits], total=total,
                  scanned=scanned, rule_id=rule_id)
