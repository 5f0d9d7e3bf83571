"""UpliftModel: the estimator contract, column mapping, refusals, and each learner's signal."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from integration.modeling.metrics import qini_auc_score
from integration.modeling.uplift import UpliftModel, _qini_weighted, best_action

FAST = {"n_estimators": 30, "n_boot": 20}


def make_data(n: int = 4000, seed: int = 0):
    """Two actions listed in non-sorted order of appearance: b_good helps where x0 > 0,
    a_bad hurts everywhere; x1 drives the baseline, x2 is noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    arm = rng.choice(np.array(["b_good", "control", "a_bad"], dtype=object), n, p=[0.4, 0.2, 0.4])
    arm[0] = "b_good"  # first appearance: b_good, then control, then a_bad
    logit = -1.0 + 0.8 * X["x1"].to_numpy()
    logit = logit + np.where(arm == "b_good", 1.5 * (X["x0"].to_numpy() > 0), 0.0)
    logit = logit + np.where(arm == "a_bad", -1.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, arm, y


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.mark.parametrize("learner", ["t", "s", "x", "dr", "gam", "ensemble"])
def test_columns_are_sorted_actions_and_carry_their_own_effect(data, learner):
    X, arm, y = data
    model = UpliftModel(learner=learner, **FAST).fit(X, arm, y)
    uplift = model.predict(X)
    assert model.actions_ == ["a_bad", "b_good"]
    assert list(uplift.columns) == ["a_bad", "b_good"]
    assert uplift.index.equals(X.index)
    assert uplift["a_bad"].mean() < -0.05
    assert uplift["b_good"].mean() > 0.05
    positive = X["x0"] > 0
    # The true gap is about 0.3; every learner must find a clear part of it.
    assert uplift.loc[positive, "b_good"].mean() > uplift.loc[~positive, "b_good"].mean() + 0.05
    assert model.learner_ == learner


def test_auto_chooses_on_validation_and_records_it(data):
    X, arm, y = data
    model = UpliftModel(**FAST).fit(X, arm, y)
    table = model.validation_
    assert list(table.index) == ["s", "gam", "ensemble"]
    assert list(table.columns) == ["qini", "qini_se", "diff_vs_ensemble", "diff_se", "chosen"]
    assert table["chosen"].sum() == 1
    assert table.index[table["chosen"]][0] == model.learner_
    assert (table["qini_se"] > 0).all()
    assert table.loc["ensemble", "diff_vs_ensemble"] == 0.0


def test_auto_keeps_the_ensemble_unless_a_learner_is_clearly_better(data):
    X, arm, y = data
    # An unreachable margin: the ensemble must be kept whatever the scores say.
    model = UpliftModel(selection_margin=1e9, **FAST).fit(X, arm, y)
    assert model.learner_ == "ensemble"
    # A margin of minus infinity picks the best single learner instead.
    model = UpliftModel(selection_margin=-np.inf, **FAST).fit(X, arm, y)
    singles = model.validation_.drop(index="ensemble")
    assert model.learner_ == singles["diff_vs_ensemble"].idxmax()


def test_auto_copes_with_a_rare_outcome_and_a_tiny_arm():
    rng = np.random.default_rng(5)
    n = 1500
    X = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n)})
    arm = np.where(np.arange(n) < 120, "offer", rng.choice(["control", "call"], n)).astype(object)
    y = (rng.random(n) < 0.04).astype(int)
    y[:120] = 0
    y[0] = 1  # the small arm has a single conversion: that cell cannot be split in two
    model = UpliftModel(**FAST).fit(X, arm, y)
    assert model.actions_ == ["call", "offer"]
    assert model.validation_["chosen"].sum() == 1
    assert np.isfinite(model.predict(X).to_numpy()).all()


def test_gam_finds_the_effect_modifier_and_not_the_noise(data):
    X, arm, y = data
    model = UpliftModel(learner="gam", **FAST).fit(X, arm, y)
    features = {X.columns[j] for _, j in model.estimator_.modifiers_}
    assert "x0" in features
    assert "x2" not in features


def test_fit_refuses_data_without_a_holdout(data):
    X, arm, y = data
    renamed = np.where(arm == "control", "holdout", arm)
    with pytest.raises(ValueError, match="no holdout rows"):
        UpliftModel(learner="t", **FAST).fit(X, renamed, y)
    # ...and accepts it once told what the holdout is called.
    UpliftModel(learner="t", control="holdout", **FAST).fit(X, renamed, y)


def test_fit_refuses_an_action_with_too_few_rows(data):
    X, arm, y = data
    few = arm.copy()
    few[:50] = "rare"
    with pytest.raises(ValueError, match="too few rows"):
        UpliftModel(learner="t", min_rows=100, **FAST).fit(X, few, y)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, arm, y: (X.assign(x2=X["x2"].astype(str)), arm, y), "non-numeric"),
        (lambda X, arm, y: (X, arm, y * 2), "binary"),
        (lambda X, arm, y: (X, arm[:-1], y), "one value per row"),
        (lambda X, arm, y: (X.to_numpy(), arm, y), "DataFrame"),
        (lambda X, arm, y: (X, np.where(arm == "a_bad", None, arm), y), "missing"),
        (lambda X, arm, y: (X, np.full(arm.shape, "control", dtype=object), y), "no action"),
    ],
)
def test_fit_validates_inputs(data, change, message):
    X, arm, y = change(*data)
    with pytest.raises(ValueError, match=message):
        UpliftModel(learner="t", **FAST).fit(X, arm, y)


def test_unknown_learner_is_refused(data):
    with pytest.raises(ValueError, match="learner must be one of"):
        UpliftModel(learner="forest").fit(*data)


def test_observational_data_warn_and_use_an_estimated_propensity(data):
    X, arm, y = data
    with pytest.warns(UserWarning, match="observational: estimates may be confounded"):
        model = UpliftModel(learner="x", **FAST).fit(X, arm, y, randomized=False)
    assert model.randomized_ is False
    assert model.estimator_.propensity_.models_ is not None
    assert np.isfinite(model.predict(X).to_numpy()).all()


def test_predict_needs_a_fit_and_the_same_columns(data):
    X, arm, y = data
    with pytest.raises(NotFittedError):
        UpliftModel().predict(X)
    model = UpliftModel(learner="t", **FAST).fit(X, arm, y)
    with pytest.raises(ValueError, match="columns differ"):
        model.predict(X[["x2", "x1", "x0"]])


def test_x_and_dr_learners_never_use_hard_labels(data, monkeypatch):
    # Trap #1 of the peer review: DR pseudo-outcomes built from predict() (0/1 labels).
    def labels(*args, **kwargs):
        raise AssertionError("a classifier's hard labels were used")

    monkeypatch.setattr(lightgbm.LGBMClassifier, "predict", labels)
    X, arm, y = data
    for learner in ("x", "dr"):
        UpliftModel(learner=learner, **FAST).fit(X, arm, y).predict(X)


def test_lightgbm_runs_single_threaded_by_default(data):
    X, arm, y = data
    model = UpliftModel(learner="s", **FAST).fit(X, arm, y)
    assert model.n_jobs == 1
    assert model.estimator_.model_.get_params()["n_jobs"] == 1


def test_same_seed_same_predictions_and_clone_keeps_params(data):
    X, arm, y = data
    first = UpliftModel(**FAST).fit(X, arm, y).predict(X)
    second = UpliftModel(**FAST).fit(X, arm, y).predict(X)
    pd.testing.assert_frame_equal(first, second)
    model = UpliftModel(learner="gam", control="holdout", gam_alpha=0.01)
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "actions_")


def test_gam_copes_with_missing_values_and_few_valued_columns():
    X, arm, y = make_data(n=3000, seed=1)
    X = X.assign(flag=(X["x1"] > 0.5).astype(float), tier=np.floor(X["x2"].abs()).clip(0, 3))
    X.loc[X.index[::7], "x1"] = np.nan
    model = UpliftModel(learner="gam", **FAST).fit(X, arm, y)
    assert np.isfinite(model.predict(X).to_numpy()).all()


def test_best_action_picks_the_largest_uplift_or_none():
    uplift = pd.DataFrame(
        {"call": [0.03, -0.01, 0.00], "email": [0.01, -0.02, 0.02]}, index=[10, 11, 12]
    )
    out = best_action(uplift, min_uplift=0.005)
    assert out["action"].tolist() == ["call", None, "email"]
    assert out["uplift"].tolist() == [0.03, -0.01, 0.02]
    assert out.index.tolist() == [10, 11, 12]


def test_weighted_qini_equals_the_metric_on_repeated_rows():
    rng = np.random.default_rng(4)
    y, t = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    score = np.round(rng.normal(size=300), 1)  # ties
    ones = np.ones((1, 300))
    assert _qini_weighted(y, t.astype(float), score, ones)[0] == pytest.approx(
        qini_auc_score(y, score, t)
    )
    counts = rng.integers(0, 3, 300)
    rows = np.repeat(np.arange(300), counts)
    assert _qini_weighted(y, t.astype(float), score, counts[None, :].astype(float))[
        0
    ] == pytest.approx(qini_auc_score(y[rows], score[rows], t[rows]))


def test_score_tests_equal_the_direct_statistic(data):
    """The shared single-precision products give the p-values of the textbook formula:
    U = W'(y - p), I* = W'VW + penalty I - W'VZ H^-1 Z'VW, U' I*^+ U ~ chi2(rank)."""
    from scipy.stats import chi2

    from integration.modeling.uplift import (
        _AdditiveLogit,
        _Basis,
        _penalized_logistic,
        _ScoreTests,
    )

    X, arm, y = data
    owner = UpliftModel()
    owner.actions_ = ["a_bad", "b_good"]
    code = np.select([arm == "a_bad", arm == "b_good"], [1, 2], 0)
    values, y = X.to_numpy(), y.astype(float)
    learner = _AdditiveLogit(owner)
    learner.shares_ = np.array([np.mean(code == 1), np.mean(code == 2)])
    learner.modifiers_ = [(1, 1)]  # one modifier in the model already
    blocks = _Basis(8).fit(values).transform(values)
    w = learner._w(code)
    assert [np.unique(w[:, a]).size for a in range(3)] == [2, 2, 2]
    Z1 = learner._design(blocks, w)
    _, p, hessian = _penalized_logistic(Z1, y, 1.0)
    candidates = [(a, j) for a in range(3) for j in range(3) if (a, j) != (1, 1)]
    tests = _ScoreTests(np.hstack(blocks), [b.shape[1] for b in blocks], w, y, 1.0)
    got, steps = tests.run(Z1.astype(np.float32), p, hessian, candidates)
    v = p * (1 - p)
    for i, (a, j) in enumerate(candidates):
        W = w[:, [a]] * blocks[j]
        score = W.T @ (y - p)
        cross = (W * v[:, None]).T @ Z1
        info = (
            (W * v[:, None]).T @ W + np.eye(W.shape[1]) - cross @ np.linalg.solve(hessian, cross.T)
        )
        statistic = score @ np.linalg.pinv(info) @ score
        expected = chi2.sf(statistic, np.linalg.matrix_rank(info))
        assert got[i] == pytest.approx(expected, rel=1e-3, abs=1e-12), (a, j)
        np.testing.assert_allclose(steps[i], np.linalg.pinv(info) @ score, rtol=1e-3, atol=1e-4)
    # x0 modifies b_good's effect (group 1 is b_good: actions sorted, 0-based)
    assert got[candidates.index((1, 0))] < 1e-6
