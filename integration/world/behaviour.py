"""What leads and reps did: marketing engagement events and sales touches.

Engagement comes in three layers: before assignment (anonymous web visits
attached on identification, the event that created the lead, early form
fills), after assignment (decaying activity that rises with intent), and
after a booked meeting (the lead keeps reading pricing pages: a model that
peeks past its cut-off learns from this and leaks). Clicks on delivered sales
emails are engagement too.

Touches follow each action's schedule from the assignment time; the plan is
drawn first (so meetings can be timed after the first touch) and realised once
meetings and disqualifications are known: a sequence stops at a booked meeting
or a disqualification, emails stop after the first bounce, nothing is later
than now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connectors.base import ENGAGEMENT_KINDS
from connectors.sandbox.seed import LEAD_SOURCES, TOUCH_KINDS, TOUCH_STATUSES

from . import params as P
from . import vocab as V
from .clock import NEVER, days
from .experiments import Assignment
from .population import Leads
from .sampling import group_min, sigmoid

DETAILS = tuple(d for k in ENGAGEMENT_KINDS for d in V.ENGAGEMENT_DETAILS[k])
DETAIL_OFFSET = np.cumsum([0] + [len(V.ENGAGEMENT_DETAILS[k]) for k in ENGAGEMENT_KINDS])[:-1]
# Random draws skip the last email_click detail: "Sales email link" is only for sales emails.
DETAIL_RANDOM_COUNT = {k: len(V.ENGAGEMENT_DETAILS[k]) for k in ENGAGEMENT_KINDS}
DETAIL_RANDOM_COUNT["email_click"] -= 1
SALES_CLICK_DETAIL = DETAILS.index("Sales email link")
PAGE_LIKE = ("page_view", "pricing_page_visit")  # trackable before the lead is identified

SUBJECTS = tuple(
    dict.fromkeys([s for steps in P.SCHEDULES.values() for *_, s in steps] + [P.OVERRIDE_SUBJECT])
)
EMAIL_CHANNEL = (TOUCH_KINDS.index("email"), TOUCH_KINDS.index("offer"))
CALL = TOUCH_KINDS.index("call")


@dataclass
class Events:
    """Engagement rows (arrays of equal length)."""

    lead: np.ndarray
    kind: np.ndarray  # ENGAGEMENT_KINDS code
    detail: np.ndarray  # DETAILS code
    at: np.ndarray  # epoch seconds

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("lead", "kind", "detail", "at")
            )
        )

    def keep(self, mask: np.ndarray) -> Events:
        return Events(self.lead[mask], self.kind[mask], self.detail[mask], self.at[mask])


@dataclass
class TouchPlan:
    """Every touch the schedules call for, before stopping rules apply."""

    lead: np.ndarray
    kind: np.ndarray  # TOUCH_KINDS code
    subject: np.ndarray  # SUBJECTS code
    at: np.ndarray
    first_at: np.ndarray  # per lead: time of its first planned touch, NEVER if none


@dataclass
class Touches:
    """Realised touches."""

    lead: np.ndarray
    kind: np.ndarray
    status: np.ndarray  # TOUCH_STATUSES code
    subject: np.ndarray
    at: np.ndarray
    duration: np.ndarray  # seconds (float), NaN unless a call


def _random_details(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    name = ENGAGEMENT_KINDS[kind]
    return DETAIL_OFFSET[kind] + rng.integers(0, DETAIL_RANDOM_COUNT[name], n)


def _counted(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Lead index repeated by a Poisson count per lead."""
    return np.repeat(np.arange(rate.shape[0]), rng.poisson(rate))


def pre_assignment(
    leads: Leads, asg: Assignment, rng: np.random.Generator, scale: float = 1.0
) -> Events:
    """Engagement up to assignment: web visits (even before creation), creation events.

    Times may lie after now for leads not yet assigned; the caller drops those.
    ``scale`` multiplies every rate (a quieter or busier marketing site).
    """
    parts = []
    for kind, name in enumerate(ENGAGEMENT_KINDS):
        a, b = P.PRE_ENGAGEMENT_RATE[name]
        lead = _counted(rng, scale * np.exp(a + b * leads.intent))
        end = asg.assigned_at[lead] - 60
        if name in PAGE_LIKE:
            start = leads.created_at[lead] - days(P.PRE_CREATION_DAYS)
            # Squared uniform: visits bunch up just before identification and routing.
            at = end - ((end - start) * rng.random(lead.shape[0]) ** 2).astype(np.int64)
        else:
            start = leads.created_at[lead]
            at = start + ((end - start) * rng.random(lead.shape[0])).astype(np.int64)
        parts.append(
            Events(
                lead, np.full(lead.shape[0], kind), _random_details(rng, kind, lead.shape[0]), at
            )
        )
    # The event that created the lead reveals its source even when the field is blank.
    for source, (kind_name, detail) in V.SOURCE_EVENT_DETAIL.items():
        lead = np.flatnonzero(leads.source == LEAD_SOURCES.index(source))
        parts.append(
            Events(
                lead,
                np.full(lead.shape[0], ENGAGEMENT_KINDS.index(kind_name)),
                np.full(lead.shape[0], DETAILS.index(detail)),
                leads.created_at[lead].copy(),
            )
        )
    return Events.concat(parts)


def count_by_kind(events: Events, n_leads: int) -> np.ndarray:
    """Matrix (n_leads, len(ENGAGEMENT_KINDS)) of event counts."""
    flat = events.lead * len(ENGAGEMENT_KINDS) + events.kind
    counts = np.bincount(flat, minlength=n_leads * len(ENGAGEMENT_KINDS))
    return counts.reshape(n_leads, len(ENGAGEMENT_KINDS))


def post_assignment(
    leads: Leads,
    asg: Assignment,
    booked_at: np.ndarray,
    rng: np.random.Generator,
    scale: float = 1.0,
) -> Events:
    """Engagement after assignment, plus the post-meeting reading that makes leakage bite.

    Args:
        leads: the leads (intent drives rates).
        asg: assignment (activity decays from assigned_at).
        booked_at: meeting booking time per lead, NEVER if none.
        rng: random stream.
    """
    parts = []
    for kind, name in enumerate(ENGAGEMENT_KINDS):
        a, b = P.POST_ENGAGEMENT_RATE[name]
        lead = _counted(rng, scale * np.exp(a + b * leads.intent))
        at = asg.assigned_at[lead] + days(
            rng.exponential(P.POST_ENGAGEMENT_MEAN_DAYS, lead.shape[0])
        )
        parts.append(
            Events(
                lead, np.full(lead.shape[0], kind), _random_details(rng, kind, lead.shape[0]), at
            )
        )
    met = booked_at != NEVER
    for name, mean in P.POST_MEETING_EVENTS.items():
        kind = ENGAGEMENT_KINDS.index(name)
        lead = _counted(rng, np.where(met, mean, 0.0))
        at = booked_at[lead] + days(rng.exponential(P.POST_MEETING_MEAN_DAYS, lead.shape[0]))
        at = np.maximum(at, booked_at[lead] + 60)
        parts.append(
            Events(
                lead, np.full(lead.shape[0], kind), _random_details(rng, kind, lead.shape[0]), at
            )
        )
    return Events.concat(parts)


def sales_email_clicks(touches: Touches, leads: Leads, rng: np.random.Generator) -> Events:
    """Clicks on delivered sales emails (more likely from high-intent leads)."""
    delivered = np.isin(touches.kind, EMAIL_CHANNEL) & (
        touches.status == TOUCH_STATUSES.index("completed")
    )
    idx = np.flatnonzero(delivered)
    p = P.EMAIL_CLICK_BASE * 2.0 * sigmoid(leads.intent[touches.lead[idx]])
    idx = idx[rng.random(idx.shape[0]) < p]
    at = touches.at[idx] + 60 + days(rng.exponential(4.0 / 24, idx.shape[0]))
    return Events(
        touches.lead[idx].copy(),
        np.full(idx.shape[0], ENGAGEMENT_KINDS.index("email_click")),
        np.full(idx.shape[0], SALES_CLICK_DETAIL),
        at,
    )


def plan_touches(asg: Assignment, rng: np.random.Generator) -> TouchPlan:
    """Lay out each treated lead's schedule and each override's single call.

    Day-0 steps land 1-7 hours after assignment; later steps on their day plus up to
    7 hours, so steps never swap order.
    """
    leads_parts, kind_parts, subj_parts, at_parts = [], [], [], []
    for action_code, action in enumerate(P.ACTIONS):
        in_arm = np.flatnonzero(asg.treated & (asg.experiment == action_code))
        for kind, day, prob, subject in P.SCHEDULES[action]:
            lead = in_arm[rng.random(in_arm.shape[0]) < prob] if prob < 1 else in_arm
            jitter = rng.uniform(1.0 / 24, 7.0 / 24, lead.shape[0])
            leads_parts.append(lead)
            kind_parts.append(np.full(lead.shape[0], TOUCH_KINDS.index(kind)))
            subj_parts.append(np.full(lead.shape[0], SUBJECTS.index(subject)))
            at_parts.append(asg.assigned_at[lead] + days(day + jitter))
    # Rep overrides: a control lead called anyway within two days of assignment.
    lead = np.flatnonzero(asg.override)
    leads_parts.append(lead)
    kind_parts.append(np.full(lead.shape[0], CALL))
    subj_parts.append(np.full(lead.shape[0], SUBJECTS.index(P.OVERRIDE_SUBJECT)))
    at_parts.append(asg.assigned_at[lead] + days(rng.uniform(1.0 / 24, 2.0, lead.shape[0])))
    lead = np.concatenate(leads_parts)
    at = np.concatenate(at_parts)
    return TouchPlan(
        lead=lead,
        kind=np.concatenate(kind_parts),
        subject=np.concatenate(subj_parts),
        at=at,
        first_at=group_min(lead, at, asg.unit.shape[0], NEVER),
    )


def realise_touches(
    plan: TouchPlan, leads: Leads, stop_at: np.ndarray, now: int, rng: np.random.Generator
) -> Touches:
    """Apply stopping rules and draw statuses and call durations.

    Args:
        plan: the planned touches.
        leads: the leads (phone and email validity drive statuses).
        stop_at: per lead, no touch after this time (meeting booked, disqualified).
        now: the world's clock (epoch seconds).
        rng: random stream.
    """
    keep = (plan.at <= now) & (plan.at <= stop_at[plan.lead])
    lead, kind, subject, at = plan.lead[keep], plan.kind[keep], plan.subject[keep], plan.at[keep]
    email_like = np.isin(kind, EMAIL_CHANNEL)
    bounced = email_like & leads.invalid_email[lead]
    # Sequencing tools stop emailing an address after its first bounce.
    first_bounce = group_min(lead[bounced], at[bounced], leads.n, NEVER)
    keep = ~(email_like & (at > first_bounce[lead]))
    lead, kind, subject, at, bounced = (x[keep] for x in (lead, kind, subject, at, bounced))

    n = lead.shape[0]
    is_call = kind == CALL
    no_phone = np.equal(leads.phone[lead], None)
    p_no_answer = np.where(no_phone, P.CALL_NO_ANSWER_NO_PHONE, P.CALL_NO_ANSWER)
    no_answer = is_call & (rng.random(n) < p_no_answer)
    status = np.select(
        [bounced, no_answer],
        [TOUCH_STATUSES.index("bounced"), TOUCH_STATUSES.index("no_answer")],
        default=TOUCH_STATUSES.index("completed"),
    )
    talk = np.exp(rng.normal(np.log(240.0), 0.6, n))
    ring = rng.uniform(15, 45, n)
    duration = np.where(is_call, np.rint(np.where(no_answer, ring, talk)), np.nan)
    return Touches(lead, kind, status, subject, at, duration)
