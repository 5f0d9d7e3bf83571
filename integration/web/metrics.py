"""``/metrics`` for Prometheus: sync lag, API usage, webhooks, scores, write-back and
pipeline failures, trigger events — read from the store at scrape time.

The figures come from the store, not from in-process counters, so every gunicorn worker
answers alike and work done by Celery processes is counted. Labels are connection
names, object, step and job names: no tokens, no lead ids, no personal data.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.samples import Sample

from integration.admin_views import LATENCY_WINDOW, OperationalFigures, operational_figures
from integration.config import Settings
from integration.store import Store
from integration.store.models import utcnow

from .context import app_settings, app_store

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

QUANTILES = (0.5, 0.9, 0.99)
_WINDOW = f"{LATENCY_WINDOW.total_seconds() / 60:g} minutes"


class StoreCollector:
    """A custom collector: each scrape reads the store once and reports what it holds."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leadlift_store_up", "1 when the store could be read.")
        try:
            figures = operational_figures(self.store, self.settings, utcnow())
        except Exception:  # a scrape reports the outage rather than failing with a 500
            log.exception("metrics: reading the store failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(figures)


def _families(f: OperationalFigures) -> Iterator[Metric]:
    def name(connection_id: int | None) -> str:
        return f.connections.get(connection_id, "") if connection_id is not None else ""

    lag = GaugeMetricFamily(
        "leadlift_sync_lag_seconds",
        "Seconds since the object's last successful sync finished.",
        labels=["connection", "object"],
    )
    age = GaugeMetricFamily(
        "leadlift_sync_watermark_age_seconds",
        "Seconds since the newest CRM change the object's sync has seen.",
        labels=["connection", "object"],
    )
    failing = GaugeMetricFamily(
        "leadlift_sync_error",
        "1 when the object's latest sync failed.",
        labels=["connection", "object"],
    )
    for s in f.sync:
        labels = [name(s.connection_id), s.object]
        if s.lag_seconds is not None:
            lag.add_metric(labels, s.lag_seconds)
        if s.watermark_age_seconds is not None:
            age.add_metric(labels, s.watermark_age_seconds)
        failing.add_metric(labels, 1 if s.status == "error" else 0)
    yield from (lag, age, failing)

    calls = GaugeMetricFamily(
        "leadlift_api_calls_24h",
        "API calls leadlift made in the last 24 hours.",
        labels=["connection"],
    )
    cap = GaugeMetricFamily(
        "leadlift_api_calls_cap",
        "leadlift's share of the CRM's daily API limit (Salesforce).",
        labels=["connection"],
    )
    used = GaugeMetricFamily(
        "leadlift_crm_api_calls_used",
        "Daily API calls the CRM last reported used (by every integration).",
        labels=["connection"],
    )
    limit = GaugeMetricFamily(
        "leadlift_crm_api_calls_limit", "The CRM's daily API call limit.", labels=["connection"]
    )
    for connection_id, (made, share, crm_used, crm_limit) in f.api.items():
        labels = [name(connection_id)]
        calls.add_metric(labels, made)
        for family, value in ((cap, share), (used, crm_used), (limit, crm_limit)):
            if value is not None:
                family.add_metric(labels, value)
    yield from (calls, cap, used, limit)

    received = CounterMetricFamily(
        "leadlift_webhook_events_received",
        "Webhook events stored.",
        labels=["connection", "source"],
    )
    states = GaugeMetricFamily(
        "leadlift_webhook_events",
        "Stored webhook events by state: processed, pending or failed.",
        labels=["connection", "source", "state"],
    )
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (connection_id, source, state), n in sorted(f.webhooks.items(), key=str):
        states.add_metric([name(connection_id), source, state], n)
        totals[name(connection_id), source] += n
    for labels, n in totals.items():
        received.add_metric(list(labels), n)
    yield from (received, states)

    latency = SummaryMetricFamily(
        "leadlift_webhook_processing_latency_seconds",
        f"Seconds from a webhook's receipt to its processing, over events received in the "
        f"last {_WINDOW} (count and sum cover the same window).",
        labels=["connection"],
    )
    for connection_id, seconds in f.webhook_latency.items():
        values = np.asarray(seconds)
        connection = name(connection_id)
        for q, value in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True):
            latency.samples.append(
                Sample(latency.name, {"connection": connection, "quantile": f"{q:g}"}, value)
            )
        latency.add_metric([connection], count_value=len(values), sum_value=float(values.sum()))
    yield latency

    scores = CounterMetricFamily(
        "leadlift_scores_written", "Score rows stored (not shadow models').", labels=["connection"]
    )
    for connection_id in f.connections:
        scores.add_metric([name(connection_id)], f.scores.get(connection_id, 0))
    failed = GaugeMetricFamily(
        "leadlift_writeback_failed_records",
        "CRM records whose last write-back the CRM refused.",
        labels=["connection"],
    )
    for connection_id in f.connections:
        failed.add_metric([name(connection_id)], f.writeback_failed.get(connection_id, 0))
    yield from (scores, failed)

    runs = CounterMetricFamily(
        "leadlift_pipeline_runs",
        "Pipeline step runs by status (ok, error, running).",
        labels=["connection", "step", "status"],
    )
    failures = CounterMetricFamily(
        "leadlift_pipeline_run_failures",
        "Pipeline step runs that ended in an error.",
        labels=["connection", "step"],
    )
    by_step: dict[tuple[str, str], int] = defaultdict(int)
    for (connection_id, step, status), n in sorted(f.runs.items()):
        runs.add_metric([name(connection_id), step, status], n)
        by_step[name(connection_id), step] += n if status == "error" else 0
    for labels, n in by_step.items():
        failures.add_metric(list(labels), n)
    yield from (runs, failures)

    triggers = CounterMetricFamily(
        "leadlift_trigger_events",
        "Scheduled or event-driven job decisions, by whether the job fired.",
        labels=["connection", "job", "fired"],
    )
    for (connection_id, job, fired), n in sorted(f.triggers.items()):
        triggers.add_metric([name(connection_id), job, "true" if fired else "false"], n)
    yield triggers


def registry_for(store: Store, settings: Settings) -> CollectorRegistry:
    # A registry per app (not the global one): tests and several apps in one process
    # each report their own store.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, settings))
    return registry


@bp.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions.get("leadlift_metrics")
    if registry is None:
        registry = current_app.extensions["leadlift_metrics"] = registry_for(
            app_store(), app_settings()
        )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), content_type=content_type)
