"""Drift of the bucket mix: this pass's bucket shares against a baseline.

A sudden change in who lands where is the earliest visible sign that the data or the
model moved (a broken sync, a new lead source, a retrained model that scores on a
different scale), and it hits queues before any conversion metric can. Two checks:

- each bucket's share against its baseline share, alerting on an absolute move above
  ``share_threshold`` (0.10 = 10 points);
- the population stability index over all buckets,
  ``PSI = Σ (current − baseline) · ln(current / baseline)``, alerting above
  ``psi_threshold`` (0.2 is the customary "significant shift"). Empty buckets are
  floored at ``EPSILON`` so the logarithm stays finite.

Under the percentile basis the shares are fixed by construction, so against the designed
shares they move only when many leads tie (a rules score's few distinct values); give a
baseline from a probability-basis pass to watch the model's scale instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from integration.routing.policy import RoutingPolicy

__all__ = ["EPSILON", "Drift", "bucket_drift", "bucket_shares", "population_stability"]

EPSILON = 1e-4


@dataclass(frozen=True)
class Drift:
    """Shares per bucket (top first), the baseline compared with (None: nothing to
    compare), the PSI (None without a baseline) and the alert messages."""

    shares: dict[str, float]
    baseline: dict[str, float] | None
    psi: float | None
    alerts: list[str] = field(default_factory=list)


def bucket_shares(buckets: pd.Series | np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Share of leads per bucket name, every name present (0.0 when empty).

    Raises:
        ValueError: a bucket is not one of ``names``.
    """
    values = pd.Series(np.asarray(buckets, dtype=object), dtype=object)
    counts = values.value_counts()
    unknown = sorted(map(str, set(counts.index) - set(names)))
    if unknown:
        raise ValueError(f"buckets: not in the policy: {', '.join(unknown)}")
    total = len(values)
    return {name: (int(counts.get(name, 0)) / total if total else 0.0) for name in names}


def population_stability(current: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """PSI between two share vectors over the same keys (each floored at ``EPSILON``)."""
    keys = list(baseline)
    a = np.maximum(np.array([current.get(k, 0.0) for k in keys], dtype=float), EPSILON)
    b = np.maximum(np.array([baseline[k] for k in keys], dtype=float), EPSILON)
    return float(np.sum((a - b) * np.log(a / b)))


def _normalised(baseline: Mapping[str, float], names: tuple[str, ...]) -> dict[str, float]:
    unknown = sorted(set(baseline) - set(names))
    if unknown:
        raise ValueError(f"baseline: not buckets of the policy: {', '.join(unknown)}")
    total = float(sum(baseline.values()))
    if total <= 0 or any(v < 0 for v in baseline.values()):
        raise ValueError("baseline: shares must be at least 0 and sum above 0")
    return {name: float(baseline.get(name, 0.0)) / total for name in names}


def bucket_drift(
    buckets: pd.Series | np.ndarray,
    policy: RoutingPolicy,
    baseline: Mapping[str, float] | None = None,
) -> Drift:
    """Compare this pass's bucket mix with a baseline and say what moved.

    Args:
        buckets: the bucket per lead of this pass (``Routing.leads["bucket"]``).
        policy: bucket names and the drift thresholds.
        baseline: bucket → share (or count; normalised). Default: the policy's
            ``drift.baseline``; failing that, the designed shares under the percentile
            basis, and no comparison under the probability basis.
    """
    names = policy.bucket_names
    shares = bucket_shares(buckets, names)
    given = baseline if baseline is not None else policy.drift.baseline
    if given is None and policy.basis == "percentile":
        given = policy.designed_shares()
    if given is None or len(np.asarray(buckets, dtype=object)) == 0:
        return Drift(shares, None if given is None else _normalised(given, names), None)
    base = _normalised(given, names)
    settings = policy.drift
    alerts = []
    for name in names:
        move = shares[name] - base[name]
        if abs(move) > settings.share_threshold:
            alerts.append(
                f"bucket {name}: {shares[name]:.1%} of leads vs {base[name]:.1%} in the "
                f"baseline ({move * 100:+.1f} pt; alert above "
                f"{settings.share_threshold * 100:g} pt)"
            )
    psi = population_stability(shares, base)
    if psi > settings.psi_threshold:
        alerts.append(
            f"bucket mix: PSI {psi:.3f} above {settings.psi_threshold:g}: "
            "the score distribution moved"
        )
    return Drift(shares, base, psi, alerts)
