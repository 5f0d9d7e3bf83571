"""Store queries behind the admin UI and ``/metrics``: connection health, field installs,
data readiness, queue volumes, recent events and the operational figures scraped by
Prometheus. The web layer formats what these return; it does not query the store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from connectors.base import InstallReport
from connectors.budget import ApiBudget
from integration.config import Settings
from integration.connections import build_connector
from integration.features import load_frames
from integration.fields import BUCKETS, written_fields
from integration.modeling import assess
from integration.modeling.readiness import latest_unmapped
from integration.pipeline import install_configured_fields, tracked
from integration.scoring import newest_score_ids
from integration.status import connection_status
from integration.store import Store
from integration.store.models import (
    Connection,
    PipelineRun,
    Score,
    SyncCursor,
    TriggerEvent,
    WebhookEvent,
    Writeback,
)
from integration.usage import calls_last_day

RECENT = 50
RUNS_SHOWN = 10
# Write-back rows in these states hold a record the CRM refused (retried next cycle).
FAILED_WRITEBACK = ("error", "failed")
# Latency is measured on recent events only, and on at most this many, so a scrape stays
# cheap however long the event history grows.
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_SAMPLE = 10_000


@dataclass(frozen=True)
class SyncLag:
    """How far behind one object's sync is: since its last successful run finished, and
    since the newest change it has seen (the cursor's watermark)."""

    connection_id: int
    object: str
    status: str | None
    finished_at: datetime | None
    watermark: datetime | None
    lag_seconds: float | None
    watermark_age_seconds: float | None


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def sync_lags(session, now: datetime) -> list[SyncLag]:
    cursors = session.scalars(select(SyncCursor).order_by(SyncCursor.connection_id, SyncCursor.id))
    return [
        SyncLag(
            c.connection_id,
            c.object,
            c.last_status,
            c.last_finished_at,
            c.watermark,
            _age(now, c.last_finished_at),
            _age(now, c.watermark),
        )
        for c in cursors
    ]


def leadlift_api_cap(settings: Settings, connection: Connection) -> int | None:
    """leadlift's own daily share of the org's API limit (Salesforce spends only a share)."""
    reported = (connection.settings or {}).get("crm_api_usage") or {}
    if connection.crm != "salesforce" or reported.get("limit") is None:
        return None
    return ApiBudget(share=settings.salesforce_api_share, org_limit=reported["limit"]).cap


def connection_health(store: Store, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """What `leadlift status` shows per connection, plus sync lag, leadlift's API cap and
    the latest pipeline runs with their errors."""
    with store.session() as session:
        connections = list(session.scalars(select(Connection).order_by(Connection.id)))
        lags: dict[tuple[int, str], SyncLag] = {
            (lag.connection_id, lag.object): lag for lag in sync_lags(session, now)
        }
        out = []
        for connection in connections:
            data = connection_status(session, connection)
            for entry in data["sync"]:
                entry["lag_seconds"] = lags[connection.id, entry["object"]].lag_seconds
            data["api"]["leadlift_cap"] = leadlift_api_cap(settings, connection)
            data["runs"] = list(
                session.scalars(
                    select(PipelineRun)
                    .where(PipelineRun.connection_id == connection.id)
                    .order_by(PipelineRun.id.desc())
                    .limit(RUNS_SHOWN)
                )
            )
            out.append(data)
    return out


def install_written_fields(
    store: Store, settings: Settings, connection: Connection, dry_run: bool
) -> InstallReport:
    """Preview (``dry_run``) or install the fields a cycle writes."""
    connector = build_connector(store, settings, connection)
    with tracked(store, connection, connector):
        return install_configured_fields(
            store, settings, connection, connector, written_fields(settings), dry_run
        )


def readiness_report(store: Store, connection_id: int, now: datetime) -> dict[str, Any]:
    """The data-readiness checklist `leadlift readiness` prints, with the hygiene report."""
    frames = load_frames(store, connection_id)
    report = assess(frames, now, unmapped=latest_unmapped(store, connection_id))
    return report.as_dict() | {"hygiene": frames.hygiene.as_dict() if frames.hygiene else None}


@dataclass(frozen=True)
class QueueVolumes:
    """Leads per queue and score bucket, by each lead's current (non-shadow) score."""

    buckets: list[str]
    rows: list[dict[str, Any]]  # {"queue", "counts": {bucket: n}, "total"}

    @property
    def total(self) -> int:
        return sum(row["total"] for row in self.rows)


def queue_volumes(store: Store, connection_id: int) -> QueueVolumes:
    newest = newest_score_ids(connection_id)
    with store.session() as session:
        counted = session.execute(
            select(Score.queue, Score.bucket, func.count())
            .join(newest, Score.id == newest.c.id)
            .group_by(Score.queue, Score.bucket)
        ).all()
    by_queue: dict[str | None, dict[str, int]] = defaultdict(dict)
    for queue, bucket, n in counted:
        by_queue[queue][bucket or "none"] = n
    seen = {bucket for counts in by_queue.values() for bucket in counts}
    buckets = [b for b in BUCKETS if b in seen] + sorted(seen - set(BUCKETS))
    rows = [
        {"queue": queue, "counts": counts, "total": sum(counts.values())}
        for queue, counts in by_queue.items()
    ]
    rows.sort(key=lambda r: (-r["total"], r["queue"] or ""))
    return QueueVolumes(buckets, rows)


def connection_names(session) -> dict[int, str]:
    return dict(session.execute(select(Connection.id, Connection.name)).all())


def recent_webhook_events(store: Store, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest webhook events, without their payloads."""
    with store.session() as session:
        names = connection_names(session)
        rows = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit))
        return [
            {
                "connection": names.get(r.connection_id, ""),
                "source": r.source,
                "event_id": r.event_id,
                "kind": r.kind,
                "crm_object": r.crm_object,
                "lead": r.lead_crm_id,
                "received_at": r.received_at,
                "processed_at": r.processed_at,
                "outcome": r.outcome or {},
                "error": r.error,
            }
            for r in rows
        ]


def writeback_failures(store: Store, limit: int = RECENT) -> list[dict[str, Any]]:
    """Records the CRM refused at their last push, newest attempt first."""
    with store.session() as session:
        names = connection_names(session)
        rows = session.scalars(
            select(Writeback)
            .where(Writeback.status.in_(FAILED_WRITEBACK))
            .order_by(Writeback.id.desc())
            .limit(limit)
        )
        return [
            {
                "connection": names.get(r.connection_id, ""),
                "crm_object": r.crm_object,
                "crm_id": r.crm_id,
                "status": r.status,
                "error": r.error,
                "attempts": r.attempts,
                "pushed_at": r.pushed_at,
            }
            for r in rows
        ]


def recent_triggers(store: Store, limit: int = RECENT) -> list[dict[str, Any]]:
    with store.session() as session:
        names = connection_names(session)
        rows = session.scalars(select(TriggerEvent).order_by(TriggerEvent.id.desc()).limit(limit))
        return [
            {
                "connection": names.get(r.connection_id, ""),
                "job": r.job,
                "fired": r.fired,
                "reason": r.reason,
                "at": r.at,
            }
            for r in rows
        ]


@dataclass
class OperationalFigures:
    """Everything `/metrics` exposes, read from the store in one go at scrape time, so
    every web worker reports the same figures whichever process did the work."""

    connections: dict[int, str] = field(default_factory=dict)
    sync: list[SyncLag] = field(default_factory=list)
    # connection id → (leadlift's calls in 24 h, its daily cap, CRM-reported used and limit)
    api: dict[int, tuple[int, int | None, int | None, int | None]] = field(default_factory=dict)
    # (connection id, source, state) → events; state is processed, pending or failed
    webhooks: dict[tuple[int | None, str, str], int] = field(default_factory=dict)
    # connection id → seconds from receipt to processing, for events received recently
    # and processed without an error
    webhook_latency: dict[int | None, list[float]] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=dict)
    writeback_failed: dict[int, int] = field(default_factory=dict)
    # (connection id, step, status) → runs
    runs: dict[tuple[int, str, str], int] = field(default_factory=dict)
    # (connection id, job, fired) → trigger events
    triggers: dict[tuple[int, str, bool], int] = field(default_factory=dict)


def _grouped(session, *columns, where=()) -> dict[Any, int]:
    """Row counts per distinct value of ``columns`` (a tuple key for several)."""
    statement = select(*columns, func.count()).group_by(*columns)
    for condition in where:
        statement = statement.where(condition)
    rows = session.execute(statement).all()
    return {tuple(r[:-1]) if len(columns) > 1 else r[0]: r[-1] for r in rows}


def operational_figures(store: Store, settings: Settings, now: datetime) -> OperationalFigures:
    figures = OperationalFigures()
    state = case(
        (WebhookEvent.error.is_not(None), "failed"),
        (WebhookEvent.processed_at.is_not(None), "processed"),
        else_="pending",
    )
    with store.session() as session:
        connections = list(session.scalars(select(Connection).order_by(Connection.id)))
        figures.connections = {c.id: c.name for c in connections}
        figures.sync = sync_lags(session, now)
        figures.webhooks = _grouped(
            session, WebhookEvent.connection_id, WebhookEvent.source, state.label("state")
        )
        recent = session.execute(
            select(WebhookEvent.connection_id, WebhookEvent.received_at, WebhookEvent.processed_at)
            .where(
                WebhookEvent.received_at >= now - LATENCY_WINDOW,
                WebhookEvent.processed_at.is_not(None),
                WebhookEvent.error.is_(None),
            )
            .order_by(WebhookEvent.id.desc())
            .limit(LATENCY_SAMPLE)
        ).all()
        for connection_id, received, processed in recent:
            seconds = max((processed - received).total_seconds(), 0.0)
            figures.webhook_latency.setdefault(connection_id, []).append(seconds)
        figures.scores = _grouped(session, Score.connection_id, where=[Score.shadow.is_(False)])
        figures.writeback_failed = _grouped(
            session, Writeback.connection_id, where=[Writeback.status.in_(FAILED_WRITEBACK)]
        )
        figures.runs = _grouped(
            session, PipelineRun.connection_id, PipelineRun.step, PipelineRun.status
        )
        figures.triggers = _grouped(
            session, TriggerEvent.connection_id, TriggerEvent.job, TriggerEvent.fired
        )
    for connection in connections:
        reported = (connection.settings or {}).get("crm_api_usage") or {}
        figures.api[connection.id] = (
            calls_last_day(store, connection.id, now),
            leadlift_api_cap(settings, connection),
            reported.get("used"),
            reported.get("limit"),
        )
    return figures
