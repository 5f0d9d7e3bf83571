"""Routing: turn a pass of scores into buckets, outreach actions and CRM queues.

`load_policy` reads the policy (the packaged, commented ``default_policy.yaml`` by
default); `route` applies it to the scored open leads, uplift segments and experiment
arms, holding each queue to its daily capacity (`apply_capacity`); `bucket_drift` says
when the bucket mix moved from its baseline.
"""

from __future__ import annotations

from integration.routing.capacity import CapacityResult, apply_capacity, spill_order
from integration.routing.drift import Drift, bucket_drift, bucket_shares, population_stability
from integration.routing.policy import RoutingPolicy, load_policy, policy_from_dict
from integration.routing.route import LEAD_COLUMNS, Routing, route

__all__ = [
    "LEAD_COLUMNS",
    "CapacityResult",
    "Drift",
    "Routing",
    "RoutingPolicy",
    "apply_capacity",
    "bucket_drift",
    "bucket_shares",
    "load_policy",
    "policy_from_dict",
    "population_stability",
    "route",
    "spill_order",
]
