"""Assemble a World: run the generation steps in order and hand the arrays to `frames`.

The steps draw from independent PCG64 streams spawned from the seed, one per
step, so changing how one step draws does not reshuffle the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.random import PCG64, Generator, SeedSequence

from connectors.sandbox.seed import ENGAGEMENT_KINDS, TIERS, CrmSeed

from . import frames
from .behaviour import (
    Events,
    Touches,
    count_by_kind,
    plan_touches,
    post_assignment,
    pre_assignment,
    realise_touches,
    sales_email_clicks,
)
from .clock import HOUR, NEVER, epoch_seconds
from .effects import Features, baseline_logit, calibrate_intercept, segments, uplift
from .experiments import Assignment, assign_experiments
from .outcomes import (
    Opportunities,
    StatusChanges,
    current_status,
    draw_disqualification,
    draw_meetings,
    draw_opportunities,
    meeting_starts,
    status_history,
)
from .params import ACTIONS, DEFAULT_NOW, WorldParams
from .population import Accounts, Leads, Users, make_population, make_queues, make_users
from .sampling import MISSING, group_max, group_min, sigmoid

STEPS = ("population", "experiments", "engagement", "touches", "outcomes", "owners", "edits")


@dataclass(frozen=True)
class World:
    """A generated world: what the CRM sees, what is really true, and how it was made.

    Attributes:
        seed: the CRM-visible records (validated).
        truth: one row per lead, in seed.leads order: experiment, latent traits,
            p0, tau per action, segment and the realised meeting.
        params: the parameters used, including the calibrated p0 intercept.
    """

    seed: CrmSeed
    truth: pd.DataFrame
    params: WorldParams


@dataclass
class _Truth:
    p0: np.ndarray
    tau: np.ndarray  # (n, len(ACTIONS)), effective
    p_assigned: np.ndarray
    pre_events: Events


@dataclass
class _Funnel:
    touches: Touches
    meeting: np.ndarray  # bool, booked by now
    booked_at: np.ndarray  # NEVER unless meeting
    met: np.ndarray  # lead keys with a meeting, in booking order
    start_at: np.ndarray  # per met lead
    opportunities: Opportunities
    converted_at: np.ndarray
    opportunity_key: np.ndarray  # MISSING unless converted
    changes: StatusChanges
    events: Events


def generate_world(
    n_leads: int = 20_000, seed: int = 7, now: datetime | None = None, **overrides: float
) -> World:
    """Generate a synthetic B2B funnel whose propensity and uplift are known.

    Output is a pure function of the arguments: same inputs, identical frames.

    Args:
        n_leads: number of leads (users, accounts and activity scale with it).
        seed: seed of the PCG64 streams.
        now: the world's clock, tz-aware UTC; defaults to 2026-11-01T00:00Z.
        **overrides: any other `WorldParams` field (e.g. ``target_base_rate=0.05``).

    Returns:
        The World (seed frames, truth frame, parameters used).

    Raises:
        ValueError: on a non-UTC `now`, fewer than one lead, or an unusable control share.
    """
    params = WorldParams(n_leads=n_leads, seed=seed, now=now or DEFAULT_NOW, **overrides)
    rng = {
        name: Generator(PCG64(s))
        for name, s in zip(STEPS, SeedSequence(seed).spawn(len(STEPS)), strict=True)
    }

    users = make_users(params, rng["population"])
    leads, accounts = make_population(params, users, rng["population"])
    asg = assign_experiments(leads, accounts, params, rng["experiments"])
    tier = np.where(leads.free, len(TIERS), accounts.tier[np.maximum(leads.account, 0)])

    truth, params = _draw_truth(leads, accounts, asg, tier, params, rng["engagement"])
    funnel = _run_funnel(leads, accounts, asg, tier, truth, params, rng)

    now_s = epoch_seconds(params.now)
    owner = _lead_owners(leads, accounts, users, asg, rng["owners"])
    meeting_owner = _meeting_owners(leads, accounts, users, rng["owners"])
    lead_modified = _edited(_last_lead_change(leads, asg, funnel), now_s, rng["edits"])
    opps = funnel.opportunities
    acc_last = group_max(leads.account[opps.lead], opps.modified_at, accounts.n, 0)
    accounts.modified_at = _edited(np.maximum(accounts.created_at, acc_last), now_s, rng["edits"])

    crm = CrmSeed(
        now=params.now,
        users=users.frame,
        queues=make_queues(),
        accounts=frames.accounts_frame(accounts),
        leads=frames.leads_frame(
            leads,
            asg,
            owner,
            current_status(leads.n, funnel.changes),
            lead_modified,
            funnel.converted_at,
            funnel.opportunity_key,
        ),
        status_changes=frames.status_changes_frame(funnel.changes),
        touches=frames.touches_frame(funnel.touches, owner),
        engagements=frames.engagements_frame(funnel.events),
        meetings=frames.meetings_frame(
            leads,
            accounts,
            funnel.met,
            meeting_owner,
            funnel.booked_at,
            funnel.start_at,
            rng["outcomes"],
        ),
        opportunities=frames.opportunities_frame(opps, leads, accounts, meeting_owner),
    )
    crm.validate()
    truth_frame = frames.truth_frame(
        leads,
        asg,
        truth.p0,
        truth.tau,
        truth.p_assigned,
        segments(truth.p0, truth.tau, params),
        funnel.meeting,
    )
    return World(seed=crm, truth=truth_frame, params=params)


def _draw_truth(
    leads: Leads,
    accounts: Accounts,
    asg: Assignment,
    tier: np.ndarray,
    params: WorldParams,
    rng: np.random.Generator,
) -> tuple[_Truth, WorldParams]:
    """p0 and tau from what was observable at assignment (plus latent intent)."""
    pre = pre_assignment(leads, asg, rng, params.engagement_scale)
    features = _features(leads, accounts, pre, tier)
    logit = baseline_logit(features)
    if math.isnan(params.p0_intercept):
        params = replace(params, p0_intercept=calibrate_intercept(logit, params.target_base_rate))
    p0 = sigmoid(params.p0_intercept + logit)
    tau = uplift(features, p0)
    own = tau[np.arange(leads.n), asg.experiment]
    # Overrides got a call, so they answer like call_first; the rest as their arm.
    p_assigned = np.where(
        asg.override, p0 + tau[:, ACTIONS.index("call_first")], np.where(asg.treated, p0 + own, p0)
    )
    return _Truth(p0, tau, p_assigned, pre), params


def _run_funnel(
    leads: Leads,
    accounts: Accounts,
    asg: Assignment,
    tier: np.ndarray,
    truth: _Truth,
    params: WorldParams,
    rng: dict[str, np.random.Generator],
) -> _Funnel:
    """Touches, meetings, opportunities, disqualifications, status history, engagement."""
    now = epoch_seconds(params.now)
    plan = plan_touches(asg, rng["touches"])
    meetings = draw_meetings(truth.p_assigned, plan.first_at, asg, now, params, rng["outcomes"])
    disqualified_at = draw_disqualification(
        leads, tier, plan.first_at, meetings, now, rng["outcomes"]
    )
    touches = realise_touches(
        plan, leads, np.minimum(meetings.booked_at, disqualified_at), now, rng["touches"]
    )

    booked_at = np.where(meetings.observed, meetings.booked_at, NEVER)
    met = np.flatnonzero(meetings.observed)
    met = met[np.argsort(booked_at[met], kind="stable")]
    start_at = meeting_starts(booked_at[met], rng["outcomes"])
    employees = np.where(leads.free, np.nan, accounts.employees[np.maximum(leads.account, 0)])
    opps = draw_opportunities(met, start_at, tier[met], employees[met], now, rng["outcomes"])
    converted_at = np.full(leads.n, NEVER)
    converted_at[opps.lead] = opps.created_at
    opportunity_key = np.full(leads.n, MISSING)
    opportunity_key[opps.lead] = np.arange(opps.lead.shape[0])
    first_touch = group_min(touches.lead, touches.at, leads.n, NEVER)
    changes = status_history(leads.n, first_touch, booked_at, converted_at, disqualified_at)

    events = Events.concat(
        [
            truth.pre_events,
            post_assignment(leads, asg, booked_at, rng["engagement"], params.engagement_scale),
            sales_email_clicks(touches, leads, rng["engagement"]),
        ]
    )
    return _Funnel(
        touches=touches,
        meeting=meetings.observed,
        booked_at=booked_at,
        met=met,
        start_at=start_at,
        opportunities=opps,
        converted_at=converted_at,
        opportunity_key=opportunity_key,
        changes=changes,
        events=events.keep(events.at <= now),
    )


def _features(leads: Leads, accounts: Accounts, pre: Events, tier: np.ndarray) -> Features:
    attached = ~leads.free
    acc = np.maximum(leads.account, 0)
    counts = count_by_kind(pre, leads.n)
    k = {name: counts[:, i] for i, name in enumerate(ENGAGEMENT_KINDS)}
    return Features(
        tier=tier,
        seniority=np.where(leads.title_missing, MISSING, leads.seniority),
        size_band=np.where(attached, accounts.size_band[acc], MISSING),
        source=leads.source_seen,
        industry=np.where(attached, accounts.industry[acc], MISSING),
        pricing_visit=k["pricing_page_visit"] > 0,
        form_fill=k["form_fill"] > 0,
        content_engaged=(k["webinar_attended"] + k["content_download"] + k["email_click"]) > 0,
        page_views=k["page_view"],
        opt_out=leads.opt_out,
        invalid_email=leads.invalid_email,
        intent=leads.intent,
    )


def _last_lead_change(leads: Leads, asg: Assignment, funnel: _Funnel) -> np.ndarray:
    """Latest time anything touched the lead record (routing, activity, status)."""
    n = leads.n
    return np.maximum.reduce(
        [
            leads.created_at,
            np.where(asg.assigned, asg.assigned_at, 0),  # routing sets the owner
            group_max(funnel.touches.lead, funnel.touches.at, n, 0),
            group_max(funnel.events.lead, funnel.events.at, n, 0),
            group_max(funnel.changes.lead, funnel.changes.at, n, 0),
        ]
    )


def _edited(last_change: np.ndarray, now: int, rng: np.random.Generator) -> np.ndarray:
    """Modified time: a little after the last change, sometimes a later manual edit."""
    n = last_change.shape[0]
    modified = last_change + rng.integers(0, 2 * HOUR, n)
    later = modified + ((now - modified) * rng.random(n)).astype(np.int64)
    return np.minimum(np.where(rng.random(n) < 0.2, later, modified), now)


def _lead_owners(
    leads: Leads, accounts: Accounts, users: Users, asg: Assignment, rng: np.random.Generator
) -> np.ndarray:
    # Leads wait with the marketing-automation user until routing assigns them; best-fit
    # accounts' contacts often go straight to the account's AE, the rest to an SDR.
    n = leads.n
    sdr = users.sdr[rng.integers(0, users.sdr.shape[0], n)]
    acc = np.maximum(leads.account, 0)
    tier = np.where(leads.free, len(TIERS), accounts.tier[acc])
    to_ae = (tier <= TIERS.index("B")) & (rng.random(n) < 0.5)
    owner = np.where(to_ae, accounts.owner[acc], sdr)
    return np.where(asg.assigned, owner, users.marketing)


def _meeting_owners(
    leads: Leads, accounts: Accounts, users: Users, rng: np.random.Generator
) -> np.ndarray:
    # The account's AE takes the meeting; a free-mail lead's goes to any closer.
    closers = np.concatenate([users.ae, users.senior_ae])
    any_ae = closers[rng.integers(0, closers.shape[0], leads.n)]
    return np.where(leads.free, any_ae, accounts.owner[np.maximum(leads.account, 0)])
