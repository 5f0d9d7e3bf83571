"""The store's tables: one per domain noun, every row scoped by connection.

CRM-sourced rows are keyed by (connection, CRM object, CRM id), so a sync can
be replayed and two connected CRMs never see each other's data. Links between
CRM rows use CRM ids (``lead_crm_id``), because the CRM sends them in any
order and a child may arrive before its parent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants 64-bit ids for history.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Connection(Base):
    """One connected Salesforce org or HubSpot portal."""

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    crm: Mapped[str] = mapped_column(String(20))
    instance_url: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(100))  # org id / portal id
    tokens: Mapped[str | None] = mapped_column(Text)  # Fernet-encrypted JSON
    status: Mapped[str] = mapped_column(String(20), default="active")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _connection_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("connection.id", ondelete="CASCADE"), index=True)


class CrmRowMixin:
    """Columns every CRM-sourced row shares; the natural key is unique per connection."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    crm_object: Mapped[str] = mapped_column(String(60))
    crm_id: Mapped[str] = mapped_column(String(80))
    crm_modified_at: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(CrmRowMixin, Base):
    __tablename__ = "account"
    __table_args__ = (UniqueConstraint("connection_id", "crm_object", "crm_id"),)

    connection_id: Mapped[int] = _connection_fk()
    name: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255))
    industry: Mapped[str | None] = mapped_column(String(80))
    employees: Mapped[int | None] = mapped_column(Integer)
    size_band: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(20))
    tier: Mapped[str | None] = mapped_column(String(10))
    owner_crm_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Lead(CrmRowMixin, Base):
    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_object", "crm_id"),
        Index("ix_lead_connection_crm_id", "connection_id", "crm_id"),
    )

    connection_id: Mapped[int] = _connection_fk()
    account_crm_id: Mapped[str | None] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(255))
    email_domain: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    title: Mapped[str | None] = mapped_column(String(255))
    seniority: Mapped[str | None] = mapped_column(String(30))
    company: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(60))
    source: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str | None] = mapped_column(String(80))
    owner_crm_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    converted_contact_crm_id: Mapped[str | None] = mapped_column(String(80))
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class CrmUser(CrmRowMixin, Base):
    """A rep or a queue: who a lead can be routed to."""

    __tablename__ = "crm_user"
    __table_args__ = (UniqueConstraint("connection_id", "crm_object", "crm_id"),)

    connection_id: Mapped[int] = _connection_fk()
    kind: Mapped[str] = mapped_column(String(10), default="user")
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Touch(CrmRowMixin, Base):
    """What sales did to a lead."""

    __tablename__ = "touch"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_object", "crm_id"),
        Index("ix_touch_lead", "connection_id", "lead_crm_id", "occurred_at"),
    )

    connection_id: Mapped[int] = _connection_fk()
    lead_crm_id: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(40))
    rep_crm_id: Mapped[str | None] = mapped_column(String(80))
    occurred_at: Mapped[datetime]
    experiment_arm: Mapped[str | None] = mapped_column(String(120))
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Engagement(CrmRowMixin, Base):
    """What the lead did that marketing automation saw (visits, forms, webinars)."""

    __tablename__ = "engagement"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_object", "crm_id"),
        Index("ix_engagement_lead", "connection_id", "lead_crm_id", "occurred_at"),
    )

    connection_id: Mapped[int] = _connection_fk()
    lead_crm_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime]


class Outcome(CrmRowMixin, Base):
    """What the lead did that counts: meeting booked, opportunity, won/lost, lost for good."""

    __tablename__ = "outcome"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_object", "crm_id"),
        Index("ix_outcome_lead", "connection_id", "lead_crm_id", "occurred_at"),
    )

    connection_id: Mapped[int] = _connection_fk()
    lead_crm_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime]
    value: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Experiment(Base):
    __tablename__ = "experiment"
    __table_args__ = (UniqueConstraint("connection_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    key: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(255))
    arms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # arm -> definition
    holdout_share: Mapped[float] = mapped_column(Float, default=0.2)
    unit: Mapped[str] = mapped_column(String(20), default="account")
    strata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    outcome: Mapped[str] = mapped_column(String(30), default="meeting_booked")
    window_days: Mapped[int] = mapped_column(Integer, default=21)
    guardrails: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]


class Assignment(Base):
    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("experiment_id", "unit_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str] = mapped_column(String(80))
    arm: Mapped[str] = mapped_column(String(60))
    stratum: Mapped[str | None] = mapped_column(String(120))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    override_detected_at: Mapped[datetime | None]


class ModelVersion(Base):
    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("connection_id", "kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    kind: Mapped[str] = mapped_column(String(20))  # propensity | uplift | rules
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    cutoff: Mapped[datetime]
    train_start: Mapped[datetime | None]
    train_end: Mapped[datetime | None]
    readiness: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    library_versions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)


class Score(Base):
    """Append-only score history; a lead's latest row is its current score."""

    __tablename__ = "score"
    __table_args__ = (Index("ix_score_lead", "connection_id", "lead_crm_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of its own: ix_score_lead leads with it (a scoring pass appends a row per
    # lead, and each index costs the append a sixth of its time).
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    lead_crm_id: Mapped[str] = mapped_column(String(80))
    crm_object: Mapped[str] = mapped_column(String(60))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="SET NULL"), index=True
    )
    propensity: Mapped[float] = mapped_column(Float)
    uplift: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    segment: Mapped[str | None] = mapped_column(String(30))
    bucket: Mapped[str | None] = mapped_column(String(30))
    action: Mapped[str | None] = mapped_column(String(60))
    queue: Mapped[str | None] = mapped_column(String(120))
    reasons: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A challenger that lost its backtest still scores, for comparison; never written back.
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)


class ScoreStage(Base):
    """One lead's model output in a scoring pass spread over workers: each chunk task
    stages its leads here; the pass's last task routes the whole pass (percentiles and
    queue capacity need every lead), appends the changed rows to ``score`` and clears
    the pass's stage rows."""

    __tablename__ = "score_stage"
    __table_args__ = (Index("ix_score_stage_pass", "pass_id", "shadow"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pass_id: Mapped[str] = mapped_column(String(40))
    connection_id: Mapped[int] = _connection_fk()
    chunk: Mapped[int] = mapped_column(Integer)
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_crm_id: Mapped[str] = mapped_column(String(80))
    crm_object: Mapped[str] = mapped_column(String(60))
    propensity: Mapped[float] = mapped_column(Float)
    probability_bucket: Mapped[str | None] = mapped_column(String(30))
    floor: Mapped[int] = mapped_column(Integer)
    cap: Mapped[int] = mapped_column(Integer)
    best_action: Mapped[str | None] = mapped_column(String(60))
    uplift_best: Mapped[float | None] = mapped_column(Float)
    segment: Mapped[str | None] = mapped_column(String(30))
    # Serialised JSON, finished by the last task: the uplift object, the reason items.
    uplift: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[str | None] = mapped_column(Text)
    guarded: Mapped[bool] = mapped_column(Boolean, default=False)


class Writeback(Base):
    """The last values pushed to a CRM record, so only changes are pushed again."""

    __tablename__ = "writeback"
    __table_args__ = (UniqueConstraint("connection_id", "crm_object", "crm_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    crm_object: Mapped[str] = mapped_column(String(60))
    crm_id: Mapped[str] = mapped_column(String(80))
    field_values: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pushed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class SyncCursor(Base):
    __tablename__ = "sync_cursor"
    __table_args__ = (UniqueConstraint("connection_id", "object"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    object: Mapped[str] = mapped_column(String(60))
    watermark: Mapped[datetime | None]
    watermark_id: Mapped[str | None] = mapped_column(String(80))
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class WebhookEvent(Base):
    """A verified CRM event, stored before it is acknowledged so none is lost while the
    workers are down; ``(source, event_id)`` is unique, which is what rejects replays.

    ``lead_crm_id`` is the record the event is about (when it names one): events for
    one lead are processed together, one re-pull, rescore and write-back per burst.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_webhook_event_pending", "connection_id", "lead_crm_id", "processed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str | None] = mapped_column(String(60))
    crm_object: Mapped[str | None] = mapped_column(String(60))
    lead_crm_id: Mapped[str | None] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    processed_at: Mapped[datetime | None]
    # What processing did (re-pulled, rescored, written) or why it did nothing.
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class TriggerEvent(Base):
    """Why a scheduled or event-driven job ran (or was judged unnecessary): a
    recalibration because AUC fell, a rescore because webhooks arrived. The log that
    answers "why did the model change on Tuesday?"."""

    __tablename__ = "trigger_event"
    __table_args__ = (Index("ix_trigger_event_conn", "connection_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    job: Mapped[str] = mapped_column(String(40))
    fired: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineRun(Base):
    """One run of a pipeline step, for `leadlift status` and the admin UI."""

    __tablename__ = "pipeline_run"
    __table_args__ = (Index("ix_pipeline_run_step", "connection_id", "step", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    step: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class InstalledComponent(Base):
    """Something leadlift created in a CRM (a field, a permission set…), so that an
    uninstall removes exactly what leadlift created and nothing else."""

    __tablename__ = "installed_component"
    __table_args__ = (Index("ix_installed_component_conn", "connection_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    crm_id: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiUsage(Base):
    """API calls leadlift made per connection and hour: its share of the CRM's daily limit."""

    __tablename__ = "api_usage"
    __table_args__ = (UniqueConstraint("connection_id", "hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    hour: Mapped[datetime]
    calls: Mapped[int] = mapped_column(Integer, default=0)


class GuardrailEvent(Base):
    """A guardrail's decision in an experiment, kept so every unit that was not randomized
    (forced to treatment) and every paused arm can be explained and left out of a readout.

    ``unit_id`` is empty for arm-level decisions (an auto-pause); ``details`` holds the
    numbers behind a decision (the z and p of an auto-pause).
    """

    __tablename__ = "guardrail_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = _connection_fk()
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str | None] = mapped_column(String(80))
    lead_crm_id: Mapped[str | None] = mapped_column(String(80))
    rule: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
