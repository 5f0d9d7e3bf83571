"""Recalibration triggers: a model judged on the outcomes that followed its scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from integration.connections import save_connection
from integration.monitoring import check_health, log_trigger, recent_triggers
from integration.registry import ACTIVE, register
from integration.store import Store
from integration.store.models import ModelVersion, Outcome, Score

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _setup(settings, informative: bool, trained_days_ago: int = 10):
    store = Store(settings.store_url)
    store.upgrade()
    cid = save_connection(store, settings, "c", "salesforce", {"access_token": "x"}, "https://x")
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [0.2], [0.9]]), [0, 1, 0, 1])
    row = register(
        store, cid, "propensity", model, status=ACTIVE, cutoff=NOW, train_start=NOW,
        train_end=NOW, metrics={"held_out": {"auc": 0.76, "ece": 0.01}}, readiness={},
        features={}, params={}, library_versions={},
    )  # fmt: skip
    with store.session() as session:
        stored = session.get(ModelVersion, row.id)
        stored.trained_at = NOW - timedelta(days=trained_days_ago)
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.6, 1200)
    met = rng.uniform(size=1200) < (p if informative else 0.3)
    scored_at = NOW - timedelta(days=40)
    with store.session() as session:
        for i in range(1200):
            session.add(Score(connection_id=cid, lead_crm_id=f"L{i}", crm_object="Lead",
                              model_version_id=row.id, propensity=float(p[i]),
                              scored_at=scored_at))  # fmt: skip
            if met[i]:
                session.add(Outcome(connection_id=cid, crm_object="Event", crm_id=f"E{i}",
                                    crm_modified_at=scored_at, lead_crm_id=f"L{i}",
                                    kind="meeting_booked",
                                    occurred_at=scored_at + timedelta(days=3)))  # fmt: skip
    return store, cid


def test_a_model_that_still_ranks_and_is_calibrated_is_left_alone(settings) -> None:
    store, cid = _setup(settings, informative=True)
    check = check_health(store, settings, cid, NOW)
    assert check.fresh["leads"] == 1200 and check.fresh["auc"] > 0.7
    assert not check.fire, check.reasons


def test_an_auc_drop_on_fresh_outcomes_fires_and_is_logged(settings) -> None:
    store, cid = _setup(settings, informative=False)
    check = check_health(store, settings, cid, NOW)
    assert check.fire and any("AUC on fresh outcomes" in r for r in check.reasons)
    log_trigger(store, cid, "recalibrate", "; ".join(check.reasons), check.details)
    (event,) = recent_triggers(store, cid)
    assert event.job == "recalibrate" and "AUC" in event.reason
    assert event.details["fresh"]["leads"] == 1200


def test_too_few_fresh_outcomes_judge_nothing_but_age_still_counts(settings) -> None:
    store, cid = _setup(settings, informative=False, trained_days_ago=120)
    strict = settings.model_copy(update={"monitor_min_outcomes": 5000})
    check = check_health(store, strict, cid, NOW)
    assert "too few to judge" in check.details["judged"]
    assert check.reasons == ["model v1 is 120 days old; recalibration is due every 90 days"]


def test_outcomes_still_inside_their_window_are_not_judged(settings) -> None:
    store, cid = _setup(settings, informative=False)
    early = NOW - timedelta(days=30)  # the scores are 10 days old then: windows still open
    assert check_health(store, settings, cid, early).fresh["leads"] == 0


@pytest.mark.parametrize("name", ["sync-every-connection", "nightly-rescore", "monitor-models",
                                  "sweep-webhook-events"])  # fmt: skip
def test_every_scheduled_job_names_a_registered_task(settings, name) -> None:
    import tasks.pipeline
    import tasks.scoring
    import tasks.webhooks  # noqa: F401
    from tasks.app import beat_schedule, make_celery

    app = make_celery(settings)
    assert beat_schedule(settings)[name]["task"] in app.tasks
