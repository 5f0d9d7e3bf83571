"""Generation parameters and the coefficient tables that define the world's truth.

`WorldParams` holds the scalar knobs of one generation run (it is what
``World.params`` returns, with the calibrated intercept filled in). The
dictionaries below are the fixed shape of the world: how often each category
is drawn and how much each observable feature moves baseline propensity and
per-action uplift. They are data, not code, so a reader can see the whole
data-generating process in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

ACTIONS = ("email_sequence", "call_first", "linkedin_touch", "offer")
SEGMENTS = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
ARMS = ("treatment", "control")  # index = the control flag
DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WorldParams:
    """Scalar knobs of one world. Defaults reproduce the documented world.

    Attributes:
        n_leads: number of leads.
        seed: seed of the one PCG64 stream family every draw comes from.
        now: the world's clock; nothing that happened is later than this.
        leads_per_rep: leads per sales rep (at least ``min_reps`` reps).
        min_reps: lower bound on the number of sales reps.
        leads_per_account: mean contacts per account among account leads.
        free_mail_share: share of leads with a personal address and no account.
        history_days: how far back lead creation goes.
        growth: log of the ratio of lead volume at ``now`` to volume at the start.
        max_assignment_delay_days: assignment happens 1 h to this many days after creation.
        control_share: holdout share inside every experiment stratum (1/share integral).
        override_share: share of control units a rep calls anyway.
        window_days: outcome window after assignment for a meeting to count.
        target_base_rate: mean baseline propensity the intercept is calibrated to.
        p0_intercept: intercept of the baseline logit; NaN (the default) calibrates it to
            ``target_base_rate``, a number is used as given.
        sure_thing_p0: p0 from which a lead counts as a sure thing.
        persuadable_tau: best uplift from which a lead counts as persuadable.
        do_not_disturb_tau: best uplift at or below which every action hurts.
        engagement_scale: multiplies every marketing-engagement rate (1 = the default site).
    """

    n_leads: int = 20_000
    seed: int = 7
    now: datetime = DEFAULT_NOW
    leads_per_rep: int = 800
    min_reps: int = 6
    leads_per_account: float = 3.5
    free_mail_share: float = 0.10
    history_days: float = 548.0
    growth: float = 0.6
    max_assignment_delay_days: float = 2.0
    control_share: float = 0.2
    override_share: float = 0.04
    window_days: int = 21
    target_base_rate: float = 0.04
    p0_intercept: float = math.nan
    sure_thing_p0: float = 0.15
    persuadable_tau: float = 0.02
    do_not_disturb_tau: float = -0.005
    engagement_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.n_leads < 1:
            raise ValueError("n_leads must be at least 1")
        if self.min_reps < 4:
            # Two SDRs, one AE and one senior AE at the least.
            raise ValueError("min_reps must be at least 4")
        if self.now.tzinfo is None or self.now.utcoffset() != UTC.utcoffset(None):
            raise ValueError("now must be a tz-aware UTC datetime")
        block = 1.0 / self.control_share
        if abs(block - round(block)) > 1e-9 or round(block) < 2:
            # Permuted blocks need an integral block size (0.2 -> blocks of 5).
            raise ValueError("control_share must be 1/k for an integer k >= 2")

    @property
    def holdout_block(self) -> int:
        """Size of the permuted blocks that hold exactly one control unit."""
        return round(1.0 / self.control_share)


# --- Population shape -------------------------------------------------------------------

REGION_WEIGHTS = {"NA": 0.45, "EMEA": 0.33, "APAC": 0.15, "LATAM": 0.07}
INDUSTRY_WEIGHTS = {
    "Software": 0.25,
    "Financial Services": 0.15,
    "Healthcare": 0.12,
    "Manufacturing": 0.14,
    "Retail": 0.10,
    "Education": 0.08,
    "Professional Services": 0.16,
}
INDUSTRY_MISSING = 0.05
EMPLOYEES_LOG_MEDIAN = math.log(90.0)
EMPLOYEES_LOG_SD = 1.7
EMPLOYEES_MISSING = 0.08
REVENUE_MISSING_EXTRA = 0.10  # revenue is missing more often than headcount
# Revenue per employee (USD) by industry; unknown industry uses the mean.
REVENUE_PER_EMPLOYEE = {
    "Software": 260e3,
    "Financial Services": 400e3,
    "Healthcare": 180e3,
    "Manufacturing": 220e3,
    "Retail": 150e3,
    "Education": 80e3,
    "Professional Services": 170e3,
}
# ICP fit: tier is cut from industry fit + size fit + noise at these account shares.
ICP_INDUSTRY_FIT = {
    "Software": 1.0,
    "Financial Services": 0.8,
    "Professional Services": 0.4,
    "Healthcare": 0.3,
    "Manufacturing": 0.1,
    "Retail": -0.2,
    "Education": -0.5,
}
ICP_INDUSTRY_UNKNOWN = -0.3
ICP_SIZE_FIT = (-1.0, -0.3, 0.3, 0.8, 0.9, 0.6)  # per SIZE_BANDS
ICP_SIZE_UNKNOWN = -0.4
ICP_NOISE_SD = 0.5
TIER_SHARES = (0.11, 0.22, 0.29, 0.38)  # A, B, C, D among accounts
# Bigger companies have more contacts in the CRM: weight = employees ** this.
CONTACTS_SIZE_EXPONENT = 0.25

SENIORITY_WEIGHTS = (0.08, 0.10, 0.17, 0.25, 0.40)
SENIORITY_WEIGHTS_SMALL = (0.22, 0.12, 0.12, 0.20, 0.34)  # companies with <= 50 employees
FOUNDER_SHARE_SMALL = 0.5  # of c-level at <= 10 employees
DEPARTMENT_WEIGHTS = (0.20, 0.22, 0.22, 0.10, 0.14, 0.12)

SOURCE_WEIGHTS = {
    "Web Form": 0.20,
    "Paid Search": 0.16,
    "Webinar": 0.10,
    "Content Download": 0.14,
    "Event": 0.08,
    "Outbound List": 0.20,
    "Referral": 0.06,
    "Partner": 0.06,
}
SOURCE_WEIGHTS_FREE_MAIL = {
    "Web Form": 0.22,
    "Paid Search": 0.22,
    "Webinar": 0.16,
    "Content Download": 0.26,
    "Event": 0.04,
    "Outbound List": 0.04,
    "Referral": 0.04,
    "Partner": 0.02,
}

# --- Latent intent and what it shows through ---------------------------------------------

INTENT_SOURCE = {
    "Web Form": 0.6,
    "Paid Search": 0.1,
    "Webinar": 0.2,
    "Content Download": 0.0,
    "Event": 0.3,
    "Outbound List": -0.9,
    "Referral": 0.9,
    "Partner": 0.5,
}
INTENT_TIER = (0.3, 0.15, 0.0, -0.15, -0.2)  # A, B, C, D, no account
INTENT_NOISE_SD = 1.0

# Missingness carries signal: logit = base + intent_coef * intent + outbound_coef * outbound.
MISSING_LOGITS = {
    "title": (-2.5, -0.8, 1.6),
    "phone": (-0.4, -0.6, 1.3),
    "lead_source": (-3.0, -0.5, 1.0),
    "email_opt_out": (-3.0, -0.2, 0.8),
    "invalid_email": (-3.5, -0.3, 1.5),
}
COMPANY_TYPED_LOWER = 0.07  # the form's company field typed in lower case
COMPANY_TYPED_BRAND = 0.08  # typed without the noun ("Velora" for "Velora Robotics")

# --- Engagement (marketing automation) -------------------------------------------------

# Expected events per lead before assignment: exp(a + b * intent).
PRE_ENGAGEMENT_RATE = {
    "page_view": (0.5, 0.5),
    "pricing_page_visit": (-2.6, 1.1),
    "form_fill": (-3.2, 0.7),
    "webinar_attended": (-3.5, 0.4),
    "content_download": (-2.8, 0.4),
    "email_click": (-2.4, 0.5),
}
# Expected events after assignment over the lead's life: exp(a + b * intent).
POST_ENGAGEMENT_RATE = {
    "page_view": (1.0, 0.5),
    "pricing_page_visit": (-1.8, 1.0),
    "form_fill": (-2.4, 0.6),
    "webinar_attended": (-2.0, 0.4),
    "content_download": (-1.6, 0.4),
    "email_click": (0.0, 0.5),
}
POST_ENGAGEMENT_MEAN_DAYS = 40.0  # activity decays after assignment
PRE_CREATION_DAYS = 21.0  # anonymous web visits get attached up to this far back
# After booking a meeting a lead keeps reading (the leakage trap): expected extra events.
POST_MEETING_EVENTS = {"page_view": 3.0, "pricing_page_visit": 1.5}
POST_MEETING_MEAN_DAYS = 6.0
EMAIL_CLICK_BASE = 0.04  # chance a delivered sales email is clicked, rising with intent

# --- Baseline propensity p0: logit terms on observables (+ latent intent) ----------------

P0_TIER = (0.9, 0.5, 0.0, -0.5, -0.4)  # A, B, C, D, no account
P0_SENIORITY = (0.1, 0.35, 0.4, 0.25, -0.3)  # per SENIORITIES
P0_TITLE_MISSING = -0.6
P0_SIZE = (-0.5, -0.1, 0.1, 0.3, 0.2, 0.0)  # per SIZE_BANDS
P0_SIZE_UNKNOWN = -0.2
P0_SOURCE = {
    "Web Form": 0.6,
    "Paid Search": 0.0,
    "Webinar": 0.1,
    "Content Download": -0.2,
    "Event": 0.3,
    "Outbound List": -0.9,
    "Referral": 0.9,
    "Partner": 0.5,
}
P0_SOURCE_UNKNOWN = -0.3
P0_INDUSTRY = {
    "Software": 0.3,
    "Financial Services": 0.2,
    "Healthcare": 0.0,
    "Manufacturing": -0.1,
    "Retail": -0.2,
    "Education": -0.3,
    "Professional Services": 0.1,
}
P0_INDUSTRY_UNKNOWN = -0.1
P0_PRICING_VISIT = 1.0
P0_FORM_FILL = 0.5
P0_PAGE_VIEWS_LOG1P = 0.25
P0_CONTENT_ENGAGED = 0.15
P0_INTENT = 0.6

# --- True uplift per action (probability points) ---------------------------------------

# Positive parts (before shrinkage).
TAU_CALL_BASE = 0.012
TAU_CALL_ENGAGED_FIT_MGR = 0.055  # engaged, tier A/B, manager or director
TAU_CALL_ENGAGED = 0.015
TAU_CALL_TIER_AB = 0.008
TAU_EMAIL_BASE = 0.004
TAU_EMAIL_CONTENT = 0.022  # webinar / content / email-click engagers
TAU_LINKEDIN_BASE = 0.003
TAU_LINKEDIN_EXEC_SW_FS = 0.05  # VP or C-level in Software or Financial Services
TAU_LINKEDIN_SW_FS = 0.008
TAU_OFFER_BASE = 0.004
TAU_OFFER_SMALL_CD = 0.04  # <= 50 employees, tier C or D
# Harm shares r: an annoyed lead keeps only (1 - r) of its baseline and of its positive part.
HARM_CALL_CLEVEL_BIG = 0.6  # cold-calling a C-level at 1001+ employees
HARM_OFFER_TIER_A = 0.5  # discounting to a best-fit account cheapens the product
HARM_OPT_OUT = 0.8  # every outreach to someone who opted out
HARM_EXEC_BIG = 0.6  # VP / C-level at 1001+ employees: cold outreach to gatekept executives
HARM_PARTNER = 0.6  # partner-sourced: the partner owns the relationship (channel conflict)
HARM_INDIVIDUAL_LINKEDIN = 0.2
# Sure things gain little: positive uplift * 1 / (1 + (p0 / P0_SATURATION) ** 3).
P0_SATURATION = 0.17
# Lost causes: unengaged poor-fit leads keep this fraction of their positive uplift.
LOST_CAUSE_SHRINK = 0.2
HALF_LOST_SHRINK = 0.6  # either unengaged or poor fit
P_MIN, P_MAX = 0.001, 0.95

# --- Touch schedules per action: (kind, day, probability, subject) -----------------------

SCHEDULES: dict[str, tuple[tuple[str, float, float, str], ...]] = {
    "email_sequence": (
        ("email", 0.0, 1.0, "Quick question about your pipeline"),
        ("email", 3.0, 1.0, "Following up"),
        ("email", 6.0, 1.0, "How teams like yours prioritise leads"),
        ("email", 10.0, 1.0, "Closing the loop"),
    ),
    "call_first": (
        ("call", 0.0, 1.0, "Call"),
        ("call", 1.0, 0.5, "Call"),
        ("email", 2.0, 1.0, "Sorry I missed you"),
        ("email", 5.0, 1.0, "Following up on my call"),
    ),
    "linkedin_touch": (
        ("linkedin", 0.0, 1.0, "LinkedIn connection request"),
        ("linkedin", 3.0, 1.0, "LinkedIn message"),
    ),
    "offer": (
        ("offer", 0.0, 1.0, "Offer: 20% off first year"),
        ("email", 5.0, 1.0, "Your offer expires soon"),
    ),
}
OVERRIDE_SUBJECT = "Call"
CALL_NO_ANSWER = 0.5
CALL_NO_ANSWER_NO_PHONE = 0.75

# --- Outcomes after a meeting -------------------------------------------------------------

# Booking lands at first touch (or assignment) + Beta(a, b) of the rest of the window:
# most bookings come in the first week, a tail up to the window's end.
MEETING_DELAY_BETA = (1.3, 2.8)
MEETING_LEAD_DAYS = (1.0, 7.0)  # start_at after booked_at
MEETING_DURATIONS = (30, 45, 60)
OPPORTUNITY_GIVEN_MEETING = (0.70, 0.64, 0.56, 0.46, 0.45)  # A, B, C, D, no account
OPPORTUNITY_DELAY_DAYS = (0.5, 7.0)  # after the meeting
WIN_RATE = (0.34, 0.30, 0.22, 0.16, 0.18)  # A, B, C, D, no account
CLOSE_DAYS = (20.0, 120.0)
AMOUNT_BASE = 12_000.0
AMOUNT_SIZE_EXPONENT = 0.35
# Disqualification after a touch, for leads that will not meet: logit terms.
DISQUALIFY_BASE = -2.6
DISQUALIFY_TIER = (-1.2, -0.6, 0.0, 0.8, 0.6)  # A, B, C, D, no account
DISQUALIFY_INDIVIDUAL = 0.4
DISQUALIFY_INTENT = -0.5
DISQUALIFY_DELAY_DAYS = (1.0, 20.0)  # after the first touch
