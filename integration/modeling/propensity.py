"""The propensity model: who books a meeting, as a calibrated probability with reasons.

`PropensityModel` follows scikit-learn's estimator contract. ``fit(X, y, time)``
splits the rows *by time*: the latest ``validation_share`` of rows (by their
cut-off) is the validation slice, the rows before it — minus a ``gap_days``
gap, so no training label window reaches into it — are the fitting slice.
Two candidates learn on the fitting slice:

* ``lightgbm``: gradient-boosted trees on the raw columns (categoricals native),
  the number of trees chosen by early stopping on the validation slice;
* ``logistic_regression``: one-hot categoricals and sign-preserving log-scaled
  numerics, a transparent baseline.

The candidate with the higher validation AUC wins (a tie goes to the simpler
logistic regression). Its scores are then **calibrated on the validation
slice** — rows the model never trained on — with isotonic regression or Platt
scaling, whichever has the lower Brier score in a two-fold, time-ordered
cross-validation inside that slice (isotonic needs ``isotonic_min_positives``
positives per fold, else Platt). Isotonic steps keep the model's order inside
a step (a 1e-9 tie-break), so calibration never costs ranking. The model is
not refitted afterwards: a refit would have trained on the calibration rows.

The slice used for early stopping, model choice and calibration is the same
one; the metrics in ``validation_`` are therefore a choice criterion, not a
test result. A held-out test belongs to the caller (``bench.propensity``).
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version as package_version
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from integration.errors import ModelError
from integration.modeling import forest
from integration.modeling.reasons import DEFAULT_EXCLUDED, Reason, top_reasons

CANDIDATES = ("lightgbm", "logistic_regression")
CALIBRATIONS = ("auto", "isotonic", "sigmoid")
EPS = 1e-6
TIE_BREAK = 1e-9

LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 1500,
    "learning_rate": 0.06,
    "num_leaves": 31,
    "max_depth": 6,  # shallow trees: as accurate here, and TreeSHAP reasons cost depth squared
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 2.0,
    "min_split_gain": 0.0,
    "cat_smooth": 20.0,
    "max_cat_to_onehot": 8,
    "verbose": -1,
}
EARLY_STOPPING_ROUNDS = 60
SINGLE_THREAD_ROWS = 100_000


def library_versions() -> dict[str, str]:
    """Versions a fitted model depends on (stored with it)."""
    names = ("lightgbm", "scikit-learn", "numpy", "pandas", "scipy")
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


def expected_calibration_error(y: Any, p: Any, bins: int = 10) -> float:
    """ECE over ``bins`` equal-frequency bins (sorted by p): sum of bin share times
    |mean prediction - observed rate|."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if not len(y):
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for part in np.array_split(order, min(bins, len(y))):
        total += len(part) / len(y) * abs(p[part].mean() - y[part].mean())
    return float(total)


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "rows": len(y),
        "positives": int(y.sum()),
    }


def _floats(values: pd.Series) -> np.ndarray:
    """``pd.to_numeric(values, errors="coerce")`` as float64 (a float column directly)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "f":
        return values.to_numpy(dtype=np.float64)
    return pd.to_numeric(values, errors="coerce").astype(float).to_numpy()


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): tames counts and day spans for the linear model."""
    values = np.asarray(values, dtype=float)
    return np.sign(values) * np.log1p(np.abs(values))


class PlattCalibrator:
    """Logistic regression on the score's log-odds (two parameters)."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        z = _logit(p).reshape(-1, 1)
        self.model_ = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
        self.rows_ = len(y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(_logit(p).reshape(-1, 1))[:, 1]


class IsotonicCalibrator:
    """Isotonic regression on the score, ties inside a step broken by the score."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        self.model_ = IsotonicRegression(y_min=EPS, y_max=1 - EPS, out_of_bounds="clip").fit(p, y)
        self.rows_ = len(y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        # A convex blend, so the result stays a probability.
        return (1 - TIE_BREAK) * self.model_.predict(p) + TIE_BREAK * np.asarray(p, dtype=float)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _calibrator(method: str) -> PlattCalibrator | IsotonicCalibrator:
    return IsotonicCalibrator() if method == "isotonic" else PlattCalibrator()


def map_distinct(values: pd.Series, function: Callable[[pd.Series], Any]) -> np.ndarray:
    """``function(values)`` (elementwise) computed once per distinct value: a column of a
    million leads holds a few dozen.

    Values are grouped by equality, so an object column whose distinct values are not
    all strings (``1 == 1.0 == True``, ``None`` and NaN group together) is mapped whole.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if values.dtype == object and not all(isinstance(u, str) for u in uniques):
        return np.asarray(function(values))
    return np.asarray(function(pd.Series(uniques, dtype=values.dtype)))[codes]


class PropensityModel(ClassifierMixin, BaseEstimator):
    """Calibrated P(label = 1) with per-lead reasons; see the module docstring.

    Args:
        candidates: which of ``lightgbm``, ``logistic_regression`` compete.
        calibration: ``auto`` (chosen by time-ordered cross-validation), ``isotonic``
            or ``sigmoid`` (Platt).
        validation_share: share of rows, the latest by ``time``, that validate and calibrate.
        gap_days: rows whose time lies within this many days before the validation
            slice are left out of fitting (use the label window).
        lgbm_params: overrides of `LGBM_DEFAULTS`.
        linear_max_rows: the logistic regression learns from at most this many
            fitting rows (a random subset; it has few parameters).
        isotonic_min_positives: fewer positives per calibration fold → Platt.
        random_state: seed of every random choice.
        n_jobs: threads for LightGBM (None: one below 100k fitting rows, else every core).

    Attributes:
        estimator_name_: the chosen candidate.
        estimator_: the chosen candidate, fitted on the fitting slice.
        calibration_: ``isotonic`` or ``sigmoid``.
        calibrator_: the fitted calibrator.
        validation_: per candidate, AUC / Brier / ECE / log loss of its raw scores on
            the validation slice; ``calibration`` the cross-validated Brier per method;
            ``split`` the rows and times of both slices.
        feature_names_in_, n_features_in_, classes_, categorical_features_,
        numeric_features_, categories_, library_versions_.
    """

    def __init__(
        self,
        *,
        candidates: tuple[str, ...] = CANDIDATES,
        calibration: str = "auto",
        validation_share: float = 0.2,
        gap_days: float = 0.0,
        lgbm_params: dict[str, Any] | None = None,
        linear_max_rows: int = 200_000,
        isotonic_min_positives: int = 100,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.candidates = candidates
        self.calibration = calibration
        self.validation_share = validation_share
        self.gap_days = gap_days
        self.lgbm_params = lgbm_params
        self.linear_max_rows = linear_max_rows
        self.isotonic_min_positives = isotonic_min_positives
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- input handling ------------------------------------------------------------------

    def _as_frame(self, X: Any, y: Any = None, fitting: bool = False) -> Any:
        """X as a DataFrame in the fitted column order (with y, when fitting).

        A DataFrame keeps its dtypes (string categoricals stay strings); anything else
        goes through scikit-learn's array validation and becomes numeric columns.
        """
        if isinstance(X, pd.DataFrame):
            if fitting:
                X, y = validate_data(self, X, y, skip_check_array=True)
            elif hasattr(self, "feature_names_in_"):
                # Columns are found by name: order and extra columns do not matter.
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise ValueError(
                        "The feature names should match those that were passed during fit; "
                        f"X lacks {missing}"
                    )
                X = X[list(self.feature_names_in_)]
            if not fitting:
                validate_data(self, X, reset=False, skip_check_array=True)
            if X.shape[0] == 0 or X.shape[1] == 0:
                raise ValueError(
                    f"0 sample(s) or 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                    "required."
                )
            frame = X.reset_index(drop=True)
        else:
            if fitting:
                X, y = validate_data(
                    self, X, y, dtype="numeric", ensure_all_finite="allow-nan", y_numeric=False
                )
            else:
                X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
            frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if fitting:
            return frame, y
        return frame[list(self._columns_)]

    def _encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Categoricals as pandas categories fixed at fit (unseen → NaN), numerics as floats."""
        out = {}
        for column in self._columns_:
            if column in self.categories_:
                out[column] = pd.Categorical.from_codes(
                    self._category_codes(frame[column]), categories=self.categories_[column]
                )
            else:
                out[column] = _floats(frame[column])
        return pd.DataFrame(out)

    def _category_codes(self, values: pd.Series) -> np.ndarray:
        """Position of each value (as a string, missing as "unknown") among the column's
        categories fixed at fit; -1 when unseen."""
        categories = pd.Index(self.categories_[values.name])

        def codes(distinct: pd.Series) -> np.ndarray:
            text = distinct.astype(object).where(distinct.notna(), "unknown").astype(str)
            return categories.get_indexer(text)

        return map_distinct(values, codes)

    def _encode_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """``_encode`` as the float matrix LightGBM itself makes of it (categories as their
        codes, unseen as NaN), column-major as `integration.modeling.forest` reads it."""
        out = np.empty((len(frame), len(self._columns_)), order="F")
        for j, column in enumerate(self._columns_):
            if column in self.categories_:
                codes = self._category_codes(frame[column])
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = _floats(frame[column])
        return out

    def _forest(self, model: Any) -> forest.Forest:
        """The flattened trees of a fitted LightGBM candidate (built once, never pickled).

        Its pandas categories must be those fixed at fit, which `_encode_matrix` codes by.
        """
        booster = model.booster_
        trees = forest.forest_for(booster)
        stored = booster.pandas_categorical or []
        expected = [self.categories_[c] for c in self._columns_ if c in self.categories_]
        if [list(map(str, c)) for c in stored] != expected:
            raise ModelError("the LightGBM model's categories differ from those fixed at fit")
        return trees

    def _linear_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for column in self._columns_:
            if column in self.categories_:
                out[column] = (
                    frame[column].astype(object).where(frame[column].notna(), "unknown").astype(str)
                )
            else:
                values = pd.to_numeric(frame[column], errors="coerce").astype(float)
                out[column] = values.fillna(0.0)
        return pd.DataFrame(out)

    # -- candidates ------------------------------------------------------------------------

    def _linear(self) -> Pipeline:
        transformers: list[tuple[str, Any, list[str]]] = [
            (
                f"cat:{c}",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False
                ),
                [c],
            )
            for c in self.categorical_features_
        ]
        if self.numeric_features_:
            numeric = Pipeline(
                [
                    ("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")),
                    ("scale", StandardScaler()),
                ]
            )
            transformers.append(("num", numeric, list(self.numeric_features_)))
        return Pipeline(
            [
                ("features", ColumnTransformer(transformers)),
                ("model", LogisticRegression(C=1.0, max_iter=2000)),
            ]
        )

    def _fit_linear(self, frame: pd.DataFrame, y: np.ndarray) -> Pipeline:
        rows = np.arange(len(y))
        if len(rows) > self.linear_max_rows:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(rows, self.linear_max_rows, replace=False))
        data = self._linear_input(frame.iloc[rows])
        model = self._linear().fit(data, y[rows])
        design = model.named_steps["features"].transform(data)
        self.linear_means_ = np.asarray(design, dtype=float).mean(axis=0)
        return model

    def _fit_lightgbm(
        self, fit: pd.DataFrame, y_fit: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray
    ) -> lgb.LGBMClassifier:
        params = {**LGBM_DEFAULTS, **(self.lgbm_params or {})}
        threads = self.n_jobs
        if threads is None:
            # Below this size threads cost more than they save (and OpenMP spin-waits
            # badly when the machine is busy).
            threads = 1 if len(fit) < SINGLE_THREAD_ROWS else (os.cpu_count() or 1)
        model = lgb.LGBMClassifier(random_state=self.random_state, n_jobs=threads, **params)
        stop = len(np.unique(y_valid)) == 2
        model.fit(
            self._encode(fit),
            y_fit,
            eval_X=(self._encode(valid),) if stop else None,
            eval_y=(y_valid,) if stop else None,
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)] if stop else None,
        )
        return model

    def _raw(self, name: str, model: Any, frame: pd.DataFrame) -> np.ndarray:
        if name == "lightgbm":
            # The booster's own prediction, evaluated by compiled code (the same leaves
            # and sums; `integration.modeling.forest`).
            trees = self._forest(model)
            return forest.probability(trees, forest.raw_score(trees, self._encode_matrix(frame)))
        return model.predict_proba(self._linear_input(frame))[:, 1]

    # -- fit -----------------------------------------------------------------------------

    def _split(self, time: Any, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        n = len(y)
        if time is None:
            order = np.arange(n, dtype=float)  # row order stands for time
            stamps = None
            gap = 0.0
        else:
            stamps = pd.to_datetime(pd.Series(time).reset_index(drop=True), utc=True)
            if len(stamps) != n or stamps.isna().any():
                raise ValueError("time needs one cut-off per row of X")
            order = stamps.dt.tz_convert(None).astype("datetime64[ns]").to_numpy().view(np.int64)
            gap = self.gap_days * 86_400e9
        cut = np.sort(order)[min(n - 1, int(np.floor(n * (1 - self.validation_share))))]
        valid = order >= cut
        fit = order < cut - gap
        kind = "time" if stamps is not None else "row order"
        one_class = any(len(np.unique(y[part])) < 2 for part in (fit, valid))
        if stamps is None and one_class:
            # No time given and row order leaves a slice with one class: every k-th row of
            # each class validates instead (deterministic, stratified).
            step = max(2, round(1 / self.validation_share))
            valid = np.zeros(n, dtype=bool)
            for label in (0, 1):
                rows = np.flatnonzero(y == label)
                valid[rows[step - 1 :: step] if len(rows) >= step else rows[-1:]] = True
            fit = ~valid
            kind = "stratified (no time given)"
        info = {
            "kind": kind,
            "fit_rows": int(fit.sum()),
            "validation_rows": int(valid.sum()),
        }
        if stamps is not None:
            info |= {
                "fit_from": stamps[fit].min().isoformat() if fit.any() else None,
                "validation_from": stamps[valid].min().isoformat(),
                "validation_to": stamps[valid].max().isoformat(),
                "gap_days": self.gap_days,
            }
        self._times = order
        return fit, valid, info

    def _choose_calibration(
        self, p: np.ndarray, y: np.ndarray, order: np.ndarray
    ) -> tuple[str, dict[str, Any]]:
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}")
        # Earlier and later half of the validation slice.
        halves = np.array_split(np.argsort(order, kind="stable"), 2)
        positives = min(int(y[h].sum()) for h in halves)
        scores: dict[str, float] = {}
        for method in ("isotonic", "sigmoid"):
            if method == "isotonic" and positives < self.isotonic_min_positives:
                continue
            losses = []
            for train, test in ((halves[0], halves[1]), (halves[1], halves[0])):
                if len(np.unique(y[train])) < 2:
                    continue
                fitted = _calibrator(method).fit(p[train], y[train])
                losses.append(brier_score_loss(y[test], fitted.transform(p[test])))
            if losses:
                scores[method] = float(np.mean(losses))
        if self.calibration != "auto":
            chosen = self.calibration
            why = "as configured"
        elif scores:
            chosen = min(scores, key=scores.__getitem__)
            why = "lower cross-validated Brier score on the validation slice"
            if "isotonic" not in scores:
                why = (
                    f"isotonic needs {self.isotonic_min_positives} positives per fold, "
                    f"the validation slice has {positives}"
                )
        else:
            chosen, why = "sigmoid", "too few labels to compare methods"
        return chosen, {"method": chosen, "why": why, "cv_brier": scores}

    def fit(self, X: Any, y: Any, time: Any = None) -> PropensityModel:
        """Choose, fit and calibrate on a time-based split.

        Args:
            X: features; object/string/category/bool columns are categorical.
            y: binary labels.
            time: each row's cut-off (datetimes); None means rows are in time order.

        Returns:
            self.

        Raises:
            ModelError: when either slice lacks one of the two classes.
        """
        frame, y = self._as_frame(X, y, fitting=True)
        labels = column_or_1d(y, warn=True)
        check_classification_targets(labels)
        if type_of_target(labels, input_name="y", raise_unknown=True) != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{type_of_target(labels)}."
            )
        if len(labels) != len(frame):
            raise ValueError(f"X has {len(frame)} rows, y has {len(labels)}")
        self.classes_ = np.unique(labels)
        if len(self.classes_) != 2:
            raise ValueError(
                f"y has {len(self.classes_)} class(es): PropensityModel needs exactly 2"
            )
        y01 = (labels == self.classes_[1]).astype(int)
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown or not self.candidates:
            raise ValueError(f"candidates must come from {CANDIDATES}, got {self.candidates}")
        self._columns_ = list(frame.columns)
        categorical = [
            c
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
        ]
        self.categorical_features_ = categorical
        self.numeric_features_ = [c for c in frame.columns if c not in categorical]

        fit, valid, split = self._split(time, y01)
        times = self.__dict__.pop("_times")
        for name, part in (("fitting", fit), ("validation", valid)):
            if len(np.unique(y01[part])) < 2:
                raise ModelError(
                    f"the {name} slice has {int(part.sum())} rows and "
                    f"{int(y01[part].sum())} positives: both classes are needed"
                )
        self.categories_ = {
            c: sorted({str(v) for v in frame.loc[fit, c].astype(object).fillna("unknown")})
            for c in categorical
        }
        fit_frame, valid_frame = frame.loc[fit], frame.loc[valid]
        y_fit, y_valid = y01[fit], y01[valid]

        fitted: dict[str, Any] = {}
        scores: dict[str, np.ndarray] = {}
        validation: dict[str, Any] = {}
        # Small fits run single-threaded: thread start-up (and OpenMP spin-waiting on a busy
        # machine) costs more than it saves.
        small = len(y_fit) < SINGLE_THREAD_ROWS and self.n_jobs is None
        with threadpool_limits(limits=1) if small else contextlib.nullcontext():
            for name in self.candidates:
                if name == "lightgbm":
                    model = self._fit_lightgbm(fit_frame, y_fit, valid_frame, y_valid)
                else:
                    model = self._fit_linear(fit_frame, y_fit)
                fitted[name] = model
                scores[name] = self._raw(name, model, valid_frame)
                validation[name] = _metrics(y_valid, scores[name])
                if name == "lightgbm":
                    validation[name]["trees"] = int(model.best_iteration_ or model.n_estimators)
        # Higher AUC wins; on a tie the simpler model (the candidates' order breaks it).
        simple_first = sorted(self.candidates, key=lambda c: c != "logistic_regression")
        chosen = max(simple_first, key=lambda c: validation[c]["auc"])
        self.estimator_name_ = chosen
        self.estimator_ = fitted[chosen]
        if chosen != "logistic_regression" and hasattr(self, "linear_means_"):
            del self.linear_means_

        method, calibration = self._choose_calibration(scores[chosen], y_valid, times[valid])
        self.calibration_ = method
        self.calibrator_ = _calibrator(method).fit(scores[chosen], y_valid)
        validation["chosen"] = chosen
        validation["calibration"] = calibration
        validation["split"] = split
        self.validation_ = validation
        self.library_versions_ = library_versions()
        return self

    # -- predict -------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-odds."""
        return _logit(self.predict_proba(X)[:, 1])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "calibrator_")
        frame = self._as_frame(X)
        raw = self._raw(self.estimator_name_, self.estimator_, frame)
        p = np.clip(self.calibrator_.transform(raw), EPS, 1 - EPS)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]

    # -- explanations --------------------------------------------------------------------

    def contributions(self, X: Any, method: str = "path") -> pd.DataFrame:
        """Per-feature contributions to the chosen model's log-odds, plus ``bias``; for
        every row the contributions and ``bias`` sum to the raw log-odds.

        LightGBM, ``method="path"`` (the default): the decision-path attribution of
        Saabas ("treeinterpreter"): along the path a row takes through each tree, every
        split moves the node's value to its child's, and that move is credited to the
        split's feature; ``bias`` is the sum of the roots' values. A path ends in a leaf,
        so each leaf's credits are tabulated once and a row's are added up from the
        leaves it reaches, found by compiled code (`integration.modeling.forest`): far
        faster than TreeSHAP, which scoring a million leads needs. ``method="shap"``: TreeSHAP
        (``pred_contrib``), the Shapley values, slower. Both agree on which signals
        dominate a row far more often than not; neither is a causal effect.

        Logistic regression: coefficient times (design value - its training mean),
        summed over a feature's one-hot columns; exact. Calibration is monotone and
        applied after, so it changes sizes, never signs or order.
        """
        check_is_fitted(self, "calibrator_")
        if method not in ("path", "shap"):
            raise ValueError(f"method must be 'path' or 'shap', got {method!r}")
        frame = self._as_frame(X)
        columns = list(self._columns_)
        if self.estimator_name_ == "lightgbm":
            if method == "shap":
                values = self.estimator_.predict(self._encode(frame), pred_contrib=True)
                return pd.DataFrame(np.asarray(values), columns=[*columns, "bias"])
            out = self._path_contributions(self._encode_matrix(frame))
            return pd.DataFrame(out, columns=[*columns, "bias"])
        features = self.estimator_.named_steps["features"]
        model = self.estimator_.named_steps["model"]
        design = np.asarray(features.transform(self._linear_input(frame)), dtype=float)
        coef = model.coef_.ravel()
        per_column = (design - self.linear_means_) * coef
        out = np.zeros((len(frame), len(columns)))
        position = {c: i for i, c in enumerate(columns)}
        for name, part in features.output_indices_.items():
            if name == "num":
                for offset, column in enumerate(self.numeric_features_):
                    out[:, position[column]] = per_column[:, part.start + offset]
            elif name.startswith("cat:"):
                out[:, position[name[4:]]] = per_column[:, part].sum(axis=1)
        bias = model.intercept_[0] + float(coef @ self.linear_means_)
        frame_out = pd.DataFrame(out, columns=columns)
        frame_out["bias"] = bias
        return frame_out

    def _path_contributions(self, encoded: np.ndarray) -> np.ndarray:
        """Per-feature path credits and the bias (last column) of ``_encode_matrix`` rows:
        each leaf's path credits added up tree by tree, root first."""
        _, credits, bias = forest.path_credits(self._forest(self.estimator_), encoded)
        return np.column_stack([credits, np.full(len(encoded), bias)])

    def proba_and_group_contributions(
        self,
        X: Any,
        groups: Mapping[str, tuple[Any, Sequence[str]]],
        threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated P(label = 1) and the contributions summed per reason group, at
        once: what scoring needs of a chunk, in one pass over LightGBM's trees.

        Args:
            X: feature rows.
            groups: name → (group, its features), as from
                `integration.modeling.reasons.group_features`; features the model lacks
                are ignored.
            threads: slices of the rows scored at once (LightGBM only).

        Returns:
            ``(proba, weights)``: proba (n,) as ``predict_proba(X)[:, 1]``; weights
            (n, len(groups)), column g the sum of ``contributions(X)`` (``method="path"``)
            over the features of the g-th group, which `top_reasons` ranks.
        """
        check_is_fitted(self, "calibrator_")
        frame = self._as_frame(X)
        position = {c: i for i, c in enumerate(self._columns_)}
        group_of = np.full(len(self._columns_), -1, dtype=np.int64)
        for g, (_, features) in enumerate(groups.values()):
            for feature in features:
                if feature in position:
                    group_of[position[feature]] = g
        if self.estimator_name_ == "lightgbm":
            trees = self._forest(self.estimator_)
            raw, weights, _ = forest.path_credits(
                trees, self._encode_matrix(frame), group_of, len(groups), threads=threads
            )
            raw = forest.probability(trees, raw)
        else:
            raw = self._raw(self.estimator_name_, self.estimator_, frame)
            per_feature = self.contributions(frame).to_numpy(float)[:, : len(self._columns_)]
            weights = np.zeros((len(frame), len(groups)))
            for g in range(len(groups)):
                weights[:, g] = per_feature[:, group_of == g].sum(axis=1)
        proba = np.clip(self.calibrator_.transform(raw), EPS, 1 - EPS)
        return proba, weights

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_path_cache", None)  # rebuilt from the booster on first use
        return state

    def reasons(
        self, X: Any, top: int = 3, exclude: tuple[str, ...] = DEFAULT_EXCLUDED
    ) -> list[list[Reason]]:
        """The ``top`` strongest signed reasons per row (see `integration.modeling.reasons`);
        ``exclude`` names reason groups left out (by default the lead's age)."""
        check_is_fitted(self, "calibrator_")
        frame = self._as_frame(X)
        return top_reasons(self.contributions(frame), frame, top=top, exclude=exclude)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
