"""Model registry and model cards, on a real store with a small fitted model."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from integration.connections import save_connection
from integration.errors import NotFoundError
from integration.model_card import html_card, text_card
from integration.registry import ACTIVE, RETIRED, SHADOW, activate, active, load, register, versions
from integration.store import Store

T = datetime(2026, 6, 1, tzinfo=UTC)
METRICS = {
    "held_out": {"auc": 0.81, "brier": 0.03, "ece": 0.004},
    "calibration": [{"predicted": 0.01, "observed": 0.012, "n": 100},
                    {"predicted": 0.2, "observed": 0.18, "n": 100}],
    "buckets": [{"bucket": "Low", "rows": 50, "conversion": 0.01},
                {"bucket": "High", "rows": 50, "conversion": 0.2}],
    "importance": [{"feature": "tier", "importance": 0.4}],
    "by_segment": {"region": [{"segment": "EMEA", "rows": 40, "predicted": 0.1,
                               "observed": 0.2, "z": 2.5, "flag": "under"}]},
}  # fmt: skip
READINESS = {
    "mode": "ml",
    "checks": [{"name": "closed-won count", "value": 250, "threshold": 200, "status": "pass",
                "fix": ""}],
}  # fmt: skip


@pytest.fixture
def setup(settings):
    store = Store(settings.store_url)
    store.upgrade()
    cid = save_connection(store, settings, "c", "salesforce", {"access_token": "x"}, "https://x")
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [0.2], [0.9]]), [0, 1, 0, 1])
    return store, cid, model


def _register(store, cid, model, status):
    return register(
        store, cid, "propensity", model, status=status, cutoff=T, train_start=T, train_end=T,
        metrics=METRICS, readiness=READINESS, features={"numeric": ["x"]},
        params={"estimator": "logistic", "label": "meeting within 21 days"},
        library_versions={"scikit-learn": "1.9"},
    )  # fmt: skip


def test_one_active_version_per_kind_and_shadows_stay_aside(setup) -> None:
    store, cid, model = setup
    first = _register(store, cid, model, ACTIVE)
    second = _register(store, cid, model, SHADOW)
    assert (first.version, second.version) == (1, 2)
    assert active(store, cid).version == 1
    third = _register(store, cid, model, ACTIVE)
    statuses = {v.version: v.status for v in versions(store, cid)}
    assert statuses == {1: RETIRED, 2: SHADOW, 3: ACTIVE}
    assert active(store, cid).version == third.version
    assert load(active(store, cid)).predict([[1.0]]).tolist() == [1]


def test_an_admin_can_activate_any_version(setup) -> None:
    store, cid, model = setup
    _register(store, cid, model, ACTIVE)
    _register(store, cid, model, SHADOW)
    activate(store, cid, "propensity", 2)
    assert {v.version: v.status for v in versions(store, cid)} == {1: RETIRED, 2: ACTIVE}
    with pytest.raises(NotFoundError):
        activate(store, cid, "propensity", 9)


def test_model_card_renders_text_and_html_with_plots(setup) -> None:
    store, cid, model = setup
    _register(store, cid, model, ACTIVE)
    row = active(store, cid)
    text = text_card(row)
    assert "propensity model v1 — active" in text and "auc 0.8100" in text
    assert "calibration flags: region=EMEA (under)" in text
    assert "readiness pass closed-won count: 250 (threshold 200)" in text
    page = html_card(row)
    assert page.count("data:image/png;base64,") == 3  # calibration, buckets, importance
    assert "<h3>Data readiness</h3>" in page and "Calibration by region" in page
