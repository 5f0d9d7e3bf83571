"""Uplift and calibration metrics against hand-computed cases (and scikit-uplift when present)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from integration.modeling.metrics import (
    best_action_gain,
    bootstrap_se,
    bucket_conversion,
    calibration_by_segment,
    expected_calibration_error,
    perfect_qini_curve,
    policy_value,
    qini_auc_score,
    qini_curve,
    true_at_k,
    true_policy_value,
    uplift_at_k,
    uplift_auc_score,
    uplift_calibration,
    uplift_curve,
)

# Four rows, scores descending as listed: T responder, C non-responder, T non-responder,
# C responder.
Y = np.array([1, 0, 0, 1])
T = np.array([1, 0, 1, 0])
U = np.array([0.4, 0.3, 0.2, 0.1])


def test_qini_curve_by_hand():
    # i=1: r_T=1, no control yet -> 1. i=2: 1 - 0*1/1 = 1. i=3: 1 - 0 = 1.
    # i=4: r_T=1, r_C=1, n_T=2, n_C=2 -> 1 - 1*2/2 = 0.
    x, q = qini_curve(Y, U, T)
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, 1, 0]


def test_qini_auc_by_hand():
    # The model ranks like the perfect score y*t - y*(1-t) (T responder first, C
    # responder last): perfect curve (0,0) (1,1) (3,1) (4,0), area 3; random line to
    # (4, Q(N)=0) has area 0; the model's curve [0,1,1,1,0] also has area 3 -> 1.
    assert qini_auc_score(Y, U, T) == pytest.approx(1.0)
    # Reversed: C responder, T non-responder, C non-responder, T responder:
    # Q = 0, 0 - 1*0/1, 0 - 1*1/1, 0 - 1*1/2, 1 - 1*2/2 -> area 0 - 0.5 - 0.75 - 0.25.
    _, q = qini_curve(Y, -U, T)
    assert q.tolist() == [0, 0, -1, -0.5, 0]
    assert qini_auc_score(Y, -U, T) == pytest.approx(-1.5 / 3.0)


def test_ties_collapse_into_one_step():
    tied = np.array([0.5, 0.5, 0.5, 0.5])
    x, q = qini_curve(Y, tied, T)
    assert x.tolist() == [0, 4]
    assert q.tolist() == [0, 0]
    # All tied = the random line: area above random is zero.
    assert qini_auc_score(Y, tied, T) == pytest.approx(0.0)


def test_uplift_curve_by_hand():
    # i=1: (1/1 - 0) * 1 = 1; i=2: (1/1 - 0/1) * 2 = 2; i=3: (1/2 - 0/1) * 3 = 1.5;
    # i=4: (1/2 - 1/2) * 4 = 0.
    _, u = uplift_curve(Y, U, T)
    assert u.tolist() == [0, 1, 2, 1.5, 0]
    assert uplift_auc_score(Y, U, T) <= 1.0


def test_perfect_qini_without_negative_effects():
    y = np.array([1, 1, 0, 0, 1, 0])
    t = np.array([1, 1, 1, 0, 0, 0])
    # Q(N) = 2 - 1 * 3/3 = 1: polyline (0,0) -> (1,1) -> (6,1).
    x, q = perfect_qini_curve(y, t, negative_effect=False)
    assert x.tolist() == [0, 1, 6]
    assert q.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="non-negative"):
        perfect_qini_curve(1 - y, t, negative_effect=False)


def test_uplift_at_k_by_hand():
    # Top 2 of 4 (k=0.5): a T responder and a C non-responder -> 1 - 0.
    assert uplift_at_k(Y, U, T, 0.5) == 1.0
    # by_group, k=0.5: top 1 treated (responder) and top 1 control (non-responder).
    assert uplift_at_k(Y, U, T, 0.5, strategy="by_group") == 1.0
    # k as a count: top 3 -> treated 1/2, control 0/1.
    assert uplift_at_k(Y, U, T, 3) == 0.5
    # Top 1 has no control row: NaN, not a warning.
    assert math.isnan(uplift_at_k(Y, U, T, 1))
    assert policy_value(Y, U, T, 0.5) == 1000.0


def test_uplift_at_k_ties_follow_reverse_row_order():
    # Equal scores: the later row ranks first (scikit-uplift's reversed stable sort).
    y = np.array([1, 0, 0, 1])
    t = np.array([1, 1, 0, 0])
    u = np.zeros(4)
    # top 2 = rows 3, 2 (both control) -> no treated row.
    assert math.isnan(uplift_at_k(y, u, t, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": [0, 2, 1, 0]}, "only 0 and 1"),
        ({"treatment": [1, 1, 1, 1]}, "both treated"),
        ({"uplift": [0.1, 0.2, 0.3]}, "differ in length"),
        ({"uplift": [0.1, np.nan, 0.3, 0.2]}, "NaN"),
    ],
)
def test_inputs_are_validated(kwargs, message):
    args = {"y": Y, "uplift": U, "treatment": T} | kwargs
    with pytest.raises(ValueError, match=message):
        qini_auc_score(args["y"], args["uplift"], args["treatment"])


def test_k_out_of_range():
    with pytest.raises(ValueError):
        uplift_at_k(Y, U, T, 1.5)
    with pytest.raises(ValueError):
        uplift_at_k(Y, U, T, 4)


def test_true_metrics_by_hand():
    tau = np.array([0.05, 0.01, -0.02, 0.03, 0.00])
    # Top 2 by the score: rows 0 and 2 -> mean 0.015; oracle top 2: 0.05, 0.03 -> 0.04.
    score = np.array([9, 1, 8, 2, 3])
    assert true_at_k(tau, score, 0.4) == pytest.approx(0.015 / 0.04)
    assert true_at_k(tau, tau, 0.4) == pytest.approx(1.0)
    assert true_policy_value(tau, score, 0.4) == pytest.approx(15.0)
    assert math.isnan(true_at_k(-np.abs(tau) - 0.01, score, 0.4))


def test_best_action_gain_by_hand():
    tau = np.array([[0.05, -0.02], [0.00, 0.03], [-0.01, -0.04]])
    # Picks: row 0 action 1 (tau -0.02), row 1 action 1 (0.03), row 2 none (all <= 0).
    predicted = np.array([[0.01, 0.02], [0.00, 0.01], [-0.01, -0.02]])
    assert best_action_gain(tau, predicted) == pytest.approx((-0.02 + 0.03) / 3)
    assert best_action_gain(tau, tau) == pytest.approx((0.05 + 0.03) / 3)


def test_expected_calibration_error_by_hand():
    # Two equal-frequency bins of 2: {0.1, 0.2} observed 0 -> gap 0.3;
    # {0.7, 0.9} observed 2 -> gap |2 - 1.6| = 0.4; ECE = 0.7 / 4.
    y = np.array([0, 0, 1, 1])
    p = np.array([0.2, 0.1, 0.9, 0.7])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.175)
    assert expected_calibration_error(y, y.astype(float), bins=2) == pytest.approx(0.0)


def test_bucket_conversion_by_hand():
    y = np.array([0, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.12, 0.5, 1.0])
    out = bucket_conversion(y, p, [0.0, 0.1, 0.5, 1.0])
    assert out["n"].tolist() == [1, 2, 2]
    assert out["observed"].tolist() == [0.0, 0.5, 1.0]
    assert out["predicted"].tolist() == pytest.approx([0.05, 0.135, 0.75])
    assert out.loc[1, "se"] == pytest.approx(math.sqrt(0.25 / 2))


def test_calibration_by_segment_flags_bias():
    rng = np.random.default_rng(0)
    n = 4000
    segment = np.repeat(["fair", "over", "under", "tiny"], [1500, 1200, 1200, 100])
    truth = np.where(segment == "over", 0.05, np.where(segment == "under", 0.2, 0.1))
    y = (rng.random(n) < truth).astype(int)
    p = np.full(n, 0.1)
    out = calibration_by_segment(y, p, segment, min_rows=200).set_index("segment")
    assert set(out.index) == {"fair", "over", "under"}  # "tiny" is below min_rows
    assert out.loc["over", "flag"] == "over"
    assert out.loc["under", "flag"] == "under"
    assert out.loc["fair", "flag"] == "ok"
    s = out.loc["over"]
    expected = (s["observed"] * s["n"] - 0.1 * s["n"]) / math.sqrt(s["n"] * 0.09)
    assert s["z"] == pytest.approx(expected)


def test_uplift_calibration_by_hand():
    y = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    t = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    u = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    out = uplift_calibration(y, u, t, bins=2)
    assert out["predicted"].tolist() == [0.0, 1.0]
    # Low bin: treated 1/2, control 0/2 -> 0.5. High bin: treated 1/2, control 2/2.
    assert out["observed"].tolist() == [0.5, -0.5]
    assert out["n_treated"].tolist() == [2, 2]


def test_bootstrap_se_of_a_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    se = bootstrap_se(lambda v: float(v.mean()), x, n_boot=400, random_state=0)
    assert se == pytest.approx(x.std() / math.sqrt(x.size), rel=0.15)


def test_bootstrap_se_stratified_keeps_both_arms():
    rng = np.random.default_rng(2)
    t = np.r_[np.ones(50, int), np.zeros(5, int)]
    y = rng.integers(0, 2, t.size)
    u = rng.random(t.size)
    se = bootstrap_se(qini_auc_score, y, u, t, n_boot=50, stratify=t)
    assert se > 0


def test_matches_sklift_on_random_cases():
    metrics = pytest.importorskip("sklift.metrics")
    rng = np.random.default_rng(3)
    checked = 0
    with warnings.catch_warnings():
        # sklift 0.5.1 calls scikit-learn's deprecated stable_cumsum.
        warnings.simplefilter("ignore", FutureWarning)
        for _ in range(60):
            n = int(rng.integers(10, 200))
            y, t = rng.integers(0, 2, n), rng.integers(0, 2, n)
            if y.min() == y.max() or t.min() == t.max():
                continue
            u = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # many ties
            assert qini_auc_score(y, u, t) == pytest.approx(metrics.qini_auc_score(y, u, t))
            assert uplift_auc_score(y, u, t) == pytest.approx(metrics.uplift_auc_score(y, u, t))
            assert uplift_at_k(y, u, t, 0.3) == pytest.approx(
                metrics.uplift_at_k(y, u, t, strategy="overall", k=0.3), nan_ok=True
            )
            for ours, theirs in (
                (qini_curve(y, u, t), metrics.qini_curve(y, u, t)),
                (uplift_curve(y, u, t), metrics.uplift_curve(y, u, t)),
            ):
                np.testing.assert_allclose(ours[0], theirs[0])
                np.testing.assert_allclose(ours[1], theirs[1])
            checked += 1
    assert checked > 40


def test_frames_have_documented_columns():
    out = calibration_by_segment(Y, np.full(4, 0.5), ["a"] * 4, min_rows=1)
    assert list(out.columns) == ["segment", "n", "predicted", "observed", "z", "flag"]
    assert isinstance(out, pd.DataFrame)
