"""The world's truth: baseline propensity p0(x), uplift tau_a(x) per action, segments.

p0 is P(meeting within the window | no action): a logistic function of what a
CRM shows before assignment (tier, seniority from the title, size, source,
industry, engagement before assignment, a blank title) plus the latent intent.
Its intercept is calibrated so the mean p0 hits ``target_base_rate``.

tau_a is additive on the probability scale and heterogeneous in observables
only: a positive part per action, damped for near-certain leads (sure things
gain little) and for unengaged poor-fit leads (lost causes), minus a harm part
that removes a share of p0 (you cannot annoy away more than the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connectors.sandbox.seed import INDUSTRIES, LEAD_SOURCES, SIZE_BANDS

from . import params as P
from .params import ACTIONS, SEGMENTS, WorldParams
from .sampling import sigmoid, table, with_missing

SOFTWARE = INDUSTRIES.index("Software")
FIN_SERV = INDUSTRIES.index("Financial Services")
BIG_BAND = SIZE_BANDS.index("1001-5000")  # and above
SMALL_BAND = SIZE_BANDS.index("11-50")  # and below
TINY_BAND = SIZE_BANDS.index("1-10")
C_LEVEL, VP, DIRECTOR, MANAGER, INDIVIDUAL = range(5)
EMAIL_BORNE = ("email_sequence", "offer")  # delivered by email: nothing reaches a dead address
TIER_A, TIER_B, TIER_C, TIER_D, NO_ACCOUNT = range(5)


@dataclass
class Features:
    """What the truth functions read, one array per feature (indexed by lead_key).

    Everything is observable in the CrmSeed as of assignment except `intent` and
    `invalid_email` (which only shows once an email bounces).
    """

    tier: np.ndarray  # 0..3 = A..D, 4 = no account
    seniority: np.ndarray  # from the title; -1 when the title is blank
    size_band: np.ndarray  # -1 when employees unknown
    source: np.ndarray  # lead_source field; -1 when blank
    industry: np.ndarray  # -1 when unknown
    pricing_visit: np.ndarray  # bool, before assignment
    form_fill: np.ndarray  # bool, before assignment
    content_engaged: np.ndarray  # bool: webinar, download or email click before assignment
    page_views: np.ndarray  # count before assignment
    opt_out: np.ndarray  # bool
    invalid_email: np.ndarray  # bool, latent
    intent: np.ndarray  # latent


def baseline_logit(f: Features) -> np.ndarray:
    """Logit of p0 without the intercept."""
    return (
        np.array(P.P0_TIER)[f.tier]
        + with_missing(P.P0_SENIORITY, P.P0_TITLE_MISSING)[f.seniority]
        + with_missing(P.P0_SIZE, P.P0_SIZE_UNKNOWN)[f.size_band]
        + table(LEAD_SOURCES, P.P0_SOURCE, P.P0_SOURCE_UNKNOWN)[f.source]
        + table(INDUSTRIES, P.P0_INDUSTRY, P.P0_INDUSTRY_UNKNOWN)[f.industry]
        + P.P0_PRICING_VISIT * f.pricing_visit
        + P.P0_FORM_FILL * f.form_fill
        + P.P0_CONTENT_ENGAGED * f.content_engaged
        + P.P0_PAGE_VIEWS_LOG1P * np.log1p(f.page_views)
        + P.P0_INTENT * f.intent
    )


def calibrate_intercept(logit: np.ndarray, target: float) -> float:
    """Intercept b with mean(sigmoid(b + logit)) == target (bisection, monotone in b)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sigmoid(mid + logit).mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def uplift(f: Features, p0: np.ndarray) -> np.ndarray:
    """Effective tau per action, shape (n, len(ACTIONS)), after clipping p0 + tau.

    Args:
        f: the features.
        p0: baseline propensity.

    Returns:
        tau[:, a] = clip(p0 + raw_tau_a, P_MIN, P_MAX) - p0 for a in ACTIONS order.
    """
    engaged = f.pricing_visit | f.form_fill
    seen = f.seniority
    manager_or_director = (seen == MANAGER) | (seen == DIRECTOR)
    executive = (seen == C_LEVEL) | (seen == VP)
    big = f.size_band >= BIG_BAND
    small = (f.size_band >= 0) & (f.size_band <= SMALL_BAND)
    tier_ab = f.tier <= TIER_B
    tier_cd = (f.tier == TIER_C) | (f.tier == TIER_D)
    sw_fs = (f.industry == SOFTWARE) | (f.industry == FIN_SERV)
    poor_fit = (f.tier >= TIER_C) | (f.size_band == TINY_BAND)
    unengaged = ~engaged & ~f.content_engaged & (f.page_views <= 2)
    # Near-certain leads move little either way; lost causes respond little to a pitch.
    saturation = 1.0 / (1.0 + (p0 / P.P0_SATURATION) ** 3)
    damp = saturation * np.where(
        poor_fit & unengaged,
        P.LOST_CAUSE_SHRINK,
        np.where(poor_fit | unengaged, P.HALF_LOST_SHRINK, 1.0),
    )

    positive = {
        "email_sequence": P.TAU_EMAIL_BASE + P.TAU_EMAIL_CONTENT * f.content_engaged,
        "call_first": P.TAU_CALL_BASE
        + P.TAU_CALL_ENGAGED_FIT_MGR * (engaged & tier_ab & manager_or_director)
        + P.TAU_CALL_ENGAGED * engaged
        + P.TAU_CALL_TIER_AB * tier_ab,
        "linkedin_touch": P.TAU_LINKEDIN_BASE
        + P.TAU_LINKEDIN_EXEC_SW_FS * (executive & sw_fs)
        + P.TAU_LINKEDIN_SW_FS * sw_fs,
        "offer": P.TAU_OFFER_BASE + P.TAU_OFFER_SMALL_CD * (small & tier_cd),
    }
    partner = f.source == LEAD_SOURCES.index("Partner")
    common = (
        _keep(P.HARM_OPT_OUT * f.opt_out)
        * _keep(P.HARM_EXEC_BIG * (executive & big))
        * _keep(P.HARM_PARTNER * partner)
    )
    keep = {
        "email_sequence": common,
        "call_first": common * _keep(P.HARM_CALL_CLEVEL_BIG * ((seen == C_LEVEL) & big)),
        "linkedin_touch": common * _keep(P.HARM_INDIVIDUAL_LINKEDIN * (seen == INDIVIDUAL)),
        "offer": common * _keep(P.HARM_OFFER_TIER_A * (f.tier == TIER_A)),
    }
    tau = np.empty((p0.shape[0], len(ACTIONS)))
    for j, action in enumerate(ACTIONS):
        harm = (1.0 - keep[action]) * p0 * saturation
        # Someone annoyed by the outreach does not also respond to its pitch.
        raw = keep[action] * damp * positive[action] - harm
        tau[:, j] = np.clip(p0 + raw, P.P_MIN, P.P_MAX) - p0
        if action in EMAIL_BORNE:
            tau[:, j] = np.where(f.invalid_email, 0.0, tau[:, j])
    return tau


def _keep(harm_share: np.ndarray) -> np.ndarray:
    return 1.0 - harm_share


def segments(p0: np.ndarray, tau: np.ndarray, params: WorldParams) -> np.ndarray:
    """Segment code per lead (index into SEGMENTS), from the truth.

    persuadable if the best action gains >= persuadable_tau; do_not_disturb if even the
    best action loses >= |do_not_disturb_tau|; else sure_thing when p0 >= sure_thing_p0;
    else lost_cause.
    """
    best = tau.max(axis=1)
    return np.select(
        [
            best >= params.persuadable_tau,
            best <= params.do_not_disturb_tau,
            p0 >= params.sure_thing_p0,
        ],
        [
            SEGMENTS.index("persuadable"),
            SEGMENTS.index("do_not_disturb"),
            SEGMENTS.index("sure_thing"),
        ],
        default=SEGMENTS.index("lost_cause"),
    )
