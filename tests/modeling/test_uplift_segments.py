"""Segment-level uplift with partial pooling, uplift segments per lead, the per-rep table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from integration.modeling.segments import (
    SegmentThresholds,
    SegmentUplift,
    classify_segments,
    uplift_by_rep,
)
from integration.world import ACTIONS, generate_world


def cells(spec: dict[tuple[str, str], tuple[int, int]]):
    """Rows from {(segment, arm): (rows, conversions)}."""
    segment, arm, y = [], [], []
    for (s, a), (n, x) in spec.items():
        segment += [s] * n
        arm += [a] * n
        y += [1] * x + [0] * (n - x)
    return np.array(segment, dtype=object), np.array(arm, dtype=object), np.array(y)


def test_shrinkage_follows_the_stated_formula():
    spec = {
        ("A", "email"): (400, 80),
        ("A", "control"): (400, 40),  # +10 pt
        ("B", "email"): (400, 40),
        ("B", "control"): (400, 40),  # 0 pt
        ("C", "email"): (50, 10),
        ("C", "control"): (50, 5),  # +10 pt on few rows
    }
    segment, arm, y = cells(spec)
    model = SegmentUplift(prior_rows=2.0, n_boot=50).fit(segment, arm, y)
    effects = model.effects_.set_index("segment")

    # By hand: overall rates 130/850 and 85/850, so mu = 45/850.
    rate_t, rate_c = 130 / 850, 85 / 850
    mu = rate_t - rate_c
    d = {"A": 0.10, "B": 0.0, "C": 0.10}
    v = {}
    for s, (n, x_t, x_c) in {"A": (400, 80, 40), "B": (400, 40, 40), "C": (50, 10, 5)}.items():
        st = (x_t + 2 * rate_t) / (n + 2)
        sc = (x_c + 2 * rate_c) / (n + 2)
        v[s] = st * (1 - st) / n + sc * (1 - sc) / n
    w = {s: 1 / v[s] for s in v}
    centre = sum(w[s] * d[s] for s in d) / sum(w.values())
    q = sum(w[s] * (d[s] - centre) ** 2 for s in d)
    tau2 = max(0.0, (q - 2) / (sum(w.values()) - sum(x * x for x in w.values()) / sum(w.values())))
    assert model.overall_["email"] == pytest.approx(mu)
    assert model.tau2_["email"] == pytest.approx(tau2)
    for s in d:
        weight = tau2 / (tau2 + v[s])
        assert effects.loc[s, "weight"] == pytest.approx(weight)
        assert effects.loc[s, "uplift"] == pytest.approx(mu + weight * (d[s] - mu))
        assert effects.loc[s, "raw_uplift"] == pytest.approx(d[s])
    # The small segment is pulled furthest toward the overall effect.
    assert effects.loc["C", "weight"] < effects.loc["A", "weight"]
    assert tau2 > 0


def test_homogeneous_segments_pool_completely():
    spec = {(s, a): (500, 50 if a == "control" else 75) for s in "ABC" for a in ("control", "call")}
    segment, arm, y = cells(spec)
    model = SegmentUplift(n_boot=20).fit(segment, arm, y)
    assert model.tau2_["call"] == 0.0
    assert np.allclose(model.effects_["uplift"], 0.05)


def test_intervals_cover_the_estimate_and_widen_with_fewer_rows():
    rng = np.random.default_rng(0)
    n = {"big": 3000, "small": 150}
    segment, arm, y = [], [], []
    for s, rows in n.items():
        a = rng.choice(["control", "offer"], rows)
        segment += [s] * rows
        arm += list(a)
        y += list((rng.random(rows) < np.where(a == "offer", 0.15, 0.10)).astype(int))
    model = SegmentUplift(n_boot=300, ci=0.9).fit(np.array(segment), np.array(arm), np.array(y))
    e = model.effects_.set_index("segment")
    assert ((e["ci_low"] <= e["uplift"]) & (e["uplift"] <= e["ci_high"])).all()
    width = e["ci_high"] - e["ci_low"]
    assert width["small"] > width["big"]


def test_predict_maps_segments_and_falls_back_to_the_overall_effect():
    spec = {
        ("A", "email"): (200, 40),
        ("A", "control"): (200, 20),
        ("B", "email"): (200, 20),
        ("B", "control"): (200, 20),
    }
    segment, arm, y = cells(spec)
    model = SegmentUplift(n_boot=20).fit(segment, arm, y)
    out = model.predict(pd.Series(["B", "Z", "A"], index=[7, 8, 9]))
    table = model.effects_.set_index("segment")["uplift"]
    assert out.index.tolist() == [7, 8, 9]
    assert out["email"].tolist() == pytest.approx([table["B"], model.overall_["email"], table["A"]])


def test_segment_key_may_span_several_columns():
    frame = pd.DataFrame({"tier": ["A", "A", "B", "B"] * 50, "channel": ["web", "event"] * 100})
    arm = np.array(
        ["control", "control", "call", "call"] * 25 + ["call", "call", "control", "control"] * 25
    )
    y = np.tile([0, 1, 1, 0], 50)
    model = SegmentUplift(n_boot=10).fit(frame, arm, y)
    assert set(model.effects_["segment"]) == {"A | web", "A | event", "B | web", "B | event"}
    assert model.predict(frame.head(2)).shape == (2, 1)


def test_segment_uplift_validates_inputs():
    with pytest.raises(ValueError, match="no holdout"):
        SegmentUplift().fit(["a", "b"], ["call", "call"], [0, 1])
    with pytest.raises(ValueError, match="binary"):
        SegmentUplift().fit(["a", "b"], ["call", "control"], [0, 2])


def test_classify_segments_by_hand():
    propensity = pd.Series([0.30, 0.30, 0.30, 0.05, 0.02], index=list("vwxyz"))
    best = np.array([0.02, -0.005, 0.0, 0.01, -0.01])
    out = classify_segments(propensity, best)
    assert out.tolist() == [
        "persuadable",
        "do_not_disturb",
        "sure_thing",
        "lost_cause",
        "do_not_disturb",
    ]
    assert out.index.tolist() == list("vwxyz")
    strict = classify_segments(propensity.to_numpy(), best, SegmentThresholds(persuadable=0.03))
    assert strict[0] == "sure_thing"


def test_classify_segments_reproduces_the_worlds_truth():
    truth = generate_world(n_leads=3000, seed=3).truth
    tau = truth[[f"tau_{a}" for a in ACTIONS]]
    out = classify_segments(truth["p0"].to_numpy(), tau)
    assert (out == truth["segment"].to_numpy()).all()


def test_uplift_by_rep_by_hand():
    rep = ["ann"] * 6 + ["bob"] * 4 + ["cy"] * 2
    arm = ["call", "call", "call", "call", "control", "control"]
    arm += ["email", "email", "control", "control", "call", "call"]
    y = [1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1]
    out = uplift_by_rep(rep, arm, y)
    # cy has no holdout leads: no row.
    assert out[["rep", "action"]].values.tolist() == [["ann", "call"], ["bob", "email"]]
    ann = out.iloc[0]
    assert ann["uplift"] == 0.0
    assert ann["se"] == pytest.approx(math.sqrt(0.25 / 4 + 0.25 / 2))
    assert out.iloc[1]["uplift"] == -0.5
