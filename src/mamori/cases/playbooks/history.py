"""Reading the run log: runs with their actions, pending approvals, as the API and console show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mamori.cases.playbooks.records import ActionRun, PlaybookRun


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def action_dict(action: ActionRun) -> dict[str, Any]:
    """One action of a run: rendered input, output, error, attempts, timings and the approval."""
    return {"id": action.id, "run_id": action.run_id, "position": action.position, "name": action.name,
            "type": action.type, "status": action.status, "approval": action.approval,
            "decided_by": action.decided_by, "decided_at": _iso(action.decided_at),
            "decision_reason": action.decision_reason, "input": action.rendered_input, "output": action.output,
            "error": action.error, "attempts": action.attempts, "attempt_log": action.attempt_log,
            "started_at": _iso(action.started_at), "finished_at": _iso(action.finished_at),
            "duration_ms": action.duration_ms}


def run_dict(run: PlaybookRun, actions: list[ActionRun] | None = None, payload: bool = False) -> dict[str, Any]:
    """A run as the API shows it; ``actions`` and the triggering ``payload`` when asked for."""
    out: dict[str, Any] = {
        "id": run.id, "playbook": run.playbook, "playbook_file": run.playbook_file,
        "playbook_sha256": run.playbook_sha256, "event_kind": run.event_kind, "event_actor": run.event_actor,
        "incident_id": run.incident_id, "alert_id": run.alert_id, "status": run.status, "error": run.error,
        "resume_at": _iso(run.resume_at), "created_at": _iso(run.created_at), "updated_at": _iso(run.updated_at),
        "finished_at": _iso(run.finished_at)}
    if actions is not None:
        out["actions"] = [action_dict(a) for a in actions]
    if payload:
        out["payload"] = run.payload
    return out


def actions_of(session: Session, run_id: int) -> list[ActionRun]:
    """The actions of a run, in playbook order."""
    return list(session.scalars(select(ActionRun).where(ActionRun.run_id == run_id).order_by(ActionRun.position)))


def _runs_query(playbook: str | None, status: str | None, incident_id: int | None,
                alert_id: int | None) -> Select[Any]:
    query = select(PlaybookRun)
    for column, value in ((PlaybookRun.playbook, playbook), (PlaybookRun.status, status),
                          (PlaybookRun.incident_id, incident_id), (PlaybookRun.alert_id, alert_id)):
        if value is not None:
            query = query.where(column == value)
    return query


def list_runs(session: Session, playbook: str | None = None, status: str | None = None,
              incident_id: int | None = None, alert_id: int | None = None, limit: int = 100,
              offset: int = 0) -> list[dict[str, Any]]:
    """Runs matching every filter given, newest first, each with its actions (the console's run log;
    a report's "actions taken" for an incident)."""
    query = _runs_query(playbook, status, incident_id, alert_id)
    runs = list(session.scalars(query.order_by(PlaybookRun.id.desc()).limit(limit).offset(offset)))
    return [run_dict(run, actions_of(session, run.id)) for run in runs]


def count_runs(session: Session, playbook: str | None = None, status: str | None = None,
               incident_id: int | None = None, alert_id: int | None = None) -> int:
    """How many runs match every filter given (for paging)."""
    query = _runs_query(playbook, status, incident_id, alert_id)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def get_run(session: Session, run_id: int) -> dict[str, Any] | None:
    """One run with its actions and its input (the event payload), or None."""
    run = session.get(PlaybookRun, run_id)
    if run is None:
        return None
    return run_dict(run, actions_of(session, run.id), payload=True)


def approvals(session: Session, state: str | None = "pending", limit: int = 200) -> list[dict[str, Any]]:
    """Actions that asked for approval (``state``: pending, approved, rejected, or None for all), newest
    first, each with its run (playbook, incident, alert) so an analyst sees what they decide on."""
    query = select(ActionRun, PlaybookRun).join(PlaybookRun, PlaybookRun.id == ActionRun.run_id)
    query = query.where(ActionRun.approval == state) if state else query.where(ActionRun.approval != "none")
    rows = session.execute(query.order_by(ActionRun.id.desc()).limit(limit)).all()
    return [{**action_dict(action), "run": run_dict(run)} for action, run in rows]


def pending_approvals(session: Session) -> list[dict[str, Any]]:
    """Actions waiting for an analyst's approval, newest first (what the console's approvals page lists)."""
    return approvals(session, "pending")
