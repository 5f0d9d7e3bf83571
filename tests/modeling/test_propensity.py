"""PropensityModel: time-based choice, honest calibration, exact reasons."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from integration.errors import ModelError
from integration.features import build_features, frames_from_seed, training_panel
from integration.modeling import PropensityModel, expected_calibration_error
from integration.world import generate_world

T0 = pd.Timestamp("2025-01-01", tz="UTC")


def synthetic(n: int = 6000, seed: int = 0, interaction: bool = False):
    """Leads with a tier, visit counts and noise; P(y) is logistic in them (or an XOR)."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["A", "B", "C", "D"], n, p=[0.1, 0.2, 0.3, 0.4])
    visits = rng.poisson(1.0, n).astype(float)
    a, b = rng.random(n), rng.random(n)
    if interaction:
        logit = -2.0 + 3.0 * ((a > 0.5) ^ (b > 0.5))
    else:
        effect = pd.Series(tier).map({"A": 1.2, "B": 0.6, "C": 0.0, "D": -0.6}).to_numpy()
        logit = -3.2 + effect + 0.7 * visits
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"tier": tier, "visits": visits, "a": a, "b": b})
    time = pd.Series(T0 + pd.to_timedelta(np.sort(rng.uniform(0, 400, n)), unit="D"))
    return X, y, time


@pytest.fixture(scope="module")
def fitted():
    X, y, time = synthetic()
    return PropensityModel(gap_days=10).fit(X, y, time=time), (X, y, time)


def test_fit_validates_on_the_latest_rows_and_reports_every_candidate(fitted) -> None:
    model, (X, _, time) = fitted
    split = model.validation_["split"]
    validation_from = pd.Timestamp(split["validation_from"])
    assert split["kind"] == "time"
    assert split["validation_rows"] == (time >= validation_from).sum()
    assert split["fit_rows"] == (time < validation_from - pd.Timedelta(days=10)).sum()
    assert split["fit_rows"] + split["validation_rows"] < len(X)  # the gap is left out
    for name in ("lightgbm", "logistic_regression"):
        assert set(model.validation_[name]) >= {"auc", "brier", "ece", "log_loss"}
    best = max(("lightgbm", "logistic_regression"), key=lambda c: model.validation_[c]["auc"])
    assert model.estimator_name_ == model.validation_["chosen"] == best
    assert list(model.feature_names_in_) == list(X.columns) and model.n_features_in_ == 4
    assert model.categorical_features_ == ["tier"]
    assert set(model.library_versions_) >= {"lightgbm", "scikit-learn", "numpy", "pandas"}


def test_an_interaction_only_trees_can_see_is_won_by_lightgbm() -> None:
    X, y, time = synthetic(4000, seed=1, interaction=True)
    model = PropensityModel().fit(X, y, time=time)
    assert model.estimator_name_ == "lightgbm"
    assert model.validation_["lightgbm"]["auc"] > model.validation_["logistic_regression"]["auc"]


def test_calibration_uses_only_rows_the_model_never_trained_on(fitted) -> None:
    model, _ = fitted
    split = model.validation_["split"]
    assert model.calibrator_.rows_ == split["validation_rows"]
    assert model.calibration_ in ("isotonic", "sigmoid")
    assert model.validation_["calibration"]["method"] == model.calibration_
    assert model.validation_["calibration"]["why"]


def test_a_probability_means_what_it_says_on_new_rows(fitted) -> None:
    model, _ = fitted
    X, y, _ = synthetic(30_000, seed=9)
    p = model.predict_proba(X)[:, 1]
    assert expected_calibration_error(y, p) < 0.02
    assert abs(p.mean() - y.mean()) < 0.01
    assert roc_auc_score(y, p) > 0.7
    proba = model.predict_proba(X.head(5))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X.head(50))) <= {0, 1}


def test_the_calibration_method_can_be_set_and_is_stated() -> None:
    X, y, time = synthetic(3000, seed=2)
    assert PropensityModel(calibration="isotonic").fit(X, y, time).calibration_ == "isotonic"
    few = PropensityModel(isotonic_min_positives=10_000).fit(X, y, time)
    assert few.calibration_ == "sigmoid"
    assert "positives" in few.validation_["calibration"]["why"]
    with pytest.raises(ValueError, match="calibration"):
        PropensityModel(calibration="beta").fit(X, y, time)


def test_ties_inside_an_isotonic_step_keep_the_model_order() -> None:
    X, y, time = synthetic(3000, seed=4)
    model = PropensityModel(calibration="isotonic", candidates=("logistic_regression",))
    model.fit(X, y, time)
    raw = model.estimator_.predict_proba(model._linear_input(X))[:, 1]
    calibrated = model.predict_proba(X)[:, 1]
    order = np.argsort(raw, kind="stable")
    step = np.diff(calibrated[order])
    assert (step >= 0).all()  # never an inversion
    assert (step[np.diff(raw[order]) > 1e-6] > 0).all()  # and no tie the model did not have


def test_unseen_categories_missing_columns_and_column_order(fitted) -> None:
    model, (X, _, _) = fitted
    novel = X.head(3).assign(tier=["Z", None, "A"])
    assert np.isfinite(model.predict_proba(novel)).all()
    shuffled = X.head(20)[["b", "a", "visits", "tier"]]
    np.testing.assert_allclose(model.predict_proba(shuffled), model.predict_proba(X.head(20)))
    with pytest.raises(ValueError, match="visits"):
        model.predict_proba(X.drop(columns="visits"))


def test_a_slice_without_positives_is_an_error_not_a_model() -> None:
    X, y, time = synthetic(2000, seed=3)
    y = y.copy()
    y[time >= time.quantile(0.7)] = 0
    with pytest.raises(ModelError, match="validation slice"):
        PropensityModel().fit(X, y, time=time)


def test_lightgbm_contributions_add_up_to_its_raw_log_odds(fitted) -> None:
    X, y, time = synthetic(4000, seed=1, interaction=True)
    model = PropensityModel(candidates=("lightgbm",)).fit(X, y, time)
    contributions = model.contributions(X.head(50))
    raw = model.estimator_.predict(model._encode(X.head(50)), raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-8)
    assert list(contributions.columns) == [*X.columns, "bias"]


def test_linear_contributions_are_exact_and_one_hot_groups_collapse() -> None:
    X, y, time = synthetic(3000, seed=5)
    model = PropensityModel(candidates=("logistic_regression",)).fit(X, y, time)
    contributions = model.contributions(X.head(40))
    raw = model.estimator_.decision_function(model._linear_input(X.head(40)))
    np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-8)
    assert list(contributions.columns) == [*X.columns, "bias"]
    # Tier A leads get a positive tier contribution, tier D a negative one.
    tier = X.head(40)["tier"].to_numpy()
    assert (contributions["tier"][tier == "A"] > 0).all()
    assert (contributions["tier"][tier == "D"] < 0).all()


def test_reason_codes_do_not_depend_on_the_model_or_column_order() -> None:
    X, y, time = synthetic(4000, seed=6)
    X = X.rename(columns={"visits": "eng_page_view_all"})
    one = PropensityModel(candidates=("logistic_regression",)).fit(X, y, time)
    other = PropensityModel(candidates=("lightgbm",)).fit(X[X.columns[::-1]], y, time)
    rows = X[X["tier"] == "A"].head(20)
    for model in (one, other):
        reasons = model.reasons(rows, top=2)
        codes = [{r.code for r in rs} for rs in reasons]
        assert sum("tier.a" in c for c in codes) >= 15
        tier = [r for rs in reasons for r in rs if r.code == "tier.a"]
        assert all(r.text == "+ tier A account" and r.weight > 0 for r in tier)


def test_the_sklearn_contract_clone_and_pickle(fitted) -> None:
    model, (X, _, _) = fitted
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "estimator_")
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X.head(30)), model.predict_proba(X.head(30)))


def test_on_a_synthetic_world_it_learns_the_known_propensity() -> None:
    world = generate_world(n_leads=4000, seed=21)
    frames = frames_from_seed(world.seed)
    panel = training_panel(frames, world.seed.now, 21)
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    model = PropensityModel(gap_days=21).fit(X, panel["label"], time=panel["cutoff"])

    fresh = panel["snapshot_age"] == 1
    p = model.predict_proba(X[fresh])[:, 1]
    keys = panel.loc[fresh, "lead_crm_id"].str[1:].astype(int).to_numpy()
    truth = world.truth["p0"].to_numpy()[keys]
    assert spearmanr(p, truth).statistic > 0.5
    reasons = model.reasons(X[fresh].head(200), top=3)
    assert all(len(r) == 3 for r in reasons)
    assert all("." in r.code and r.text[0] in "+−" for rs in reasons for r in rs)
    # A lead's age moves its score but is left out of its reasons unless asked for.
    assert not any(r.code.startswith("age.") for rs in reasons for r in rs)
    with_age = model.reasons(X[fresh].head(200), top=3, exclude=())
    assert any(r.code.startswith("age.") for rs in with_age for r in rs)
