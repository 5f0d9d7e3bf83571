"""Propensity training: readiness first, then a time-based split, held-out metrics,
a champion/challenger backtest and a registry row.

The model answers "will this open lead book a meeting within the outcome
window?". The data-readiness report decides the mode: below its floor the
score is a transparent rules/fit score (`RulesModel`), never a pretend ML
model. Either way the last quarter of snapshot dates is a test period that
nothing learns from (training rows end a label window before it); every
metric stored with the version is measured there, on new leads, after the
ICP guardrails — exactly what would have been written. The deployed model is
then refitted on every labelled snapshot.

A retrained model becomes active only if it beats the active one on the
rows the champion never learned from (snapshots whose label window began
after the champion's training cut-off); otherwise it is kept as a shadow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from integration.config import Settings
from integration.errors import ModelError
from integration.features import (
    CATEGORICAL,
    FEATURE_VERSION,
    NUMERIC,
    SNAPSHOT_AGES_DAYS,
    Frames,
    build_features,
    feature_spec,
    load_frames,
    naive_time,
    training_panel,
)
from integration.modeling import (
    DEFAULT_BUCKETS,
    DEFAULT_GUARDRAILS,
    PropensityModel,
    RulesModel,
    apply_guardrails,
    assess,
    bucket_conversion,
    calibration_by_segment,
    expected_calibration_error,
)
from integration.modeling.propensity import library_versions
from integration.modeling.readiness import ReadinessReport, latest_unmapped
from integration.registry import ACTIVE, SHADOW, Registered, active, load, register
from integration.routing import RoutingPolicy, load_policy
from integration.routing.route import bucket_index, percentiles
from integration.store import Store
from integration.store.models import ModelVersion, utcnow

TEST_SHARE = 0.25
# Fewer positives than this among the test period's new leads and an AUC is noise.
MIN_TEST_POSITIVES = 10
CALIBRATION_BINS = 10
IMPORTANCE_SAMPLE = 5_000
BIAS_DIMENSIONS = ("source", "region", "size_band")
RANDOM_STATE = 0


@dataclass(frozen=True)
class TrainResult:
    kind: str
    model_version_id: int
    version: int
    status: str
    estimator: str
    mode: str
    metrics: dict[str, Any]
    decision: str

    @classmethod
    def of(
        cls, kind: str, registered: Registered, estimator: str, mode: str, metrics: dict
    ) -> TrainResult:
        decision = metrics["backtest"]["decision"]
        return cls(kind, registered.id, registered.version, registered.status, estimator, mode,
                   metrics, decision)  # fmt: skip

    def summary(self) -> dict[str, Any]:
        held_out = self.metrics.get("held_out") or {}
        return {
            "kind": self.kind,
            "version": self.version,
            "status": self.status,
            "estimator": self.estimator,
            "mode": self.mode,
            "decision": self.decision,
            **held_out,
        }


def time_split(cutoffs: pd.Series, window: timedelta, share: float = TEST_SHARE):
    """(train, test) masks: the last ``share`` of dates is the test period, and training
    rows end one label window before it so no training label peeks into it."""
    dates = np.sort(cutoffs.unique())
    split = dates[min(len(dates) - 1, max(1, int(len(dates) * (1 - share))))]
    train = (cutoffs + window <= split).to_numpy()
    test = (cutoffs >= split).to_numpy()
    return train, test


def guarded_proba(model: Any, X: pd.DataFrame, context: pd.DataFrame | None = None):
    """The model's probabilities after the ICP guardrails: what scoring writes."""
    return apply_guardrails(X, model.predict_proba(X)[:, 1], context=context)


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rows": len(y),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_prediction": float(p.mean()) if len(p) else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
    }
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, p))
        out["log_loss"] = float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)))
        out["ece"] = float(expected_calibration_error(y, p, bins=CALIBRATION_BINS))
    return out


def calibration_points(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Mean prediction vs observed rate over equal-frequency bins (the card's curve)."""
    order = np.argsort(p, kind="stable")
    return [
        {"predicted": float(p[part].mean()), "observed": float(y[part].mean()), "rows": len(part)}
        for part in np.array_split(order, bins)
        if len(part)
    ]


def bucket_table(y: np.ndarray, p: np.ndarray) -> list[dict[str, Any]]:
    edges = [0.0, *DEFAULT_BUCKETS.edges, 1.0 + 1e-9]
    table = bucket_conversion(y, p, edges)
    return [
        {"bucket": label, "rows": int(row.n), "predicted": float(row.predicted),
         "conversion": float(row.observed)}
        for label, row in zip(DEFAULT_BUCKETS.labels, table.itertuples(), strict=True)
        if row.n
    ]  # fmt: skip


def bias_review(y: np.ndarray, p: np.ndarray, X: pd.DataFrame) -> dict[str, list[dict]]:
    """Calibration per source, region and size band, over- and under-scored ones flagged."""
    out = {}
    for dimension in BIAS_DIMENSIONS:
        table = calibration_by_segment(y, p, X[dimension].to_numpy(), min_rows=100)
        out[dimension] = [
            {"segment": str(r.segment), "rows": int(r.n), "predicted": float(r.predicted),
             "observed": float(r.observed), "z": float(r.z), "flag": r.flag}
            for r in table.itertuples()
        ]  # fmt: skip
    return out


def importance(model: Any, X: pd.DataFrame) -> list[dict[str, Any]]:
    """Mean |contribution| per feature (TreeSHAP, or exact for linear and rules models)."""
    sample = X.sample(min(len(X), IMPORTANCE_SAMPLE), random_state=RANDOM_STATE)
    contributions = model.contributions(sample).drop(columns="bias", errors="ignore")
    mean_abs = contributions.abs().mean().sort_values(ascending=False)
    return [{"feature": f, "importance": float(v)} for f, v in mean_abs.head(20).items() if v > 0]


def routing_bucket_table(
    y: np.ndarray, p: np.ndarray, policy: RoutingPolicy | None = None
) -> list[dict[str, Any]]:
    """Conversion per bucket of the routing policy (the packaged default when None;
    percentiles of the score among the rows measured), the buckets reps see."""
    policy = policy or load_policy()
    basis = percentiles(p) if policy.basis == "percentile" else p * 100.0
    level = bucket_index(basis, policy)
    out = []
    for i in reversed(range(len(policy.buckets))):  # ascending, like the probability table
        part = level == i
        if part.any():
            out.append(
                {"bucket": policy.buckets[i].name, "rows": int(part.sum()),
                 "predicted": float(p[part].mean()), "conversion": float(y[part].mean())}
            )  # fmt: skip
    return out


def evaluate(
    model: Any, X: pd.DataFrame, y: np.ndarray, policy: RoutingPolicy | None = None
) -> dict[str, Any]:
    """Every held-out figure the model card shows, on guarded probabilities; the
    routed buckets are ``policy``'s (the one scoring routes with)."""
    p = guarded_proba(model, X).proba
    return {
        "held_out": classification_metrics(y, p),
        "calibration": calibration_points(y, p),
        "buckets": routing_bucket_table(y, p, policy),
        "probability_buckets": bucket_table(y, p),
        "by_segment": bias_review(y, p, X),
        "importance": importance(model, X),
    }


def fit_propensity(
    report: ReadinessReport, X: pd.DataFrame, y: np.ndarray, cutoffs: pd.Series, window_days: int
) -> tuple[Any, str, str]:
    """(fitted model, mode, why): the ML model when readiness allows and the data holds
    both classes in both slices, else the rules score."""
    if report.mode == "ml":
        try:
            model = PropensityModel(gap_days=window_days, random_state=RANDOM_STATE)
            return model.fit(X, y, time=cutoffs), "ml", report.why
        except ModelError as exc:
            why = f"the model could not be validated: {exc.message}"
    else:
        why = report.why
    return RulesModel(why=f"below the data-readiness floor ({why})").fit(X, y), "rules", why


def estimator_name(model: Any) -> str:
    return getattr(model, "estimator_name_", None) or "rules"


def backtest(
    champion: ModelVersion | None,
    challenger: Any,
    challenger_mode: str,
    X: pd.DataFrame,
    y: np.ndarray,
    cutoffs: pd.Series,
    eligible: np.ndarray,
) -> tuple[bool, dict[str, Any]]:
    """Should the challenger replace the champion? Compared on the same rows: new
    leads whose label window began after the champion's training cut-off."""
    if champion is None:
        return True, {"decision": "promoted: no active model"}
    info: dict[str, Any] = {"champion_version": champion.version}
    champion_mode = (champion.params or {}).get("mode", "ml")
    if (champion.features or {}).get("version") != FEATURE_VERSION:
        return True, info | {"decision": "promoted: the champion uses another feature version"}
    if champion_mode == "rules" and challenger_mode == "ml":
        return True, info | {"decision": "promoted: the data now passes the readiness floor"}
    naive = pd.to_datetime(cutoffs, utc=True).dt.tz_convert(None)
    rows = eligible & (naive >= naive_time(champion.cutoff)).to_numpy()
    positives = int(y[rows].sum())
    info |= {"rows": int(rows.sum()), "positives": positives}
    if positives < MIN_TEST_POSITIVES or positives == rows.sum():
        return False, info | {
            "decision": f"shadow: {positives} outcomes since the champion was trained, "
            f"{MIN_TEST_POSITIVES} needed for a fair backtest"
        }
    champion_p = guarded_proba(load(champion), X[rows]).proba
    challenger_p = guarded_proba(challenger, X[rows]).proba
    info["champion_auc"] = float(roc_auc_score(y[rows], champion_p))
    info["challenger_auc"] = float(roc_auc_score(y[rows], challenger_p))
    info["champion_brier"] = float(brier_score_loss(y[rows], champion_p))
    info["challenger_brier"] = float(brier_score_loss(y[rows], challenger_p))
    wins = info["challenger_auc"] > info["champion_auc"]
    info["decision"] = (
        "promoted: higher AUC on the backtest"
        if wins
        else "shadow: did not beat the champion's AUC on the backtest"
    )
    return wins, info


def hygiene_summary(frames: Frames) -> dict[str, Any] | None:
    """What cleaning changed before training (reported with the version, never written back)."""
    return frames.hygiene.as_dict() if frames.hygiene is not None else None


def train_propensity(
    store: Store,
    settings: Settings,
    connection_id: int,
    now: datetime | None = None,
    frames: Frames | None = None,
) -> TrainResult:
    """Assess readiness, train, measure on the untouched test period, backtest against
    the champion, and register the version (active or shadow)."""
    now = now or utcnow()
    window_days = settings.outcome_window_days
    frames = frames if frames is not None else load_frames(store, connection_id)
    report = assess(frames, now, unmapped=latest_unmapped(store, connection_id))
    panel = training_panel(frames, now, window_days)
    if panel.empty:
        return _register_unlabelled(store, connection_id, frames, report, now)
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    y = panel["label"].to_numpy()
    cutoffs = panel["cutoff"]
    fresh = (panel["snapshot_age"] == panel["snapshot_age"].min()).to_numpy()
    train, test = time_split(cutoffs, timedelta(days=window_days))
    measured, mode, _ = fit_propensity(report, X[train], y[train], cutoffs[train], window_days)
    new_leads = test & fresh
    metrics: dict[str, Any]
    if y[new_leads].sum() >= MIN_TEST_POSITIVES:
        policy = load_policy(settings.routing_policy)
        metrics = evaluate(measured, X[new_leads], y[new_leads], policy)
        metrics["held_out_all_snapshots"] = classification_metrics(
            y[test], guarded_proba(measured, X[test]).proba
        )
    else:
        metrics = {
            "held_out": classification_metrics(
                y[new_leads], guarded_proba(measured, X[new_leads]).proba
            ),
            "not_measured": f"{int(y[new_leads].sum())} meetings among new leads in the test "
            f"period; {MIN_TEST_POSITIVES} are needed for an AUC that means anything",
        }
    if mode == "ml":
        metrics["validation"] = {k: v for k, v in measured.validation_.items() if k != "split"}
    metrics["split"] = {
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "test_from": pd.Timestamp(cutoffs[test].min()).isoformat(),
        "test_to": pd.Timestamp(cutoffs[test].max()).isoformat(),
    }
    metrics["evaluated_on"] = (
        "new leads (first snapshot, 1 day after creation) in the test period, after guardrails"
    )
    metrics["deployed"] = "refitted on all labelled snapshots after evaluation"

    deployed, deployed_mode, deployed_why = fit_propensity(report, X, y, cutoffs, window_days)
    champion = active(store, connection_id, "propensity")
    promote, metrics["backtest"] = backtest(champion, deployed, deployed_mode, X, y, cutoffs, fresh)
    return _register(
        store, connection_id, deployed, deployed_mode, deployed_why, promote, metrics, report,
        now, (cutoffs.min(), cutoffs.max()), window_days, hygiene_summary(frames),
    )  # fmt: skip


def _register_unlabelled(
    store: Store, connection_id: int, frames: Frames, report: ReadinessReport, now: datetime
) -> TrainResult:
    """No lead is old enough to have a label yet: the rules score, fitted on today's
    leads, is all that can be offered, and its card says nothing was measured."""
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), "crm_id"]
    if leads.empty:
        raise ModelError("no leads to score yet: run a sync first")
    X = build_features(frames, pd.DataFrame({"lead_crm_id": leads.to_numpy(), "cutoff": now}))
    why = f"no labelled history yet; {report.why}"
    model = RulesModel(why=f"below the data-readiness floor ({why})").fit(X)
    metrics = {"not_measured": "no lead has a finished outcome window yet"}
    champion = active(store, connection_id, "propensity")
    promote = champion is None
    metrics["backtest"] = {
        "decision": "promoted: no active model" if promote else "shadow: nothing to backtest on"
    }
    return _register(
        store, connection_id, model, "rules", why, promote, metrics, report, now, (None, None),
        None, hygiene_summary(frames),
    )  # fmt: skip


def _register(
    store,
    connection_id,
    model,
    mode,
    why,
    promote,
    metrics,
    report,
    now,
    span,
    window_days,
    hygiene,
) -> TrainResult:
    registered = register(
        store, connection_id, "propensity", model,
        status=ACTIVE if promote else SHADOW, cutoff=now,
        train_start=None if span[0] is None else pd.Timestamp(span[0]).to_pydatetime(),
        train_end=None if span[1] is None else pd.Timestamp(span[1]).to_pydatetime(),
        metrics=metrics, readiness=report.as_dict() | {"hygiene": hygiene},
        features=feature_spec(),
        params={
            "estimator": estimator_name(model),
            "mode": mode,
            "mode_why": why,
            "calibration": getattr(model, "calibration_", None),
            "label": f"meeting_booked within {window_days} days" if window_days else None,
            "snapshot_ages_days": list(SNAPSHOT_AGES_DAYS),
            "guardrails": [g.code for g in DEFAULT_GUARDRAILS],
            "bucket_edges": list(DEFAULT_BUCKETS.edges),
        },
        library_versions=library_versions(),
    )  # fmt: skip
    return TrainResult.of("propensity", registered, estimator_name(model), mode, metrics)


def active_model(store: Store, connection_id: int, kind: str = "propensity") -> ModelVersion:
    row = active(store, connection_id, kind)
    if row is None:
        raise ModelError(f"no active {kind} model: run `leadlift train` first")
    return row


def load_estimator(row: ModelVersion) -> Any:
    model = load(row)
    names = set(getattr(model, "feature_names_in_", ()))
    missing = set(CATEGORICAL + NUMERIC) - names if row.kind == "propensity" else set()
    if missing:
        raise ModelError(f"model version {row.version} lacks features {sorted(missing)}")
    return model


def training_due(store: Store, settings: Settings, connection_id: int, now: datetime) -> bool:
    row = active(store, connection_id, "propensity")
    if row is None:
        return True
    return now - row.trained_at >= timedelta(days=settings.retrain_after_days)
