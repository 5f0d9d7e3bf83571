"""Score stage: chunk results of a scoring pass spread over workers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_stage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pass_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("probability_bucket", sa.String(length=30), nullable=True),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=False),
        sa.Column("best_action", sa.String(length=60), nullable=True),
        sa.Column("uplift_best", sa.Float(), nullable=True),
        sa.Column("segment", sa.String(length=30), nullable=True),
        sa.Column("uplift", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("guarded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_score_stage_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_stage")),
    )
    with op.batch_alter_table("score_stage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_score_stage_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index("ix_score_stage_pass", ["pass_id", "shadow"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("score_stage", schema=None) as batch_op:
        batch_op.drop_index("ix_score_stage_pass")
        batch_op.drop_index(batch_op.f("ix_score_stage_connection_id"))
    op.drop_table("score_stage")
