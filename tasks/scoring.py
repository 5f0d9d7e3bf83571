"""A rescoring pass spread over workers, and write-back in batches.

``leadlift.score`` plans the pass (chunks of whole people and accounts), runs
one ``leadlift.stage_chunk`` per chunk as a Celery group, and a chord runs
``leadlift.finish_pass`` once every chunk is staged: N workers on N machines
share the pass against the same PostgreSQL store. The finish then plans the
write-back once and pushes it as a group of ``leadlift.writeback_batch`` tasks.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from celery import chord, group, shared_task
from sqlalchemy.exc import OperationalError

from integration.connections import build_connector, get_connection
from integration.errors import TransientError
from integration.experiment_cycle import LIVE, arms_frame, run_experiments
from integration.experiments.registry import list_experiments
from integration.pipeline import ensure_written_fields, recorded, tracked
from integration.routing import load_policy
from integration.score_pass import finish_pass, plan_pass, pushed_arms, stage_chunk
from integration.store.models import Connection, utcnow
from integration.writeback import push_plan
from integration.writeback_plan import (
    PlannedOwner,
    PlannedUpdate,
    WritebackPlan,
    jsonable,
    plan_writeback,
)
from tasks.pipeline import MAX_RETRIES, fan_out, opened, retry_later

BATCH_RECORDS = 2_000


@shared_task(name="leadlift.score")
def score_task(
    connection_name: str,
    chunk_leads: int | None = None,
    writeback: bool = True,
    now: str | None = None,
) -> dict[str, Any]:
    """Start a full rescoring pass of one connection over the workers (as of ``now``,
    an ISO time; default the present)."""
    with opened() as (settings, store):
        connection = get_connection(store, connection_name)
        moment = datetime.fromisoformat(now) if now else utcnow()
        labels = None
        if any(e.status in LIVE for e in list_experiments(store, connection.id)):
            # Assign new units first, so the pass routes (and writes) their arms.
            labels = run_experiments(store, connection.id, moment).labels
        plan = plan_pass(store, connection.id, chunk_leads or settings.score_chunk_leads, moment)
    stamp = moment.isoformat()
    header = group(
        stage_chunk_task.s(connection.id, plan.pass_id, n, ids, stamp)
        for n, ids in enumerate(plan.chunks)
    )
    result = chord(header)(
        finish_pass_task.s(connection.id, plan.pass_id, stamp, labels, writeback)
    )
    return {"connection": connection_name, "pass_id": plan.pass_id,
            "chunks": len(plan.chunks), "leads": plan.leads, "finish_task": result.id}  # fmt: skip


# The chord counts its chunks' results, so they are kept. A lost database connection
# (a failover, a restart) is worth a retry; a bug is not.
CHORD_PART = {
    "ignore_result": False,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": MAX_RETRIES,
}


@shared_task(name="leadlift.stage_chunk", **CHORD_PART)
def stage_chunk_task(
    connection_id: int, pass_id: str, chunk: int, lead_ids: list[str], now: str
) -> int:
    with opened() as (_, store):
        return stage_chunk(
            store, connection_id, pass_id, chunk, lead_ids, datetime.fromisoformat(now)
        )


@shared_task(name="leadlift.finish_pass", **CHORD_PART)
def finish_pass_task(
    staged: list[int],
    connection_id: int,
    pass_id: str,
    now: str,
    labels: dict[str, str] | None = None,
    writeback: bool = True,
) -> dict[str, Any]:
    """Route the staged pass, append what changed, then start the write-back."""
    with opened() as (settings, store):
        arms = arms_frame(labels)
        if arms is None:
            arms = pushed_arms(store, connection_id, settings.fields.experiment_arm)
        with recorded(store, connection_id, "score") as stats:
            result = finish_pass(
                store, connection_id, pass_id, datetime.fromisoformat(now),
                load_policy(settings.routing_policy), arms,
            )  # fmt: skip
            stats.update(
                scored=result.scored, written=result.written, chunks=len(staged),
                buckets=result.buckets, queues=result.queues, spilled=result.spilled,
                drift_alerts=result.drift_alerts, shadow_written=result.shadow_written,
                pass_id=pass_id,
            )  # fmt: skip
        summary = dict(stats)
    if writeback:
        writeback_task.delay(connection_id, labels)
    return summary


def _connection(store, connection_id: int) -> Connection:
    with store.session() as session:
        return session.get(Connection, connection_id)


@shared_task(name="leadlift.writeback", bind=True, max_retries=MAX_RETRIES)
def writeback_task(
    self, connection_id: int, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Plan the write-back once, push it as a group of batches."""
    with opened() as (settings, store):
        connection = _connection(store, connection_id)
        connector = build_connector(store, settings, connection)
        try:
            with tracked(store, connection, connector):
                ensure_written_fields(store, settings, connection, connector)
            plan = plan_writeback(store, settings, connection_id, connector, arms=labels)
        except TransientError as exc:
            raise retry_later(self, exc) from None
    updates = [jsonable(asdict(u)) | {"values": jsonable(u.values),
               "pushed": jsonable(u.pushed)} for u in plan.updates]  # fmt: skip
    owners = [asdict(o) for o in plan.owners]
    batches = [
        writeback_batch_task.s(
            connection_id,
            updates[start : start + BATCH_RECORDS],
            owners[start : start + BATCH_RECORDS],
        )
        for start in range(0, max(len(updates), len(owners)), BATCH_RECORDS)
    ]
    if batches:
        group(batches).apply_async()
    return {"updates": len(updates), "owners": len(owners), "batches": len(batches),
            "deferred": plan.deferred_updates}  # fmt: skip


@shared_task(name="leadlift.writeback_batch", bind=True, max_retries=MAX_RETRIES)
def writeback_batch_task(
    self, connection_id: int, updates: list[dict], owners: list[dict]
) -> dict[str, Any]:
    """Push one batch; per-record errors are recorded on their records and retried
    alone by the next write-back, the batch is not failed for them."""
    plan = WritebackPlan(
        updates=[PlannedUpdate(**u) for u in updates],
        owners=[PlannedOwner(**o) for o in owners],
    )
    with opened() as (settings, store):
        connection = _connection(store, connection_id)
        connector = build_connector(store, settings, connection)
        try:
            with (
                tracked(store, connection, connector),
                recorded(store, connection_id, "writeback") as stats,
            ):
                report = push_plan(store, connection_id, connector, plan)
                stats.update(report.as_dict())
        except TransientError as exc:
            raise retry_later(self, exc) from None
    return {"succeeded": report.succeeded, "failed": len(report.errors)}


@shared_task(name="leadlift.rescore_all")
def rescore_all_task() -> list[str]:
    """The nightly pass: every active connection rescored over the workers, then
    written back."""
    return fan_out(score_task)
