"""The Celery app and its beat schedule. With no broker configured, tasks run
in-process (eager): the embedded default needs no service at all.

Every task acknowledges late and is rejected back to the queue when its worker is
lost, so a crashed worker's task runs again elsewhere; the tasks are written to
be re-run (syncs resume from their stored cursor, scoring and write-back skip
what is already done).
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from integration.config import Settings, load_settings

TASK_MODULES = ["tasks.pipeline", "tasks.scoring", "tasks.webhooks"]


def beat_schedule(settings: Settings) -> dict[str, dict]:
    """Incremental sync every few minutes, a nightly rescoring pass, model health
    checks (recalibration when due or when a monitored metric crosses its
    threshold), and a sweep for webhook events a lost task left pending."""
    return {
        "sync-every-connection": {
            "task": "leadlift.sync_all",
            "schedule": settings.sync_every_minutes * 60.0,
        },
        "nightly-rescore": {
            "task": "leadlift.rescore_all",
            "schedule": crontab(hour=settings.rescore_hour_utc, minute=0),
        },
        "monitor-models": {
            "task": "leadlift.monitor_all",
            "schedule": settings.monitor_every_minutes * 60.0,
        },
        "sweep-webhook-events": {
            "task": "webhooks.sweep_pending",
            "schedule": 60.0,
        },
    }


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    app = Celery("leadlift", include=TASK_MODULES)
    eager = settings.broker_url is None
    app.conf.update(
        broker_url=settings.broker_url or "memory://",
        result_backend=settings.result_backend or settings.broker_url,
        task_always_eager=eager,
        task_eager_propagates=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Longer than the longest task, so an acks_late task is not redelivered mid-run.
        broker_transport_options={"visibility_timeout": 4 * 3600},
        result_expires=24 * 3600,
        beat_schedule=beat_schedule(settings),
        timezone="UTC",
    )
    return app


app = make_celery()
