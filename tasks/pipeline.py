"""Thin tasks over integration.pipeline: ids in, small JSON summaries out."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from integration.config import load_settings
from integration.connections import list_connections
from integration.errors import TransientError
from integration.pipeline import run_cycle
from integration.store import Store


def _store():
    settings = load_settings()
    return settings, Store(settings.store_url)


@shared_task(name="pipeline.run_cycle", bind=True, acks_late=True, max_retries=5)
def run_cycle_task(self, connection_name: str) -> dict[str, Any]:
    """One full cycle on one connection; CRM rate limits are retried after their wait."""
    settings, store = _store()
    try:
        report = run_cycle(store, settings, connection_name)
    except TransientError as exc:
        raise self.retry(
            exc=exc, countdown=exc.retry_after or 60 * (2**self.request.retries)
        ) from None
    finally:
        store.dispose()
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
    _, store = _store()
    try:
        names = [c.name for c in list_connections(store) if c.status == "active"]
    finally:
        store.dispose()
    for name in names:
        run_cycle_task.delay(name)
    return names
