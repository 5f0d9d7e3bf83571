"""Segment-level uplift for sparse data, uplift segments per lead, and a per-rep diagnostic.

``SegmentUplift`` estimates each action's uplift per segment (e.g. ICP tier × intent
tier × channel) as a treated-minus-holdout difference in conversion rates. It shrinks
each estimate toward the action's overall effect (empirical Bayes) and gives it a
bootstrap interval. Use it where a feature-level model has too little data: a new
portal, a rare outcome, a few hundred leads per arm.

``classify_segments`` turns propensity and best-action uplift into the four uplift
segments written back to the CRM. ``uplift_by_rep`` is a diagnostic for RevOps and
never a targeting input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "SEGMENT_LABELS",
    "SegmentThresholds",
    "SegmentUplift",
    "classify_segments",
    "uplift_by_rep",
]

SEGMENT_LABELS = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
KEY_SEPARATOR = " | "


def segment_keys(segment: Any) -> np.ndarray:
    """One string key per row: a 1-D array's values, or a frame's columns joined by " | "."""
    if isinstance(segment, pd.DataFrame):
        if segment.shape[1] == 0:
            raise ValueError("segment frame has no columns")
        parts = [segment[c].astype(str).to_numpy(dtype=object) for c in segment.columns]
        keys = parts[0]
        for part in parts[1:]:
            keys = keys + KEY_SEPARATOR + part
        return keys.astype(object)
    values = np.asarray(segment, dtype=object)
    if values.ndim != 1:
        raise ValueError("segment must be 1-D or a DataFrame of key columns")
    return np.array([str(v) for v in values], dtype=object)


class SegmentUplift(BaseEstimator):
    """Per-segment uplift with partial pooling and bootstrap intervals.

    For action ``a`` and segment ``s``, ``x_T, n_T`` are the treated conversions and
    rows, and ``x_C, n_C`` the holdout's. The raw effect is
    ``d_s = x_T/n_T - x_C/n_C``. Its sampling variance is
    ``v_s = r_T(1-r_T)/n_T + r_C(1-r_C)/n_C``, computed with rates smoothed by
    ``prior_rows`` pseudo-rows at the action's overall rates,
    ``r = (x + prior_rows * overall_rate) / (n + prior_rows)``, so that a cell with no
    conversions still has a variance.

    Shrinkage (empirical Bayes, normal-normal): ``mu`` is the action's overall effect
    (treated minus holdout rate over every row). The between-segment variance ``tau2``
    is the DerSimonian–Laird moment estimate,
    ``tau2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``. Here
    ``w = 1 / v_s``, ``Q = sum w (d_s - d_w)^2``, ``d_w`` is the w-weighted mean
    effect, and ``k`` is the number of segments where both arms have rows. Then
    ``shrunk_s = mu + (1 - B_s)(d_s - mu)`` with ``B_s = v_s / (v_s + tau2)``.
    With ``tau2 = 0`` every segment gets ``mu``. A segment missing one of the arms
    gets ``mu`` (``B_s = 1``).

    Intervals: a stratified bootstrap. Within every (segment, arm) cell the
    conversions are redrawn as ``Binomial(n, x/n)``, which is exactly what resampling
    that cell's rows with replacement does to a 0/1 outcome. The whole procedure (mu,
    tau2, shrinkage) is then recomputed, and the percentile interval at level ``ci``
    is taken. A cell with 0 conversions never varies in the bootstrap, so its interval
    comes from the shrinkage alone and understates the uncertainty.

    Args:
        control: name of the holdout arm.
        prior_rows: pseudo-rows for the variance smoothing.
        n_boot: bootstrap replicates.
        ci: interval level (0.9 = 5th to 95th percentile).
        random_state: seed of the bootstrap.

    Attributes:
        actions_: sorted action names.
        effects_: one row per (segment, action): ``segment``, ``action``,
            ``n_treated``, ``n_control``, ``rate_treated``, ``rate_control``,
            ``raw_uplift``, ``weight`` (1 - B_s), ``uplift`` (shrunk), ``ci_low``,
            ``ci_high``.
        overall_: overall effect per action (the shrinkage target ``mu``).
        tau2_: between-segment variance per action.
    """

    def __init__(
        self,
        control: Any = "control",
        prior_rows: float = 2.0,
        n_boot: int = 500,
        ci: float = 0.9,
        random_state: int = 0,
    ) -> None:
        self.control = control
        self.prior_rows = prior_rows
        self.n_boot = n_boot
        self.ci = ci
        self.random_state = random_state

    def fit(self, segment: Any, arm: Any, y: Any) -> SegmentUplift:
        """Estimate the shrunk uplift per segment and action.

        Args:
            segment: segment key per row (1-D), or a DataFrame whose columns together
                form the key (e.g. tier, intent tier, channel).
            arm: arm name per row; the holdout is ``control``.
            y: 0/1 outcome per row.

        Raises:
            ValueError: lengths differ, y not binary, no holdout or no action rows.
        """
        if not 0 < self.ci < 1:
            raise ValueError("ci must be in (0, 1)")
        keys = segment_keys(segment)
        arms = np.asarray(arm, dtype=object).astype(str)
        outcome = np.asarray(y)
        if not (keys.shape[0] == arms.shape[0] == outcome.shape[0]):
            raise ValueError("segment, arm and y must have the same length")
        if not np.isin(outcome, (0, 1)).all():
            raise ValueError("y must be binary (0/1)")
        control = str(self.control)
        if not (arms == control).any():
            raise ValueError(f"no holdout rows: arm has no {control!r} value")
        self.actions_ = sorted(set(arms.tolist()) - {control})
        if not self.actions_:
            raise ValueError("no action arm: every row is in the holdout")
        segments = sorted(set(keys.tolist()))
        seg_index = {s: i for i, s in enumerate(segments)}
        arm_index = {a: i for i, a in enumerate([control, *self.actions_])}
        seg = np.array([seg_index[k] for k in keys])
        arm_code = np.array([arm_index[a] for a in arms])
        shape = (len(segments), len(arm_index))
        rows = np.zeros(shape)
        wins = np.zeros(shape)
        np.add.at(rows, (seg, arm_code), 1.0)
        np.add.at(wins, (seg, arm_code), outcome.astype(float))

        estimate = self._estimate(rows, wins)
        rng = np.random.default_rng(self.random_state)
        probabilities = np.divide(wins, rows, out=np.zeros(shape), where=rows > 0)
        draws = np.stack(
            [
                self._estimate(rows, rng.binomial(rows.astype(np.int64), probabilities))["uplift"]
                for _ in range(self.n_boot)
            ]
        )
        tail = (1 - self.ci) / 2
        low, high = np.quantile(draws, [tail, 1 - tail], axis=0)

        records = []
        for j, action in enumerate(self.actions_):
            for i, key in enumerate(segments):
                records.append(
                    {
                        "segment": key,
                        "action": action,
                        "n_treated": int(rows[i, j + 1]),
                        "n_control": int(rows[i, 0]),
                        "rate_treated": _rate(wins[i, j + 1], rows[i, j + 1]),
                        "rate_control": _rate(wins[i, 0], rows[i, 0]),
                        "raw_uplift": estimate["raw"][i, j],
                        "weight": estimate["weight"][i, j],
                        "uplift": estimate["uplift"][i, j],
                        "ci_low": low[i, j],
                        "ci_high": high[i, j],
                    }
                )
        self.effects_ = pd.DataFrame(records)
        self.overall_ = pd.Series(estimate["mu"], index=self.actions_, name="overall")
        self.tau2_ = pd.Series(estimate["tau2"], index=self.actions_, name="tau2")
        self._table = self.effects_.pivot(index="segment", columns="action", values="uplift")
        return self

    def _estimate(self, rows: np.ndarray, wins: np.ndarray) -> dict[str, np.ndarray]:
        """Raw, weight and shrunk uplift, (segments, actions); mu and tau2 per action."""
        n_c, x_c = rows[:, [0]], wins[:, [0]]
        n_t, x_t = rows[:, 1:], wins[:, 1:]
        rate_c = x_c.sum() / n_c.sum()
        rate_t = x_t.sum(axis=0) / np.maximum(n_t.sum(axis=0), 1)
        mu = rate_t - rate_c
        both = (n_t > 0) & (n_c > 0)
        raw = np.where(both, _ratio(x_t, n_t) - _ratio(x_c, n_c), np.nan)
        smooth_t = (x_t + self.prior_rows * rate_t) / (n_t + self.prior_rows)
        smooth_c = (x_c + self.prior_rows * rate_c) / (n_c + self.prior_rows)
        variance = smooth_t * (1 - smooth_t) / np.maximum(n_t, 1) + smooth_c * (
            1 - smooth_c
        ) / np.maximum(n_c, 1)
        variance = np.maximum(variance, 1e-12)
        w = np.where(both, 1.0 / variance, 0.0)
        total = w.sum(axis=0)
        centre = np.divide(
            np.nansum(w * np.nan_to_num(raw), axis=0), total, out=mu.copy(), where=total > 0
        )
        q = np.nansum(w * (np.nan_to_num(raw) - centre) ** 2, axis=0)
        k = both.sum(axis=0)
        denominator = total - np.divide((w**2).sum(axis=0), total, where=total > 0, out=total * 0)
        tau2 = np.where(
            (k > 1) & (denominator > 0),
            np.maximum(0.0, (q - (k - 1)) / np.where(denominator > 0, denominator, 1.0)),
            0.0,
        )
        weight = np.where(both, tau2 / (tau2 + variance), 0.0)
        shrunk = mu + weight * (np.nan_to_num(raw) - mu)
        return {"raw": raw, "weight": weight, "uplift": shrunk, "mu": mu, "tau2": tau2}

    def predict(self, segment: Any) -> pd.DataFrame:
        """Shrunk uplift per row and action (``actions_`` columns).

        A segment not seen in ``fit`` gets the action's overall effect.
        """
        check_is_fitted(self, "effects_")
        keys = segment_keys(segment)
        table = self._table.reindex(index=pd.unique(keys), columns=self.actions_)
        table = table.fillna(self.overall_)
        out = table.reindex(keys)
        index = segment.index if isinstance(segment, (pd.Series, pd.DataFrame)) else None
        return pd.DataFrame(out.to_numpy(float), columns=self.actions_, index=index)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


def _rate(wins: float, rows: float) -> float:
    return float(wins / rows) if rows else float("nan")


@dataclass(frozen=True)
class SegmentThresholds:
    """Cut-offs of the uplift segments, defaults as in the synthetic world.

    Attributes:
        persuadable: best-action uplift from which a lead is persuadable (0.02 = +2 pt).
        do_not_disturb: best-action uplift at or below which every action hurts.
        sure_thing: propensity from which a lead converts anyway.
    """

    persuadable: float = 0.02
    do_not_disturb: float = -0.005
    sure_thing: float = 0.15


def classify_segments(
    propensity: Any, uplift_best: Any, thresholds: SegmentThresholds | None = None
) -> np.ndarray | pd.Series:
    """Uplift segment per lead, checked in this order.

    1. ``persuadable`` when the best action's uplift >= ``thresholds.persuadable``.
    2. ``do_not_disturb`` when it is <= ``thresholds.do_not_disturb`` (then every action
       hurts).
    3. ``sure_thing`` when the propensity >= ``thresholds.sure_thing``.
    4. Otherwise ``lost_cause``.

    Args:
        propensity: conversion probability without an action (the baseline), per lead.
        uplift_best: the best action's uplift per lead, or a frame of per-action
            uplifts (``UpliftModel.predict``), whose row maximum is used.
        thresholds: cut-offs; the defaults match the synthetic world's truth.

    Returns:
        Labels from ``SEGMENT_LABELS``: a Series with the propensity's index when it is
        a Series, else an object array.
    """
    cut = thresholds or SegmentThresholds()
    if cut.do_not_disturb >= cut.persuadable:
        raise ValueError("do_not_disturb must be below persuadable")
    p = np.asarray(propensity, dtype=float)
    best = (
        uplift_best.to_numpy(dtype=float).max(axis=1)
        if isinstance(uplift_best, pd.DataFrame)
        else np.asarray(uplift_best, dtype=float)
    )
    if p.ndim != 1 or p.shape != best.shape:
        raise ValueError("propensity and uplift_best must be 1-D with one value per lead")
    labels = np.select(
        [best >= cut.persuadable, best <= cut.do_not_disturb, p >= cut.sure_thing],
        ["persuadable", "do_not_disturb", "sure_thing"],
        default="lost_cause",
    ).astype(object)
    if isinstance(propensity, pd.Series):
        return pd.Series(labels, index=propensity.index, name="segment")
    return labels


def uplift_by_rep(rep: Any, arm: Any, y: Any, control: Any = "control") -> pd.DataFrame:
    """Observed uplift per rep and action: a diagnostic, never a targeting feature.

    For each rep and action: the rep's treated leads' conversion rate minus the rep's
    holdout leads' rate, with the standard error
    ``sqrt(r_T(1-r_T)/n_T + r_C(1-r_C)/n_C)``. Reps are not randomized to leads (books
    differ by tier, region, seniority), so the differences between reps mix skill with
    book. Use this to spot a rep whose treated leads do worse than their holdout, which
    is a coaching or compliance question. Never feed rep into a targeting model: scores
    would then follow the rep and not the lead.

    Returns:
        One row per (rep, action) with holdout rows: ``rep``, ``action``,
        ``n_treated``, ``n_control``, ``rate_treated``, ``rate_control``, ``uplift``,
        ``se``; sorted by rep and action.
    """
    reps = np.asarray(rep, dtype=object)
    arms = np.asarray(arm, dtype=object).astype(str)
    outcome = np.asarray(y)
    if not (reps.shape[0] == arms.shape[0] == outcome.shape[0]):
        raise ValueError("rep, arm and y must have the same length")
    if not np.isin(outcome, (0, 1)).all():
        raise ValueError("y must be binary (0/1)")
    frame = pd.DataFrame({"rep": reps, "arm": arms, "y": outcome.astype(float)})
    cells = frame.groupby(["rep", "arm"], sort=True)["y"].agg(["size", "sum"])
    control = str(control)
    records = []
    for rep_key, part in cells.groupby(level="rep", sort=True):
        part = part.droplevel("rep")
        if control not in part.index:
            continue
        n_c, x_c = part.loc[control, "size"], part.loc[control, "sum"]
        r_c = x_c / n_c
        for action in sorted(set(part.index) - {control}):
            n_t, x_t = part.loc[action, "size"], part.loc[action, "sum"]
            r_t = x_t / n_t
            records.append(
                {
                    "rep": rep_key,
                    "action": action,
                    "n_treated": int(n_t),
                    "n_control": int(n_c),
                    "rate_treated": float(r_t),
                    "rate_control": float(r_c),
                    "uplift": float(r_t - r_c),
                    "se": float(np.sqrt(r_t * (1 - r_t) / n_t + r_c * (1 - r_c) / n_c)),
                }
            )
    columns = [
        "rep",
        "action",
        "n_treated",
        "n_control",
        "rate_treated",
        "rate_control",
        "uplift",
        "se",
    ]
    return pd.DataFrame(records, columns=columns)
