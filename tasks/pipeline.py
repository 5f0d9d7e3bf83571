"""Thin tasks over integration.pipeline: names and ids in, small JSON summaries out.

Syncs of one connection never overlap (a lock with an expiry); a CRM rate limit
is retried after the wait the CRM stated; a sync that dies resumes from the
cursor it stored (acks_late redelivers it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task

from integration.config import Settings, load_settings
from integration.connections import build_connector, get_connection, list_connections
from integration.errors import TransientError
from integration.monitoring import check_health, log_trigger
from integration.pipeline import recorded, run_cycle, run_sync, run_train, tracked
from integration.progress import NullReporter
from integration.store import Store
from integration.store.models import utcnow
from tasks.locks import exclusive

MAX_RETRIES = 5


@contextmanager
def opened() -> Iterator[tuple[Settings, Store]]:
    settings = load_settings()
    store = Store(settings.store_url)
    try:
        yield settings, store
    finally:
        store.dispose()


def retry_later(task: Any, exc: TransientError, base: float = 30.0) -> Exception:
    """The retry a CRM's rate limit (or an outage) calls for: after its stated wait,
    else exponential backoff from ``base`` seconds, jittered so that retries of a
    burst do not land together."""
    backoff = base * 2**task.request.retries * (1 + random.random() / 2)
    return task.retry(exc=exc, countdown=exc.retry_after or backoff)


def active_names(store: Store) -> list[str]:
    return [c.name for c in list_connections(store) if c.status == "active"]


def fan_out(task: Any) -> list[str]:
    """Queue ``task`` once per active connection (by name); the names queued."""
    with opened() as (_, store):
        names = active_names(store)
    for name in names:
        task.delay(name)
    return names


@shared_task(name="pipeline.run_cycle", bind=True, max_retries=MAX_RETRIES)
def run_cycle_task(self, connection_name: str) -> dict[str, Any]:
    """One full cycle on one connection, in one worker (small installs, the demo)."""
    with opened() as (settings, store):
        try:
            report = run_cycle(store, settings, connection_name)
        except TransientError as exc:
            raise retry_later(self, exc) from None
    return {
        "connection": report.connection,
        "trained": bool(report.trained),
        "scored": (report.scored or {}).get("scored", 0),
        "written": (report.writeback or {}).get("succeeded", 0),
        "api_calls": report.api_calls,
    }


@shared_task(name="pipeline.run_all")
def run_all_task() -> list[str]:
    """Fan out one cycle per active connection."""
    return fan_out(run_cycle_task)


@shared_task(name="leadlift.sync", bind=True, max_retries=MAX_RETRIES)
def sync_task(self, connection_name: str, objects: list[str] | None = None) -> dict[str, Any]:
    """Incremental sync of one connection (all its objects, or ``objects``)."""
    with opened() as (settings, store):
        connection = get_connection(store, connection_name)
        with exclusive(settings, f"sync:{connection.id}", settings.sync_lock_seconds) as held:
            if not held:
                return {"connection": connection_name, "skipped": "a sync is already running"}
            connector = build_connector(store, settings, connection)
            try:
                with tracked(store, connection, connector):
                    synced = run_sync(
                        store, settings, connection, connector, NullReporter(), objects
                    )
            except TransientError as exc:
                raise retry_later(self, exc) from None
    pulled = {obj: stats.get("pulled", 0) for obj, stats in synced.items()}
    return {"connection": connection_name, "pulled": pulled}


@shared_task(name="leadlift.sync_all")
def sync_all_task() -> list[str]:
    return fan_out(sync_task)


@shared_task(name="leadlift.train", bind=True, max_retries=2)
def train_task(self, connection_name: str) -> dict[str, Any]:
    """Train (and calibrate) the propensity and uplift models; a challenger is
    promoted only if it wins its backtest."""
    with opened() as (settings, store):
        connection = get_connection(store, connection_name)
        with exclusive(settings, f"train:{connection.id}", 4 * 3600) as held:
            if not held:
                return {"connection": connection_name, "skipped": "training already running"}
            out = run_train(store, settings, connection, utcnow())
    return {"connection": connection_name, "version": out.get("version"),
            "status": out.get("status"), "auc": out.get("auc")}  # fmt: skip


@shared_task(name="leadlift.recalibrate")
def recalibrate_task(connection_name: str, reason: str) -> dict[str, Any]:
    """Retrain and recalibrate because ``reason`` (already logged as a trigger)."""
    return {"reason": reason, **train_task(connection_name)}


@shared_task(name="leadlift.monitor")
def monitor_task(connection_name: str) -> dict[str, Any]:
    """Check the active model on fresh outcomes; recalibrate when a trigger fires."""
    with opened() as (settings, store):
        connection = get_connection(store, connection_name)
        with recorded(store, connection.id, "monitor") as stats:
            check = check_health(store, settings, connection.id)
            stats.update(fire=check.fire, reasons=check.reasons, **check.details)
        if check.fire:
            reason = "; ".join(check.reasons)
            log_trigger(store, connection.id, "recalibrate", reason, check.details)
    if check.fire:
        recalibrate_task.delay(connection_name, reason)
    return {"connection": connection_name, "fire": check.fire, "reasons": check.reasons}


@shared_task(name="leadlift.monitor_all")
def monitor_all_task() -> list[str]:
    return fan_out(monitor_task)


@shared_task(name="leadlift.readiness")
def readiness_task(connection_name: str) -> dict[str, Any]:
    """The data-readiness checklist, stored as a pipeline run for the admin UI."""
    from integration.admin_views import readiness_report

    with opened() as (_, store):
        connection = get_connection(store, connection_name)
        with recorded(store, connection.id, "readiness") as stats:
            stats.update(readiness_report(store, connection.id, utcnow()))
    return {"connection": connection_name, "checks": len(stats.get("checks", []))}
