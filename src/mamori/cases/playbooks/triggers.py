"""Does a case event start a playbook? Trigger matching and conditions over the event payload.

The payload a playbook sees is the ``CaseEvent`` as JSON: ``kind``, ``actor``, ``changes``, ``alert``
and ``incident`` (the REST API's shapes). Loop guard: a change made by a playbook carries the actor
``playbook:<name>``; such an event never starts that same playbook, and starts other playbooks only
when they opt in with ``trigger.on_playbook_changes: true`` (so two playbooks cannot ping-pong
unless both ask for it, and even then not with themselves).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mamori.cases.events import CaseEvent
from mamori.cases.playbooks.model import LEVELS, Comparison, ConditionGroup, Playbook

PLAYBOOK_ACTOR_PREFIX = "playbook:"
_MISSING = object()


def event_payload(event: CaseEvent) -> dict[str, Any]:
    """The event as the JSON document a run keeps and its templates see."""
    return {"kind": event.kind, "actor": event.actor, "changes": dict(event.changes),
            "alert": dict(event.alert) if event.alert is not None else None,
            "incident": dict(event.incident) if event.incident is not None else None}


def lookup(payload: Any, path: str) -> Any:
    """The value at a dotted path (``incident.entities.ip``, ``alert.tags.0``), or a missing marker."""
    current = payload
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _level_rank(value: Any) -> int | None:
    text = str(value).lower()
    return LEVELS.index(text) if text in LEVELS else None


def _ordered(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both sides as comparable values: numbers, levels (by rank) or ISO times; None when they are not."""
    if isinstance(left, int | float) and not isinstance(left, bool) and isinstance(right, int | float):
        return left, right
    rank_l, rank_r = _level_rank(left), _level_rank(right)
    if rank_l is not None and rank_r is not None:
        return rank_l, rank_r
    try:
        return float(str(left)), float(str(right))
    except ValueError:
        pass
    try:
        return (datetime.fromisoformat(str(left).replace("Z", "+00:00")),
                datetime.fromisoformat(str(right).replace("Z", "+00:00")))
    except (ValueError, TypeError):
        return None


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, str | int | float) and isinstance(right, str | int | float):
        return str(left).lower() == str(right).lower() if isinstance(left, str) or isinstance(right, str) \
            else bool(left == right)
    return bool(left == right)


def compare(comparison: Comparison, payload: dict[str, Any]) -> bool:
    """One comparison over the payload; a missing field never matches (except ``not_equals``)."""
    value = lookup(payload, comparison.path)
    op, expected = comparison.operator, comparison.value
    if op == "exists":
        present = value is not _MISSING and value not in (None, "", [], {})
        return present == bool(expected)
    if value is _MISSING or value is None:
        return op == "not_equals" and expected is not None
    if op == "equals":
        return _same(value, expected)
    if op == "not_equals":
        return not _same(value, expected)
    if op == "in":
        return any(_same(value, item) for item in expected)
    if op == "contains":
        if isinstance(value, list):
            return any(_same(item, expected) for item in value)
        if isinstance(value, dict):
            return str(expected) in value or any(_same(item, expected) for item in value.values())
        return str(expected).lower() in str(value).lower()
    pair = _ordered(value, expected)
    if pair is None:
        return False
    return bool(pair[0] >= pair[1]) if op == "gte" else bool(pair[0] <= pair[1])


def holds(group: ConditionGroup, payload: dict[str, Any]) -> bool:
    """Whether a condition group holds over the payload."""
    results = (holds(item, payload) if isinstance(item, ConditionGroup) else compare(item, payload)
               for item in group.items)
    return all(results) if group.mode == "all" else any(results)


def _level_of(payload: dict[str, Any]) -> str | None:
    if payload.get("incident"):
        return str(payload["incident"].get("severity") or "") or None
    if payload.get("alert"):
        return str(payload["alert"].get("level") or "") or None
    return None


def _tags_of(payload: dict[str, Any]) -> set[str]:
    tags: set[str] = set()
    for item in (payload.get("alert") or {}, payload.get("incident") or {}):
        for key in ("tags", "tactics", "techniques"):
            for tag in item.get(key) or []:
                text = str(tag).lower()
                tags.add(text)
                tags.add(text.removeprefix("attack."))
    return tags


def _rule_ids_of(payload: dict[str, Any]) -> set[str]:
    ids = {str((payload.get("alert") or {}).get("rule_id") or "")}
    ids.update(str(r) for r in (payload.get("incident") or {}).get("rule_ids") or [])
    for alert in (payload.get("incident") or {}).get("alerts") or []:
        if isinstance(alert, dict):
            ids.add(str(alert.get("rule_id") or ""))
    ids.discard("")
    return ids


def _entity_values(payload: dict[str, Any], kind: str) -> set[str]:
    values: set[str] = set()
    for item in (payload.get("alert") or {}, payload.get("incident") or {}):
        found = (item.get("entities") or {}).get(kind)
        if isinstance(found, list):
            values.update(str(v).lower() for v in found if v is not None)
        elif found is not None:
            values.add(str(found).lower())
    return values


def trigger_matches(playbook: Playbook, payload: dict[str, Any]) -> bool:
    """Whether the event kind, level, tags, rule ids and entities of the payload meet the trigger."""
    trigger = playbook.trigger
    if payload.get("kind") not in trigger.events:
        return False
    if trigger.level is not None:
        rank = _level_rank(_level_of(payload))
        wanted = LEVELS.index(trigger.level)
        if rank is None or (rank != wanted if trigger.level_match == "exact" else rank < wanted):
            return False
    if trigger.tags:
        tags = _tags_of(payload)
        if not any(t.lower() in tags or t.lower().removeprefix("attack.") in tags for t in trigger.tags):
            return False
    if trigger.rule_ids and not set(trigger.rule_ids) & _rule_ids_of(payload):
        return False
    if trigger.entities:
        hit = any({v.lower() for v in values} & _entity_values(payload, kind) for kind, values in trigger.entities)
        if not hit:
            return False
    return True


def loop_guarded(playbook: Playbook, actor: str) -> bool:
    """True when an event made by ``actor`` must not start ``playbook`` (its own change, or another
    playbook's change it did not opt in to)."""
    if not actor.startswith(PLAYBOOK_ACTOR_PREFIX):
        return False
    if actor == PLAYBOOK_ACTOR_PREFIX + playbook.name:
        return True
    return not playbook.trigger.on_playbook_changes


def should_start(playbook: Playbook, payload: dict[str, Any]) -> bool:
    """Whether this payload starts this playbook: enabled, not loop-guarded, trigger and conditions met."""
    if not playbook.enabled or loop_guarded(playbook, str(payload.get("actor") or "")):
        return False
    if not trigger_matches(playbook, payload):
        return False
    return playbook.conditions is None or holds(playbook.conditions, payload)
