"""Drift of the bucket mix: alerts when shares move, silence when they do not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from integration.routing import bucket_drift, bucket_shares, load_policy, route
from integration.routing.drift import EPSILON, population_stability
from tests.routing.builders import policy_with, score_frame

NAMES = ("Very High", "High", "Medium", "Low", "Very Low")


def _buckets(counts: dict[str, int]) -> pd.Series:
    return pd.Series([name for name, k in counts.items() for _ in range(k)], dtype=object)


def test_a_routed_pass_matches_the_designed_shares():
    policy = load_policy()
    drift = bucket_drift(route(score_frame(10_000), policy).leads["bucket"], policy)
    assert drift.alerts == []
    assert drift.baseline == pytest.approx(policy.designed_shares())
    assert drift.psi == pytest.approx(0.0, abs=1e-6)


def test_a_shift_in_shares_raises_an_alert_naming_the_bucket():
    policy = load_policy()
    buckets = _buckets({"Very High": 40, "High": 20, "Medium": 20, "Low": 10, "Very Low": 10})
    drift = bucket_drift(buckets, policy)
    assert drift.shares["Very High"] == pytest.approx(0.40)
    assert any(a.startswith("bucket Very High: 40.0% of leads vs 15.0%") for a in drift.alerts)
    assert any("+25.0 pt" in a for a in drift.alerts)
    assert not any(a.startswith("bucket High:") for a in drift.alerts)  # unchanged at 20%
    assert drift.psi > policy.drift.psi_threshold
    assert any(a.startswith("bucket mix: PSI") for a in drift.alerts)


def test_small_moves_stay_quiet():
    buckets = _buckets({"Very High": 17, "High": 19, "Medium": 24, "Low": 21, "Very Low": 19})
    drift = bucket_drift(buckets, load_policy())
    assert drift.alerts == []
    assert 0 < drift.psi < 0.2


def test_psi_alone_can_alert():
    """Every bucket moves less than 10 pt, but together the mix shifted."""
    baseline = dict.fromkeys(NAMES, 0.2)
    counts = {"Very High": 101, "High": 101, "Medium": 299, "Low": 299, "Very Low": 200}
    drift = bucket_drift(_buckets(counts), load_policy(), baseline=baseline)
    assert drift.psi == pytest.approx(0.215, abs=0.001)
    assert len(drift.alerts) == 1
    assert drift.alerts[0].startswith("bucket mix: PSI 0.215 above 0.2")


def test_psi_is_the_textbook_formula():
    current = {"a": 0.5, "b": 0.5, "c": 0.0}
    baseline = {"a": 0.25, "b": 0.25, "c": 0.5}
    expected = 2 * (0.25 * math.log(2)) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert population_stability(current, baseline) == pytest.approx(expected)


def test_baseline_from_the_policy_and_counts_are_normalised():
    def edit(data):
        data["drift"]["baseline"] = {
            "Very High": 150, "High": 200, "Medium": 250, "Low": 200, "Very Low": 200,
        }  # fmt: skip

    policy = policy_with(edit)
    drift = bucket_drift(route(score_frame(2_000), policy).leads["bucket"], policy)
    assert drift.baseline["Very High"] == pytest.approx(0.15)
    assert drift.alerts == []


def test_probability_basis_without_a_baseline_compares_nothing():
    def edit(data):
        data["basis"] = "probability"

    drift = bucket_drift(_buckets({"Very Low": 10}), policy_with(edit))
    assert drift.baseline is None and drift.psi is None and drift.alerts == []
    assert drift.shares["Very Low"] == 1.0


def test_unknown_buckets_are_rejected():
    with pytest.raises(ValueError, match="Hot"):
        bucket_shares(np.array(["Hot"], dtype=object), NAMES)
    with pytest.raises(ValueError, match="Warm"):
        bucket_drift(_buckets({"High": 1}), load_policy(), baseline={"Warm": 1.0})
