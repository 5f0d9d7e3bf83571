"""Webhook tasks: debounced processing of stored events, and the sweeper.

The web app stores a verified event, then hands (connection, lead) pairs to
``dispatch_leads`` (installed into ``integration.webhook_events`` as the
dispatch seam). With a Redis broker the first event of a burst for a lead sets
``leadlift:webhook:debounce:<connection>:<lead>`` (``SET NX``) and enqueues
``process_lead_events`` with ``countdown=webhook_debounce_seconds``; the rest of
the burst finds the key and enqueues nothing. The task deletes the key before
it reads the lead's pending events, so an event stored after that read sets the
key again and gets a task of its own: none is left behind.

One pass per connection runs at a time (a Redis lock), and a pass also takes
every other lead whose events are past the debounce window, so a backlog is
worked off in batches. A task that finds the lock taken returns at once: the
holder looks for pending events after releasing the lock and schedules a
follow-up pass for them. ``sweep_pending_events`` (run it from beat) hands back
whatever a lost task left pending.

Without a broker (eager) the task runs in-process when dispatched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
from celery import shared_task

from integration.config import Settings
from integration.errors import TransientError
from integration.lead_refresh import next_due, pending_leads, refresh_leads
from integration.store import Store
from integration.store.models import utcnow
from integration.webhook_events import set_dispatch
from tasks.locks import exclusive, redis_client
from tasks.pipeline import MAX_RETRIES, opened, retry_later

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

DEBOUNCE_KEY = "leadlift:webhook:debounce:{connection}:{lead}"
FOLLOWUP_KEY = "leadlift:webhook:followup:{connection}"
# A debounce key outlives its window: until the task deletes it, later events of the
# burst need no task of their own, however long the queue delays that task. The expiry
# only matters if a task is lost, and then the sweeper picks its events up.
KEY_SLACK_MS = 300_000
LOCK_MS = 600_000  # longer than a pass over MAX_LEADS leads
SWEEP_GRACE_SECONDS = 60
WEBHOOK_BACKOFF = 5.0  # seconds, doubling: a webhook pass is short and a rep waits on it
FAILED_PASS_WAIT = 30.0  # seconds before the pass after a failed one


def dispatch_leads(settings: Settings, pairs: Sequence[tuple[int, str]]) -> int:
    """Enqueue processing for each (connection, lead) unless a burst already did; returns
    how many tasks were enqueued."""
    client = redis_client(settings)
    window_ms = int(settings.webhook_debounce_seconds * 1000)
    enqueued = 0
    for connection_id, lead in pairs:
        if client is not None:
            key = DEBOUNCE_KEY.format(connection=connection_id, lead=lead)
            if not client.set(key, "1", nx=True, px=window_ms + KEY_SLACK_MS):
                continue
            process_lead_events.apply_async(
                (connection_id, lead), countdown=settings.webhook_debounce_seconds
            )
        else:
            process_lead_events.apply_async((connection_id, lead))
        enqueued += 1
    return enqueued


def install_dispatch() -> None:
    """Make the web app enqueue through Celery (see integration.webhook_events)."""

    def dispatch(settings: Settings, pairs: Sequence[tuple[int, str]]) -> None:
        dispatch_leads(settings, pairs)

    set_dispatch(dispatch)


def web_app() -> Flask:
    """The web app with Celery dispatch installed: what gunicorn should serve when a
    broker is configured (``gunicorn 'tasks.webhooks:web_app()'``)."""
    from integration.web import create_app
    from tasks.app import app as celery_app

    # Celery's "current app" is per thread; gunicorn's request threads would otherwise
    # fall back to an unconfigured default app (an AMQP broker on localhost).
    celery_app.set_default()
    install_dispatch()
    return create_app()


def _schedule_followup(
    client: redis.Redis, store: Store, settings: Settings, cid: int, at_least: float = 0.0
) -> None:
    """After a pass: if events are pending (ones whose tasks found the lock taken among
    them), schedule a pass for when the oldest is due, unless one is scheduled."""
    due = next_due(store, cid, settings.webhook_debounce_seconds)
    if due is None:
        return
    wait = max(due, at_least)
    key = FOLLOWUP_KEY.format(connection=cid)
    if client.set(key, "1", nx=True, px=int(wait * 1000) + KEY_SLACK_MS):
        process_lead_events.apply_async((cid, None), countdown=wait + 0.05)


@shared_task(
    name="webhooks.process_lead_events", bind=True, acks_late=True, max_retries=MAX_RETRIES
)
def process_lead_events(self, connection_id: int, lead_crm_id: str | None = None) -> dict[str, Any]:
    """Process every pending event of one lead (and of any lead past the debounce window)
    on one connection: re-pull, rescore, write back, settle the events."""
    with opened() as (settings, store):
        client = redis_client(settings)
        if client is not None:
            key = (
                DEBOUNCE_KEY.format(connection=connection_id, lead=lead_crm_id)
                if lead_crm_id is not None
                else FOLLOWUP_KEY.format(connection=connection_id)
            )
            client.delete(key)
        ran = retrying = failed = False
        name = f"webhook:{connection_id}"
        try:
            with exclusive(settings, name, LOCK_MS // 1000, local_wait=LOCK_MS / 1000) as held:
                if not held:
                    return {"connection_id": connection_id, "busy": True}
                ran = True
                try:
                    due = utcnow() - timedelta(seconds=settings.webhook_debounce_seconds)
                    report = refresh_leads(
                        store, settings, connection_id, [lead_crm_id] if lead_crm_id else (), due
                    )
                except TransientError as exc:
                    # The retry takes this lead and every due one, as this pass would have.
                    retrying = True
                    raise retry_later(self, exc, base=WEBHOOK_BACKOFF) from None
                except Exception:
                    failed = True
                    raise
        finally:
            # After the lock is released: pending events (ones whose tasks found it
            # taken among them) get a pass of their own.
            if ran and client is not None and not retrying:
                wait = FAILED_PASS_WAIT if failed else 0.0
                _schedule_followup(client, store, settings, connection_id, wait)
        return report.as_dict()


@shared_task(name="webhooks.sweep_pending")
def sweep_pending_events() -> dict[str, int]:
    """Hand events a lost task left pending back to processing: one pass per connection
    with events older than the debounce window plus a grace period."""
    with opened() as (settings, store):
        older = utcnow() - timedelta(
            seconds=settings.webhook_debounce_seconds + SWEEP_GRACE_SECONDS
        )
        pairs = pending_leads(store, older)
    connections = sorted({cid for cid, _ in pairs})
    for cid in connections:
        process_lead_events.apply_async((cid, None))
    return {"connections": len(connections), "leads": len(pairs)}
