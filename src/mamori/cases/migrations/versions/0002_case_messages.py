"""cases: the cases room's own texts as messages (code and parameters) beside their English words

Revision ID: 0002_case_messages
Revises: 0001_cases
Create Date: 2026-11-29 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_case_messages"
down_revision = "0001_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    for table in ("incidents", "incident_changes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("messages", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    for table in ("incident_changes", "incidents"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("messages")
