"""Baseline propensity training: time-based split, held-out metrics, a registry row.

The model answers "will this open lead book a meeting within the outcome
window?". Candidates (a regularised logistic regression and gradient-boosted
trees) are compared on a validation slice that lies after their training
data; the winner is measured once on a later, untouched test slice, then
refitted on every labelled snapshot for scoring. The metrics stored with the
version are the held-out ones.
"""

from __future__ import annotations

import pickle
import platform
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version as package_version
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy import func, select, update

from integration.config import Settings
from integration.errors import ModelError
from integration.features import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    SNAPSHOT_AGES_DAYS,
    build_features,
    load_frames,
    training_panel,
)
from integration.store import Store
from integration.store.models import ModelVersion, utcnow

# Below this many positive snapshots an AUC is mostly noise; say so instead of guessing.
MIN_POSITIVES = 50
TEST_SHARE = 0.25
RANDOM_STATE = 0


@dataclass(frozen=True)
class TrainResult:
    model_version_id: int
    version: int
    estimator: str
    metrics: dict[str, Any]


def _preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
                list(CATEGORICAL),
            ),
            ("numeric", StandardScaler(), list(NUMERIC)),
        ]
    )


def candidates() -> dict[str, Pipeline]:
    return {
        "logistic_regression": Pipeline(
            [("features", _preprocess()), ("model", LogisticRegression(C=0.5, max_iter=3000))]
        ),
        "gradient_boosting": Pipeline(
            [
                ("features", _preprocess()),
                (
                    "model",
                    HistGradientBoostingClassifier(
                        learning_rate=0.06,
                        max_iter=250,
                        max_leaf_nodes=15,
                        min_samples_leaf=80,
                        l2_regularization=1.0,
                        random_state=RANDOM_STATE,
                    ),
                ),
            ]
        ),
    }


def _time_split(cutoffs: pd.Series, window: timedelta, share: float) -> tuple[np.ndarray, ...]:
    """Rows before and after a split date, with a gap so no training label
    window reaches into the evaluation period."""
    dates = np.sort(cutoffs.unique())
    split = dates[min(len(dates) - 1, max(1, int(len(dates) * (1 - share))))]
    before = (cutoffs + window <= split).to_numpy()
    after = (cutoffs >= split).to_numpy()
    return before, after


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "auc": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6))),
        "base_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "rows": len(y),
        "positives": int(y.sum()),
    }


def library_versions() -> dict[str, str]:
    names = ("scikit-learn", "pandas", "numpy")
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


def fit_and_evaluate(
    X: pd.DataFrame, y: np.ndarray, cutoffs: pd.Series, fresh: np.ndarray, window: timedelta
) -> tuple[str, Pipeline, dict[str, Any]]:
    """Pick an estimator on a time-based validation slice, measure it on a later test slice,
    then refit it on everything for scoring.

    ``fresh`` marks each lead's first snapshot (a new lead): the decision routing
    makes, and the population the headline AUC is measured on. Later snapshots of
    ageing leads are easier to rank (old leads rarely convert), so their AUC is
    reported separately rather than mixed in.
    """
    train, test = _time_split(cutoffs, window, TEST_SHARE)
    if y[train].sum() < MIN_POSITIVES or y[test & fresh].sum() < 10:
        raise ModelError(
            f"too few meetings to train honestly: {int(y[train].sum())} in the training period, "
            f"{int(y[test & fresh].sum())} among new leads in the test period "
            f"(need {MIN_POSITIVES} and 10)"
        )
    fit_part, valid_part = _time_split(cutoffs[train], window, TEST_SHARE)
    train_idx = np.flatnonzero(train)
    fit_rows, valid_rows = train_idx[fit_part], train_idx[valid_part]
    valid_rows = (
        valid_rows[fresh[valid_rows]] if y[valid_rows][fresh[valid_rows]].sum() else valid_rows
    )
    validation: dict[str, float] = {}
    for name, pipeline in candidates().items():
        pipeline.fit(X.iloc[fit_rows], y[fit_rows])
        scores = pipeline.predict_proba(X.iloc[valid_rows])[:, 1]
        validation[name] = float(roc_auc_score(y[valid_rows], scores))
    chosen = max(validation, key=validation.__getitem__)
    model = candidates()[chosen].fit(X[train], y[train])
    p_test = model.predict_proba(X[test])[:, 1]
    new_leads = fresh[test]
    held_out = _metrics(y[test][new_leads], p_test[new_leads])
    metrics = {
        "held_out": held_out,
        "held_out_all_snapshots": _metrics(y[test], p_test),
        "validation_auc": validation,
        "chosen": chosen,
        "split": {
            "train_rows": int(train.sum()),
            "test_rows": int(test.sum()),
            "test_from": pd.Timestamp(cutoffs[test].min()).isoformat(),
            "test_to": pd.Timestamp(cutoffs[test].max()).isoformat(),
        },
        "evaluated_on": "new leads (first snapshot, 1 day after creation) in the test period",
        "deployed": "refitted on all labelled snapshots after evaluation",
    }
    final = candidates()[chosen].fit(X, y)
    return chosen, final, metrics


def train_propensity(
    store: Store, settings: Settings, connection_id: int, now: datetime | None = None
) -> TrainResult:
    """Train, evaluate and register a propensity model; the new version becomes active."""
    now = now or utcnow()
    window = timedelta(days=settings.outcome_window_days)
    frames = load_frames(store, connection_id)
    panel = training_panel(frames, now, settings.outcome_window_days)
    if panel.empty:
        raise ModelError("no lead history old enough to learn from yet")
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    y = panel["label"].to_numpy()
    fresh = (panel["snapshot_age"] == panel["snapshot_age"].min()).to_numpy()
    chosen, model, metrics = fit_and_evaluate(X, y, panel["cutoff"], fresh, window)
    with store.session() as session:
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.connection_id == connection_id, ModelVersion.kind == "propensity"
            )
        )
        session.execute(
            update(ModelVersion)
            .where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == "propensity",
                ModelVersion.status == "active",
            )
            .values(status="retired")
        )
        row = ModelVersion(
            connection_id=connection_id,
            kind="propensity",
            version=(latest or 0) + 1,
            status="active",
            trained_at=utcnow(),
            cutoff=now,
            train_start=pd.Timestamp(panel["cutoff"].min()).to_pydatetime(),
            train_end=pd.Timestamp(panel["cutoff"].max()).to_pydatetime(),
            readiness={
                "snapshots": len(panel),
                "leads": int(panel["lead_crm_id"].nunique()),
                "positives": int(y.sum()),
            },
            metrics=metrics,
            features={"categorical": list(CATEGORICAL), "numeric": list(NUMERIC)},
            params={
                "estimator": chosen,
                "label": f"meeting_booked within {settings.outcome_window_days} days",
                "snapshot_ages_days": list(SNAPSHOT_AGES_DAYS),
            },
            library_versions=library_versions(),
            artifact=pickle.dumps(model),
        )
        session.add(row)
        session.flush()
        return TrainResult(row.id, row.version, chosen, metrics)


def active_model(store: Store, connection_id: int, kind: str = "propensity") -> ModelVersion:
    with store.session() as session:
        row = session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == kind,
                ModelVersion.status == "active",
            )
            .order_by(ModelVersion.version.desc())
        )
    if row is None:
        raise ModelError("no active model: run `leadlift train` first")
    return row


def load_estimator(row: ModelVersion) -> Pipeline:
    if not row.artifact:
        raise ModelError(f"model version {row.version} has no stored artifact")
    model = pickle.loads(row.artifact)
    missing = set(FEATURES) - set(model.feature_names_in_)
    if missing:
        raise ModelError(f"model version {row.version} lacks features {sorted(missing)}")
    return model


def training_due(store: Store, settings: Settings, connection_id: int, now: datetime) -> bool:
    try:
        row = active_model(store, connection_id)
    except ModelError:
        return True
    return now - row.trained_at >= timedelta(days=settings.retrain_after_days)
