"""The incident records: incidents, the alerts they group, notes, evidence files and the change trail.

Tables live on the shared ``Base`` with their own Alembic branch (``cases``, see
``mamori/cases/migrations/versions``). An alert belongs to at most one incident (``IncidentAlert``
has a unique ``alert_id``). Every change to an incident is an ``IncidentChange`` row: who, when,
which field, the old and new values and the reason given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mamori.store.records import Base, utcnow


class Incident(Base):
    """Alerts that belong together (shared entities within a time window), with their workflow state.

    ``entities`` maps an entity kind (host, user, ip, process_tree, file_hash) to the values seen in
    its alerts; ``severity_basis`` says in words why the severity is what it is; ``severity_pinned`` is
    set once a person chose the severity, so new alerts no longer change it.
    """

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_last_seen", "status", "last_seen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(20), index=True)
    severity_basis: Mapped[str] = mapped_column(Text, default="")
    severity_pinned: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    entities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tactics: Mapped[list[str]] = mapped_column(default=list)
    techniques: Mapped[list[str]] = mapped_column(default=list)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    merged_into: Mapped[int | None] = mapped_column(Integer, default=None)
    # the cases room's own texts as messages (``mamori.cases.messages``), by column: severity_basis, status_reason
    messages: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class IncidentAlert(Base):
    """An alert grouped into an incident, and which shared entity brought it in."""

    __tablename__ = "incident_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), unique=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    link_reason: Mapped[str] = mapped_column(Text, default="")


class IncidentNote(Base):
    """A note an analyst (or a playbook) wrote on an incident."""

    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


class IncidentEvidence(Base):
    """A file attached to an incident: its name as uploaded, SHA-256, size and where it is stored.

    ``stored_path`` is relative to the data folder (``evidence/<sha256>``), derived from the content,
    never from the uploaded name.
    """

    __tablename__ = "incident_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    stored_path: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class IncidentChange(Base):
    """One change to an incident (the audit trail): who, when, which field, old and new value, why."""

    __tablename__ = "incident_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(50))
    old_value: Mapped[str | None] = mapped_column(Text, default=None)
    new_value: Mapped[str | None] = mapped_column(Text, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    # the cases room's own texts as messages (``mamori.cases.messages``), by column: reason, new_value
    messages: Mapped[dict[str, Any] | None] = mapped_column(default=None)


__all__ = ["Incident", "IncidentAlert", "IncidentChange", "IncidentEvidence", "IncidentNote"]
