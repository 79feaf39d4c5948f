"""Playbooks: what is loaded (and refused, with reasons), the run log, approvals, and the watch/block lists.

Reading needs a viewer token; deciding approvals and changing the lists needs an analyst (audited);
reloading the playbook folder needs an admin.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from mamori.api.auth import Admin, Analyst, Principal, Viewer, audit
from mamori.api.deps import service_of
from mamori.cases.playbooks import history
from mamori.cases.playbooks.actions.lists import ENTITY_KINDS, add_entry, entry_dict, list_entries, remove_entry
from mamori.cases.playbooks.model import Library, Playbook
from mamori.cases.playbooks.records import LIST_KINDS, RUN_STATES, ActionRun
from mamori.cases.playbooks.runner import approve, reject

router = APIRouter(tags=["playbooks"])


def playbook_dict(playbook: Playbook) -> dict[str, Any]:
    """A loaded playbook as the API shows it (trigger and actions; parameters as written, secrets as
    their ``${env:NAME}`` placeholders)."""
    trigger = playbook.trigger
    return {
        "name": playbook.name, "file": str(playbook.path), "sha256": playbook.sha256,
        "description": playbook.description, "enabled": playbook.enabled,
        "trigger": {"events": list(trigger.events), "level": trigger.level, "level_match": trigger.level_match,
                    "tags": list(trigger.tags), "rule_ids": list(trigger.rule_ids),
                    "entities": {kind: list(values) for kind, values in trigger.entities},
                    "on_playbook_changes": trigger.on_playbook_changes,
                    "cooldown_seconds": trigger.cooldown_seconds},
        "has_conditions": playbook.conditions is not None,
        "actions": [{"name": a.name, "type": a.type, "approval_required": a.approval_required,
                     "max_attempts": a.retry.max_attempts, "base_delay": a.retry.base_delay, "timeout": a.timeout,
                     "on_failure": "continue" if a.continue_on_failure else "stop", "params": a.params}
                    for a in playbook.actions],
    }


def library_dict(library: Library) -> dict[str, Any]:
    """The loaded playbooks and the refused files (file, field, reason)."""
    return {"folder": str(library.folder) if library.folder else None,
            "playbooks": [playbook_dict(p) for p in library.playbooks],
            "refused": [{"file": str(r.path), "field": r.field, "reason": r.reason} for r in library.refused]}


@router.get("/api/v1/playbooks", summary="Loaded playbooks, and refused files with the field and reason")
def get_playbooks(request: Request, principal: Principal = Viewer) -> dict[str, Any]:
    """Every playbook the service runs, and the files it refused."""
    return library_dict(service_of(request).playbooks.library)


@router.post("/api/v1/playbooks/reload", summary="Read the playbook folder again")
def reload_playbooks(request: Request, principal: Principal = Admin) -> dict[str, Any]:
    """Reload the configured folder (audited); runs of a changed playbook are not resumed."""
    service = service_of(request)
    library = service.playbooks.reload(service.settings.playbooks)
    with service.sessions.begin() as session:
        audit(session, principal.user, "playbooks.reload", str(service.settings.playbooks or ""),
              loaded=len(library.playbooks), refused=len(library.refused))
    return library_dict(library)


@router.get("/api/v1/playbooks/runs", summary="The run log, newest first")
def get_runs(request: Request, playbook: str | None = None, status: str | None = None,
             incident_id: int | None = None, alert_id: int | None = None,
             limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
             principal: Principal = Viewer) -> dict[str, Any]:
    """Runs matching every filter given, each with its actions (input, output, error, attempts)."""
    if status is not None and status not in RUN_STATES:
        raise HTTPException(422, detail=f"status: use one of {', '.join(RUN_STATES)}")
    with service_of(request).sessions() as session:
        filters: dict[str, Any] = {"playbook": playbook, "status": status, "incident_id": incident_id,
                                   "alert_id": alert_id}
        total = history.count_runs(session, **filters)
        runs = history.list_runs(session, **filters, limit=limit, offset=offset)
    return {"total": total, "runs": runs}


@router.get("/api/v1/playbooks/runs/{run_id}", summary="One run with its input and actions")
def get_run(request: Request, run_id: int, principal: Principal = Viewer) -> dict[str, Any]:
    """The run with this id, its triggering event payload and every action's log (404 when absent)."""
    with service_of(request).sessions() as session:
        run = history.get_run(session, run_id)
    if run is None:
        raise HTTPException(404, detail=f"no playbook run {run_id}")
    return run


@router.get("/api/v1/playbooks/approvals", summary="Actions that wait for (or had) an analyst's decision")
def get_approvals(request: Request, state: str = "pending", principal: Principal = Viewer) -> dict[str, Any]:
    """Approvals in a state: pending (default), approved, rejected or all."""
    if state not in ("pending", "approved", "rejected", "all"):
        raise HTTPException(422, detail="state: use pending, approved, rejected or all")
    with service_of(request).sessions() as session:
        items = history.approvals(session, None if state == "all" else state)
    return {"approvals": items}


class Decision(BaseModel):
    """Why an approval was rejected (optional for approving)."""

    reason: str = Field("", max_length=2000)


def _decide(request: Request, action_run_id: int, principal: Principal, approved: bool,
            reason: str) -> dict[str, Any]:
    service = service_of(request)
    with service.sessions.begin() as session:
        if session.get(ActionRun, action_run_id) is None:
            raise HTTPException(404, detail=f"no playbook action {action_run_id}")
        action = approve(session, action_run_id, principal.user) if approved else \
            reject(session, action_run_id, principal.user, reason)
        result = history.action_dict(action)
    service.playbooks.wake()
    return result


@router.post("/api/v1/playbooks/approvals/{action_run_id}/approve", summary="Approve a waiting action")
def approve_action(request: Request, action_run_id: int, principal: Principal = Analyst) -> dict[str, Any]:
    """Approve it (audited); the run resumes with this action."""
    return _decide(request, action_run_id, principal, True, "")


@router.post("/api/v1/playbooks/approvals/{action_run_id}/reject", summary="Reject a waiting action")
def reject_action(request: Request, action_run_id: int, decision: Decision | None = None,
                  principal: Principal = Analyst) -> dict[str, Any]:
    """Reject it with a reason (audited); the action is not done and the run ends."""
    return _decide(request, action_run_id, principal, False, decision.reason if decision else "")


def _list_kind(kind: str) -> str:
    if kind not in LIST_KINDS:
        raise HTTPException(404, detail=f"no list {kind!r}; lists: {', '.join(LIST_KINDS)}")
    return kind


@router.get("/api/v1/lists/{kind}", tags=["lists"], summary="The watchlist or the blocklist")
def get_list(request: Request, kind: str, entity_kind: str | None = None,
             principal: Principal = Viewer) -> dict[str, Any]:
    """Entries of the list, newest first (firewalls and scripts may poll the blocklist)."""
    with service_of(request).sessions() as session:
        return {"list": _list_kind(kind), "entries": list_entries(session, kind, entity_kind)}


class NewEntry(BaseModel):
    """An entity to put on a list."""

    entity_kind: str = Field(description=f"one of {', '.join(ENTITY_KINDS)}")
    value: str = Field(min_length=1, max_length=1000)
    reason: str = Field("", max_length=2000)


@router.post("/api/v1/lists/{kind}", tags=["lists"], status_code=201, summary="Put an entity on a list")
def post_list_entry(request: Request, kind: str, entry: NewEntry, principal: Principal = Analyst) -> dict[str, Any]:
    """Add the entity (audited); adding one already listed returns the existing entry."""
    with service_of(request).sessions.begin() as session:
        row, new = add_entry(session, _list_kind(kind), entry.entity_kind, entry.value, principal.user, entry.reason)
        if new:
            audit(session, principal.user, f"{kind}.add", f"{entry.entity_kind} {row.value}", reason=entry.reason)
        return {**entry_dict(row), "new": new}


@router.delete("/api/v1/lists/{kind}/{entry_id}", tags=["lists"], summary="Take an entity off a list")
def delete_list_entry(request: Request, kind: str, entry_id: int, principal: Principal = Analyst) -> dict[str, Any]:
    """Remove the entry (audited); 404 when the list has no such entry."""
    with service_of(request).sessions.begin() as session:
        if not remove_entry(session, _list_kind(kind), entry_id):
            raise HTTPException(404, detail=f"no entry {entry_id} on the {kind}")
        audit(session, principal.user, f"{kind}.remove", f"entry {entry_id}")
    return {"removed": entry_id}
