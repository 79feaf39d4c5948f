"""Case actions: change an incident's severity or status, open an incident from alerts.

They go through ``mamori.cases.workflow`` (the same functions the console uses, so the change is
audited in the incident's trail) and act as ``playbook:<name>``; the runner does not start a playbook
again on a change made under its own name (see ``mamori.cases.playbooks.triggers``).
"""

from __future__ import annotations

import importlib
from typing import Any

from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType
from mamori.cases.playbooks.model import LEVELS

STATUSES = ("new", "investigating", "contained", "resolved", "false_positive")


def _literal(value: Any) -> bool:
    return isinstance(value, str) and "{{" not in value and "{%" not in value


def _check_severity(params: dict[str, Any]) -> list[tuple[str, str]]:
    value = params.get("severity")
    if _literal(value) and value not in LEVELS:
        return [("severity", f"{value!r} is not a severity; use one of {', '.join(LEVELS)}")]
    return []


def _check_status(params: dict[str, Any]) -> list[tuple[str, str]]:
    value = params.get("status")
    if _literal(value) and value not in STATUSES:
        return [("status", f"{value!r} is not a status; use one of {', '.join(STATUSES)}")]
    return []


def _incident_id(params: dict[str, Any], payload: dict[str, Any]) -> int:
    raw = params.get("incident_id") or (payload.get("incident") or {}).get("id")
    try:
        return int(str(raw))
    except (TypeError, ValueError) as exc:
        raise ActionFailed("no incident to change: the event carries none and incident_id is not set",
                           retryable=False) from exc


def _workflow() -> Any:
    try:
        return importlib.import_module("mamori.cases.workflow")
    except ImportError as exc:  # the cases room is not installed in this build
        raise ActionFailed("incident workflow is not available", retryable=False) from exc


def _as_dict(workflow: Any, incident: Any) -> dict[str, Any]:
    if incident is None:
        return {}
    try:
        result: dict[str, Any] = workflow.incident_dict(incident)
        return result
    except Exception:  # a summary for the log only; never fail a change that was made
        return {"id": getattr(incident, "id", None)}


def _wrap_errors(call: Any) -> Any:
    from mamori.errors import MamoriError

    try:
        return call()
    except MamoriError as exc:
        raise ActionFailed(str(exc), retryable=False) from exc


def _change(context: ActionContext, params: dict[str, Any], field: str) -> dict[str, Any]:
    """Set ``field`` (severity or status) of the incident; a value it already has is left alone (and
    reported ``changed: false``), so a playbook does not fail where an analyst was quicker."""
    workflow = _workflow()
    incident_id = _incident_id(params, context.payload)
    value = str(params[field])
    with context.sessions.begin() as session:
        incident = _wrap_errors(lambda: workflow.get_incident(session, incident_id))
        old = getattr(incident, field)
        if old == value:
            return {"incident_id": incident_id, "changed": False, field: value,
                    "incident": _as_dict(workflow, incident)}
        if field == "status":
            reason = str(params.get("reason", "")) or None
            incident = _wrap_errors(lambda: workflow.set_status(session, incident_id, value, context.actor,
                                                                reason=reason))
        else:
            incident = _wrap_errors(lambda: workflow.set_severity(session, incident_id, value, context.actor))
        return {"incident_id": incident_id, "changed": True, field: value,
                "changes": {field: {"old": old, "new": value}}, "incident": _as_dict(workflow, incident)}


def set_severity(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Set the incident's severity."""
    return _change(context, params, "severity")


def set_status(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Move the incident to a status (with an optional reason)."""
    return _change(context, params, "status")


def open_incident(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Open an incident from the alert that started the run (or the ``alert_ids`` given)."""
    workflow = _workflow()
    raw = params.get("alert_ids") or [(context.payload.get("alert") or {}).get("id")]
    try:
        alert_ids = [int(str(a)) for a in raw if a is not None and str(a) != ""]
    except ValueError as exc:
        raise ActionFailed(f"alert_ids must be numbers, got {raw!r}", retryable=False) from exc
    if not alert_ids:
        raise ActionFailed("no alert to open an incident from", retryable=False)
    title = str(params.get("title", "")) or None
    with context.sessions.begin() as session:
        incident = _wrap_errors(lambda: workflow.open_incident(session, alert_ids, context.actor, title=title))
        return {"alert_ids": alert_ids, "incident": _as_dict(workflow, incident)}


SET_SEVERITY = ActionType(name="set_severity", run=set_severity, required=("severity",),
                          optional=("incident_id",), check=_check_severity,
                          description="change the incident's severity")
SET_STATUS = ActionType(name="set_status", run=set_status, required=("status",),
                        optional=("incident_id", "reason"), check=_check_status,
                        description="move the incident to another status")
OPEN_INCIDENT = ActionType(name="open_incident", run=open_incident, optional=("alert_ids", "title"),
                           description="open an incident from alerts")
