"""Guardrail events: why an experiment unit was forced to treatment, or an arm paused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guardrail_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=80), nullable=True),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=True),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_guardrail_event_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_guardrail_event_experiment_id_experiment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrail_event")),
    )
    with op.batch_alter_table("guardrail_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guardrail_event_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_guardrail_event_experiment_id"), ["experiment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("guardrail_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardrail_event_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_guardrail_event_connection_id"))

    op.drop_table("guardrail_event")
