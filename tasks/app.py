"""The Celery app. With no broker configured, tasks run in-process (eager)."""

from __future__ import annotations

from celery import Celery

from integration.config import Settings, load_settings


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    app = Celery("leadlift", include=["tasks.pipeline"])
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
        worker_prefetch_multiplier=1,
        # Longer than the longest task, so an acks_late task is not redelivered mid-run.
        broker_transport_options={"visibility_timeout": 4 * 3600},
        beat_schedule={
            "cycle-every-connection": {
                "task": "pipeline.run_all",
                "schedule": settings.cycle_every_minutes * 60.0,
            }
        },
        timezone="UTC",
    )
    return app


app = make_celery()
