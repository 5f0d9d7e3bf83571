"""Uplift models: which action changes a lead's outcome, learned from randomized holdouts.

``UpliftModel`` estimates, for every action seen in training, the uplift
``P(y=1 | do(action), x) - P(y=1 | do(holdout), x)`` as a probability difference.
Each action is compared with the one shared holdout arm (named by ``control``).

Learners (the ``learner`` parameter):

``"t"``
    T-learner: a LightGBM classifier per arm (holdout included);
    uplift = P_action(x) - P_holdout(x).
``"s"``
    S-learner: one LightGBM classifier on the features plus one 0/1 column per
    action; uplift = P(x, action) - P(x, holdout).
``"x"``
    X-learner (Künzel et al. 2019). The outcome models are the T-learner's classifiers,
    and their *probabilities* are used to impute effects: ``y - P_holdout(x)`` on action
    rows and ``P_action(x) - y`` on holdout rows. A LightGBM regressor is fitted per arm,
    and the two are blended by the action's propensity ``e``:
    ``e * g_holdout + (1 - e) * g_action``.
``"dr"``
    DR-learner (Kennedy 2023), with 3-fold cross-fitted *probability* nuisances (not
    hard labels; causalml's ``BaseDRClassifier`` uses labels). The pseudo-outcome is
    ``P_a - P_0 + 1[a](y - P_a)/e - 1[0](y - P_0)/(1 - e)``, regressed on x with LightGBM.
``"gam"``
    Additive logistic model with selected effect modifiers:
    ``logit P(y | x, arm) = b + sum_j f_j(x_j) + sum_a w_a c_a
    + sum_g w_g sum_{j in S_g} g_gj(x_j)``. Here ``w_a = 1[arm = a] - share_a``. The
    groups ``g`` are each action and, with several actions, "any action" with
    ``w_any = sum_a w_a``: a modifier every action shares (e.g. an opt-out lead
    resents every touch) is learned from all treated rows at once. ``f_j`` and
    ``g_gj`` are cubic B-splines on 8 quantile knots (one-hot codes for a column with
    at most 10 distinct values). Every coefficient gets one ridge penalty on
    standardized columns, fitted by damped Newton (IRLS). The modifier sets ``S_g``
    are chosen by forward selection with score tests. At each step, every (group,
    feature) block not yet in the model gets a chi-square score test against the
    current fit. Each group adds its best block if the p-value is below
    ``gam_alpha / number of candidate blocks`` (Bonferroni), up to
    ``gam_max_modifiers`` per group.
    Uplift = sigma(eta(x, a)) - sigma(eta(x, holdout)).
``"ensemble"``
    The mean of the predictions of the ``candidates``.
``"auto"``
    Validation-based selection among the ``candidates`` and their ensemble (below).

Why ``"gam"``: at low base rates the noise is large. With a 2% base rate and 50k
rows there are only about 1,300 conversions, and tree learners spread that little
signal over every feature. An additive logistic model shares its baseline ``f`` across
arms and spends degrees of freedom on interaction terms only where a score test finds
evidence. That stands in for the heterogeneity a few features carry, and it keeps the
probability scale so uplifts from different actions can be compared.

Selection rule (``learner="auto"``). The training data are split once, stratified by
arm and outcome, into a fitting part and a validation part (``validation_size``,
30%). Every candidate is fitted on the fitting part and scored on the validation
part by Qini: ``integration.modeling.metrics.qini_auc_score`` for each action, on
that action's rows and the holdout's, averaged with row weights. The ensemble (the
mean of the candidates' predictions) is scored the same way. The validation Qini is
noisy: at a 2% base rate its standard error on 15k rows is 0.03-0.05, as large as
most gaps between learners. So the **ensemble is the default**. A single candidate
replaces it only when that candidate's validation Qini is higher by more than
``selection_margin`` (2) paired-bootstrap standard errors of the difference
(``n_boot`` resamples within each arm, shared by all learners).

Why lean on the ensemble:
- Averaging learners whose errors are only partly correlated cuts variance.
- On the development data an ensemble was never far behind its best member, while
  a wrong single pick lost up to 8 points of the oracle's top-20% uplift.
- The costs are asymmetric, so the bar for leaving the default is high. The
  validation still guards against a candidate that is clearly broken on the data at
  hand.

The chosen learner is then refitted on all rows. The GAM's basis (knots and scaling,
read from X alone) is fitted once on all rows and serves both fits; its refit starts
from the modifiers and coefficients of its validation fit and continues the selection
on all rows, which takes a few Newton steps instead of a full search. ``validation_``
records every score.

Columns of ``predict`` are the actions in **sorted** order (``actions_``); the
holdout is never a column. Observational data (``randomized=False``) are accepted
with a warning; the X and DR learners then estimate the propensity with a logistic
regression instead of using the arms' shares.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.linalg.blas import ssyrk
from scipy.special import expit
from scipy.stats import chi2
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import SplineTransformer
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from integration.modeling import additive, forest

__all__ = ["LEARNERS", "UpliftModel", "best_action"]

LEARNERS = ("t", "s", "x", "dr", "gam", "ensemble", "auto")
SINGLE_LEARNERS = ("t", "s", "x", "dr", "gam")
PROPENSITY_CLIP = (0.01, 0.99)


class UpliftModel(BaseEstimator):
    """Per-action uplift from a randomized holdout, as a probability difference.

    Args:
        learner: ``"auto"`` (default), ``"t"``, ``"s"``, ``"x"``, ``"dr"``, ``"gam"``
            or ``"ensemble"`` (see the module docstring).
        control: name of the holdout arm in ``arm``.
        candidates: learners that ``"auto"`` and ``"ensemble"`` choose from / average.
        validation_size: share of the rows held out to choose the learner (``"auto"``).
        selection_margin: a single learner replaces the ensemble only when its
            validation Qini is higher by more than this many paired bootstrap SEs
            (see the module docstring for why the bar is high).
        n_boot: bootstrap resamples for that standard error.
        min_rows: fewest rows an action (and the holdout) may have.
        min_positives: fewest conversions the data as a whole must have.
        n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
            colsample_bytree: the LightGBM budget of every base learner.
        gam_knots: spline knots per feature in ``"gam"``.
        gam_alpha: family-wise level of the effect-modifier score tests.
        gam_max_modifiers: most effect-modifier blocks ``"gam"`` adds per group
            (action, or "any action").
        gam_penalty: ridge penalty of ``"gam"`` (on standardized basis columns).
        random_state: seed of the validation split, the folds and LightGBM.
        n_jobs: LightGBM threads per model. Keep 1 in workers that run in parallel:
            more threads than cores slow LightGBM down 10-30x.

    Attributes:
        actions_: the actions (arm names other than ``control``), sorted; the
            columns of ``predict``.
        learner_: the learner that was fitted on all rows (``"ensemble"`` or a single one).
        validation_: ``"auto"`` only: one row per candidate and the ensemble with
            ``qini`` (validation Qini), ``qini_se``, ``diff_vs_ensemble``, ``diff_se``
            and ``chosen``; None otherwise.
        estimator_: the fitted internal learner.
        arm_counts_: rows per arm in the training data.
        propensity_: share of each action among its rows and the holdout's (the
            constant propensity used when randomized).
        randomized_: the ``randomized`` flag given to ``fit``.
        feature_names_in_, n_features_in_: the training columns.
    """

    def __init__(
        self,
        learner: str = "auto",
        control: Any = "control",
        candidates: tuple[str, ...] = ("s", "gam"),
        validation_size: float = 0.3,
        selection_margin: float = 2.0,
        n_boot: int = 100,
        min_rows: int = 100,
        min_positives: int = 20,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        gam_knots: int = 8,
        gam_alpha: float = 0.05,
        gam_max_modifiers: int = 5,
        gam_penalty: float = 1.0,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.learner = learner
        self.control = control
        self.candidates = candidates
        self.validation_size = validation_size
        self.selection_margin = selection_margin
        self.n_boot = n_boot
        self.min_rows = min_rows
        self.min_positives = min_positives
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.gam_knots = gam_knots
        self.gam_alpha = gam_alpha
        self.gam_max_modifiers = gam_max_modifiers
        self.gam_penalty = gam_penalty
        self.random_state = random_state
        self.n_jobs = n_jobs

    # --- public API -------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, arm: Any, y: Any, randomized: bool = True) -> UpliftModel:
        """Learn the uplift of every action against the holdout.

        Args:
            X: numeric features, one row per lead (NaN allowed).
            arm: arm name per row (compared as strings); the holdout is named by
                ``control``.
            y: outcome per row, 0/1.
            randomized: whether arms were assigned at random. ``False`` warns and
                makes X/DR estimate the propensity from ``X``.

        Returns:
            self.

        Raises:
            ValueError: non-numeric features, lengths that differ, a non-binary y,
                no holdout rows, an action or holdout with fewer than ``min_rows``
                rows, too few conversions, or an unknown learner.
        """
        self._check_params()
        features = self._features(X, fitting=True)
        arms = np.asarray(arm, dtype=object)
        outcome = np.asarray(y)
        if arms.ndim != 1 or arms.shape[0] != features.shape[0]:
            raise ValueError("arm must be 1-D with one value per row of X")
        if outcome.ndim != 1 or outcome.shape[0] != features.shape[0]:
            raise ValueError("y must be 1-D with one value per row of X")
        if pd.isna(arms).any():
            raise ValueError("arm has missing values; drop unassigned rows first")
        if not np.isin(outcome, (0, 1)).all():
            raise ValueError("y must be binary (0/1)")
        outcome = outcome.astype(np.float64)
        names, counts = np.unique(arms.astype(str), return_counts=True)
        self.arm_counts_ = dict(zip(names.tolist(), counts.tolist(), strict=True))
        control = str(self.control)
        if control not in self.arm_counts_:
            raise ValueError(
                f"no holdout rows: arm has no {control!r} value (arms: {sorted(self.arm_counts_)})"
            )
        small = {a: n for a, n in self.arm_counts_.items() if n < self.min_rows}
        if small:
            raise ValueError(f"too few rows (< {self.min_rows}) for arm(s) {small}")
        if len(self.arm_counts_) < 2:
            raise ValueError("no action arm: every row is in the holdout")
        positives = int(outcome.sum())
        if positives < self.min_positives or outcome.size - positives < self.min_positives:
            raise ValueError(
                f"too few conversions or non-conversions ({positives} of {outcome.size}); "
                f"need at least {self.min_positives} of each"
            )
        if not randomized:
            warnings.warn(
                "observational: estimates may be confounded (arms were not randomized)",
                UserWarning,
                stacklevel=2,
            )
        self.randomized_ = bool(randomized)
        self.actions_ = [a for a in names.tolist() if a != control]
        code = np.zeros(arms.shape[0], dtype=np.int64)
        arm_str = arms.astype(str)
        for i, action in enumerate(self.actions_, start=1):
            code[arm_str == action] = i
        self.propensity_ = {
            a: self.arm_counts_[a] / (self.arm_counts_[a] + self.arm_counts_[control])
            for a in self.actions_
        }
        self.validation_ = None
        # numpy's BLAS would otherwise start a thread per core on top of LightGBM's.
        with threadpool_limits(limits=self.n_jobs, user_api="blas"):
            warm: dict[str, Any] = {}
            if self.learner == "auto":
                self.learner_, warm = self._select(features, code, outcome)
            else:
                self.learner_ = self.learner
            self.estimator_ = self._make(self.learner_, warm).fit(features, code, outcome)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Uplift per action (probability difference), columns ``actions_``, X's index."""
        check_is_fitted(self, "estimator_")
        features = self._features(X, fitting=False)
        with threadpool_limits(limits=self.n_jobs, user_api="blas"):
            tau = self.estimator_.predict(features)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(tau, columns=list(self.actions_), index=index)

    # --- internals ----------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        unknown = [c for c in self.candidates if c not in SINGLE_LEARNERS]
        if unknown or not self.candidates:
            raise ValueError(f"candidates must be a non-empty subset of {SINGLE_LEARNERS}")
        if not 0 < self.validation_size < 1:
            raise ValueError("validation_size must be in (0, 1)")

    def _features(self, X: Any, fitting: bool) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            raise ValueError("X must be a pandas DataFrame of numeric features")
        non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if non_numeric:
            raise ValueError(f"X has non-numeric columns: {non_numeric}")
        if fitting:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = X.shape[1]
        elif list(X.columns) != list(self.feature_names_in_):
            raise ValueError("X's columns differ from the columns seen in fit")
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise ValueError("X contains infinite values")
        return values

    def _lgbm(self, kind: str, seed_offset: int = 0):
        params = dict(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            random_state=self.random_state + seed_offset,
            n_jobs=self.n_jobs,
            verbose=-1,
        )
        return lgb.LGBMClassifier(**params) if kind == "clf" else lgb.LGBMRegressor(**params)

    def _make(self, name: str, warm: dict[str, Any] | None = None) -> _Learner:
        """A fresh learner; ``warm`` may hold the GAM fitted during validation."""
        if name == "ensemble":
            return _Ensemble([self._make(c, warm) for c in self.candidates])
        if name == "gam":
            warm = warm or {}
            return _AdditiveLogit(self, warm.get("gam"), warm.get("gam_basis"))
        learner = {
            "t": _TLearner,
            "s": _SLearner,
            "x": _XLearner,
            "dr": _DRLearner,
        }[name]
        return learner(self)

    def _select(self, X: np.ndarray, code: np.ndarray, y: np.ndarray) -> tuple[str, dict[str, Any]]:
        """Fit candidates on part of the rows and choose by validation Qini (see module).

        Returns:
            The chosen learner's name and warm-start hints for its refit on every row:
            the basis of every row and its blocks, and the GAM fitted on the fitting
            part, whose effect modifiers and coefficients the refit starts from (it may
            add modifiers).
        """
        strata = code * 2 + y.astype(np.int64)
        if np.unique(strata, return_counts=True)[1].min() < 2:
            strata = code  # an (arm, outcome) cell too small to split: stratify by arm only
        fit_rows, val_rows = train_test_split(
            np.arange(y.size),
            test_size=self.validation_size,
            stratify=strata,
            random_state=self.random_state,
        )
        predictions = {}
        warm: dict[str, Any] = {}
        if "gam" in self.candidates:
            # The basis reads X alone (quantile knots, scaling), never y: one basis of
            # every row serves the validation fit and the refit, and keeps the
            # validation honest.
            basis = _Basis(self.gam_knots).fit(X)
            blocks = basis.transform(X)
            warm["gam_basis"] = (basis, blocks, None)
        for name in self.candidates:
            if name == "gam":
                learner = _AdditiveLogit(self, prepared=(basis, blocks, fit_rows))
            else:
                learner = self._make(name)
            learner.fit(X[fit_rows], code[fit_rows], y[fit_rows])
            predictions[name] = learner.predict(X[val_rows])
            if name == "gam":
                warm["gam"] = learner
        if len(self.candidates) > 1:
            predictions["ensemble"] = np.mean([predictions[c] for c in self.candidates], axis=0)
        table = _validation_table(
            predictions, code[val_rows], y[val_rows], self.n_boot, self.random_state
        )
        singles = table.drop(index="ensemble", errors="ignore")["diff_vs_ensemble"].dropna()
        if "ensemble" in predictions and not singles.empty:
            best_single = singles.idxmax()
            row = table.loc[best_single]
            beats = row["diff_vs_ensemble"] > self.selection_margin * row["diff_se"]
            chosen = best_single if beats else "ensemble"
        elif "ensemble" in predictions:
            chosen = "ensemble"  # no usable validation score (e.g. no conversions held out)
        else:
            chosen = self.candidates[0]
        table["chosen"] = table.index == chosen
        self.validation_ = table
        return chosen, warm


def best_action(uplift: pd.DataFrame, min_uplift: float = 0.0) -> pd.DataFrame:
    """The action with the largest predicted uplift per row, or none.

    Args:
        uplift: ``UpliftModel.predict`` output (one column per action).
        min_uplift: recommend an action only when its uplift exceeds this.

    Returns:
        Frame with the same index: ``action`` (None when no action clears
        ``min_uplift``) and ``uplift`` (the best action's uplift).
    """
    values = uplift.to_numpy(dtype=float)
    pick = values.argmax(axis=1)
    best = values[np.arange(values.shape[0]), pick]
    names = np.asarray(uplift.columns, dtype=object)[pick]
    # Object dtype: pandas 3 would infer "str" and turn None into NaN.
    action = pd.Series(np.where(best > min_uplift, names, None), index=uplift.index, dtype=object)
    return pd.DataFrame({"action": action, "uplift": best}, index=uplift.index)


# --- validation --------------------------------------------------------------------------


def _qini_weighted(
    y: np.ndarray, treated: np.ndarray, score: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """scikit-uplift's Qini coefficient for each row of ``weights`` (case weights).

    An integer weight counts a row that many times, so a bootstrap resample is a weight
    vector and the rows are sorted only once. Tied scores form one step, as in
    :func:`integration.modeling.metrics.qini_curve`. With every weight 1 the result
    equals ``qini_auc_score(y, score, treated)``.

    Args:
        y, treated, score: the rows (0/1, 0/1, float).
        weights: (replicates, rows).

    Returns:
        One Qini coefficient per replicate (NaN when the perfect curve has no area).
    """
    order = np.argsort(score, kind="mergesort")[::-1]
    ends = np.r_[np.flatnonzero(np.diff(score[order])), score.size - 1]
    y, treated, w = y[order], treated[order], weights[:, order]
    wt = w * treated
    k = np.cumsum(w, axis=1)[:, ends]
    n_t = np.cumsum(wt, axis=1)[:, ends]
    r_t = np.cumsum(wt * y, axis=1)[:, ends]
    r_c = np.cumsum(w * ((1 - treated) * y), axis=1)[:, ends]
    n_c = k - n_t
    curve = r_t - r_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    zeros = np.zeros((w.shape[0], 1))
    area = np.trapezoid(np.hstack([zeros, curve]), np.hstack([zeros, k]), axis=1)
    # The perfect ranking has three tie groups: treated responders, then every
    # non-responder, then control responders.
    total = k[:, -1]
    t1 = r_t[:, -1]
    c1 = r_c[:, -1]
    n_treated = n_t[:, -1]
    n_control = total - n_treated
    end = t1 - c1 * np.divide(n_treated, n_control, out=np.zeros_like(t1), where=n_control > 0)
    k1 = t1
    k2 = total - c1
    perfect = 0.5 * k1 * t1 + (k2 - k1) * t1 + 0.5 * (total - k2) * (t1 + end)
    random_area = 0.5 * total * end
    best = perfect - random_area
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best != 0, (area - random_area) / best, np.nan)


def _qini_all(tau: np.ndarray, code: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per replicate: the row-weighted mean over actions of the Qini on that action's rows
    and the holdout's."""
    total = np.zeros(weights.shape[0])
    mass = np.zeros(weights.shape[0])
    for a in range(tau.shape[1]):
        mine = (code == a + 1) | (code == 0)
        treated = (code[mine] == a + 1).astype(float)
        if treated.min(initial=1) == 1 or treated.max(initial=0) == 0:
            continue
        rows = weights[:, mine]
        score = _qini_weighted(y[mine], treated, tau[mine, a], rows)
        size = rows.sum(axis=1)
        ok = ~np.isnan(score)
        total[ok] += score[ok] * size[ok]
        mass[ok] += size[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass > 0, total / mass, np.nan)


def _validation_table(
    predictions: dict[str, np.ndarray], code: np.ndarray, y: np.ndarray, n_boot: int, seed: int
) -> pd.DataFrame:
    """Validation Qini per learner with bootstrap SEs, absolute and paired vs the ensemble.

    Resamples are drawn within each arm (so every replicate keeps every arm's size) and
    shared by all learners, which makes the differences paired.
    """
    names = list(predictions)
    rng = np.random.default_rng(seed)
    weights = np.ones((n_boot + 1, y.size))  # row 0: the validation rows themselves
    for rows in (np.flatnonzero(code == a) for a in np.unique(code)):
        draws = rng.integers(0, rows.size, (n_boot, rows.size))
        weights[1:, rows] = np.stack([np.bincount(d, minlength=rows.size) for d in draws])
    scores = np.column_stack([_qini_all(predictions[n], code, y, weights) for n in names])
    boot = scores[1:]
    reference = names.index("ensemble") if "ensemble" in names else 0
    diffs = boot - boot[:, [reference]]
    return pd.DataFrame(
        {
            "qini": scores[0],
            "qini_se": np.nanstd(boot, axis=0, ddof=1),
            "diff_vs_ensemble": scores[0] - scores[0, reference],
            "diff_se": np.nanstd(diffs, axis=0, ddof=1),
        },
        index=pd.Index(names, name="learner"),
    )


# --- learners ----------------------------------------------------------------------------
# Every learner sees arm codes: 0 = holdout, 1..A = actions_ in order; predict returns
# an (n, A) array of probability differences.


class _Learner:
    def __init__(self, owner: UpliftModel) -> None:
        self.owner = owner

    def fit(self, X: np.ndarray, code: np.ndarray, y: np.ndarray) -> _Learner:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def n_actions(self) -> int:
        return len(self.owner.actions_)


@dataclass
class _Constant:
    """Stand-in for a classifier fitted on a single class."""

    p: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(X.shape[0], 1 - self.p), np.full(X.shape[0], self.p)])


def _classifier(owner: UpliftModel, X: np.ndarray, y: np.ndarray, seed: int = 0):
    if y.min() == y.max():
        return _Constant(float(y[0]))
    return owner._lgbm("clf", seed).fit(X, y)


def _proba(model, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(X)[:, 1]


class _TLearner(_Learner):
    def fit(self, X, code, y):
        self.models_ = [
            _classifier(self.owner, X[code == a], y[code == a], a)
            for a in range(self.n_actions + 1)
        ]
        return self

    def arm_probabilities(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([_proba(m, X) for m in self.models_])

    def predict(self, X):
        p = self.arm_probabilities(X)
        return p[:, 1:] - p[:, [0]]


class _SLearner(_Learner):
    def _design(self, X: np.ndarray, arm: int | np.ndarray) -> np.ndarray:
        arm = np.broadcast_to(arm, (X.shape[0],))
        onehot = (arm[:, None] == np.arange(1, self.n_actions + 1)[None, :]).astype(float)
        return np.hstack([X, onehot])

    def fit(self, X, code, y):
        self.model_ = _classifier(self.owner, self._design(X, code), y)
        return self

    def predict(self, X):
        if isinstance(self.model_, _Constant):
            return np.zeros((X.shape[0], self.n_actions))  # the same probability for every arm
        # Every arm's design differs only in the indicator columns: the trees are
        # evaluated once per row, each arm choosing among their leaves (see
        # `integration.modeling.forest.raw_score_settings`).
        trees = forest.forest_for(self.model_.booster_)
        arms = np.vstack([np.zeros(self.n_actions), np.eye(self.n_actions)])
        columns = np.arange(X.shape[1], X.shape[1] + self.n_actions)
        p = forest.probability(trees, forest.raw_score_settings(trees, X, columns, arms))
        return p[:, 1:] - p[:, [0]]


class _Propensity:
    """P(arm = a | x, arm in {a, holdout}) per action: constant shares or a logistic fit."""

    def __init__(self, owner: UpliftModel) -> None:
        self.owner = owner

    def fit(self, X: np.ndarray, code: np.ndarray) -> _Propensity:
        actions = range(1, len(self.owner.actions_) + 1)
        self.shares_ = np.array([np.mean(code[(code == a) | (code == 0)] == a) for a in actions])
        self.models_ = None
        if not self.owner.randomized_:
            self.fill_ = np.nanmedian(X, axis=0)
            self.fill_ = np.where(np.isnan(self.fill_), 0.0, self.fill_)
            Z = self._standard(X, fitting=True)
            self.models_ = []
            for a in actions:
                rows = (code == a) | (code == 0)
                model = LogisticRegression(max_iter=1000).fit(Z[rows], code[rows] == a)
                self.models_.append(model)
        return self

    def _standard(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        Z = np.where(np.isnan(X), self.fill_, X)
        if fitting:
            self.mean_, self.scale_ = Z.mean(axis=0), Z.std(axis=0) + 1e-12
        return (Z - self.mean_) / self.scale_

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.models_ is None:
            return np.broadcast_to(self.shares_, (X.shape[0], self.shares_.size))
        Z = self._standard(X)
        e = np.column_stack([m.predict_proba(Z)[:, 1] for m in self.models_])
        return np.clip(e, *PROPENSITY_CLIP)


class _XLearner(_Learner):
    def fit(self, X, code, y):
        self.outcome_ = _TLearner(self.owner).fit(X, code, y)
        self.propensity_ = _Propensity(self.owner).fit(X, code)
        mu = self.outcome_.models_
        control = code == 0
        p0_treated = {}
        self.effects_ = []
        for a in range(1, self.n_actions + 1):
            treated = code == a
            p0_treated[a] = _proba(mu[0], X[treated])
            imputed_treated = y[treated] - p0_treated[a]
            imputed_control = _proba(mu[a], X[control]) - y[control]
            g1 = self.owner._lgbm("reg", 10 + a).fit(X[treated], imputed_treated)
            g0 = self.owner._lgbm("reg", 20 + a).fit(X[control], imputed_control)
            self.effects_.append((g0, g1))
        return self

    def predict(self, X):
        e = self.propensity_.predict(X)
        return np.column_stack(
            [
                e[:, i] * g0.predict(X) + (1 - e[:, i]) * g1.predict(X)
                for i, (g0, g1) in enumerate(self.effects_)
            ]
        )


class _DRLearner(_Learner):
    folds = 3

    def fit(self, X, code, y):
        n_actions = self.n_actions
        mu = np.zeros((y.size, n_actions + 1))
        e = np.zeros((y.size, n_actions))
        splitter = StratifiedKFold(
            self.folds, shuffle=True, random_state=self.owner.random_state
        ).split(X, code * 2 + y.astype(np.int64))
        for train, held in splitter:
            outcome = _TLearner(self.owner).fit(X[train], code[train], y[train])
            mu[held] = outcome.arm_probabilities(X[held])
            e[held] = _Propensity(self.owner).fit(X[train], code[train]).predict(X[held])
        self.final_ = []
        for a in range(1, n_actions + 1):
            rows = (code == a) | (code == 0)
            treated = (code[rows] == a).astype(float)
            ea = e[rows, a - 1]
            m1, m0, yy = mu[rows, a], mu[rows, 0], y[rows]
            pseudo = m1 - m0 + treated * (yy - m1) / ea - (1 - treated) * (yy - m0) / (1 - ea)
            self.final_.append(self.owner._lgbm("reg", 30 + a).fit(X[rows], pseudo))
        return self

    def predict(self, X):
        return np.column_stack([m.predict(X) for m in self.final_])


class _Ensemble(_Learner):
    def __init__(self, members: list[_Learner]) -> None:
        self.members = members

    def fit(self, X, code, y):
        for member in self.members:
            member.fit(X, code, y)
        return self

    def predict(self, X):
        return np.mean([m.predict(X) for m in self.members], axis=0)


# --- the additive logistic learner ------------------------------------------------------


class _Basis:
    """Per-feature basis blocks: splines for many-valued columns, one-hot for few values.

    - A column with at most ``max_levels`` distinct values becomes one-hot columns for
      every value but the most frequent. An unseen value at predict time reads as the
      most frequent one.
    - Other columns get a cubic B-spline basis on quantile knots, with linear
      extrapolation.
    - A column whose quantiles collapse (mostly one value) gets a linear term plus
      one-hot columns for its most frequent values instead.
    - A column with NaN in training also gets a missing-value indicator; NaN is
      otherwise filled with the median.

    Every column is standardized so that one ridge penalty treats them alike. Leaving
    the 0-1 columns unscaled, so that the ridge shrinks rare levels and tail splines
    harder, converged in fewer Newton steps, but it lost 4-5 points of the oracle's
    top-20% uplift on the development data.
    """

    def __init__(self, n_knots: int, max_levels: int = 10) -> None:
        self.n_knots = n_knots
        self.max_levels = max_levels

    def fit(self, X: np.ndarray) -> _Basis:
        self.specs_ = []
        for j in range(X.shape[1]):
            column = X[:, j]
            missing = np.isnan(column)
            seen = column[~missing]
            levels, counts = np.unique(seen, return_counts=True)
            by_count = levels[np.argsort(-counts, kind="stable")]
            spec: dict[str, Any] = {
                "fill": float(np.median(seen)) if seen.size else 0.0,
                "missing": bool(missing.any()),
                "spline": None,
                "linear": None,
                "levels": by_count[1:],  # every value but the most frequent
            }
            if levels.size > self.max_levels:
                knots = np.unique(np.quantile(seen, np.linspace(0, 1, self.n_knots)))
                if knots.size >= 3:
                    spec["spline"] = SplineTransformer(
                        knots=knots[:, None], degree=3, extrapolation="linear", include_bias=False
                    ).fit(seen[:, None])
                    spec["levels"] = by_count[:0]
                else:
                    spec["linear"] = (float(seen.mean()), float(seen.std()) or 1.0)
                    spec["levels"] = by_count[1 : self.max_levels]
            raw = self._raw(column, spec)
            spec["mean"] = raw.mean(axis=0)
            spec["scale"] = raw.std(axis=0)
            spec["keep"] = spec["scale"] > 1e-9
            self.specs_.append(spec)
        return self

    @staticmethod
    def _raw(column: np.ndarray, spec: dict) -> np.ndarray:
        missing = np.isnan(column)
        filled = np.where(missing, spec["fill"], column)
        parts = [np.zeros((column.size, 0))]
        if spec["spline"] is not None:
            parts.append(spec["spline"].transform(filled[:, None]))
        if spec["linear"] is not None:
            mean, scale = spec["linear"]
            parts.append(((filled - mean) / scale)[:, None])
        if spec["levels"].size:
            parts.append((filled[:, None] == spec["levels"][None, :]).astype(float))
        if spec["missing"]:
            parts.append(missing[:, None].astype(float))
        return np.hstack(parts)

    def transform(self, X: np.ndarray) -> list[np.ndarray]:
        blocks = []
        for j, spec in enumerate(self.specs_):
            keep = spec["keep"]
            raw = self._raw(X[:, j], spec)
            # In place on the kept columns' copy: the same arithmetic, one array fewer.
            block = raw if keep.all() else raw[:, keep]
            block -= spec["mean"][keep]
            block /= spec["scale"][keep]
            blocks.append(block)
        return blocks


def _gram(Z1_32: np.ndarray, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``Z1' diag(weights) Z1`` by a single-precision symmetric rank-k update.

    Single precision halves the memory traffic of the largest product in the fit. The
    Hessian only steers the Newton steps (the gradient stays in double precision), so
    the optimum is unchanged. ``out``: scratch of ``Z1_32``'s shape and type, reused by
    every Newton step instead of a fresh array each (whose pages the system would have
    to fault in again).
    """
    scaled = np.multiply(Z1_32, np.sqrt(weights).astype(np.float32)[:, None], out=out)
    # BLAS reads Fortran order: A'A of a column-major A, or (A')(A')' of a row-major one.
    if scaled.flags.f_contiguous:
        upper = ssyrk(1.0, scaled, trans=1).astype(np.float64)
    else:
        upper = ssyrk(1.0, scaled.T, trans=0).astype(np.float64)
    return np.triu(upper) + np.triu(upper, 1).T


def _penalized_logistic(
    Z1: np.ndarray,
    y: np.ndarray,
    penalty: float,
    start: np.ndarray | None = None,
    tol: float = 1e-3,
    Z1_32: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge logistic regression by damped Newton (IRLS); the intercept is unpenalized.

    Minimizes ``sum logloss(y, sigma(Z1 beta)) + penalty/2 * |beta[1:]|^2``, where the
    first column of ``Z1`` is the intercept's column of ones. Stops when the Newton
    decrement (about twice the loss still to gain) is below ``tol``. ``Z1_32``: ``Z1``
    in single precision, when the caller has it already; ``scratch``: an array of its
    shape and type to work in.

    Returns:
        (coef, fitted probabilities, penalized Hessian at the optimum).
    """
    if Z1_32 is None:
        Z1_32 = Z1.astype(np.float32)
    q = Z1.shape[1]
    ridge = np.full(q, penalty)
    ridge[0] = 0.0
    if start is None:
        mean = min(max(y.mean(), 1e-6), 1 - 1e-6)
        start = np.r_[math.log(mean / (1 - mean)), np.zeros(q - 1)]
    beta = start.copy()

    def loss(eta: np.ndarray, b: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(ridge * b * b))

    eta = Z1 @ beta
    current = loss(eta, beta)
    if scratch is None:
        scratch = np.empty_like(Z1_32)
    for _ in range(50):
        p = expit(eta)
        gradient = Z1.T @ (p - y) + ridge * beta
        hessian = _gram(Z1_32, p * (1 - p), scratch) + np.diag(ridge)
        step = np.linalg.solve(hessian + 1e-8 * np.eye(q), gradient)
        decrement = float(gradient @ step)  # twice the loss a full Newton step would save
        if decrement < tol:
            return beta, p, hessian  # already at this beta
        direction = Z1 @ step
        scale = 1.0
        while True:
            trial_eta = eta - scale * direction
            trial = beta - scale * step
            value = loss(trial_eta, trial)
            if value <= current or scale < 1e-4:
                break
            scale *= 0.5
        beta, eta, current = trial, trial_eta, value
    p = expit(eta)
    return beta, p, _gram(Z1_32, p * (1 - p), scratch) + np.diag(ridge)


class _AdditiveLogit(_Learner):
    """Additive logistic model with score-test-selected effect modifiers (see module).

    ``warm``: the same learner fitted on a subset of the rows (the validation split's
    fitting part). Its basis, modifiers and coefficients are the starting point, and
    the forward selection continues from there. The refit then costs a few Newton
    steps instead of a full selection.

    ``prepared``: a fitted basis, the blocks it makes of a larger ``X`` and the rows of
    them that ``fit`` gets (None: every row), when the caller has them already. The rows
    are gathered straight into the fit's design, never copied out first. Neither hint is
    kept after ``fit``.
    """

    def __init__(
        self,
        owner: UpliftModel,
        warm: _AdditiveLogit | None = None,
        prepared: tuple[_Basis, list[np.ndarray], np.ndarray | None] | None = None,
    ) -> None:
        super().__init__(owner)
        self.warm = warm
        self.prepared = prepared

    def _design(self, blocks: list[np.ndarray], w: np.ndarray) -> np.ndarray:
        """The intercept's ones, the main blocks, w_1..w_A, then each modifier block times
        its w column (column A, when present, is the shared ``w_any``)."""
        interactions = [w[:, [a]] * blocks[j] for a, j in self.modifiers_]
        actions = w[:, : self.n_actions]
        return np.hstack([np.ones((w.shape[0], 1)), *blocks, actions, *interactions])

    def _w(self, code: np.ndarray) -> np.ndarray:
        """Centred arm indicators w_a, plus w_any = sum_a w_a with more than one action."""
        onehot = (code[:, None] == np.arange(1, self.n_actions + 1)[None, :]).astype(float)
        w = onehot - self.shares_[None, :]
        if self.n_actions == 1:
            return w
        # From the indicators, not as w.sum(axis=1): summing the centred columns rounds
        # differently per arm, and w_any must take exactly two values (`_score_tests`).
        w_any = onehot.sum(axis=1, keepdims=True) - self.shares_.sum()
        return np.hstack([w, w_any])

    def fit(self, X, code, y):
        owner = self.owner
        rows = None
        if self.prepared is not None:
            self.basis_, blocks, rows = self.prepared
        else:
            self.basis_ = self.warm.basis_ if self.warm else _Basis(owner.gam_knots).fit(X)
            blocks = self.basis_.transform(X)
        self.shares_ = np.array([np.mean(code == a) for a in range(1, self.n_actions + 1)])
        w = self._w(code)
        groups = w.shape[1]  # each action, plus the shared "any action" group
        sizes = [b.shape[1] for b in blocks]
        candidates = [(a, j) for a in range(groups) for j in range(len(blocks)) if sizes[j] > 0]
        self.modifiers_: list[tuple[int, int]] = list(self.warm.modifiers_) if self.warm else []
        candidates = [c for c in candidates if c not in self.modifiers_]
        # While selecting, a loss within 0.05 of its minimum is plenty: the score tests
        # compare statistics against chi-square critical values of 20 and more.
        rough = 0.1
        # Filled in `_design`'s order, with room for every modifier the fit may add.
        width = 1 + sum(sizes) + self.n_actions + sum(sizes[j] for _, j in self.modifiers_)
        design = _Design(y.size, width + groups * owner.gam_max_modifiers * max(sizes, default=0))
        design.add(np.ones((y.size, 1)))
        for block in blocks:
            design.add(block, rows)
        # From here on the main blocks are the design's own columns (the fit's rows only).
        offsets = np.r_[1, 1 + np.cumsum(sizes)]
        blocks = [design.columns(a, b)[0] for a, b in pairwise(offsets)]
        design.add(w[:, : self.n_actions])
        for a, j in self.modifiers_:
            design.add(w[:, [a]] * blocks[j])
        # The main blocks side by side are the design's columns after the intercept.
        every, every_32 = design.columns(1, 1 + sum(sizes))
        tests = _ScoreTests(every, sizes, w, y, owner.gam_penalty, every_32)
        start = self.warm.coef_ if self.warm else None
        beta, p, hessian = _penalized_logistic(
            design.Z1, y, owner.gam_penalty, start, rough, design.Z1_32, design.scratch
        )
        while candidates:
            pvalues, steps = tests.run(design.Z1_32, p, hessian, candidates, design.scratch)
            # One block per group and step (the groups' blocks barely overlap), each at
            # the Bonferroni level over every block still out of the model.
            level = owner.gam_alpha / len(candidates)
            added: list[int] = []
            for a in range(groups):
                mine = [i for i, (b, _) in enumerate(candidates) if b == a]
                if not mine or sum(m[0] == a for m in self.modifiers_) >= owner.gam_max_modifiers:
                    continue
                best = min(mine, key=lambda i: pvalues[i])
                if pvalues[best] < level:
                    added.append(best)
            if not added:
                break
            start = np.concatenate([beta, *(steps[i] for i in added)])
            for i in added:
                group, j = candidates[i]
                design.add(w[:, [group]] * blocks[j])  # as `_design` orders the columns
            self.modifiers_ += [candidates[i] for i in added]
            # Every other block stays a candidate: dropping those far from significance
            # (p > 0.5) saved a third of the tests but lost real modifiers whose signal
            # only showed once another modifier was in the model.
            candidates = [c for i, c in enumerate(candidates) if i not in added]
            beta, p, hessian = _penalized_logistic(
                design.Z1, y, owner.gam_penalty, start, rough, design.Z1_32, design.scratch
            )
        self.coef_ = _penalized_logistic(
            design.Z1, y, owner.gam_penalty, beta, Z1_32=design.Z1_32, scratch=design.scratch
        )[0]
        self.warm = self.prepared = None  # hints, not part of the fitted model
        return self

    def predict(self, X):
        # Compiled, each feature's basis evaluated once per row and the arms sharing it
        # (`integration.modeling.additive`); equal to the design-matrix product to rounding.
        return additive.uplift(self, X)


class _Design:
    """The GAM's design matrix in double and single precision, and a single-precision
    scratch of its size, grown in place as modifier blocks join.

    Column-major buffers, allocated once per fit with room for every modifier the fit
    may add: a block joins by filling the next columns, and the leading columns of a
    column-major buffer are a contiguous matrix. Rebuilding the matrices at every step
    touched fresh memory each time, which cost more than the arithmetic where the
    system backs memory lazily.
    """

    def __init__(self, n: int, width: int) -> None:
        self._z = np.empty((n, width), order="F")
        self._z32 = np.empty((n, width), dtype=np.float32, order="F")
        self._scratch = np.empty((n, width), dtype=np.float32, order="F")
        self.q = 0

    def columns(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns ``start:stop`` in double and single precision (views)."""
        return self._z[:, start:stop], self._z32[:, start:stop]

    def add(self, columns: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Append ``columns`` (only its ``rows``, in their order, when given)."""
        end = self.q + columns.shape[1]
        if end > self._z.shape[1]:
            raise ValueError("more modifier columns than the design has room for")
        target = self._z[:, self.q : end]
        if rows is None:
            target[...] = columns
        else:
            for c in range(columns.shape[1]):  # a column at a time: no gathered copy
                np.take(columns[:, c], rows, out=target[:, c], mode="clip")
        self._z32[:, self.q : end] = target
        self.q = end

    @property
    def Z1(self) -> np.ndarray:
        return self._z[:, : self.q]

    @property
    def Z1_32(self) -> np.ndarray:
        return self._z32[:, : self.q]

    @property
    def scratch(self) -> np.ndarray:
        return self._scratch[:, : self.q]


class _ScoreTests:
    """Score tests for adding a candidate block ``w_a * B_j`` to the current GAM fit.

    For a block W the statistic is ``U' I*^+ U`` with ``U = W'(y - p)`` and the
    efficient information ``I* = W'VW + penalty*I - W'VZ H^{-1} Z'VW`` (V = p(1-p),
    H the current penalized Hessian); chi-square with rank(I*) degrees of freedom.

    The products over the rows are shared. The main blocks ``B`` (``every``, side by
    side) are columns 1.. of the design ``Z``, so ``B'VZ`` holds ``B'VB`` too. A
    centred arm indicator takes two values, ``base`` on most rows and ``other`` on the
    rest, so ``W'VZ = base B'VZ + (other - base) B_s'V_sZ_s`` and ``W'VW = base^2 B'VB
    + (other^2 - base^2) B_s'V_sB_s``, where ``_s`` keeps the smaller set of rows: one
    product over every row per round, and one over a fraction of the rows per group.
    Products in single precision, as in `_gram`; ``every_32``, when given, is ``every``
    in single precision already (the fit passes views of its design's columns).
    """

    def __init__(
        self,
        every: np.ndarray,
        sizes: list[int],
        w: np.ndarray,
        y: np.ndarray,
        penalty: float,
        every_32: np.ndarray | None = None,
    ) -> None:
        self.every = every
        self.every_32 = every.astype(np.float32) if every_32 is None else every_32
        self.offsets = np.r_[0, np.cumsum(sizes)]
        self.w = w
        self.y = y
        self.penalty = penalty
        self.levels: dict[int, tuple[np.ndarray, float, float]] = {}
        self.small_32: dict[int, np.ndarray] = {}
        for a in range(w.shape[1]):
            values = np.unique(w[:, a])
            if values.size != 2:
                raise ValueError(f"arm indicator {a} takes {values.size} values, not two")
            first = w[:, a] == values[0]
            small = first if first.sum() <= first.size // 2 else ~first
            self.levels[a] = (small, float(w[~small, a][0]), float(w[small, a][0]))
            self.small_32[a] = self.every_32[small]

    def run(
        self,
        Z1_32: np.ndarray,
        p: np.ndarray,
        hessian: np.ndarray,
        candidates: list[tuple[int, int]],
        scratch: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """p-value per candidate, and per candidate index the one-step estimate
        ``I*^+ U`` of the block's coefficients (a start for the refit); ``scratch``: an
        array of ``Z1_32``'s shape and type to work in."""
        v = p * (1 - p)
        h_inv = np.linalg.inv(hessian + 1e-10 * np.eye(hessian.shape[0]))
        residual = self.y - p
        every, every_32, offsets = self.every, self.every_32, self.offsets
        zv = np.multiply(Z1_32, v.astype(np.float32)[:, None], out=scratch)
        inner = slice(1, 1 + every.shape[1])  # B's columns in Z
        out = np.ones(len(candidates))
        steps: dict[int, np.ndarray] = {}
        full = (every_32.T @ zv).astype(np.float64)
        for a in np.unique([c[0] for c in candidates]):
            wa = self.w[:, a]
            small, base, other = self.levels[a]
            part = (self.small_32[a].T @ zv[small]).astype(np.float64)
            cross_all = base * full + (other - base) * part
            vww_all = base**2 * full[:, inner] + (other**2 - base**2) * part[:, inner]
            score_all = every.T @ (wa * residual)
            for i, (group, j) in enumerate(candidates):
                if group != a:
                    continue
                cols = slice(offsets[j], offsets[j + 1])
                size_j = offsets[j + 1] - offsets[j]
                cross = cross_all[cols]
                info = vww_all[cols, cols] + self.penalty * np.eye(size_j) - cross @ h_inv @ cross.T
                score = score_all[cols]
                # One eigendecomposition gives both the pseudo-inverse and the rank (the
                # tolerance is numpy's matrix_rank default).
                values, vectors = np.linalg.eigh(info)
                size = np.abs(values)
                kept = size > size.max(initial=0.0) * size_j * np.finfo(float).eps
                step = (vectors[:, kept] / values[kept]) @ (vectors[:, kept].T @ score)
                out[i] = chi2.sf(float(score @ step), max(int(kept.sum()), 1))
                steps[i] = step
        return out, steps
