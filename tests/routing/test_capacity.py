"""Capacity-aware queues: the best leads stay, the overflow spills down the chain."""

from __future__ import annotations

import numpy as np
import pytest

from integration.routing import apply_capacity, load_policy, route, spill_order
from tests.routing.builders import policy_with, score_frame


def _capped(senior: int | None = 100, ae: int | None = None, top: float = 90):
    """Very High is the top (100 - top)% and the senior AE queue takes ``senior`` a day."""

    def edit(data):
        data["buckets"][0]["threshold"] = top
        data["queues"]["senior_ae_now"]["capacity_per_day"] = senior
        data["queues"]["ae_queue"]["capacity_per_day"] = ae

    return policy_with(edit)


def test_spill_order_puts_feeders_first():
    order = spill_order(load_policy())
    assert order.index("senior_ae_now") < order.index("ae_queue") < order.index("sdr_queue")
    assert order.index("sdr_queue") < order.index("nurture")


def test_overflow_keeps_the_highest_expected_incremental_and_spills_the_rest():
    # 10,000 leads, top 10% Very High: 1,000 leads for a queue that takes 100.
    routing = route(score_frame(10_000, seed=3), _capped(senior=100))
    leads = routing.leads
    very_high = leads[leads["bucket"] == "Very High"]
    assert len(very_high) == 1_000
    kept = very_high[very_high["queue"] == "Senior AE – Now"]
    spilled = very_high[very_high["spilled"]]
    assert len(kept) == 100 and len(spilled) == 900
    assert not kept["spilled"].any()
    assert kept["expected_incremental"].min() >= spilled["expected_incremental"].max()
    top = very_high["expected_incremental"].nlargest(100).index
    assert set(kept.index) == set(top)
    assert (spilled["queue"] == "AE Queue").all()
    assert (spilled["route"] == "senior_ae_now").all()  # the bucket's route stays
    assert (
        spilled["reason"]
        .str.endswith("; Senior AE – Now full (100/day): spilled to AE Queue")
        .all()
    )
    volumes = routing.queues
    assert volumes.loc["senior_ae_now", ["routed", "assigned", "spilled_out"]].tolist() == [
        1_000,
        100,
        900,
    ]
    assert volumes.loc["ae_queue", "spilled_in"] == 900
    high = (leads["bucket"] == "High").sum()
    assert volumes.loc["ae_queue", "assigned"] == high + 900


def test_spilled_leads_compete_again_and_may_spill_further():
    routing = route(score_frame(10_000, seed=4), _capped(senior=100, ae=500))
    leads = routing.leads
    in_ae = leads[leads["queue"] == "AE Queue"]
    onward = leads[leads["reason"].str.contains("AE Queue full")]
    assert len(in_ae) == 500
    assert (onward["queue"] == "SDR Queue").all() and onward["spilled"].all()
    assert in_ae["expected_incremental"].min() >= onward["expected_incremental"].max()
    twice = onward["reason"].str.contains("Senior AE – Now full")
    assert twice.any()  # some Very High leads spilled twice, and say so in order
    assert (
        onward.loc[twice, "reason"]
        .str.endswith("spilled to AE Queue; AE Queue full (500/day): spilled to SDR Queue")
        .all()
    )
    volumes = routing.queues
    assert volumes.loc["ae_queue", "spilled_out"] == len(onward)
    assert volumes.loc["sdr_queue", "spilled_in"] == len(onward)
    assert volumes["assigned"].sum() == leads["queue"].notna().sum()


def test_capacity_used_today_is_subtracted():
    routing = route(score_frame(10_000), _capped(senior=100), capacity_used={"senior_ae_now": 60})
    assert (routing.leads["queue"] == "Senior AE – Now").sum() == 40
    assert routing.queues.loc["senior_ae_now", "capacity_left"] == 40
    with pytest.raises(ValueError, match="unknown queue 'senior'"):
        route(score_frame(10), load_policy(), capacity_used={"senior": 1})


def test_without_a_spill_target_the_overflow_is_left_unassigned():
    def edit(data):
        data["queues"]["nurture"]["capacity_per_day"] = 10

    leads = route(score_frame(1_000), policy_with(edit)).leads
    low = leads[leads["bucket"] == "Low"]
    assert (low["queue"] == "Nurture").sum() == 10
    left = low[low["queue"].isna()]
    assert len(left) == len(low) - 10 and left["spilled"].all()
    assert left["reason"].str.endswith("Nurture full (10/day): left unassigned").all()


def test_ties_in_expected_incremental_break_on_propensity():
    policy = _capped(senior=3)
    queue = np.array(["senior_ae_now"] * 6, dtype=object)
    expected = np.array([0.0, 0.0, 0.0, 0.0, 0.05, 0.0])
    propensity = np.array([0.1, 0.4, 0.2, 0.3, 0.01, 0.05])
    result = apply_capacity(queue, expected, propensity, policy)
    assert np.flatnonzero(result.queue == "senior_ae_now").tolist() == [1, 3, 4]
    assert result.spilled.tolist() == [True, False, True, False, False, True]


def test_leads_without_a_queue_are_never_touched():
    policy = _capped(senior=0)
    queue = np.array([None, "senior_ae_now"], dtype=object)
    result = apply_capacity(queue, np.zeros(2), np.array([0.5, 0.5]), policy)
    assert result.queue.tolist() == [None, "ae_queue"]
    assert result.spilled.tolist() == [False, True]
