"""SQLAlchemy tables of the threat-intelligence store (SQLite embedded, PostgreSQL scaled out).

Timestamps are kept as fixed-width UTC text (``2024-01-31T12:00:00.000000Z``) so that text order is
time order on every database, and STIX objects are kept whole as JSON text next to the columns the
TAXII filters and the matcher need.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class IntelBase(DeclarativeBase):
    """Declarative base of the intel tables, separate from the other rooms' tables."""


class CollectionRow(IntelBase):
    """A TAXII collection under an API root."""

    __tablename__ = "intel_collections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_root: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    alias: Mapped[str | None] = mapped_column(String(100), nullable=True)
    default_tlp: Mapped[int] = mapped_column(Integer, default=1)
    outgoing: Mapped[bool] = mapped_column(Boolean, default=False)


class ObjectRow(IntelBase):
    """One version of one STIX object in one collection."""

    __tablename__ = "intel_objects"
    __table_args__ = (
        UniqueConstraint("collection_id", "object_id", "version", name="uq_intel_object_version"),
        Index("ix_intel_objects_coll_seq", "collection_id", "seq"),
        Index("ix_intel_objects_coll_obj", "collection_id", "object_id"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("intel_collections.id", ondelete="CASCADE"))
    object_id: Mapped[str] = mapped_column(String(120))
    object_type: Mapped[str] = mapped_column(String(64), index=True)
    spec_version: Mapped[str] = mapped_column(String(8))
    version: Mapped[str] = mapped_column(String(32))
    date_added: Mapped[str] = mapped_column(String(32), index=True)
    tlp: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)


class IndicatorRow(IntelBase):
    """The latest version of each indicator, across collections: what the IOC matcher loads."""

    __tablename__ = "intel_indicators"

    object_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text, default="")
    pattern: Mapped[str] = mapped_column(Text)
    pattern_type: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[str] = mapped_column(String(32))
    valid_until: Mapped[str | None] = mapped_column(String(32), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[int] = mapped_column(Integer, default=50)
    tlp: Mapped[int] = mapped_column(Integer)
    sources: Mapped[str] = mapped_column(Text, default="")
    date_added: Mapped[str] = mapped_column(String(32), index=True)


class StatusRow(IntelBase):
    """A TAXII status resource: the outcome of one POST of objects."""

    __tablename__ = "intel_status"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_root: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16))
    request_timestamp: Mapped[str] = mapped_column(String(32))
    total_count: Mapped[int] = mapped_column(Integer)
    success_count: Mapped[int] = mapped_column(Integer)
    failure_count: Mapped[int] = mapped_column(Integer)
    pending_count: Mapped[int] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text)


class FeedStateRow(IntelBase):
    """Where an incremental feed left off (TAXII added_after, file digest) and what it last did."""

    __tablename__ = "intel_feed_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text, default="")
    last_run: Mapped[str] = mapped_column(String(32), default="")
    last_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class ShareRow(IntelBase):
    """An outgoing share: a bundle prepared for partners, reviewed, then published."""

    __tablename__ = "intel_shares"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    collection_id: Mapped[str] = mapped_column(String(64))
    tlp: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(Text, default="")
    bundle: Mapped[str] = mapped_column(Text)


class RedactionAuditRow(IntelBase):
    """One redaction made before a share leaves: what kind, where, and what replaced it."""

    __tablename__ = "intel_redaction_audit"
    __table_args__ = (Index("ix_intel_redaction_share", "share_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    share_id: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(120))
    field: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    preview: Mapped[str] = mapped_column(Text)
    replacement: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float, default=1.0)
