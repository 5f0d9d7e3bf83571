"""What `leadlift status` shows: connections, last sync per object, model, last write-back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from integration.store import Store
from integration.store.models import (
    Account,
    ApiUsage,
    Connection,
    Engagement,
    Lead,
    ModelVersion,
    Outcome,
    PipelineRun,
    SyncCursor,
    Touch,
    Writeback,
    utcnow,
)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _count(session, model, connection_id: int, *where) -> int:
    return session.scalar(
        select(func.count())
        .select_from(model)
        .where(model.connection_id == connection_id, model.deleted.is_(False), *where)
    )


def connection_status(session, connection: Connection) -> dict[str, Any]:
    cid = connection.id
    cursors = session.scalars(
        select(SyncCursor).where(SyncCursor.connection_id == cid).order_by(SyncCursor.id)
    )
    model, uplift = (
        session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.connection_id == cid,
                ModelVersion.kind == kind,
                ModelVersion.status == "active",
            )
            .order_by(ModelVersion.id.desc())
        )
        for kind in ("propensity", "uplift")
    )
    last_writeback = session.scalar(
        select(PipelineRun)
        .where(PipelineRun.connection_id == cid, PipelineRun.step == "writeback")
        .order_by(PipelineRun.id.desc())
    )
    last_sync = session.scalar(
        select(PipelineRun)
        .where(PipelineRun.connection_id == cid, PipelineRun.step == "sync")
        .order_by(PipelineRun.id.desc())
    )
    pending_errors = session.scalar(
        select(func.count())
        .select_from(Writeback)
        .where(Writeback.connection_id == cid, Writeback.status == "error")
    )
    return {
        "name": connection.name,
        "crm": connection.crm,
        "status": connection.status,
        "instance": connection.instance_url,
        "external_id": connection.external_id,
        "rows": {
            "accounts": _count(session, Account, cid),
            # Salesforce Contacts are counted apart from leads (HubSpot has contacts only).
            "leads": _count(session, Lead, cid, Lead.crm_object != "Contact"),
            "contacts": _count(session, Lead, cid, Lead.crm_object == "Contact"),
            "touches": _count(session, Touch, cid),
            "engagements": _count(session, Engagement, cid),
            "outcomes": _count(session, Outcome, cid),
        },
        "sync": [
            {
                "object": c.object,
                "status": c.last_status,
                "finished_at": _iso(c.last_finished_at),
                "watermark": _iso(c.watermark),
                "pulled": (c.last_stats or {}).get("pulled"),
                "written": (c.last_stats or {}).get("written"),
                "error": (c.last_stats or {}).get("error"),
            }
            for c in cursors
        ],
        "active_model": None
        if model is None
        else {
            "kind": model.kind,
            "version": model.version,
            "trained_at": _iso(model.trained_at),
            "estimator": (model.params or {}).get("estimator"),
            "mode": (model.params or {}).get("mode"),
            "held_out_auc": ((model.metrics or {}).get("held_out") or {}).get("auc"),
        },
        "active_uplift_model": None
        if uplift is None
        else {
            "version": uplift.version,
            "trained_at": _iso(uplift.trained_at),
            "estimator": (uplift.params or {}).get("estimator"),
            "actions": (uplift.params or {}).get("actions"),
            "held_out_qini": ((uplift.metrics or {}).get("held_out") or {}).get("qini_auc"),
        },
        "last_writeback": None
        if last_writeback is None
        else {
            "status": last_writeback.status,
            "finished_at": _iso(last_writeback.finished_at),
            "succeeded": (last_writeback.stats or {}).get("succeeded"),
            "failed": (last_writeback.stats or {}).get("failed"),
            "errors": (last_writeback.stats or {}).get("errors", []),
            "error": last_writeback.error,
        },
        "records_awaiting_retry": pending_errors,
        # Picklist values the mapping vocabulary does not cover, for RevOps to map.
        "unmapped": (last_sync.stats or {}).get("unmapped", {}) if last_sync else {},
        "api": {
            "leadlift_calls_24h": int(
                session.scalar(
                    select(func.coalesce(func.sum(ApiUsage.calls), 0)).where(
                        ApiUsage.connection_id == cid,
                        ApiUsage.hour >= utcnow() - timedelta(hours=24),
                    )
                )
                or 0
            ),
            **{
                f"crm_{k}": v
                for k, v in ((connection.settings or {}).get("crm_api_usage") or {}).items()
            },
        },
    }


def status(store: Store) -> dict[str, Any]:
    with store.session() as session:
        connections = list(session.scalars(select(Connection).order_by(Connection.id)))
        return {
            "store": store.engine.url.render_as_string(hide_password=True),
            "schema_current": store.is_current(),
            "connections": [connection_status(session, c) for c in connections],
        }
