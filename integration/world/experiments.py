"""The past randomized experiments: one per action, randomized at account level.

The unit is the account (every contact of an account shares its experiment and
arm) or, for a free-mail lead, the lead itself. Each unit joins one of the four
experiments uniformly. Inside every (tier, experiment) stratum units are
sorted by size and cut into permuted blocks of ``1 / control_share`` units with
exactly one control each, so the holdout is 20% per tier both in units and,
because block-mates have similar sizes, in leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connectors.sandbox.seed import TIERS

from .clock import HOUR, days, epoch_seconds
from .params import ACTIONS, WorldParams
from .population import Accounts, Leads
from .sampling import duplicate_rank


@dataclass
class Assignment:
    """Per-lead experiment facts (arrays indexed by lead_key)."""

    unit: np.ndarray  # unit_key: account_key, or n_accounts + i for the i-th free-mail lead
    experiment: np.ndarray  # index into ACTIONS
    control: np.ndarray  # bool: the unit's arm is control
    override: np.ndarray  # bool: a control lead a rep called anyway (assigned leads only)
    assigned_at: np.ndarray  # epoch seconds (may lie after now)
    assigned: np.ndarray  # bool: assigned_at <= now

    @property
    def treated(self) -> np.ndarray:
        return self.assigned & ~self.control


def experiment_ids() -> tuple[str, ...]:
    """Experiment id of each action, e.g. ``call_first_v1``."""
    return tuple(f"{a}_v1" for a in ACTIONS)


def permuted_blocks(
    rng: np.random.Generator, strata: np.ndarray, sizes: np.ndarray, block: int
) -> np.ndarray:
    """Mark one control per block of `block` similar-sized units inside each stratum.

    A trailing partial block of k units gets its control with probability k / block,
    so the expected share stays exactly 1 / block.

    Returns:
        Boolean control flag per unit.
    """
    n = strata.shape[0]
    by_size = np.lexsort((rng.random(n), sizes))
    pos = np.empty(n, dtype=np.int64)
    pos[by_size] = duplicate_rank(strata[by_size])
    block_id = np.unique(strata * (n + 1) + pos // block, return_inverse=True)[1]
    chosen = rng.integers(0, block, block_id.max() + 1 if n else 0)
    return (pos % block) == chosen[block_id]


def assign_experiments(
    leads: Leads, accounts: Accounts, params: WorldParams, rng: np.random.Generator
) -> Assignment:
    """Randomize units into experiments and arms and time each lead's assignment.

    Args:
        leads: the leads (creation times, accounts).
        accounts: the accounts (tier is the stratum).
        params: world parameters (control share, override share, delays).
        rng: random stream for this step.
    """
    free = leads.free
    free_rank = np.cumsum(free) - 1
    unit = np.where(free, accounts.n + free_rank, leads.account)
    n_units = accounts.n + int(free.sum())
    sizes = np.bincount(unit, minlength=n_units)
    stratum_tier = np.concatenate([accounts.tier, np.full(n_units - accounts.n, len(TIERS))])

    experiment_u = rng.integers(0, len(ACTIONS), n_units)
    strata = stratum_tier * len(ACTIONS) + experiment_u
    control_u = permuted_blocks(rng, strata, sizes, params.holdout_block)
    override_u = control_u & (rng.random(n_units) < params.override_share)

    delay = rng.uniform(1.0 / 24, params.max_assignment_delay_days, leads.n)
    assigned_at = leads.created_at + days(delay)
    # Round to the minute the routing job ran; keeps assignment strictly after creation.
    assigned_at = np.maximum(assigned_at - assigned_at % 60, leads.created_at + HOUR)
    assigned = assigned_at <= epoch_seconds(params.now)
    return Assignment(
        unit=unit,
        experiment=experiment_u[unit],
        control=control_u[unit],
        override=override_u[unit] & assigned,
        assigned_at=assigned_at,
        assigned=assigned,
    )
