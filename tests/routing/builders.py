"""Synthetic inputs for routing tests: the packaged policy as data, and score frames."""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
import yaml

from integration.routing import RoutingPolicy, policy_from_dict

DEFAULT_DATA: dict[str, Any] = yaml.safe_load(
    (files("integration.routing") / "default_policy.yaml").read_text(encoding="utf-8")
)


def policy_with(edit: Callable[[dict[str, Any]], None] | None = None) -> RoutingPolicy:
    """The default policy with ``edit(data)`` applied to a copy of its YAML data first."""
    data = copy.deepcopy(DEFAULT_DATA)
    if edit is not None:
        edit(data)
    return policy_from_dict(data, "test policy")


def score_frame(
    n: int,
    seed: int = 0,
    segment: str | None = "persuadable",
    action: str | None = "call_first",
    uplift: float | np.ndarray | None = None,
) -> pd.DataFrame:
    """``n`` leads with distinct B2B-like propensities (mostly 0.1%–30%); uplift drawn
    between 2 and 8 points unless given (NaN: no uplift model)."""
    rng = np.random.default_rng(seed)
    propensity = np.clip(rng.beta(0.8, 20.0, n), 1e-4, 0.99)
    if uplift is None:
        uplift = rng.uniform(0.02, 0.08, n)
    return pd.DataFrame(
        {
            "lead_crm_id": [f"L{i:07d}" for i in range(n)],
            "propensity": propensity,
            "segment": pd.Series([segment] * n, dtype=object),
            "action": pd.Series([action] * n, dtype=object),
            "uplift_best": np.broadcast_to(np.asarray(uplift, dtype=float), (n,)).copy(),
        }
    )
