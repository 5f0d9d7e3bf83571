"""Capacity-aware queues: a queue takes at most what its team can work today.

The failure this prevents: the model shifts, 40% of the book lands in "High", and the
AE queue gets 4,000 leads for a team that works 200 a day. Most of them would sit
untouched past their SLA while an SDR queue had room. Instead, when a queue's
candidates exceed its capacity left today, the ones with the most expected incremental
conversions stay (ties: the higher propensity), and the rest spill to the queue's
``spill_to``. The spill target ranks its own leads and the spilled-in ones together, so
it may overflow and spill again down the chain. Spill chains are acyclic (the policy
checks), so one pass over the queues in chain order settles everything.

Vectorised: queues are integer codes and each queue is one ``np.lexsort`` of its
members, so a million leads take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from integration.routing.policy import RoutingPolicy

__all__ = ["VOLUME_COLUMNS", "CapacityResult", "apply_capacity", "spill_order"]

NO_QUEUE = -1
VOLUME_COLUMNS = [
    "crm_queue",
    "capacity_per_day",
    "used_before",
    "capacity_left",
    "routed",
    "spilled_in",
    "assigned",
    "spilled_out",
]


@dataclass(frozen=True)
class CapacityResult:
    """Per lead: final queue key (None: no queue), whether it spilled, the reason note to
    append ("" when nothing happened); per queue: ``volumes`` (index: queue key, columns
    ``VOLUME_COLUMNS``; capacities are None when unlimited)."""

    queue: np.ndarray
    spilled: np.ndarray
    note: np.ndarray
    volumes: pd.DataFrame


def spill_order(policy: RoutingPolicy) -> list[str]:
    """Queue keys such that every queue comes after all queues that spill into it."""
    feeders = {name: 0 for name in policy.queues}
    for spec in policy.queues.values():
        if spec.spill_to is not None:
            feeders[spec.spill_to] += 1
    ready = sorted(name for name, count in feeders.items() if count == 0)
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        target = policy.queues[name].spill_to
        if target is not None:
            feeders[target] -= 1
            if feeders[target] == 0:
                ready.append(target)
    return order


def _left(policy: RoutingPolicy, used: Mapping[str, int]) -> dict[str, int | None]:
    for name, count in used.items():
        if name not in policy.queues:
            raise ValueError(f"capacity_used: unknown queue {name!r}")
        if count < 0:
            raise ValueError(f"capacity_used.{name}: must be at least 0 (got {count})")
    return {
        name: None if q.capacity_per_day is None else max(q.capacity_per_day - used.get(name, 0), 0)
        for name, q in policy.queues.items()
    }


def apply_capacity(
    queue: np.ndarray,
    expected_incremental: np.ndarray,
    propensity: np.ndarray,
    policy: RoutingPolicy,
    capacity_used: Mapping[str, int] | None = None,
) -> CapacityResult:
    """Hold every queue to its capacity left today, spilling the lowest-ranked overflow.

    Args:
        queue: queue key per lead (None: no queue; never touched).
        expected_incremental: the ranking value per lead (more is kept first).
        propensity: the tie-break per lead.
        policy: the queues, capacities and spill chains.
        capacity_used: leads each queue (by key) already took today.
    """
    used = dict(capacity_used or {})
    left = _left(policy, used)
    names = list(policy.queues)
    code_of = {name: i for i, name in enumerate(names)}
    distinct, position = _unique_map(queue)
    unknown = sorted(str(q) for q in distinct if q is not None and q not in code_of)
    if unknown:
        raise ValueError(f"queue: not in the policy: {', '.join(unknown)}")
    lookup = [NO_QUEUE if q is None else code_of[q] for q in distinct]
    codes = np.array(lookup, dtype=np.int64)[position]
    n = codes.size
    expected = np.asarray(expected_incremental, dtype=float)
    p = np.asarray(propensity, dtype=float)
    spilled = np.zeros(n, dtype=bool)
    note = np.full(n, "", dtype=object)
    routed = np.bincount(codes[codes >= 0], minlength=len(names))
    spilled_in = np.zeros(len(names), dtype=np.int64)
    spilled_out = np.zeros(len(names), dtype=np.int64)
    for name in spill_order(policy):
        k = code_of[name]
        capacity = left[name]
        members = np.flatnonzero(codes == k)
        if capacity is None or members.size <= capacity:
            continue
        rank = np.lexsort((-p[members], -expected[members]))  # last key sorts first
        overflow = members[rank[capacity:]]
        spec = policy.queues[name]
        target = spec.spill_to
        if target is None:
            codes[overflow] = NO_QUEUE
            text = f"; {spec.crm_queue} full ({spec.capacity_per_day}/day): left unassigned"
        else:
            codes[overflow] = code_of[target]
            spilled_in[code_of[target]] += overflow.size
            text = (
                f"; {spec.crm_queue} full ({spec.capacity_per_day}/day): spilled to "
                f"{policy.queues[target].crm_queue}"
            )
        spilled_out[k] += overflow.size
        spilled[overflow] = True
        note[overflow] = note[overflow] + text
    assigned = np.bincount(codes[codes >= 0], minlength=len(names))
    final = np.array([*names, None], dtype=object)[np.where(codes >= 0, codes, len(names))]
    volumes = pd.DataFrame(
        {
            "crm_queue": [policy.queues[q].crm_queue for q in names],
            "capacity_per_day": pd.Series(
                [policy.queues[q].capacity_per_day for q in names], dtype=object, index=names
            ),
            "used_before": [int(used.get(q, 0)) for q in names],
            "capacity_left": pd.Series([left[q] for q in names], dtype=object, index=names),
            "routed": routed.astype(np.int64),
            "spilled_in": spilled_in,
            "assigned": assigned.astype(np.int64),
            "spilled_out": spilled_out,
        },
        index=pd.Index(names, name="queue", dtype=object),
    )
    return CapacityResult(final, spilled, note, volumes)


def _unique_map(values: np.ndarray) -> tuple[list[object], np.ndarray]:
    """Distinct values (None included) and each row's position among them."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    distinct = [*uniques.tolist(), None]
    return distinct, np.where(codes >= 0, codes, len(distinct) - 1)
