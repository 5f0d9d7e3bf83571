"""What came of it: meetings, opportunities, disqualifications and status history.

A meeting is drawn once per assigned lead with the probability of the arm it
actually got (p0 for control, p0 + tau_a for treatment, p0 + tau_call_first
for a rep override) and booked inside the window after assignment, never
before the lead's first touch. Meetings become opportunities, which close won
or lost or stay open; leads that will not meet may be disqualified by an SDR
after a touch. The status history is derived from those times, so a lead's
current status is its last transition by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connectors.sandbox.seed import LEAD_STATUSES, OPPORTUNITY_STAGES

from . import params as P
from .clock import NEVER, days, floor_day
from .experiments import Assignment
from .population import Leads
from .sampling import group_max, sigmoid

INDIVIDUAL = 4  # SENIORITIES index


@dataclass
class Meetings:
    """Per-lead meeting draw."""

    potential: np.ndarray  # bool: the lead books within its window (maybe after now)
    booked_at: np.ndarray  # epoch seconds, NEVER unless potential
    observed: np.ndarray  # bool: booked by now


@dataclass
class Opportunities:
    """Rows of the opportunities frame (arrays of equal length), in creation order."""

    lead: np.ndarray
    created_at: np.ndarray
    amount: np.ndarray
    stage: np.ndarray  # OPPORTUNITY_STAGES code
    close_date: np.ndarray  # midnight of the actual or expected close
    closed_at: np.ndarray  # NEVER while open
    modified_at: np.ndarray


@dataclass
class StatusChanges:
    """Rows of the status history, sorted by time."""

    lead: np.ndarray
    old: np.ndarray  # LEAD_STATUSES code
    new: np.ndarray
    at: np.ndarray


def draw_meetings(
    p: np.ndarray,
    first_touch: np.ndarray,
    asg: Assignment,
    now: int,
    params: P.WorldParams,
    rng: np.random.Generator,
) -> Meetings:
    """Draw whether and when each assigned lead books a meeting.

    Args:
        p: probability of a meeting under the arm the lead actually got.
        first_touch: time of the lead's first planned touch (NEVER if untouched).
        asg: assignment.
        now: the world's clock (epoch seconds).
        params: world parameters (window length).
        rng: random stream.
    """
    n = p.shape[0]
    potential = asg.assigned & (rng.random(n) < p)
    # Nobody books in answer to a touch they have not had yet.
    anchor = np.where(first_touch != NEVER, first_touch, asg.assigned_at) + 600
    end = asg.assigned_at + days(params.window_days)
    booked = anchor + ((end - anchor) * rng.beta(*P.MEETING_DELAY_BETA, n)).astype(np.int64)
    booked_at = np.where(potential, booked, NEVER)
    return Meetings(potential, booked_at, potential & (booked_at <= now))


def draw_disqualification(
    leads: Leads,
    tier: np.ndarray,
    first_touch: np.ndarray,
    meetings: Meetings,
    now: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Time an SDR disqualified each lead after a touch (NEVER if not, or not yet).

    Only leads that will not meet are disqualified; poor fit makes it likelier.

    Args:
        leads: the leads (intent, seniority).
        tier: 0..3 = A..D, 4 = no account.
        first_touch: first planned touch per lead (NEVER if none).
        meetings: the meeting draw.
        now: the world's clock.
        rng: random stream.
    """
    n = leads.n
    eligible = (first_touch <= now) & ~meetings.potential
    logit = (
        P.DISQUALIFY_BASE
        + np.array(P.DISQUALIFY_TIER)[tier]
        + P.DISQUALIFY_INDIVIDUAL * (leads.seniority == INDIVIDUAL)
        + P.DISQUALIFY_INTENT * leads.intent
    )
    chosen = eligible & (rng.random(n) < sigmoid(logit))
    at = np.where(first_touch == NEVER, 0, first_touch) + days(
        rng.uniform(*P.DISQUALIFY_DELAY_DAYS, n)
    )
    return np.where(chosen & (at <= now), at, NEVER)


def meeting_starts(booked_at: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Start time of each booked meeting: 1-7 days out, on the half hour."""
    start = booked_at + days(rng.uniform(*P.MEETING_LEAD_DAYS, booked_at.shape[0]))
    return start - start % 1800


def draw_opportunities(
    lead: np.ndarray,
    start_at: np.ndarray,
    tier: np.ndarray,
    employees: np.ndarray,
    now: int,
    rng: np.random.Generator,
) -> Opportunities:
    """Turn held meetings into opportunities and close them (or leave them open).

    Args:
        lead: lead key per meeting.
        start_at: meeting start per meeting.
        tier: 0..4 tier code per meeting's lead.
        employees: account headcount per meeting's lead (NaN if unknown).
        now: the world's clock.
        rng: random stream.
    """
    m = lead.shape[0]
    created = start_at + days(rng.uniform(*P.OPPORTUNITY_DELAY_DAYS, m))
    made = (rng.random(m) < np.array(P.OPPORTUNITY_GIVEN_MEETING)[tier]) & (created <= now)
    lead, created, tier, employees = lead[made], created[made], tier[made], employees[made]
    k = lead.shape[0]
    size = np.where(np.isnan(employees), 90.0, employees)
    amount = np.round(
        P.AMOUNT_BASE
        * (size / 100.0) ** P.AMOUNT_SIZE_EXPONENT
        * np.where(tier == 0, 1.3, 1.0)
        * np.exp(rng.normal(0, 0.35, k)),
        -2,
    )
    amount = np.maximum(amount, 1_000.0)
    close = created + days(rng.uniform(*P.CLOSE_DAYS, k))
    closed = close <= now
    won = rng.random(k) < np.array(P.WIN_RATE)[tier]
    # Open deals sit in the stage matching how far through their cycle they are.
    progress = np.clip((now - created) / np.maximum(close - created, 1), 0.0, 0.999)
    open_stage = np.floor(progress * 3).astype(np.int64)  # qualification/proposal/negotiation
    stage = np.where(
        closed,
        np.where(
            won, OPPORTUNITY_STAGES.index("closed_won"), OPPORTUNITY_STAGES.index("closed_lost")
        ),
        open_stage,
    )
    stage_entered = created + (open_stage * (close - created)) // 3
    modified = np.where(closed, close, stage_entered)
    order = np.argsort(created, kind="stable")
    return Opportunities(
        lead=lead[order],
        created_at=created[order],
        amount=amount[order],
        stage=stage[order],
        close_date=floor_day(close)[order],
        closed_at=np.where(closed, close, NEVER)[order],
        modified_at=modified[order],
    )


def status_history(
    n: int,
    first_touch: np.ndarray,
    booked_at: np.ndarray,
    converted_at: np.ndarray,
    disqualified_at: np.ndarray,
) -> StatusChanges:
    """Every status transition, from the times at which they happened.

    Args:
        n: number of leads.
        first_touch: first realised touch per lead (NEVER if none).
        booked_at: observed meeting booking (NEVER if none).
        converted_at: opportunity creation (NEVER if none).
        disqualified_at: disqualification (NEVER if none).
    """
    s = {name: LEAD_STATUSES.index(name) for name in LEAD_STATUSES}
    lead = np.arange(n)
    touched = first_touch != NEVER
    met = booked_at != NEVER
    conv = converted_at != NEVER
    disq = disqualified_at != NEVER
    parts = [
        (lead[touched], s["new"], s["working"], first_touch[touched]),
        # Untouched leads who book go straight from new to meeting_booked.
        (
            lead[met],
            np.where(touched[met], s["working"], s["new"]),
            s["meeting_booked"],
            booked_at[met],
        ),
        (lead[conv], s["meeting_booked"], s["converted"], converted_at[conv]),
        (lead[disq], s["working"], s["disqualified"], disqualified_at[disq]),
    ]
    leads = np.concatenate([p[0] for p in parts])
    old = np.concatenate([np.broadcast_to(p[1], p[0].shape) for p in parts])
    new = np.concatenate([np.full(p[0].shape[0], p[2]) for p in parts])
    at = np.concatenate([p[3] for p in parts])
    order = np.lexsort((new, leads, at))
    return StatusChanges(leads[order], old[order], new[order], at[order])


def current_status(n: int, changes: StatusChanges) -> np.ndarray:
    """Each lead's status after its last transition ("new" if none)."""
    # Changes are time-sorted, so the highest row index per lead is its last transition.
    # Index -1 (no change) picks the appended "new".
    last = group_max(changes.lead, np.arange(changes.lead.shape[0]), n, -1)
    return np.append(changes.new, LEAD_STATUSES.index("new"))[last]
