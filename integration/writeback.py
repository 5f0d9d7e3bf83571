"""Write-back: push a plan (see `integration.writeback_plan`) and record what landed.

What a record holds in the CRM is recorded only when the CRM accepted it: a
failed record keeps its previous state, so the next plan retries exactly the
failures (alone, not their whole batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update

from connectors.base import CRMConnector, RecordError
from integration.store import Store
from integration.store.models import Lead, Writeback, utcnow
from integration.store.upserts import upsert_rows
from integration.writeback_plan import OWNER_KEY, PlannedOwner, PlannedUpdate, WritebackPlan

PUSH_CHUNK = 1000  # records per committed step


@dataclass
class WritebackReport:
    planned: int = 0
    attempted: int = 0
    succeeded: int = 0
    errors: list[RecordError] = field(default_factory=list)
    api_calls: int = 0
    dry_run: bool = False
    owners_planned: int = 0
    owners_assigned: int = 0
    plan: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": len(self.errors),
            "errors": [f"{e.crm_id}: {e.code} {e.message}"[:200] for e in self.errors[:20]],
            "api_calls": self.api_calls,
            "dry_run": self.dry_run,
            "owners_planned": self.owners_planned,
            "owners_assigned": self.owners_assigned,
            "plan": self.plan,
        }


def _attempts(session, connection_id: int, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    return dict(
        session.execute(
            select(Writeback.crm_id, Writeback.attempts).where(
                Writeback.connection_id == connection_id, Writeback.crm_id.in_(ids)
            )
        ).all()
    )


def _record(store: Store, connection_id: int, batch: Sequence[PlannedUpdate], errors) -> None:
    failed = {e.crm_id: e for e in errors}
    now = utcnow()
    with store.session() as session:
        attempts = _attempts(
            session, connection_id, [u.crm_id for u in batch if u.crm_id in failed]
        )
        ok_rows, error_rows = [], []
        for planned in batch:
            key = {
                "connection_id": connection_id,
                "crm_object": planned.crm_object,
                "crm_id": planned.crm_id,
            }
            error = failed.get(planned.crm_id)
            if error is None:
                ok_rows.append(
                    key | {"field_values": planned.pushed, "pushed_at": now, "status": "ok",
                           "error": None, "attempts": 0}
                )  # fmt: skip
            else:
                error_rows.append(
                    key | {"status": "error", "error": f"{error.code}: {error.message}"[:1000],
                           "attempts": attempts.get(planned.crm_id, 0) + 1}
                )  # fmt: skip
        upsert_rows(session, Writeback.__table__, ok_rows, changed_when=())
        upsert_rows(session, Writeback.__table__, error_rows, changed_when=())


def _record_owners(store: Store, connection_id: int, done: Sequence[PlannedOwner]) -> None:
    """The lead's owner locally, and in its pushed state the owner leadlift set (so a later
    change of owner by a rep is recognised as a hand-set one)."""
    if not done:
        return
    by_id = {o.crm_id: o for o in done}
    # One statement executed for every owner (executemany), not a statement per owner.
    moved = (
        update(Lead.__table__)
        .where(
            Lead.__table__.c.connection_id == connection_id,
            Lead.__table__.c.crm_id == bindparam("lead_id"),
        )
        .values(owner_crm_id=bindparam("owner_id"))
    )
    with store.session() as session:
        session.connection().execute(
            moved, [{"lead_id": o.crm_id, "owner_id": o.owner_id} for o in done]
        )
        rows = session.scalars(
            select(Writeback).where(
                Writeback.connection_id == connection_id, Writeback.crm_id.in_(list(by_id))
            )
        ).all()
        for row in rows:
            row.field_values = {**(row.field_values or {}), OWNER_KEY: by_id[row.crm_id].owner_id}


def push_plan(
    store: Store,
    connection_id: int,
    connector: CRMConnector,
    plan: WritebackPlan,
    progress: Callable[[int], None] | None = None,
) -> WritebackReport:
    """Field updates first (their records must exist before an owner is recorded on
    them), then owner changes, each in committed chunks."""
    report = WritebackReport(
        planned=len(plan.updates), owners_planned=len(plan.owners), plan=plan.as_dict()
    )
    for start in range(0, len(plan.updates), PUSH_CHUNK):
        batch = plan.updates[start : start + PUSH_CHUNK]
        result = connector.push([u.field_update for u in batch])
        _record(store, connection_id, batch, result.errors)
        report.attempted += result.attempted
        report.succeeded += result.succeeded
        report.errors.extend(result.errors)
        report.api_calls += result.api_calls
        if progress:
            progress(len(batch))
    for start in range(0, len(plan.owners), PUSH_CHUNK):
        batch = plan.owners[start : start + PUSH_CHUNK]
        result = connector.assign([o.assignment for o in batch])
        failed = {e.crm_id for e in result.errors}
        done = [o for o in batch if o.crm_id not in failed]
        _record_owners(store, connection_id, done)
        report.owners_assigned += len(done)
        report.errors.extend(result.errors)
        report.api_calls += result.api_calls
    return report
