"""Behaviour of the synthetic world: CRM-visible seed, experiment design, truth, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from connectors.sandbox.seed import (
    ENGAGEMENT_KINDS,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPPORTUNITY_STAGES,
    SEED_COLUMNS,
    SIZE_BANDS,
    TIERS,
    TOUCH_KINDS,
    TOUCH_STATUSES,
    USER_ROLES,
)
from integration.world import ACTIONS, DEFAULT_NOW, SEGMENTS, World, generate_world

N = 20_000
TRUTH_COLUMNS = (
    "lead_key",
    "unit_key",
    "experiment_id",
    "arm",
    "action",
    "assigned_at",
    "override",
    "intent",
    "invalid_email",
    "p0",
    "tau_email_sequence",
    "tau_call_first",
    "tau_linkedin_touch",
    "tau_offer",
    "p_assigned",
    "best_action",
    "best_tau",
    "segment",
    "meeting",
)
# Timestamps that record something that already happened (must be <= now).
HAPPENED = {
    "users": ("created_at",),
    "accounts": ("created_at", "modified_at"),
    "leads": ("created_at", "modified_at", "converted_at"),
    "status_changes": ("changed_at",),
    "touches": ("occurred_at",),
    "engagements": ("occurred_at",),
    "meetings": ("booked_at",),
    "opportunities": ("created_at", "closed_at", "modified_at"),
}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(n_leads=N, seed=7)


@pytest.fixture(scope="module")
def leads(world: World) -> pd.DataFrame:
    """Seed leads joined with truth and account tier (test convenience only)."""
    tier = world.seed.leads.account_key.map(world.seed.accounts.set_index("account_key").tier)
    return world.seed.leads.join(world.truth.drop(columns="lead_key")).assign(
        tier=tier.fillna("none")
    )


@pytest.fixture(scope="module")
def complete(world: World, leads: pd.DataFrame) -> pd.DataFrame:
    """Assigned leads whose whole outcome window lies before now."""
    window_end = leads.assigned_at + pd.Timedelta(days=world.params.window_days)
    return leads[leads.arm.notna() & (window_end <= world.seed.now)]


# --- The seed is a valid, CRM-only picture ------------------------------------------------


def test_seed_validates_and_has_exact_columns(world: World) -> None:
    world.seed.validate()
    for name, columns in SEED_COLUMNS.items():
        assert tuple(getattr(world.seed, name).columns) == columns, name


def test_every_timestamp_is_utc_and_nothing_happened_after_now(world: World) -> None:
    now = pd.Timestamp(world.seed.now)
    for name, columns in SEED_COLUMNS.items():
        frame = getattr(world.seed, name)
        for column in columns:
            if column.endswith(("_at", "_date")):
                assert str(frame[column].dtype) == "datetime64[ns, UTC]", (name, column)
        for column in HAPPENED.get(name, ()):
            assert (frame[column].dropna() <= now).all(), (name, column)
    # Planned times may lie ahead: a booked meeting's start, an open deal's expected close.
    meetings = world.seed.meetings
    assert (meetings.start_at > meetings.booked_at).all()
    assert (meetings.start_at <= now + pd.Timedelta(days=8)).all()
    opps = world.seed.opportunities
    open_ = opps.closed_at.isna()
    assert (opps.close_date[open_] >= now.normalize()).all()
    assert (opps.close_date == opps.close_date.dt.normalize()).all()


def test_seed_holds_no_truth(world: World) -> None:
    truth_only = {
        "intent",
        "p0",
        "p_assigned",
        "segment",
        "best_action",
        "best_tau",
        "invalid_email",
        "override",
        "unit_key",
        "arm",
        "meeting",
    }
    truth_only |= {f"tau_{a}" for a in ACTIONS}
    for name in SEED_COLUMNS:
        assert not truth_only & set(getattr(world.seed, name).columns), name
    assert tuple(world.truth.columns) == TRUTH_COLUMNS
    assert (world.truth.lead_key.to_numpy() == world.seed.leads.lead_key.to_numpy()).all()


def test_vocabularies_and_keys(world: World) -> None:
    s = world.seed
    assert set(s.users.role) == set(USER_ROLES)
    reps = s.users.role.isin(["sdr", "ae", "senior_ae"])
    assert reps.sum() >= max(6, round(N / 800))
    assert set(s.accounts.tier) == set(TIERS)
    assert set(s.accounts.size_band.dropna()) <= set(SIZE_BANDS)
    assert set(s.leads.lead_source.dropna()) <= set(LEAD_SOURCES)
    assert set(s.leads.status) <= set(LEAD_STATUSES)
    assert set(s.touches.kind) <= set(TOUCH_KINDS)
    assert set(s.touches.status) <= set(TOUCH_STATUSES)
    assert set(s.engagements.kind) == set(ENGAGEMENT_KINDS)
    assert set(s.opportunities.stage) <= set(OPPORTUNITY_STAGES)
    assert s.accounts.domain.is_unique and s.leads.email.is_unique
    users = set(s.users.user_key)
    for frame in (s.accounts, s.leads, s.touches, s.meetings, s.opportunities):
        assert set(frame.owner_key) <= users
    assert set(s.leads.account_key.dropna()) <= set(s.accounts.account_key)
    assert str(s.leads.account_key.dtype) == "Int64"
    # size_band is derived from employees and missing exactly when employees is.
    assert (s.accounts.size_band.isna() == s.accounts.employees.isna()).all()


def test_population_shape(world: World, leads: pd.DataFrame) -> None:
    s = world.seed
    assert 3.0 <= N / len(s.accounts) <= 4.0
    tier_share = s.accounts.tier.value_counts(normalize=True)
    assert 0.10 <= tier_share["A"] <= 0.15
    assert tier_share.idxmax() == "D"
    assert 0.85 <= s.leads.account_key.notna().mean() <= 0.95
    free = s.leads[s.leads.account_key.isna()]
    assert free.email.str.endswith(
        (
            "gmail.com",
            "yahoo.com",
            "outlook.com",
            "hotmail.com",
            "icloud.com",
            "proton.me",
            "gmx.de",
        )
    ).all()
    assert s.leads.phone.dropna().str.fullmatch(r"\+\d{1,3} [2-9]\d\d \d{3} \d{4}").all()
    assert 0.03 <= world.truth.invalid_email.mean() <= 0.06
    outbound = leads.lead_source == "Outbound List"
    assert leads.invalid_email[outbound].mean() > leads.invalid_email[~outbound].mean()


# --- Determinism ----------------------------------------------------------------------------


def test_same_inputs_give_identical_frames(world: World) -> None:
    again = generate_world(n_leads=N, seed=7, now=DEFAULT_NOW)
    for name in SEED_COLUMNS:
        pd.testing.assert_frame_equal(getattr(world.seed, name), getattr(again.seed, name))
    pd.testing.assert_frame_equal(world.truth, again.truth)
    assert world.params == again.params


def test_another_seed_gives_other_data(world: World) -> None:
    other = generate_world(n_leads=N, seed=8)
    assert not world.seed.leads.email.equals(other.seed.leads.email)
    assert not np.allclose(world.truth.p0, other.truth.p0)


def test_now_moves_the_clock_and_must_be_utc() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    w = generate_world(n_leads=500, seed=1, now=now)
    assert w.seed.now == now
    assert w.seed.leads.created_at.max() <= pd.Timestamp(now)
    with pytest.raises(ValueError, match="UTC"):
        generate_world(n_leads=10, now=datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="UTC"):
        generate_world(n_leads=10, now=datetime(2025, 3, 1, tzinfo=timezone(timedelta(hours=2))))


def test_params_reproduce_the_world(world: World) -> None:
    p = world.params
    assert p.n_leads == N and p.seed == 7 and p.now == DEFAULT_NOW
    assert np.isfinite(p.p0_intercept)
    # Feeding the calibrated intercept back gives the same world.
    again = generate_world(n_leads=N, seed=7, p0_intercept=p.p0_intercept)
    pd.testing.assert_frame_equal(world.truth, again.truth)
    richer = generate_world(n_leads=5_000, seed=7, target_base_rate=0.06)
    assert richer.truth.p0.mean() == pytest.approx(0.06, abs=1e-6)


@pytest.mark.parametrize("n", [1, 7, 60])
def test_tiny_worlds_are_valid(n: int) -> None:
    w = generate_world(n_leads=n, seed=3)
    w.seed.validate()
    assert len(w.seed.leads) == len(w.truth) == n


# --- Experiments ----------------------------------------------------------------------------


def test_arm_labels_match_truth(leads: pd.DataFrame) -> None:
    assigned = leads.arm.notna()
    expected = leads.experiment_id + "/" + leads.arm
    assert (leads.experiment_arm[assigned] == expected[assigned]).all()
    assert leads.experiment_arm[~assigned].isna().all()
    assert (leads.experiment_id == leads.action + "_v1").all()
    # Only leads created in the last two days can still be waiting for assignment.
    assert (leads.created_at[~assigned] > leads.created_at.max() - pd.Timedelta(days=2)).all()
    delay = leads.assigned_at - leads.created_at
    assert delay[assigned].between(pd.Timedelta(hours=1), pd.Timedelta(days=2)).all()


def test_control_share_is_twenty_percent_overall_and_per_tier(leads: pd.DataFrame) -> None:
    assigned = leads[leads.arm.notna()]
    control = assigned.arm == "control"
    assert abs(control.mean() - 0.2) <= 0.01
    per_tier = control.groupby(assigned.tier).mean()
    assert set(per_tier.index) == {*TIERS, "none"}
    assert (per_tier - 0.2).abs().max() <= 0.02, per_tier.to_dict()
    # Every experiment gets its holdout too.
    per_experiment = control.groupby(assigned.experiment_id).mean()
    assert (per_experiment - 0.2).abs().max() <= 0.02, per_experiment.to_dict()


def test_experiments_are_spread_uniformly(leads: pd.DataFrame) -> None:
    share = leads.action.value_counts(normalize=True)
    assert set(share.index) == set(ACTIONS)
    assert (share - 0.25).abs().max() <= 0.03


def test_whole_accounts_share_one_experiment_and_arm(leads: pd.DataFrame) -> None:
    attached = leads[leads.account_key.notna()]
    assert (attached.groupby("account_key").unit_key.nunique() == 1).all()
    assert (attached.account_key.astype("int64") == attached.unit_key).all()
    per_unit = leads.groupby("unit_key")
    assert (per_unit.experiment_id.nunique() == 1).all()
    assigned = leads[leads.arm.notna()]
    assert (assigned.groupby("unit_key").arm.nunique() == 1).all()
    assert (leads[leads.account_key.isna()].unit_key.value_counts() == 1).all()


# --- Truth ----------------------------------------------------------------------------------


def test_truth_is_internally_consistent(world: World) -> None:
    t = world.truth
    taus = t[[f"tau_{a}" for a in ACTIONS]].to_numpy()
    assert np.allclose(t.best_tau, taus.max(axis=1))
    assert (t.best_action.to_numpy() == np.array(ACTIONS)[taus.argmax(axis=1)]).all()
    p0 = t.p0.to_numpy()[:, None]
    p_treated = p0 + taus
    # Clipped to [0.001, 0.95], except where an action cannot reach the lead (tau == 0).
    assert (p_treated >= np.minimum(p0, 0.001) - 1e-12).all()
    assert (p_treated <= np.maximum(p0, 0.95) + 1e-12).all()
    assert t.p0.between(0, 1).all()
    # p_assigned is the probability of the arm each lead actually got.
    own = taus[np.arange(len(t)), [ACTIONS.index(a) for a in t.action]]
    expected = np.where(
        t.override, t.p0 + t.tau_call_first, np.where(t.arm == "treatment", t.p0 + own, t.p0)
    )
    assert np.allclose(t.p_assigned, expected)
    assert not t.override[t.arm != "control"].any()
    segment = np.select(
        [t.best_tau >= 0.02, t.best_tau <= -0.005, t.p0 >= 0.15],
        ["persuadable", "do_not_disturb", "sure_thing"],
        default="lost_cause",
    )
    assert (t.segment.to_numpy() == segment).all()


@pytest.mark.parametrize("seed", [7, 11])
def test_segment_shares_are_in_their_bands(seed: int, world: World) -> None:
    t = world.truth if seed == 7 else generate_world(n_leads=N, seed=seed).truth
    share = t.segment.value_counts(normalize=True).reindex(SEGMENTS, fill_value=0.0)
    assert 0.15 <= share["persuadable"] <= 0.35, share.to_dict()
    assert 0.02 <= share["sure_thing"] <= 0.10, share.to_dict()
    assert 0.35 <= share["lost_cause"] <= 0.70, share.to_dict()
    assert 0.03 <= share["do_not_disturb"] <= 0.15, share.to_dict()


def test_uplift_is_heterogeneous_in_observables(world: World, leads: pd.DataFrame) -> None:
    employees = leads.account_key.astype("float").map(
        world.seed.accounts.set_index("account_key").employees
    )
    title = leads.title.fillna("")
    c_level = title.str.match(r"^(C[A-Z]O$|Chief)")
    manager_director = title.str.contains("Manager|Director")
    e = world.seed.engagements
    before = e.occurred_at <= e.lead_key.map(leads.assigned_at)
    hot = leads.lead_key.isin(e.lead_key[before & e.kind.isin(["pricing_page_visit", "form_fill"])])
    tier_ab = leads.tier.isin(["A", "B"])
    call = leads.tau_call_first
    assert call[hot & tier_ab & manager_director].mean() > 0.03
    assert call[c_level & (employees > 1000)].mean() < 0
    industry = leads.account_key.astype("float").map(
        world.seed.accounts.set_index("account_key").industry
    )
    executive = title.str.match(r"^(VP|Vice President|C[A-Z]O$|Chief)")
    sw_fs = industry.isin(["Software", "Financial Services"])
    linkedin = leads.tau_linkedin_touch
    assert linkedin[executive & sw_fs].mean() > linkedin[~(executive & sw_fs)].mean() + 0.01
    offer = leads.tau_offer
    small_cd = (employees <= 50) & leads.tier.isin(["C", "D"])
    assert offer[small_cd].mean() > offer[~small_cd].mean() + 0.005
    assert offer[leads.tier == "A"].mean() < 0
    # A dead address cannot be moved by email-borne actions.
    assert (leads.tau_email_sequence[leads.invalid_email] == 0).all()
    # Every action's effect varies across leads, and the best action varies too.
    for action in ACTIONS:
        assert leads[f"tau_{action}"].std() > 0.004, action
    assert set(leads.best_action) == set(ACTIONS)


# --- Outcomes -------------------------------------------------------------------------------


def test_control_meeting_rate_is_b2b_rare(complete: pd.DataFrame) -> None:
    control = complete[(complete.arm == "control") & ~complete.override]
    assert 0.02 <= control.meeting.mean() <= 0.08


def test_meetings_are_drawn_with_the_assigned_probability(complete: pd.DataFrame) -> None:
    # Per arm, action and band of p: a sum of independent Bernoulli(p) draws sits within
    # 4 sd of its mean, so outcomes follow p_assigned across its whole range.
    band = pd.qcut(complete.p_assigned, 5, labels=False)
    for key, group in complete.groupby(["action", "arm", band]):
        p = group.p_assigned
        z = (group.meeting.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
        assert abs(z) < 4, (key, z)


def test_treated_minus_control_matches_mean_true_uplift(complete: pd.DataFrame) -> None:
    for action in ACTIONS:
        exp = complete[complete.action == action]
        treated = exp[exp.arm == "treatment"]
        control = exp[(exp.arm == "control") & ~exp.override]
        diff = treated.meeting.mean() - control.meeting.mean()
        truth = treated[f"tau_{action}"].mean() + treated.p0.mean() - control.p0.mean()
        se = np.sqrt(treated.meeting.var() / len(treated) + control.meeting.var() / len(control))
        assert abs(diff - truth) < 4 * se, (action, diff, truth, se)
        assert abs(exp[f"tau_{action}"].mean() - treated[f"tau_{action}"].mean()) < 0.004


def test_missing_title_predicts_fewer_meetings(complete: pd.DataFrame) -> None:
    missing = complete.title.isna()
    assert missing.mean() > 0.05
    assert complete.meeting[missing].mean() < 0.6 * complete.meeting[~missing].mean()
    assert complete.p0[missing].mean() < complete.p0[~missing].mean()


def test_truth_meeting_is_the_seed_meeting(world: World) -> None:
    met = set(world.seed.meetings.lead_key)
    assert met == set(world.truth.lead_key[world.truth.meeting])
    assert world.seed.meetings.lead_key.is_unique


def test_meetings_fall_inside_the_window(world: World, leads: pd.DataFrame) -> None:
    m = world.seed.meetings.join(leads[["assigned_at"]], on="lead_key")
    assert (m.booked_at > m.assigned_at).all()
    assert (m.booked_at <= m.assigned_at + pd.Timedelta(days=world.params.window_days)).all()


def test_touches_only_for_treated_leads_and_overrides(world: World, leads: pd.DataFrame) -> None:
    t = world.seed.touches.join(leads[["arm", "override", "action"]], on="lead_key")
    assert (t.arm.notna()).all()
    control = t[t.arm == "control"]
    assert control.override.all()
    assert (control.kind == "call").all()
    assert (control.groupby("lead_key").size() == 1).all()
    overrides = leads[leads.override]
    assert (
        abs(overrides.unit_key.nunique() / leads[leads.arm == "control"].unit_key.nunique() - 0.04)
        < 0.015
    )
    allowed = {
        "email_sequence": {"email"},
        "call_first": {"call", "email"},
        "linkedin_touch": {"linkedin"},
        "offer": {"offer", "email"},
    }
    treated = t[t.arm == "treatment"]
    for action, kinds in allowed.items():
        assert set(treated.kind[treated.action == action]) == kinds, action
    offers = world.seed.touches[world.seed.touches.kind == "offer"]
    assert offers.subject.str.startswith("Offer:").all()


def test_touch_statuses_and_durations(world: World, leads: pd.DataFrame) -> None:
    t = world.seed.touches.join(leads[["invalid_email"]], on="lead_key")
    calls = t.kind == "call"
    assert set(t.status[calls]) == {"completed", "no_answer"}
    assert t.duration_seconds[calls].notna().all() and t.duration_seconds[~calls].isna().all()
    bounced = t.status == "bounced"
    assert t.kind[bounced].isin(["email", "offer"]).all()
    emailish = t.kind.isin(["email", "offer"])
    assert (bounced[emailish] == t.invalid_email[emailish]).all()
    # After a bounce the sequence stops emailing that address.
    assert (t[bounced].groupby("lead_key").size() == 1).all()


def test_sequences_stop_once_a_meeting_is_booked(world: World) -> None:
    booked = world.seed.meetings.set_index("lead_key").booked_at
    t = world.seed.touches
    after = t.occurred_at > t.lead_key.map(booked)
    assert not after.any()
    # ... and the schedule did run for leads that never met.
    email = world.truth[
        (world.truth.action == "email_sequence")
        & (world.truth.arm == "treatment")
        & ~world.truth.meeting
        & ~world.truth.invalid_email
    ]
    counts = t[t.lead_key.isin(email.lead_key)].groupby("lead_key").size()
    assert counts.max() == 4


def test_status_matches_the_last_status_change(world: World) -> None:
    s = world.seed
    changes = s.status_changes.sort_values(["changed_at", "change_key"])
    last = changes.groupby("lead_key").new_status.last()
    status = s.leads.set_index("lead_key").status
    assert (status.loc[last.index] == last).all()
    assert (status.drop(last.index) == "new").all()
    # Each change starts from where the previous one ended.
    prev = changes.groupby("lead_key").new_status.shift().fillna("new")
    assert (changes.old_status == prev).all()
    first_touch = s.touches.groupby("lead_key").occurred_at.min()
    working = changes[changes.new_status == "working"].set_index("lead_key").changed_at
    assert working.index.equals(working.index.unique())
    assert (working == first_touch.loc[working.index]).all()
    assert set(first_touch.index) == set(working.index)
    disq = changes[changes.new_status == "disqualified"]
    assert len(disq) > 0 and (disq.old_status == "working").all()


def test_conversions_and_opportunities(world: World, leads: pd.DataFrame) -> None:
    s = world.seed
    conv = s.leads[s.leads.status == "converted"]
    assert conv.opportunity_key.notna().all() and conv.converted_at.notna().all()
    rest = s.leads[s.leads.status != "converted"]
    assert rest.opportunity_key.isna().all() and rest.converted_at.isna().all()
    opps = s.opportunities.set_index("opportunity_key")
    key = conv.opportunity_key.astype("int64")
    assert (opps.created_at.loc[key].to_numpy() == conv.converted_at.to_numpy()).all()
    assert (opps.lead_key.loc[key].to_numpy() == conv.lead_key.to_numpy()).all()
    meetings = len(s.meetings[s.meetings.start_at <= s.now])
    assert 0.45 <= len(s.opportunities) / meetings <= 0.70
    closed = opps[opps.closed_at.notna()]
    assert set(closed.stage) == {"closed_won", "closed_lost"}
    assert 0.15 <= (closed.stage == "closed_won").mean() <= 0.35
    days_open = (closed.closed_at - closed.created_at).dt.days
    assert days_open.between(19, 120).all()
    assert (
        opps[opps.closed_at.isna()].stage.isin(["qualification", "proposal", "negotiation"]).all()
    )
    assert (opps.amount > 0).all()


def test_modified_at_covers_the_leads_own_changes(world: World) -> None:
    s = world.seed
    leads = s.leads.set_index("lead_key")
    last_change = s.status_changes.groupby("lead_key").changed_at.max()
    assert (leads.modified_at.loc[last_change.index] >= last_change).all()
    assert (leads.modified_at >= leads.created_at).all()
    assert (leads.modified_at.loc[leads.converted_at.notna()] >= leads.converted_at.dropna()).all()
    assert (s.accounts.modified_at >= s.accounts.created_at).all()
    first_lead = s.leads.groupby("account_key").created_at.min()
    accounts = s.accounts.set_index("account_key")
    assert (
        accounts.created_at.loc[first_lead.index.astype("int64")].to_numpy()
        <= first_lead.to_numpy()
    ).all()


def test_engagement_rises_with_intent_and_continues_after_meetings(
    world: World, leads: pd.DataFrame
) -> None:
    e = world.seed.engagements
    pricing = e[e.kind == "pricing_page_visit"]
    visited = leads.lead_key.isin(pricing.lead_key)
    assert leads.intent[visited].mean() > leads.intent[~visited].mean() + 0.5
    # The leakage trap: people who booked keep reading pricing pages afterwards.
    booked = world.seed.meetings.set_index("lead_key").booked_at
    after = pricing[pricing.occurred_at > pricing.lead_key.map(booked)]
    assert after.lead_key.nunique() > 0.3 * len(booked)
