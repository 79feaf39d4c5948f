"""Playbook runs and the approvals waiting for a person: approve or reject (analyst), audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from mamori.api.deps import service_of
from mamori.cases.playbooks import runner
from mamori.cases.playbooks.records import ActionRun, PlaybookRun
from mamori.errors import MamoriError
from mamori.web.context import ConsoleUser, Reader, checked_form, page_error, render
from mamori.web.routes.incidents import _approvals

router = APIRouter()
PAGE = 100


@router.get("/playbooks", response_class=HTMLResponse, summary="Playbook runs and approvals")
def runs_page(request: Request, user: ConsoleUser = Reader) -> Response:
    """Pending approvals first, then the latest runs with their actions."""
    with service_of(request).sessions() as session:
        approvals = _approvals(session, None)
        runs = session.scalars(select(PlaybookRun).order_by(PlaybookRun.id.desc()).limit(PAGE)).all()
        actions: dict[int, list[Any]] = {}
        if runs:
            for action in session.scalars(select(ActionRun).where(ActionRun.run_id.in_([r.id for r in runs]))
                                          .order_by(ActionRun.run_id, ActionRun.position)):
                actions.setdefault(action.run_id, []).append(action)
    return render(request, "playbooks.html", user, approvals=approvals, runs=runs, actions=actions,
                  message=request.query_params.get("done", ""))


@router.post("/approvals/{action_run_id}/{decision}", summary="Approve or reject a pending action")
async def decide(request: Request, action_run_id: int, decision: str,
                 user: ConsoleUser = Reader) -> Response:
    """Record the decision through the playbook runner, which audits it and then runs or skips the action."""
    if decision not in ("approve", "reject"):
        raise page_error(404, "error.not_found")
    form = await checked_form(request, user, "analyst")
    reason = str(form.get("reason", "")).strip()[:2000]
    try:
        with service_of(request).sessions.begin() as session:
            if decision == "approve":
                runner.approve(session, action_run_id, user.name)
            else:
                runner.reject(session, action_run_id, user.name, reason=reason)
    except MamoriError as exc:
        raise HTTPException(400, detail=exc.message) from exc
    back = str(form.get("back", ""))
    target = back if back.startswith("/console/") and not back.startswith("//") else "/console/playbooks"
    return RedirectResponse(f"{target}?done={decision}", 303)
