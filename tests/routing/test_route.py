"""Routing a pass: buckets by percentile, segment rules, experiment arms, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from integration.routing import LEAD_COLUMNS, load_policy, route
from integration.routing.route import percentiles
from tests.routing.builders import policy_with, score_frame

DOCUMENTED = {"Very High": 0.15, "High": 0.20, "Medium": 0.25, "Low": 0.20, "Very Low": 0.20}


def _one(frame: pd.DataFrame, **changes) -> pd.DataFrame:
    """``frame`` with its first row changed."""
    out = frame.copy()
    for column, value in changes.items():
        out.loc[0, column] = value
    return out


def test_default_policy_routes_10k_leads_into_the_documented_shares():
    routing = route(score_frame(10_000), load_policy())
    leads = routing.leads
    assert list(leads.columns) == LEAD_COLUMNS
    shares = leads["bucket"].value_counts(normalize=True)
    for bucket, share in DOCUMENTED.items():
        assert shares[bucket] == pytest.approx(share, abs=0.01)
    # Higher buckets hold the higher propensities.
    lowest = leads.assign(p=score_frame(10_000)["propensity"]).groupby("bucket")["p"].min()
    assert lowest["Very High"] > lowest["High"] > lowest["Medium"] > lowest["Low"]
    by_bucket = leads.groupby("bucket")[["route", "queue"]].first()
    assert by_bucket.loc["Very High"].tolist() == ["senior_ae_now", "Senior AE – Now"]
    assert by_bucket.loc["High"].tolist() == ["ae_queue_sla", "AE Queue"]
    assert by_bucket.loc["Medium"].tolist() == ["sdr_mid_touch", "SDR Queue"]
    assert by_bucket.loc["Low"].tolist() == ["nurture", "Nurture"]
    very_low = leads[leads["bucket"] == "Very Low"]
    assert (very_low["route"] == "newsletter_only").all() and very_low["queue"].isna().all()
    assert not leads["spilled"].any()


def test_percentile_basis_ignores_the_probability_scale():
    """Rare-event probabilities (all below 3%) still fill every bucket."""
    frame = score_frame(1_000)
    frame["propensity"] = frame["propensity"] / 10
    shares = route(frame, load_policy()).leads["bucket"].value_counts(normalize=True)
    assert shares["Very High"] == pytest.approx(0.15, abs=0.01)


def test_probability_basis_cuts_on_calibrated_percent():
    def edit(data):
        data["basis"] = "probability"
        for bucket, threshold in zip(data["buckets"], [20, 10, 4, 1.5, 0], strict=True):
            bucket["threshold"] = threshold

    frame = score_frame(5)
    frame["propensity"] = [0.25, 0.10, 0.05, 0.015, 0.001]
    leads = route(frame, policy_with(edit)).leads
    assert leads["bucket"].tolist() == ["Very High", "High", "Medium", "Low", "Very Low"]


def test_tied_scores_share_a_bucket():
    frame = score_frame(100)
    frame.loc[80:, "propensity"] = 0.5  # the top 20 tie
    leads = route(frame, load_policy()).leads
    assert leads.loc[80:, "bucket"].nunique() == 1
    assert percentiles(np.array([0.1, 0.5, 0.5, 0.9])).tolist() == [0.0, 25.0, 25.0, 75.0]


def test_a_lone_lead_is_ranked_against_a_reference_pass():
    reference = score_frame(1_000)["propensity"]
    lead = score_frame(1).assign(propensity=float(reference.max()))
    assert route(lead, load_policy()).leads.at[0, "bucket"] == "Very Low"
    assert route(lead, load_policy(), reference=reference).leads.at[0, "bucket"] == "Very High"


def test_persuadable_gets_its_best_action_and_the_reason_says_by_how_much():
    frame = _one(score_frame(100), propensity=0.9, action="call_first", uplift_best=0.031)
    row = route(frame, load_policy()).leads.iloc[0]
    assert row["action"] == "call_first"
    assert row["route"] == "senior_ae_now" and row["queue"] == "Senior AE – Now"
    assert row["reason"] == "Very High: senior AE now; persuadable: call first adds 3.1 pt"
    assert row["expected_incremental"] == pytest.approx(0.031)


def test_sure_thing_gets_no_action_but_keeps_bucket_routing():
    frame = _one(score_frame(100), propensity=0.9, segment="sure_thing", uplift_best=0.001)
    row = route(frame, load_policy()).leads.iloc[0]
    assert row["action"] is None
    assert row["route"] == "senior_ae_now" and row["queue"] == "Senior AE – Now"
    assert "sure thing: none: converts anyway" in row["reason"]
    assert row["expected_incremental"] == 0.0


def test_lost_cause_gets_no_action():
    frame = _one(score_frame(100), segment="lost_cause", uplift_best=0.004)
    row = route(frame, load_policy()).leads.iloc[0]
    assert row["action"] is None and "lost cause: none: little to gain" in row["reason"]


def test_do_not_disturb_is_suppressed_whatever_the_bucket():
    frame = _one(score_frame(100), propensity=0.9, segment="do_not_disturb", uplift_best=-0.02)
    row = route(frame, load_policy()).leads.iloc[0]
    assert row["bucket"] == "Very High"
    assert row["action"] is None and row["queue"] is None
    assert row["route"] == "newsletter_only"
    assert row["reason"] == (
        "Very High: newsletter only; do not disturb: suppressed: every action lowers the odds"
    )


def test_persuadable_without_a_positive_action_gets_none():
    frame = _one(score_frame(100), action=None, uplift_best=0.0)
    row = route(frame, load_policy()).leads.iloc[0]
    assert row["action"] is None and "no action with positive uplift" in row["reason"]


def test_held_out_leads_get_no_action_and_name_the_experiment():
    frame = _one(score_frame(100), propensity=0.9)
    arms = pd.Series({frame.at[0, "lead_crm_id"]: "control"}, name="q3-call-first")
    leads = route(frame, load_policy(), arms=arms).leads
    row = leads.iloc[0]
    assert row["action"] is None
    assert row["route"] == "senior_ae_now" and row["queue"] == "Senior AE – Now"
    assert "held out by experiment q3-call-first" in row["reason"]
    assert row["expected_incremental"] == 0.0
    assert (leads["action"].iloc[1:] == "call_first").all()  # the rest are untouched


def test_arms_from_a_frame_name_each_experiment():
    frame = score_frame(3)
    arms = pd.DataFrame(
        {"arm": ["control", "offer"], "experiment": ["exp-a", "exp-b"]},
        index=frame["lead_crm_id"].iloc[:2],
    )
    leads = route(frame, load_policy(), arms=arms).leads
    assert "held out by experiment exp-a" in leads.at[0, "reason"]
    assert leads.at[1, "action"] == "offer"
    assert "experiment exp-b: offer arm" in leads.at[1, "reason"]
    assert leads.at[1, "expected_incremental"] == 0.0  # the uplift known is call_first's


def test_an_action_arm_overrides_do_not_disturb():
    """The experiment must be honoured, or its estimate of the DND effect is biased."""
    frame = _one(score_frame(100), propensity=0.9, segment="do_not_disturb", uplift_best=-0.02)
    arms = pd.Series({frame.at[0, "lead_crm_id"]: "email_sequence"}, name="exp")
    row = route(frame, load_policy(), arms=arms).leads.iloc[0]
    assert row["action"] == "email_sequence"
    assert row["route"] == "senior_ae_now" and row["queue"] == "Senior AE – Now"


def test_a_rep_override_keeps_the_owner():
    frame = score_frame(10)
    arms = pd.Series({frame.at[0, "lead_crm_id"]: "override"}, name="exp")
    row = route(frame, load_policy(), arms=arms).leads.iloc[0]
    assert row["route"] == "keep_owner"
    assert row["queue"] is None and row["action"] is None
    assert "rep override in experiment exp" in row["reason"]


def test_without_an_uplift_model_propensity_ranks_and_the_reason_says_so():
    frame = score_frame(50, segment=None, action=None, uplift=np.nan)
    routing = route(frame, load_policy())
    leads = routing.leads
    assert routing.proxy
    assert leads["action"].isna().all() and leads["segment"].isna().all()
    assert np.allclose(leads["expected_incremental"], frame["propensity"])
    assert leads["reason"].str.endswith("no uplift model: ranked by propensity").all()


def test_scores_without_uplift_columns_route_on_propensity():
    frame = score_frame(20)[["lead_crm_id", "propensity"]]
    leads = route(frame, load_policy()).leads
    assert leads["action"].isna().all()
    assert leads["reason"].str.contains("no uplift model").all()


def test_bad_input_is_rejected():
    policy = load_policy()
    frame = score_frame(5)
    with pytest.raises(ValueError, match="propensity"):
        route(frame.drop(columns="propensity"), policy)
    with pytest.raises(ValueError, match="unique"):
        route(pd.concat([frame, frame.iloc[:1]]), policy)
    with pytest.raises(ValueError, match="not probabilities"):
        route(frame.assign(propensity=np.nan), policy)
    with pytest.raises(ValueError, match="unknown labels maybe"):
        route(frame.assign(segment="maybe"), policy)
    doubled = pd.Series(["control", "offer"], index=["L0000000", "L0000000"])
    with pytest.raises(ValueError, match="more than one arm"):
        route(frame, policy, arms=doubled)


def test_an_empty_pass_routes_to_nothing():
    routing = route(score_frame(0), load_policy())
    assert routing.leads.empty and list(routing.leads.columns) == LEAD_COLUMNS
    assert routing.queues["assigned"].sum() == 0


def test_a_million_leads_route():
    n = 1_000_000
    rng = np.random.default_rng(7)
    frame = score_frame(n, seed=7)
    frame["segment"] = pd.Series(
        np.array(["persuadable", "sure_thing", "lost_cause", "do_not_disturb"], dtype=object)[
            rng.integers(0, 4, n)
        ],
        dtype=object,
    )
    leads = route(frame, load_policy()).leads
    assert len(leads) == n
    assert leads["bucket"].value_counts(normalize=True)["Very High"] == pytest.approx(
        0.15, abs=0.001
    )
    persuadable = leads["segment"] == "persuadable"
    assert (leads.loc[persuadable, "action"] == "call_first").all()
    assert leads.loc[~persuadable, "action"].isna().all()
