"""The playbook room's tables: runs, their actions (with approvals and attempts) and the watch/block lists.

A ``PlaybookRun`` is one playbook started by one case event; it keeps the event payload it started
from, so a run can be resumed after a restart (state lives here, not in memory). Each ``ActionRun``
keeps its rendered input, output, error, attempts, timings and the approval decision. ``ListEntry``
rows are the watchlist and the blocklist (entity kind and value) that playbooks and analysts fill.

The room's Alembic versions folder is listed in ``mamori.store.db.MIGRATION_LOCATIONS`` (so every
``migrate`` knows it, whatever was imported); importing this module adds it too if it is missing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mamori.store import db
from mamori.store.records import Base, utcnow

MIGRATIONS = str(Path(__file__).parent / "migrations" / "versions")
if MIGRATIONS not in db.MIGRATION_LOCATIONS:
    db.MIGRATION_LOCATIONS.append(MIGRATIONS)

RUN_STATES = ("running", "waiting", "succeeded", "failed", "rejected")
ACTION_STATES = ("pending", "waiting_approval", "retrying", "succeeded", "failed", "rejected", "skipped")
APPROVAL_STATES = ("none", "pending", "approved", "rejected")
LIST_KINDS = ("watchlist", "blocklist")


class PlaybookRun(Base):
    """One playbook run: which playbook, the event that started it, where it stands."""

    __tablename__ = "playbook_runs"
    __table_args__ = (Index("ix_playbook_runs_status_resume", "status", "resume_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    playbook: Mapped[str] = mapped_column(String(200), index=True)
    playbook_file: Mapped[str] = mapped_column(String(1000), default="")
    playbook_sha256: Mapped[str] = mapped_column(String(64), default="")
    event_kind: Mapped[str] = mapped_column(String(40))
    event_actor: Mapped[str] = mapped_column(String(200), default="system")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the CaseEvent as JSON: the run's input
    incident_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    alert_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    resume_at: Mapped[datetime | None] = mapped_column(default=None)  # waiting for a retry back-off
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ActionRun(Base):
    """One action of a run: its rendered input, output and error, attempts, timings and approval."""

    __tablename__ = "playbook_action_runs"
    __table_args__ = (UniqueConstraint("run_id", "position", name="uq_action_run_position"),
                      Index("ix_action_runs_approval", "approval"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    approval: Mapped[str] = mapped_column(String(20), default="none")
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    rendered_input: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_log: Mapped[list[Any]] = mapped_column(JSON, default=list)  # per attempt: start, seconds, error
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_ms: Mapped[float | None] = mapped_column(default=None)


class ListEntry(Base):
    """An entity on the watchlist or the blocklist: kind (ip, host, user, ...), value, why and who."""

    __tablename__ = "playbook_list_entries"
    __table_args__ = (UniqueConstraint("list_kind", "entity_kind", "value", name="uq_list_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_kind: Mapped[str] = mapped_column(String(20), index=True)
    entity_kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(1000))
    reason: Mapped[str] = mapped_column(Text, default="")
    added_by: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[int | None] = mapped_column(Integer, default=None)
