"""The synthetic B2B world: a seeded CRM whose true propensity and uplift are known.

    from integration.world import generate_world, World, ACTIONS
    world = generate_world(n_leads=20_000, seed=7, now=datetime(2026, 11, 1, tzinfo=UTC))
    world.seed    # connectors.sandbox.seed.CrmSeed: only what a CRM could see
    world.truth   # one row per lead (seed.leads order): what no CRM can see
    world.params  # the WorldParams used, with the calibrated p0 intercept

Output is a pure function of (n_leads, seed, now, overrides).

Truth columns:
    lead_key, unit_key: the lead and its randomization unit (account_key for
        account contacts; n_accounts + i for the i-th free-mail lead).
    experiment_id, action: the unit's experiment (``<action>_v1``) and its action.
    arm: "treatment" / "control", or None while the lead awaits assignment
        (assigned_at after now); assigned_at is then NaT.
    override: a control lead a rep called anyway (its outcome follows call_first).
    intent, invalid_email: latent traits.
    p0: P(meeting within ``window_days`` of assignment | no action).
    tau_<action>: effective uplift, clip(p0 + tau, 0.001, 0.95) - p0 (0 for
        email-borne actions on an invalid address).
    p_assigned: the probability actually used for the lead's outcome.
    best_action, best_tau: argmax and max over the four tau columns.
    segment: persuadable / sure_thing / lost_cause / do_not_disturb (see effects.py).
    meeting: booked within the window and by now (exactly the seed's meetings).

Seed conventions worth knowing: web visits may predate a lead's created_at
(marketing automation attaches anonymous history on identification); meeting
``start_at`` and an open opportunity's ``close_date`` are plans and may lie after
``now``; every other timestamp is at or before ``now``.
"""

from .generator import World, generate_world
from .params import ACTIONS, DEFAULT_NOW, SEGMENTS, WorldParams

__all__ = ["ACTIONS", "DEFAULT_NOW", "SEGMENTS", "World", "WorldParams", "generate_world"]
