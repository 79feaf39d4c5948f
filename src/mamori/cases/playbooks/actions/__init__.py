"""The playbook action types, by name (``type:`` in a playbook)."""

from __future__ import annotations

from mamori.cases.playbooks.actions import case_actions, command, email, lists, webhook
from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType

ACTION_TYPES: dict[str, ActionType] = {a.name: a for a in (
    webhook.ACTION, email.ACTION, command.ACTION, lists.ACTION,
    case_actions.SET_SEVERITY, case_actions.SET_STATUS, case_actions.OPEN_INCIDENT)}

__all__ = ["ACTION_TYPES", "ActionContext", "ActionFailed", "ActionType"]
