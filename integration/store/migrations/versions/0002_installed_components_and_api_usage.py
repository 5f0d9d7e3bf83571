"""Installed CRM components, hourly API usage, and the contact a lead converted into.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("converted_contact_crm_id", sa.String(length=80)))
    op.create_table(
        "api_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_api_usage_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage")),
        sa.UniqueConstraint("connection_id", "hour", name=op.f("uq_api_usage_connection_id_hour")),
    )
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_usage_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "installed_component",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_installed_component_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installed_component")),
    )
    with op.batch_alter_table("installed_component", schema=None) as batch_op:
        batch_op.create_index("ix_installed_component_conn", ["connection_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_installed_component_connection_id"), ["connection_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_column("converted_contact_crm_id")
    with op.batch_alter_table("installed_component", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_installed_component_connection_id"))
        batch_op.drop_index("ix_installed_component_conn")

    op.drop_table("installed_component")
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_usage_connection_id"))

    op.drop_table("api_usage")
