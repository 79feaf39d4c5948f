"""playbooks: runs, action runs (approvals, attempts) and the watch/block lists

Revision ID: 0001_playbooks
Revises: (none)
Create Date: 2026-11-29 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_playbooks"
down_revision = None
branch_labels = ("playbooks",)
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "playbook_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("playbook", sa.String(length=200), nullable=False),
        sa.Column("playbook_file", sa.String(length=1000), nullable=False),
        sa.Column("playbook_sha256", sa.String(length=64), nullable=False),
        sa.Column("event_kind", sa.String(length=40), nullable=False),
        sa.Column("event_actor", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("resume_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("playbook_runs", schema=None) as batch_op:
        batch_op.create_index("ix_playbook_runs_status_resume", ["status", "resume_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_playbook_runs_playbook"), ["playbook"], unique=False)
        batch_op.create_index(batch_op.f("ix_playbook_runs_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_playbook_runs_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_playbook_runs_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_playbook_runs_created_at"), ["created_at"], unique=False)

    op.create_table(
        "playbook_action_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("approval", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("rendered_input", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "position", name="uq_action_run_position"),
    )
    with op.batch_alter_table("playbook_action_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_playbook_action_runs_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_action_runs_approval", ["approval"], unique=False)

    op.create_table(
        "playbook_list_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_kind", sa.String(length=20), nullable=False),
        sa.Column("entity_kind", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=1000), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_kind", "entity_kind", "value", name="uq_list_entry"),
    )
    with op.batch_alter_table("playbook_list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_playbook_list_entries_list_kind"), ["list_kind"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("playbook_list_entries")
    op.drop_table("playbook_action_runs")
    op.drop_table("playbook_runs")
