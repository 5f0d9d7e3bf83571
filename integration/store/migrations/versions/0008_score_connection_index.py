"""The score history's connection is looked up through ix_score_lead, which leads with it;
its own index only slowed every append.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain DROP INDEX: a batch operation would copy the whole history on SQLite.
    op.drop_index("ix_score_connection_id", table_name="score")


def downgrade() -> None:
    op.create_index("ix_score_connection_id", "score", ["connection_id"], unique=False)
