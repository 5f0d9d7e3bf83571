"""Route a pass of scored leads: bucket → routing action and queue, uplift segment or
experiment arm → outreach action, then queue capacity → spills.

Precedence, per lead (first that applies):

1. An experiment arm. ``override`` (a rep overrode the arm): the lead is left to the
   rep: route ``keep_owner``, no queue (the owner is not moved), no action.
   ``control`` (held out): no action, bucket routing. Any other arm is the action the
   experiment assigned, with bucket routing. Arms win over the segment rules,
   do-not-disturb included: randomisation is only worth something when it is honoured,
   and treated and held-out leads must be routed alike except for the action, or the
   experiment measures the routing.
2. The uplift segment's rule in the policy (persuadable → best action; sure thing and
   lost cause → no action; do-not-disturb → suppressed: no action, no queue).
3. No segment (no uplift model): no action, bucket routing.

``expected_incremental`` is what capacity ranks on: the best action's uplift when that
action is taken, 0 when no action is taken. Without an uplift model (``uplift_best``
NaN) it is the propensity, a ranking proxy and not an incremental effect; the reason
says so.

Every decision is vectorised over the whole frame; a reason string is composed once per
distinct combination of what it says (bucket, case, segment, action, tenth of a point,
experiment, spill) and then indexed out, so a million leads route in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from integration.routing.capacity import apply_capacity
from integration.routing.policy import RoutingPolicy, SegmentRules

__all__ = [
    "CONTROL_ARM",
    "LEAD_COLUMNS",
    "OVERRIDE_ARM",
    "OVERRIDE_ROUTE",
    "Routing",
    "bucket_index",
    "percentiles",
    "route",
]

CONTROL_ARM = "control"
OVERRIDE_ARM = "override"
OVERRIDE_ROUTE = "keep_owner"
NO_MODEL_TEXT = "no uplift model: ranked by propensity"
SEGMENTS = tuple(SegmentRules.model_fields)  # the uplift segment labels
# What a lead's reason says about its action (one code per lead).
HELPS, NO_HELP, NO_ACTION, SUPPRESSED, NO_SEGMENT, CONTROL, OVERRIDE, TREATED = range(8)
WHY = {
    HELPS: "{segment}: {action} adds {points:.1f} pt",
    NO_HELP: "{segment}: none: no action with positive uplift",
    NO_ACTION: "{segment}: none{note}",
    SUPPRESSED: "{segment}: suppressed{note}",
    CONTROL: "held out by experiment {experiment}: no action",
    OVERRIDE: "rep override in experiment {experiment}: left to the rep",
    TREATED: "experiment {experiment}: {action} arm",
}
LEAD_COLUMNS = [
    "lead_crm_id",
    "bucket",
    "percentile",
    "route",
    "action",
    "segment",
    "queue",
    "reason",
    "expected_incremental",
    "spilled",
]


@dataclass(frozen=True)
class Routing:
    """A routed pass.

    Attributes:
        leads: one row per lead, columns ``LEAD_COLUMNS`` (``percentile`` is the score's
            percentile in the pass, or its reference population; ``queue`` is the CRM
            queue name or None; ``action`` None when no outreach).
        queues: volumes per queue key (see `integration.routing.capacity.VOLUME_COLUMNS`).
        basis: what the bucket thresholds were applied to.
        proxy: True when some lead had no uplift estimate and ranked by propensity.
    """

    leads: pd.DataFrame
    queues: pd.DataFrame
    basis: str
    proxy: bool

    def bucket_counts(self) -> dict[str, int]:
        counts = self.leads["bucket"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}


def percentiles(propensity: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """100 × the share of the reference population scored strictly lower.

    Strictly lower, so tied leads share a percentile (never split across buckets) and a
    block of ties is not promoted above where its members actually stand.
    """
    population = np.sort(np.asarray(propensity if reference is None else reference, float))
    if population.size == 0:
        return np.zeros(len(propensity))
    below = np.searchsorted(population, propensity, side="left")
    return below * 100.0 / population.size


def bucket_index(value: np.ndarray, policy: RoutingPolicy) -> np.ndarray:
    """Index into ``policy.buckets`` (0 = top) of the first bucket whose threshold
    ``value`` (a percentile, or a probability in %) reaches."""
    ascending = np.array([b.threshold for b in reversed(policy.buckets[:-1])])
    return len(ascending) - np.searchsorted(ascending, value, side="right")


def _labels(values: pd.Series | None, n: int) -> np.ndarray:
    """Writable object array with None for every missing value (pandas 3 strings turn
    None into NaN, which would read as a label)."""
    if values is None:
        return np.full(n, None, dtype=object)
    return values.astype(object).where(values.notna(), None).to_numpy(dtype=object, copy=True)


def _pick(condition: np.ndarray, yes: Any, no: np.ndarray) -> np.ndarray:
    return np.where(condition, yes, no).astype(object)


def _arms(arms: pd.Series | pd.DataFrame | None, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Arm and experiment name per lead (None where the lead is in no experiment)."""
    n = len(ids)
    if arms is None:
        return np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    if isinstance(arms, pd.DataFrame):
        missing = {"arm", "experiment"} - set(arms.columns)
        if missing:
            raise ValueError(f"arms: missing columns {', '.join(sorted(missing))}")
        arm, experiment = arms["arm"], arms["experiment"]
    else:
        arm = arms
        name = "the experiment" if arms.name is None else str(arms.name)
        experiment = pd.Series(name, index=arms.index, dtype=object)
    if arm.index.has_duplicates:
        dup = int(arm.index.duplicated().sum())
        raise ValueError(f"arms: {dup} leads have more than one arm (one per lead expected)")
    arm_out = _labels(arm.reindex(ids.to_numpy()), n)
    experiment_out = _labels(experiment.reindex(ids.to_numpy()), n)
    experiment_out[pd.notna(arm_out) & pd.isna(experiment_out)] = "the experiment"
    experiment_out[pd.isna(arm_out)] = None
    return arm_out, experiment_out


def _check(scores: pd.DataFrame) -> None:
    missing = {"lead_crm_id", "propensity"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores: missing columns {', '.join(sorted(missing))}")
    if scores["lead_crm_id"].duplicated().any():
        raise ValueError("scores: lead_crm_id must be unique (one row per lead)")
    p = scores["propensity"].to_numpy(dtype=float)
    bad = np.isnan(p) | (p < 0) | (p > 1)
    if bad.any():
        raise ValueError(f"scores.propensity: {int(bad.sum())} values are not probabilities")
    if "segment" in scores:
        labels = _labels(scores["segment"], len(scores))
        unknown = pd.notna(labels) & ~np.isin(labels, SEGMENTS)
        if unknown.any():
            shown = ", ".join(sorted(map(str, set(labels[unknown]))))
            raise ValueError(f"scores.segment: unknown labels {shown} (known: {SEGMENTS})")


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _compose(
    policy: RoutingPolicy,
    level: int,
    case: int,
    segment: str | None,
    action: str | None,
    tenths: int,
    experiment: str | None,
    no_model: bool,
    spill: str,
) -> str:
    """One reason: "<bucket>: <where>; <why>[; no uplift model…][; <queue> full…]"."""
    bucket = policy.buckets[level]
    where = bucket.text
    if case == SUPPRESSED:
        where = policy.suppress.label
    elif case == OVERRIDE:
        where = "owner kept"
    rule = policy.segments.get(segment) if segment is not None else None
    if case == NO_SEGMENT:
        why = NO_MODEL_TEXT if no_model else "no uplift segment: no action"
    else:
        why = WHY[case].format(
            segment=_words(segment),
            action=_words(action),
            points=tenths / 10,
            note=f": {rule.note}" if rule is not None and rule.note else "",
            experiment=experiment,
        )
    parts = [f"{bucket.name}: {where}", why]
    if no_model and case != NO_SEGMENT:
        parts.append(NO_MODEL_TEXT)
    return "; ".join(parts) + spill


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer code per row, None (or NaN) a code of its own."""
    data = pd.Series(values, dtype=object) if values.dtype == object else values
    return pd.factorize(data, use_na_sentinel=False)[0]


def _per_distinct(columns: dict[str, np.ndarray], fn: Callable[..., str]) -> np.ndarray:
    """``fn(**row)`` for every row, computed once per distinct row of ``columns``."""
    n = len(next(iter(columns.values())))
    if n == 0:
        return np.array([], dtype=object)
    codes = {name: _codes(col) for name, col in columns.items()}
    group = pd.DataFrame(codes).groupby(list(codes), sort=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)
    texts = [fn(**{name: col[i] for name, col in columns.items()}) for i in first]
    return np.array(texts, dtype=object)[group]


def route(
    scores: pd.DataFrame,
    policy: RoutingPolicy,
    arms: pd.Series | pd.DataFrame | None = None,
    capacity_used: Mapping[str, int] | None = None,
    reference: np.ndarray | pd.Series | None = None,
) -> Routing:
    """Route every lead in ``scores``.

    Args:
        scores: one row per lead: ``lead_crm_id``, ``propensity`` (calibrated, 0–1) and,
            from the uplift model, ``segment``, ``action`` (best action or None) and
            ``uplift_best`` (its uplift; NaN without a model). The last three are
            optional: missing means no uplift model.
        policy: the routing policy (`load_policy`).
        arms: experiment arm per lead, indexed by lead_crm_id: a Series whose ``name``
            is the experiment, or a frame with ``arm`` and ``experiment`` columns.
        capacity_used: leads each queue (by policy key) already took today.
        reference: propensities the percentile is taken among (default: ``scores``).
            Pass the latest full pass when routing a few leads (a webhook rescoring one
            lead), or a lone lead would always be at percentile 0.

    Raises:
        ValueError: a required column is missing, a lead appears twice, a propensity is
            not a probability, a segment label is unknown, or ``capacity_used`` names
            a queue the policy lacks.
    """
    _check(scores)
    n = len(scores)
    ids = scores["lead_crm_id"]
    p = scores["propensity"].to_numpy(dtype=float)
    segment = _labels(scores.get("segment"), n)
    best = _labels(scores.get("action"), n)
    uplift = (
        scores["uplift_best"].to_numpy(dtype=float)
        if "uplift_best" in scores
        else np.full(n, np.nan)
    )
    no_model = np.isnan(uplift)

    ref = None if reference is None else np.asarray(reference, dtype=float)
    percentile = percentiles(p, ref)
    level = bucket_index(percentile if policy.basis == "percentile" else p * 100.0, policy)
    bucket_route = np.array([b.route for b in policy.buckets], dtype=object)[level]
    bucket_queue = np.array([b.queue for b in policy.buckets], dtype=object)[level]

    # The uplift segment's rule.
    outreach = np.full(n, "none", dtype=object)
    for name in SEGMENTS:
        outreach[segment == name] = policy.segments.get(name).outreach
    take = outreach == "best_action"
    suppress = outreach == "suppress"
    action = _pick(take, best, np.full(n, None, dtype=object))
    case = np.select(
        [take & pd.notna(action), take, suppress, pd.notna(segment)],
        [HELPS, NO_HELP, SUPPRESSED, NO_ACTION],
        default=NO_SEGMENT,
    )
    route_ = _pick(suppress, policy.suppress.route, bucket_route)
    queue = _pick(suppress, policy.suppress.queue, bucket_queue)

    # Experiment arms win over the segment rules: bucket routing and the arm's action.
    arm, experiment = _arms(arms, ids)
    in_arm = pd.notna(arm)
    control = in_arm & (arm == CONTROL_ARM)
    override = in_arm & (arm == OVERRIDE_ARM)
    treated = in_arm & ~control & ~override
    route_ = _pick(override, OVERRIDE_ROUTE, _pick(in_arm, bucket_route, route_))
    queue = _pick(override, None, _pick(in_arm, bucket_queue, queue))
    action = _pick(treated, arm, _pick(control | override, None, action))
    case = np.select([control, override, treated], [CONTROL, OVERRIDE, TREATED], default=case)

    # What capacity ranks on.
    acted = pd.notna(action) & (action == best)
    expected = np.where(no_model, p, np.where(acted, np.nan_to_num(uplift), 0.0))
    capped = apply_capacity(queue, expected, p, policy, capacity_used)

    # Reasons: only what each case says enters the key, so distinct rows stay few.
    said_segment = _pick(in_arm | (case == NO_SEGMENT), None, segment)
    tenths = np.where(case == HELPS, np.round(np.nan_to_num(uplift) * 1000), 0).astype(np.int64)
    reason = _per_distinct(
        {
            "level": level,
            "case": case,
            "segment": said_segment,
            "action": _pick((case == HELPS) | (case == TREATED), action, np.full(n, None)),
            "tenths": tenths,
            "experiment": experiment,
            "no_model": no_model,
            "spill": capped.note,
        },
        lambda **row: _compose(policy, **row),
    )
    crm_queue = np.full(n, None, dtype=object)
    for key, spec in policy.queues.items():
        crm_queue[capped.queue == key] = spec.crm_queue
    leads = pd.DataFrame(
        {
            "lead_crm_id": ids.to_numpy(),
            "bucket": pd.Series(np.array(policy.bucket_names, dtype=object)[level], dtype=object),
            "percentile": percentile,
            "route": pd.Series(route_, dtype=object),
            "action": pd.Series(action, dtype=object),
            "segment": pd.Series(segment, dtype=object),
            "queue": pd.Series(crm_queue, dtype=object),
            "reason": pd.Series(reason, dtype=object),
            "expected_incremental": expected,
            "spilled": capped.spilled,
        },
        columns=LEAD_COLUMNS,
    )
    return Routing(leads, capped.volumes, policy.basis, bool(no_model.any()))
