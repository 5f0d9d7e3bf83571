"""Webhook events name their lead and outcome; trigger events log why jobs ran.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("crm_object", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("lead_crm_id", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("outcome", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.create_index(
            "ix_webhook_event_pending",
            ["connection_id", "lead_crm_id", "processed_at"],
            unique=False,
        )
    op.create_table(
        "trigger_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_trigger_event_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_event")),
    )
    with op.batch_alter_table("trigger_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trigger_event_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index("ix_trigger_event_conn", ["connection_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trigger_event", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_event_conn")
        batch_op.drop_index(batch_op.f("ix_trigger_event_connection_id"))
    op.drop_table("trigger_event")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_event_pending")
        batch_op.drop_column("outcome")
        batch_op.drop_column("lead_crm_id")
        batch_op.drop_column("crm_object")
        batch_op.drop_column("kind")
