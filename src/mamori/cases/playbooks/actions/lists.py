"""The watchlist and the blocklist: entities (ip, host, user, domain, hash, ...) analysts and playbooks
put on them, with why and who. Other parts of the SOC (and firewalls, through the REST API) read them.

Also the ``add_to_list`` action: ``list: blocklist``, ``entity_kind: ip``, ``value: "{{ alert.entities.ip }}"``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mamori.cases.playbooks.actions.base import ActionContext, ActionFailed, ActionType
from mamori.cases.playbooks.records import LIST_KINDS, ListEntry
from mamori.errors import MamoriError

ENTITY_KINDS = ("ip", "host", "user", "domain", "url", "file_hash", "process", "email")


def entry_dict(entry: ListEntry) -> dict[str, Any]:
    """A list entry as the API shows it."""
    return {"id": entry.id, "list": entry.list_kind, "entity_kind": entry.entity_kind, "value": entry.value,
            "reason": entry.reason, "added_by": entry.added_by, "added_at": entry.added_at.isoformat(),
            "run_id": entry.run_id}


def _checked(kind: str, entity_kind: str, value: str) -> str:
    if kind not in LIST_KINDS:
        raise MamoriError(f"unknown list {kind!r}", where="list", hint=f"lists: {', '.join(LIST_KINDS)}")
    if entity_kind not in ENTITY_KINDS:
        raise MamoriError(f"unknown entity kind {entity_kind!r}", where="entity_kind",
                          hint=f"kinds: {', '.join(ENTITY_KINDS)}")
    value = value.strip()
    if not value or len(value) > 1000:
        raise MamoriError("the value is empty or longer than 1000 characters", where="value")
    return value


def add_entry(session: Session, kind: str, entity_kind: str, value: str, actor: str, reason: str = "",
              run_id: int | None = None) -> tuple[ListEntry, bool]:
    """Put an entity on a list (in the caller's transaction); return the entry and whether it is new
    (adding an entity already listed keeps the first entry)."""
    value = _checked(kind, entity_kind, value)
    existing = session.scalars(select(ListEntry).where(
        ListEntry.list_kind == kind, ListEntry.entity_kind == entity_kind, ListEntry.value == value)).first()
    if existing is not None:
        return existing, False
    entry = ListEntry(list_kind=kind, entity_kind=entity_kind, value=value, reason=reason, added_by=actor,
                      run_id=run_id)
    session.add(entry)
    session.flush()
    return entry, True


def remove_entry(session: Session, kind: str, entry_id: int) -> bool:
    """Take an entry off a list; False when the list has no such entry."""
    entry = session.get(ListEntry, entry_id)
    if entry is None or entry.list_kind != kind:
        return False
    session.delete(entry)
    return True


def entry_rows(session: Session, kind: str, entity_kind: str | None = None) -> list[ListEntry]:
    """The entries of a list, newest first (optionally one entity kind)."""
    if kind not in LIST_KINDS:
        raise MamoriError(f"unknown list {kind!r}", where="list", hint=f"lists: {', '.join(LIST_KINDS)}")
    query = select(ListEntry).where(ListEntry.list_kind == kind)
    if entity_kind:
        query = query.where(ListEntry.entity_kind == entity_kind)
    return list(session.scalars(query.order_by(ListEntry.id.desc())))


def list_entries(session: Session, kind: str, entity_kind: str | None = None) -> list[dict[str, Any]]:
    """The entries of a list as dictionaries, newest first (what the console and the API show)."""
    return [entry_dict(entry) for entry in entry_rows(session, kind, entity_kind)]


def _check(params: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if params.get("list") not in LIST_KINDS:
        problems.append(("list", f"use one of {', '.join(LIST_KINDS)}"))
    if params.get("entity_kind") not in ENTITY_KINDS:
        problems.append(("entity_kind", f"use one of {', '.join(ENTITY_KINDS)}"))
    return problems


def run(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Add the rendered value to the list; an empty value (the event had no such entity) fails."""
    value = str(params.get("value", "")).strip()
    if not value or value == "None":
        raise ActionFailed("the value rendered empty: the event has no such entity", retryable=False)
    try:
        with context.sessions.begin() as session:
            entry, new = add_entry(session, str(params["list"]), str(params["entity_kind"]), value,
                                   context.actor, str(params.get("reason", "")), context.run_id)
            return {"entry": entry_dict(entry), "new": new}
    except MamoriError as exc:
        raise ActionFailed(str(exc), retryable=False) from exc


ACTION = ActionType(
    name="add_to_list", run=run, required=("list", "entity_kind", "value"), optional=("reason",), check=_check,
    description="put an entity on the watchlist or the blocklist",
)
