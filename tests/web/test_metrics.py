"""``/metrics``: the store's figures in the Prometheus text format, for a known store."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration.config import load_settings
from integration.store import Store
from integration.store.models import (
    ApiUsage,
    Connection,
    PipelineRun,
    Score,
    SyncCursor,
    TriggerEvent,
    WebhookEvent,
    Writeback,
    utcnow,
)
from integration.web import create_app

LEAD = "00Q5e00000SECRET"


def _fill(store: Store) -> None:
    now = utcnow()
    recent = now - timedelta(minutes=10)
    with store.session() as session:
        acme = Connection(name="acme", crm="salesforce", settings={
            "crm_api_usage": {"used": 1200, "limit": 15000, "at": now.isoformat()}
        })  # fmt: skip
        portal = Connection(name="portal", crm="hubspot", settings={})
        session.add_all([acme, portal])
        session.flush()
        a, p = acme.id, portal.id

        def event(n: int, connection_id: int | None, source: str, **kw) -> WebhookEvent:
            return WebhookEvent(connection_id=connection_id, source=source, event_id=f"e{n}",
                                lead_crm_id=LEAD, **kw)  # fmt: skip

        session.add_all([
            SyncCursor(connection_id=a, object="Lead", last_status="ok",
                       last_finished_at=now - timedelta(seconds=600),
                       watermark=now - timedelta(seconds=3600)),
            SyncCursor(connection_id=a, object="Task", last_status="error"),
            ApiUsage(connection_id=a, hour=now - timedelta(hours=1), calls=30),
            ApiUsage(connection_id=a, hour=now - timedelta(hours=2), calls=12),
            ApiUsage(connection_id=a, hour=now - timedelta(hours=30), calls=999),
            *(
                event(n, a, "salesforce-cdc", received_at=recent,
                      processed_at=recent + timedelta(seconds=s))
                for n, s in enumerate((1, 2, 9))
            ),
            # Processed long ago: counted as processed, outside the latency window.
            event(3, a, "salesforce-cdc", received_at=now - timedelta(hours=3),
                  processed_at=now - timedelta(hours=3) + timedelta(seconds=100)),
            event(4, a, "salesforce-cdc", received_at=recent),
            event(5, a, "salesforce-cdc", received_at=recent, processed_at=recent,
                  error="PermanentError: gone"),
            event(6, p, "hubspot", received_at=recent),
            event(7, None, "salesforce-flow", received_at=recent),
            *(Score(connection_id=a, lead_crm_id=f"L{n}", crm_object="Lead", propensity=0.5,
                    shadow=n >= 5) for n in range(7)),
            Writeback(connection_id=a, crm_object="Lead", crm_id="L1", status="error",
                      error="FIELD_CUSTOM_VALIDATION_EXCEPTION: no"),
            Writeback(connection_id=a, crm_object="Lead", crm_id="L2", status="error"),
            Writeback(connection_id=a, crm_object="Lead", crm_id="L3", status="ok"),
            *(PipelineRun(connection_id=a, step=step, status=status)
              for step, status in (("sync", "ok"), ("sync", "ok"), ("sync", "error"),
                                   ("writeback", "error"), ("score", "ok"))),
            *(TriggerEvent(connection_id=a, job=job, fired=fired, reason="test")
              for job, fired in (("recalibrate", True), ("recalibrate", True),
                                 ("recalibrate", False), ("rescore", True))),
        ])  # fmt: skip


def _scrape(store: Store, settings, **headers) -> tuple[dict, str, str]:
    response = create_app(settings, store).test_client().get("/metrics", headers=headers)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return samples, text, response.headers["Content-Type"]


def test_metrics_report_the_stores_figures(store: Store, settings) -> None:
    _fill(store)
    samples, text, content_type = _scrape(store, settings)

    def value(name: str, **labels: str) -> float:
        return samples[name, tuple(sorted(labels.items()))]

    assert content_type.startswith("text/plain; version=0.0.4")
    assert value("leadlift_store_up") == 1
    assert 600 <= value("leadlift_sync_lag_seconds", connection="acme", object="Lead") < 700
    age = value("leadlift_sync_watermark_age_seconds", connection="acme", object="Lead")
    assert 3600 <= age < 3700
    assert (
        "leadlift_sync_lag_seconds",
        (("connection", "acme"), ("object", "Task")),
    ) not in samples
    assert value("leadlift_sync_error", connection="acme", object="Task") == 1
    assert value("leadlift_sync_error", connection="acme", object="Lead") == 0

    assert value("leadlift_api_calls_24h", connection="acme") == 42
    assert value("leadlift_api_calls_24h", connection="portal") == 0
    cap = math.floor(settings.salesforce_api_share * 15000)
    assert value("leadlift_api_calls_cap", connection="acme") == cap
    assert value("leadlift_crm_api_calls_used", connection="acme") == 1200
    assert value("leadlift_crm_api_calls_limit", connection="acme") == 15000
    assert not any(k[0] == "leadlift_crm_api_calls_limit" and ("connection", "portal") in k[1]
                   for k in samples)  # fmt: skip

    cdc = {"connection": "acme", "source": "salesforce-cdc"}
    assert value("leadlift_webhook_events_received_total", **cdc) == 6
    assert value("leadlift_webhook_events", **cdc, state="processed") == 4
    assert value("leadlift_webhook_events", **cdc, state="pending") == 1
    assert value("leadlift_webhook_events", **cdc, state="failed") == 1
    assert value("leadlift_webhook_events", connection="portal", source="hubspot",
                 state="pending") == 1  # fmt: skip
    assert value("leadlift_webhook_events", connection="", source="salesforce-flow",
                 state="pending") == 1  # fmt: skip
    latency = "leadlift_webhook_processing_latency_seconds"
    assert value(f"{latency}_count", connection="acme") == 3  # the old event is outside
    assert value(f"{latency}_sum", connection="acme") == pytest.approx(12)
    assert value(latency, connection="acme", quantile="0.5") == pytest.approx(2)
    assert value(latency, connection="acme", quantile="0.99") == pytest.approx(8.86)

    assert value("leadlift_scores_written_total", connection="acme") == 5  # not the shadows
    assert value("leadlift_scores_written_total", connection="portal") == 0
    assert value("leadlift_writeback_failed_records", connection="acme") == 2
    assert value("leadlift_pipeline_runs_total", connection="acme", step="sync", status="ok") == 2
    failures = "leadlift_pipeline_run_failures_total"
    assert value(failures, connection="acme", step="sync") == 1
    assert value(failures, connection="acme", step="writeback") == 1
    assert value(failures, connection="acme", step="score") == 0
    triggers = "leadlift_trigger_events_total"
    assert value(triggers, connection="acme", job="recalibrate", fired="true") == 2
    assert value(triggers, connection="acme", job="recalibrate", fired="false") == 1
    assert value(triggers, connection="acme", job="rescore", fired="true") == 1

    assert LEAD not in text and "FIELD_CUSTOM" not in text and "gone" not in text


def test_metrics_are_open_to_scrapers_and_speak_openmetrics(tmp_path) -> None:
    # The admin UI is locked; /metrics, like /healthz, answers without a login.
    settings = load_settings(home=tmp_path, admin_token="tok", admin_password="pw")
    store = Store(settings.store_url)
    store.upgrade()
    samples, text, content_type = _scrape(
        store, settings, Accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")
    assert samples["leadlift_store_up", ()] == 1


def test_an_unreadable_store_is_reported_not_a_500(tmp_path, settings) -> None:
    store = Store(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    samples, _, _ = _scrape(store, settings)
    assert samples == {("leadlift_store_up", ()): 0}
