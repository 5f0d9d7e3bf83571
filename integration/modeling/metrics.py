"""Uplift and calibration metrics: what a randomized holdout can tell about a score.

Notation used in every docstring: the rows are sorted by predicted uplift, largest
first (a stable sort, reversed, so among equal scores the later row comes first —
scikit-uplift's order). For the top ``i`` rows, ``n_T(i)`` and ``n_C(i)`` count the
treated and control rows and ``r_T(i)``, ``r_C(i)`` their responders; ``N`` is the
number of rows. ``A(·)`` is the trapezoid area of a curve over ``i`` in ``[0, N]``.

The Qini and uplift curves and their normalized areas reproduce scikit-uplift 0.5.1
(``sklift.metrics``) exactly, including its tie handling: curves are evaluated only
at distinct score values, so tied rows form one step. causalml's ``qini_score`` is a
different normalization (divided by the curve's end point, not by a perfect curve);
the two are not comparable.

Calibration helpers compare predicted probabilities with observed rates, overall, by
score bucket and by segment (the bias review RevOps owes its reps), and
``uplift_calibration`` does the same for predicted vs observed uplift by score bin.
``bootstrap_se`` gives a resampling standard error for any of these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "best_action_gain",
    "bootstrap_se",
    "bucket_conversion",
    "calibration_by_segment",
    "expected_calibration_error",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "policy_value",
    "qini_auc_score",
    "qini_curve",
    "true_at_k",
    "true_policy_value",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_calibration",
    "uplift_curve",
]


def _binary(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return array.astype(np.int64)


def _inputs(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_arr = _binary(y, "y")
    t_arr = _binary(treatment, "treatment")
    u_arr = np.asarray(uplift, dtype=float)
    if u_arr.ndim != 1:
        raise ValueError(f"uplift must be one-dimensional, got shape {u_arr.shape}")
    if not (y_arr.shape[0] == u_arr.shape[0] == t_arr.shape[0]):
        raise ValueError(
            f"y, uplift and treatment differ in length: {y_arr.shape[0]}, "
            f"{u_arr.shape[0]}, {t_arr.shape[0]}"
        )
    if np.isnan(u_arr).any():
        raise ValueError("uplift contains NaN")
    if t_arr.min(initial=1) == 1 or t_arr.max(initial=0) == 0:
        raise ValueError("treatment must contain both treated (1) and control (0) rows")
    return y_arr, u_arr, t_arr


def _descending(scores: np.ndarray) -> np.ndarray:
    """Row order by score, largest first; ties in reverse row order (as scikit-uplift)."""
    return np.argsort(scores, kind="mergesort")[::-1]


def _cumulative(y: np.ndarray, uplift: np.ndarray, treatment: np.ndarray):
    """Counts at each distinct-score threshold: (k, n_T, r_T, n_C, r_C), all float."""
    order = _descending(uplift)
    y, uplift, treatment = y[order], uplift[order], treatment[order]
    ends = np.r_[np.flatnonzero(np.diff(uplift)), uplift.size - 1]
    n_t = np.cumsum(treatment, dtype=float)[ends]
    r_t = np.cumsum(y * treatment, dtype=float)[ends]
    r_c = np.cumsum(y * (1 - treatment), dtype=float)[ends]
    k = (ends + 1).astype(float)
    return k, n_t, r_t, k - n_t, r_c


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def _from_origin(k: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[0.0, k], np.r_[0.0, values]


def qini_curve(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve (Radcliffe 2007), at each distinct score value.

    ``Q(i) = r_T(i) - r_C(i) * n_T(i) / n_C(i)`` (the ratio term is 0 while
    ``n_C(i) = 0``), with the point ``(0, 0)`` prepended. Identical to
    ``sklift.metrics.qini_curve`` 0.5.1.

    Args:
        y: binary outcomes (0/1).
        uplift: predicted uplift; only the order matters.
        treatment: 1 for treated rows, 0 for control rows.

    Returns:
        ``(i, Q(i))``: number of rows targeted and the curve value, both float arrays.
    """
    k, n_t, r_t, n_c, r_c = _cumulative(*_inputs(y, uplift, treatment))
    return _from_origin(k, r_t - r_c * _ratio(n_t, n_c))


def perfect_qini_curve(
    y: Any, treatment: Any, negative_effect: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The labels-based ideal Qini curve that ``qini_auc_score`` normalizes by.

    With ``negative_effect=True`` it is the Qini curve of the score
    ``y*t - y*(1-t)``: treated responders first, control responders last. With
    ``False`` it is the polyline ``(0, 0) → (Q(N), Q(N)) → (N, Q(N))`` (scikit-uplift
    uses the end value ``Q(N)`` as the x of the kink, a count of responders), defined
    only when ``Q(N) >= 0``.

    Raises:
        ValueError: ``negative_effect=False`` with a negative ``Q(N)``.
    """
    if not isinstance(negative_effect, bool):
        raise TypeError(f"negative_effect must be bool, got {type(negative_effect).__name__}")
    y_arr = _binary(y, "y")
    t_arr = _binary(treatment, "treatment")
    if negative_effect:
        return qini_curve(y_arr, y_arr * t_arr - y_arr * (1 - t_arr), t_arr)
    treated = t_arr == 1
    end = y_arr[treated].sum() - treated.sum() * y_arr[~treated].sum() / (~treated).sum()
    if end < 0:
        # scikit-uplift fails here too (its x axis would run backwards).
        raise ValueError("negative_effect=False needs a non-negative overall effect Q(N)")
    return np.array([0.0, end, float(y_arr.size)]), np.array([0.0, end, end])


def _normalized_area(
    curve: tuple[np.ndarray, np.ndarray], perfect: tuple[np.ndarray, np.ndarray]
) -> float:
    """[A(model) - A(random)] / [A(perfect) - A(random)]; random = line (0,0)→(N, end)."""
    x_p, y_p = perfect
    random_area = 0.5 * x_p[-1] * y_p[-1]
    best = np.trapezoid(y_p, x_p) - random_area
    actual = np.trapezoid(curve[1], curve[0]) - random_area
    if best == 0:
        return math.nan
    return float(actual / best)


def qini_auc_score(y: Any, uplift: Any, treatment: Any, negative_effect: bool = True) -> float:
    """Normalized area under the Qini curve (Qini coefficient), scikit-uplift's definition.

    ``(A(Q_model) - A(Q_random)) / (A(Q_perfect) - A(Q_random))`` where
    ``Q_random`` is the straight line from ``(0, 0)`` to ``(N, Q(N))`` and
    ``Q_perfect`` is :func:`perfect_qini_curve`. The perfect curve is a labels-based
    ideal no model can reach, so real models score far below 1 (the true-CATE oracle
    scores about 0.25 at a 2% base rate). Identical to
    ``sklift.metrics.qini_auc_score`` 0.5.1; NaN when the perfect curve has no area
    above random (e.g. no responders).
    """
    y_arr, u_arr, t_arr = _inputs(y, uplift, treatment)
    return _normalized_area(
        qini_curve(y_arr, u_arr, t_arr), perfect_qini_curve(y_arr, t_arr, negative_effect)
    )


def uplift_curve(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Uplift (cumulative gain) curve, at each distinct score value.

    ``U(i) = (r_T(i)/n_T(i) - r_C(i)/n_C(i)) * i``, a term with a zero denominator
    set to 0, with ``(0, 0)`` prepended. Identical to ``sklift.metrics.uplift_curve``.
    """
    k, n_t, r_t, n_c, r_c = _cumulative(*_inputs(y, uplift, treatment))
    return _from_origin(k, (_ratio(r_t, n_t) - _ratio(r_c, n_c)) * k)


def perfect_uplift_curve(y: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ideal uplift curve: the uplift curve of ``2*[y == t] + s`` (scikit-uplift).

    ``s`` is ``y`` when control responders outnumber treated non-responders, else ``t``.
    """
    y_arr = _binary(y, "y")
    t_arr = _binary(treatment, "treatment")
    control_responders = np.sum((y_arr == 1) & (t_arr == 0))
    treated_non_responders = np.sum((y_arr == 0) & (t_arr == 1))
    summand = y_arr if control_responders > treated_non_responders else t_arr
    return uplift_curve(y_arr, 2 * (y_arr == t_arr) + summand, t_arr)


def uplift_auc_score(y: Any, uplift: Any, treatment: Any) -> float:
    """Normalized area under the uplift curve (AUUC), scikit-uplift's definition.

    Same ratio as :func:`qini_auc_score` built from :func:`uplift_curve` and
    :func:`perfect_uplift_curve`.
    """
    y_arr, u_arr, t_arr = _inputs(y, uplift, treatment)
    return _normalized_area(uplift_curve(y_arr, u_arr, t_arr), perfect_uplift_curve(y_arr, t_arr))


def _top(n: int, k: float | int) -> int:
    """Number of rows in the top k: ``floor(k * n)`` for a share, ``k`` for a count."""
    if isinstance(k, bool):
        raise TypeError("k must be a share in (0, 1) or a row count")
    if isinstance(k, (int, np.integer)):
        if not 0 < k < n:
            raise ValueError(f"k={k} must be a positive count below the {n} rows")
        return int(k)
    if not 0 < k < 1:
        raise ValueError(f"k={k} must be a share in (0, 1) or a row count")
    return int(n * k)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def uplift_at_k(
    y: Any, uplift: Any, treatment: Any, k: float | int = 0.3, strategy: str = "overall"
) -> float:
    """Observed uplift among the top k: treated minus control response rate.

    ``strategy="overall"`` takes the top ``floor(k*N)`` rows of everyone (``k`` an
    int: that many rows) and returns ``r_T/n_T - r_C/n_C`` within them;
    ``"by_group"`` takes the top ``floor(k*N_T)`` treated and top ``floor(k*N_C)``
    control rows separately. As ``sklift.metrics.uplift_at_k``; NaN when a group is
    empty in the top k.
    """
    y_arr, u_arr, t_arr = _inputs(y, uplift, treatment)
    if strategy not in ("overall", "by_group"):
        raise ValueError(f"strategy must be 'overall' or 'by_group', got {strategy!r}")
    order = _descending(u_arr)
    y_arr, t_arr = y_arr[order], t_arr[order]
    if strategy == "overall":
        n = _top(y_arr.size, k)
        top_y, top_t = y_arr[:n], t_arr[:n]
        return _mean_or_nan(top_y[top_t == 1]) - _mean_or_nan(top_y[top_t == 0])
    treated, control = y_arr[t_arr == 1], y_arr[t_arr == 0]
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        n_t = n_c = int(k)
        if n_t > min(treated.size, control.size):
            raise ValueError(f"k={k} exceeds the rows of the smaller group")
    else:
        n_t, n_c = int(treated.size * k), int(control.size * k)
    return _mean_or_nan(treated[:n_t]) - _mean_or_nan(control[:n_c])


def policy_value(y: Any, uplift: Any, treatment: Any, k: float | int = 0.2) -> float:
    """Incremental conversions per 1,000 treated when treating the top k (observed).

    ``(r_T/n_T - r_C/n_C) * 1000`` within the top ``floor(k*N)`` rows, i.e.
    ``1000 * uplift_at_k(..., strategy="overall")``: what treating 1,000 leads like
    the top k would add, estimated from the randomized holdout among them.
    """
    return 1000.0 * uplift_at_k(y, uplift, treatment, k, strategy="overall")


def _true_inputs(true_tau: Any, uplift: Any) -> tuple[np.ndarray, np.ndarray]:
    tau = np.asarray(true_tau, dtype=float)
    score = np.asarray(uplift, dtype=float)
    if tau.ndim != 1 or tau.shape != score.shape:
        raise ValueError("true_tau and uplift must be 1-D arrays of the same length")
    return tau, score


def true_policy_value(true_tau: Any, uplift: Any, k: float | int = 0.2) -> float:
    """Incremental conversions per 1,000 treated in the top k, from the true effects.

    ``1000 * mean(true_tau)`` over the top ``floor(k*N)`` rows ranked by ``uplift``:
    the noise-free counterpart of :func:`policy_value` (synthetic data only).
    """
    tau, score = _true_inputs(true_tau, uplift)
    return 1000.0 * float(tau[_descending(score)[: _top(tau.size, k)]].mean())


def true_at_k(true_tau: Any, uplift: Any, k: float | int = 0.2) -> float:
    """Mean true uplift in the top k as a share of the oracle's.

    ``mean(true_tau | top k by uplift) / mean(true_tau | top k by true_tau)``, the top
    k being ``floor(k*N)`` rows: 1.0 is the oracle's targeting, a random score gets
    about ``mean(true_tau) / oracle``. NaN when the oracle's top-k mean is not positive.
    """
    tau, score = _true_inputs(true_tau, uplift)
    n = _top(tau.size, k)
    oracle = float(np.sort(tau)[::-1][:n].mean())
    if oracle <= 0:
        return math.nan
    return float(tau[_descending(score)[:n]].mean()) / oracle


def best_action_gain(true_tau: Any, uplift: Any, threshold: float = 0.0) -> float:
    """Mean true gain per row of the pick-the-best-action policy.

    Each row gets the action (column) with the largest predicted uplift, or no action
    when every predicted uplift is at most ``threshold``; its gain is that action's
    true uplift (0 for no action). The oracle's gain is
    ``best_action_gain(true_tau, true_tau)``.

    Args:
        true_tau: true uplift, shape (n, actions).
        uplift: predicted uplift, same shape and column order.
        threshold: act only above this predicted uplift.
    """
    tau = np.asarray(true_tau, dtype=float)
    score = np.asarray(uplift, dtype=float)
    if tau.ndim != 2 or tau.shape != score.shape:
        raise ValueError("true_tau and uplift must be 2-D arrays of the same shape")
    pick = score.argmax(axis=1)
    act = score[np.arange(score.shape[0]), pick] > threshold
    return float(np.where(act, tau[np.arange(tau.shape[0]), pick], 0.0).mean())


def _probabilities(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y_arr = _binary(y, "y")
    p_arr = np.asarray(p, dtype=float)
    if p_arr.shape != y_arr.shape:
        raise ValueError("y and p must have the same length")
    if np.isnan(p_arr).any() or (p_arr < 0).any() or (p_arr > 1).any():
        raise ValueError("p must be probabilities in [0, 1]")
    return y_arr, p_arr


def _equal_frequency_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin index per row: rows sorted by p and cut into ``bins`` near-equal counts."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    rank = np.empty(p.size, dtype=np.int64)
    rank[np.argsort(p, kind="mergesort")] = np.arange(p.size)
    return (rank * bins) // max(p.size, 1)


def expected_calibration_error(y: Any, p: Any, bins: int = 10) -> float:
    """Expected calibration error over equal-frequency bins.

    Rows are sorted by ``p`` and cut into ``bins`` groups of (near-)equal size
    (ties split by row order); ``ECE = sum_b (n_b / N) * |mean(y_b) - mean(p_b)|``.
    Equal-frequency rather than equal-width bins because lead scores pile up near 0:
    equal-width bins would leave the top bins nearly empty.
    """
    y_arr, p_arr = _probabilities(y, p)
    if y_arr.size == 0:
        return math.nan
    bin_of = _equal_frequency_bins(p_arr, bins)
    counts = np.bincount(bin_of, minlength=bins).astype(float)
    gap = np.abs(
        np.bincount(bin_of, weights=y_arr, minlength=bins)
        - np.bincount(bin_of, weights=p_arr, minlength=bins)
    )
    return float(gap.sum() / counts.sum())


def bucket_conversion(y: Any, p: Any, edges: Any) -> pd.DataFrame:
    """Predicted vs observed conversion per score bucket.

    Bucket ``b`` holds the rows with ``edges[b] <= p < edges[b+1]`` (the last bucket
    also takes ``p == edges[-1]``); rows outside the edges are left out.

    Returns:
        One row per bucket: ``lower``, ``upper``, ``n``, ``predicted`` (mean p),
        ``observed`` (mean y), ``se`` (binomial standard error of ``observed``,
        ``sqrt(o(1-o)/n)``). Empty buckets have NaN means.
    """
    y_arr, p_arr = _probabilities(y, p)
    cuts = np.asarray(edges, dtype=float)
    if cuts.ndim != 1 or cuts.size < 2 or np.any(np.diff(cuts) <= 0):
        raise ValueError("edges must be at least two strictly increasing values")
    which = np.searchsorted(cuts, p_arr, side="right") - 1
    which[p_arr == cuts[-1]] = cuts.size - 2
    inside = (which >= 0) & (which < cuts.size - 1)
    n_buckets = cuts.size - 1
    counts = np.bincount(which[inside], minlength=n_buckets).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which[inside], p_arr[inside], n_buckets) / counts
        observed = np.bincount(which[inside], y_arr[inside], n_buckets) / counts
        se = np.sqrt(observed * (1 - observed) / counts)
    return pd.DataFrame(
        {
            "lower": cuts[:-1],
            "upper": cuts[1:],
            "n": counts.astype(np.int64),
            "predicted": predicted,
            "observed": observed,
            "se": se,
        }
    )


def calibration_by_segment(
    y: Any, p: Any, segment: Any, min_rows: int = 200, z_threshold: float = 1.96
) -> pd.DataFrame:
    """Predicted vs observed conversion per segment, with a bias flag.

    For a segment with rows ``i``: ``predicted = mean(p_i)``, ``observed = mean(y_i)``
    and ``z = (sum y_i - sum p_i) / sqrt(sum p_i (1 - p_i))`` — the observed minus the
    expected number of conversions in units of its standard deviation if the scores
    were calibrated. ``flag`` is ``"over"`` (the score over-predicts: z <= -z_threshold),
    ``"under"`` (z >= z_threshold) or ``"ok"``. Segments with fewer than ``min_rows``
    rows are left out (too little evidence to review); with many segments expect
    about 5% false flags at the default threshold.

    Returns:
        One row per segment (sorted by z, most over-predicted first): ``segment``,
        ``n``, ``predicted``, ``observed``, ``z``, ``flag``.
    """
    y_arr, p_arr = _probabilities(y, p)
    keys = pd.Series(np.asarray(segment, dtype=object))
    if keys.shape[0] != y_arr.shape[0]:
        raise ValueError("segment must have one value per row")
    frame = pd.DataFrame({"segment": keys, "y": y_arr, "p": p_arr, "v": p_arr * (1 - p_arr)})
    grouped = frame.groupby("segment", sort=True, dropna=False).agg(
        n=("y", "size"), y=("y", "sum"), p=("p", "sum"), v=("v", "sum")
    )
    grouped = grouped[grouped["n"] >= min_rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (grouped["y"] - grouped["p"]) / np.sqrt(grouped["v"])
    z = z.fillna(0.0)
    out = pd.DataFrame(
        {
            "segment": grouped.index.to_numpy(dtype=object),
            "n": grouped["n"].to_numpy(np.int64),
            "predicted": (grouped["p"] / grouped["n"]).to_numpy(float),
            "observed": (grouped["y"] / grouped["n"]).to_numpy(float),
            "z": z.to_numpy(float),
        }
    )
    out["flag"] = np.select(
        [out["z"] <= -z_threshold, out["z"] >= z_threshold], ["over", "under"], default="ok"
    ).astype(object)
    return out.sort_values("z", kind="mergesort").reset_index(drop=True)


def uplift_calibration(y: Any, uplift: Any, treatment: Any, bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed uplift per equal-frequency bin of the predicted uplift.

    Bins as in :func:`expected_calibration_error` (bin 0 holds the lowest scores). The
    observed uplift of a bin is ``r_T/n_T - r_C/n_C`` within it, its standard error
    ``sqrt(p_T(1-p_T)/n_T + p_C(1-p_C)/n_C)``.

    Returns:
        One row per bin: ``bin``, ``n_treated``, ``n_control``, ``predicted``,
        ``observed``, ``se``.
    """
    y_arr, u_arr, t_arr = _inputs(y, uplift, treatment)
    bin_of = _equal_frequency_bins(u_arr, bins)
    frame = pd.DataFrame({"bin": bin_of, "u": u_arr, "t": t_arr, "y": y_arr})
    rows = []
    for b, part in frame.groupby("bin", sort=True):
        treated, control = part[part["t"] == 1], part[part["t"] == 0]
        r_t = treated["y"].mean() if len(treated) else math.nan
        r_c = control["y"].mean() if len(control) else math.nan
        var = (
            r_t * (1 - r_t) / len(treated) + r_c * (1 - r_c) / len(control)
            if len(treated) and len(control)
            else math.nan
        )
        rows.append(
            {
                "bin": int(b),
                "n_treated": len(treated),
                "n_control": len(control),
                "predicted": float(part["u"].mean()),
                "observed": r_t - r_c,
                "se": math.sqrt(var),
            }
        )
    return pd.DataFrame(rows)


def bootstrap_se(
    metric: Callable[..., float],
    *arrays: Any,
    n_boot: int = 200,
    random_state: int | np.random.Generator | None = 0,
    stratify: Any = None,
    **kwargs: Any,
) -> float:
    """Bootstrap standard error of ``metric(*arrays, **kwargs)``.

    Rows are drawn with replacement ``n_boot`` times (within each ``stratify`` group
    when given, e.g. the treatment flag so every resample keeps both arms); the
    standard error is the standard deviation (ddof=1) of the metric over the resamples,
    NaN results dropped.

    Example:
        ``bootstrap_se(qini_auc_score, y, uplift, t, stratify=t)``.
    """
    columns = [np.asarray(a) for a in arrays]
    if not columns:
        raise ValueError("pass at least one array")
    n = columns[0].shape[0]
    if any(c.shape[0] != n for c in columns):
        raise ValueError("arrays must have the same length")
    rng = np.random.default_rng(random_state)
    groups = (
        [np.arange(n)]
        if stratify is None
        else [np.flatnonzero(g) for g in _group_masks(np.asarray(stratify))]
    )
    values = []
    for _ in range(n_boot):
        rows = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        values.append(metric(*(c[rows] for c in columns), **kwargs))
    finite = np.asarray(values, dtype=float)
    finite = finite[~np.isnan(finite)]
    return float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def _group_masks(labels: np.ndarray) -> list[np.ndarray]:
    return [labels == value for value in pd.unique(labels)]
