"""Incremental sync: CRM rows → domain records → idempotent upserts, cursor owned here.

The connector pulls rows changed at or after ``since``; this step saves the
highest cursor seen, capped at the run's start minus a small lag, in the
same transaction as the data. A crash therefore resumes from the last
committed page, and the overlap window (``sync_lookback_seconds``) is
harmless because upserts are idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.base import (
    AccountRecord,
    CRMConnector,
    Cursor,
    DomainRecord,
    EngagementRecord,
    LeadRecord,
    OutcomeRecord,
    TouchRecord,
    UserRecord,
)
from integration.config import Settings
from integration.store import Store
from integration.store.models import (
    Account,
    CrmUser,
    Engagement,
    Lead,
    Outcome,
    SyncCursor,
    Touch,
    utcnow,
)
from integration.store.upserts import upsert_rows

PAGE_ROWS = 2000  # raw rows per committed batch

Progress = Callable[[str, int], None]


@dataclass
class ObjectSyncStats:
    object: str
    pulled: int = 0
    written: int = 0
    deleted: int = 0
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    watermark: datetime | None = None
    full: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "pulled": self.pulled,
            "written": self.written,
            "deleted": self.deleted,
            "records": dict(self.records),
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "full": self.full,
        }


def _common(record: DomainRecord, connection_id: int) -> dict[str, Any]:
    return {
        "connection_id": connection_id,
        "crm_object": record.crm_object,
        "crm_id": record.crm_id,
        "crm_modified_at": record.modified_at,
        "deleted": record.deleted,
    }


def _account_row(r: AccountRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {
        "name": r.name, "domain": r.domain, "industry": r.industry, "employees": r.employees,
        "size_band": r.size_band, "region": r.region, "tier": r.tier,
        "owner_crm_id": r.owner_id, "created_at": r.created_at, "raw": dict(r.raw),
    }  # fmt: skip


def _lead_row(r: LeadRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {
        "account_crm_id": r.account_crm_id, "email": r.email, "email_domain": r.email_domain,
        "first_name": r.first_name, "last_name": r.last_name, "title": r.title,
        "company": r.company, "phone": r.phone, "source": r.source, "status": r.status,
        "owner_crm_id": r.owner_id, "created_at": r.created_at, "converted_at": r.converted_at,
        "converted_contact_crm_id": r.converted_contact_id, "raw": dict(r.raw),
    }  # fmt: skip


def _touch_row(r: TouchRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {
        "lead_crm_id": r.lead_crm_id, "type": r.type, "channel": r.channel,
        "subject": (r.subject or "")[:255] or None, "status": r.status, "rep_crm_id": r.rep_id,
        "occurred_at": r.occurred_at, "raw": dict(r.raw),
    }  # fmt: skip


def _engagement_row(r: EngagementRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {
        "lead_crm_id": r.lead_crm_id, "kind": r.kind, "detail": (r.detail or "")[:255] or None,
        "occurred_at": r.occurred_at,
    }  # fmt: skip


def _outcome_row(r: OutcomeRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {
        "lead_crm_id": r.lead_crm_id, "kind": r.kind, "occurred_at": r.occurred_at,
        "value": r.value, "raw": dict(r.raw),
    }  # fmt: skip


def _user_row(r: UserRecord, cid: int) -> dict[str, Any]:
    return _common(r, cid) | {"kind": r.kind, "name": r.name, "email": r.email, "active": r.active}


ROW_BUILDERS: dict[type, tuple[Any, Callable[[Any, int], dict[str, Any]]]] = {
    AccountRecord: (Account, _account_row),
    LeadRecord: (Lead, _lead_row),
    TouchRecord: (Touch, _touch_row),
    EngagementRecord: (Engagement, _engagement_row),
    OutcomeRecord: (Outcome, _outcome_row),
    UserRecord: (CrmUser, _user_row),
}


def write_records(session: Any, connection_id: int, records: Iterable[DomainRecord]) -> int:
    """Upsert domain records into their tables; returns rows written."""
    by_model: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        model, build = ROW_BUILDERS[type(record)]
        by_model[model].append(build(record, connection_id))
    return sum(
        upsert_rows(session, model.__table__, rows) for model, rows in by_model.items() if rows
    )


def _cursor_row(session: Any, connection_id: int, obj: str) -> SyncCursor:
    row = session.scalar(
        select(SyncCursor).where(
            SyncCursor.connection_id == connection_id, SyncCursor.object == obj
        )
    )
    if row is None:
        row = SyncCursor(connection_id=connection_id, object=obj, last_stats={})
        session.add(row)
        session.flush()
    return row


def sync_object(
    store: Store,
    settings: Settings,
    connection_id: int,
    connector: CRMConnector,
    obj: str,
    progress: Progress | None = None,
) -> ObjectSyncStats:
    """Pull one object incrementally and store it; returns what happened."""
    run_start = utcnow()
    cap = run_start - timedelta(seconds=settings.sync_lag_seconds)
    with store.session() as session:
        cursor = _cursor_row(session, connection_id, obj)
        cursor.last_started_at = run_start
        cursor.last_status = "running"
        watermark = cursor.watermark
    since = (
        Cursor(watermark - timedelta(seconds=settings.sync_lookback_seconds)) if watermark else None
    )
    ordered_fn = getattr(connector, "cursor_ordered", None)
    ordered = ordered_fn(obj, since) if ordered_fn else True
    stats = ObjectSyncStats(obj, full=since is None)
    highest: datetime | None = None
    batch: list[DomainRecord] = []
    pending = 0

    def flush(final: bool) -> None:
        nonlocal batch, pending
        with store.session() as session:
            stats.written += write_records(session, connection_id, batch)
            # Unordered (first, list-based) pulls only move the cursor once complete.
            if highest is not None and (ordered or final):
                row = _cursor_row(session, connection_id, obj)
                row.watermark = min(highest, cap)
                stats.watermark = row.watermark
            if final:
                row = _cursor_row(session, connection_id, obj)
                row.last_finished_at = utcnow()
                row.last_status = "ok"
                row.last_stats = stats.as_dict()
        if progress:
            progress(obj, pending)
        batch, pending = [], 0

    try:
        for raw in connector.pull(obj, since):
            stats.pulled += 1
            pending += 1
            stats.deleted += raw.deleted
            if highest is None or raw.modified_at > highest:
                highest = raw.modified_at
            for record in connector.to_domain(raw):
                stats.records[type(record).__name__] += 1
                batch.append(record)
            if pending >= PAGE_ROWS:
                flush(final=False)
        flush(final=True)
    except Exception as exc:
        with store.session() as session:
            row = _cursor_row(session, connection_id, obj)
            row.last_status = "error"
            row.last_stats = {**stats.as_dict(), "error": str(exc)[:500]}
        raise
    return stats


def sync_connection(
    store: Store,
    settings: Settings,
    connection_id: int,
    connector: CRMConnector,
    objects: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> list[ObjectSyncStats]:
    return [
        sync_object(store, settings, connection_id, connector, obj, progress)
        for obj in (objects or connector.sync_objects())
    ]
