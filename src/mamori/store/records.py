"""The records of the SOC in SQLAlchemy 2 models: users and API tokens, alerts, rule settings,
quarantined inputs, service state and the audit log.

``Base`` is the one declarative base every room's tables use (cases adds incidents on it, with its
own Alembic migrations: see ``mamori.store.db.migrate``). Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """The declarative base of every Mamori table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON, list[str]: JSON}


INGEST_ROLE = "ingest"  # log shippers, who may only send events
ROLES = ("admin", "analyst", "viewer", INGEST_ROLE)
ALERT_STATUSES = ("new", "acknowledged", "closed")


class User(Base):
    """A person or machine that holds API tokens; the role bounds what its tokens may do."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API token: only its SHA-256 is stored; ``prefix`` (first characters) lets people tell them apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)  # None: until revoked


class Alert(Base):
    """A rule that fired: the rule, when, the entities involved, the matched events and an explanation.

    Detections of one rule for the same entities within the throttle window add to one alert
    (``count`` and ``event_uids``) instead of making new ones; ``dedup_key`` names that group.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_dedup_open", "dedup_key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    rule_title: Mapped[str] = mapped_column(String(500))
    level: Mapped[str] = mapped_column(String(20), index=True)
    author: Mapped[str] = mapped_column(String(500), default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    first_seen: Mapped[datetime] = mapped_column(index=True)
    last_seen: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    host: Mapped[str | None] = mapped_column(String(500), default=None, index=True)
    user: Mapped[str | None] = mapped_column(String(500), default=None)
    ip: Mapped[str | None] = mapped_column(String(100), default=None)
    process: Mapped[str | None] = mapped_column(Text, default=None)
    file_hash: Mapped[str | None] = mapped_column(Text, default=None)
    event_uids: Mapped[list[str]] = mapped_column(default=list)
    explanation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    assignee: Mapped[str | None] = mapped_column(String(200), default=None)
    dedup_key: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=1)
    latency_ms: Mapped[float | None] = mapped_column(default=None)  # ingest to alert, first detection


class RuleSetting(Base):
    """A rule switched on or off at run time (no restart)."""

    __tablename__ = "rule_settings"

    rule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class QuarantineRecord(Base):
    """An input the service could not use, with where it came from and why; kept for a person to see."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    input: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text, default="")


class ServiceState(Base):
    """Small named values the pipeline commits with its batches: the spool checkpoint, correlation windows."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEntry(Base):
    """One change made through the API or the CLI: who, what, on which object."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
