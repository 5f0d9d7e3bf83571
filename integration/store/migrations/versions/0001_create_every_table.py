"""Create every table of the store.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("instance_url", sa.String(length=500), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("tokens", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection")),
        sa.UniqueConstraint("name", name=op.f("uq_connection_name")),
    )
    op.create_table(
        "account",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("industry", sa.String(length=80), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("size_band", sa.String(length=20), nullable=True),
        sa.Column("region", sa.String(length=20), nullable=True),
        sa.Column("tier", sa.String(length=10), nullable=True),
        sa.Column("owner_crm_id", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_account_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_account_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "crm_user",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_crm_user_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_user")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_crm_user_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("crm_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_crm_user_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "engagement",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_engagement_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_engagement_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("engagement", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_engagement_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(
            "ix_engagement_lead", ["connection_id", "lead_crm_id", "occurred_at"], unique=False
        )

    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "arms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("holdout_share", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column(
            "strata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "eligibility",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column(
            "guardrails",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_experiment_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment")),
        sa.UniqueConstraint("connection_id", "key", name=op.f("uq_experiment_connection_id_key")),
    )
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "lead",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("account_crm_id", sa.String(length=80), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("email_domain", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=120), nullable=True),
        sa.Column("last_name", sa.String(length=120), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("seniority", sa.String(length=30), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=60), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=80), nullable=True),
        sa.Column("owner_crm_id", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_lead_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_lead_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lead_connection_crm_id", ["connection_id", "crm_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_lead_connection_id"), ["connection_id"], unique=False)

    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("train_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("train_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "readiness",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "features",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "library_versions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_model_version_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint(
            "connection_id",
            "kind",
            "version",
            name=op.f("uq_model_version_connection_id_kind_version"),
        ),
    )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_version_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "outcome",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_outcome_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_outcome_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outcome_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(
            "ix_outcome_lead", ["connection_id", "lead_crm_id", "occurred_at"], unique=False
        )

    op.create_table(
        "pipeline_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_pipeline_run_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_run")),
    )
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_run_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index("ix_pipeline_run_step", ["connection_id", "step", "id"], unique=False)

    op.create_table(
        "sync_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=60), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watermark_id", sa.String(length=80), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column(
            "last_stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_sync_cursor_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_cursor")),
        sa.UniqueConstraint(
            "connection_id", "object", name=op.f("uq_sync_cursor_connection_id_object")
        ),
    )
    with op.batch_alter_table("sync_cursor", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_cursor_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "touch",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("rep_crm_id", sa.String(length=80), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("experiment_arm", sa.String(length=120), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_touch_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touch")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_touch_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("touch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_touch_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(
            "ix_touch_lead", ["connection_id", "lead_crm_id", "occurred_at"], unique=False
        )

    op.create_table(
        "webhook_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_webhook_event_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_event")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_webhook_event_source_event_id")),
    )
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_event_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "writeback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("crm_id", sa.String(length=80), nullable=False),
        sa.Column(
            "field_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("values_hash", sa.String(length=64), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_writeback_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback")),
        sa.UniqueConstraint(
            "connection_id",
            "crm_object",
            "crm_id",
            name=op.f("uq_writeback_connection_id_crm_object_crm_id"),
        ),
    )
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_writeback_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "assignment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=80), nullable=False),
        sa.Column("arm", sa.String(length=60), nullable=False),
        sa.Column("stratum", sa.String(length=120), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("override_detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_assignment_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_assignment_experiment_id_experiment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment")),
        sa.UniqueConstraint(
            "experiment_id", "unit_id", name=op.f("uq_assignment_experiment_id_unit_id")
        ),
    )
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assignment_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assignment_experiment_id"), ["experiment_id"], unique=False
        )

    op.create_table(
        "score",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("lead_crm_id", sa.String(length=80), nullable=False),
        sa.Column("crm_object", sa.String(length=60), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column(
            "uplift",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("segment", sa.String(length=30), nullable=True),
        sa.Column("bucket", sa.String(length=30), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=True),
        sa.Column("queue", sa.String(length=120), nullable=True),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_score_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_score_model_version_id_model_version"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score")),
    )
    with op.batch_alter_table("score", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_score_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index("ix_score_lead", ["connection_id", "lead_crm_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_score_model_version_id"), ["model_version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_model_version_id"))
        batch_op.drop_index("ix_score_lead")
        batch_op.drop_index(batch_op.f("ix_score_connection_id"))

    op.drop_table("score")
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignment_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_assignment_connection_id"))

    op.drop_table("assignment")
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_writeback_connection_id"))

    op.drop_table("writeback")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_event_connection_id"))

    op.drop_table("webhook_event")
    with op.batch_alter_table("touch", schema=None) as batch_op:
        batch_op.drop_index("ix_touch_lead")
        batch_op.drop_index(batch_op.f("ix_touch_connection_id"))

    op.drop_table("touch")
    with op.batch_alter_table("sync_cursor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_cursor_connection_id"))

    op.drop_table("sync_cursor")
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_run_step")
        batch_op.drop_index(batch_op.f("ix_pipeline_run_connection_id"))

    op.drop_table("pipeline_run")
    with op.batch_alter_table("outcome", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_lead")
        batch_op.drop_index(batch_op.f("ix_outcome_connection_id"))

    op.drop_table("outcome")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_version_connection_id"))

    op.drop_table("model_version")
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_connection_id"))
        batch_op.drop_index("ix_lead_connection_crm_id")

    op.drop_table("lead")
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_connection_id"))

    op.drop_table("experiment")
    with op.batch_alter_table("engagement", schema=None) as batch_op:
        batch_op.drop_index("ix_engagement_lead")
        batch_op.drop_index(batch_op.f("ix_engagement_connection_id"))

    op.drop_table("engagement")
    with op.batch_alter_table("crm_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_user_connection_id"))

    op.drop_table("crm_user")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_connection_id"))

    op.drop_table("account")
    op.drop_table("connection")
