"""Uplift training: which action changes the outcome, learned from past holdout experiments.

Rows are the leads of randomized experiments (their arm is on the CRM record,
see `integration.uplift_data`), with features as of their creation, the
moment they were assigned: nothing that happened after assignment (the
touches the treatment *is*) may explain its effect. The last quarter of
creation dates is a test period nothing learns from; per-action Qini, uplift@k
and policy value are measured there, then the model is refitted on every row.

Thin data gets a stated fallback: when the per-lead model cannot be fitted
(too few rows per arm or too few conversions), the shrunk segment-level
estimate (ICP tier × intent tier, per action) scores instead, and the card
says so.

The rep who owns a lead is never a feature: it is used only for the uplift-by-
rep diagnostic stored with the version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from integration.config import Settings
from integration.errors import ModelError
from integration.features import (
    CATEGORICAL,
    NUMERIC,
    Frames,
    build_features,
    feature_spec,
    load_frames,
    naive_time,
)
from integration.modeling import (
    SegmentThresholds,
    SegmentUplift,
    UpliftModel,
    classify_segments,
    policy_value,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_by_rep,
)
from integration.modeling.propensity import library_versions, map_distinct
from integration.registry import ACTIVE, SHADOW, active, load, register
from integration.store import Store
from integration.store.models import Lead, utcnow
from integration.training import TEST_SHARE, TrainResult, time_split
from integration.uplift_data import CONTROL, load_arms, uplift_panel

# Features that describe what happened after assignment (the treatment itself) or the
# lead's age at its own creation: never effect modifiers.
POST_ASSIGNMENT = ("age_days", "eng_after_touch")
UPLIFT_NUMERIC = tuple(
    c for c in NUMERIC if not c.startswith("touch") and c != "touched" and c not in POST_ASSIGNMENT
)
UPLIFT_FEATURES = CATEGORICAL + UPLIFT_NUMERIC
TOP_SHARES = (0.1, 0.2, 0.3)
CURVE_POINTS = 60
MIN_TEST_POSITIVES = 10
RANDOM_STATE = 0


def intent_tier(X: pd.DataFrame) -> np.ndarray:
    """High: a pricing visit or a form fill; medium: any engagement; low: none."""
    high = (X["eng_pricing_page_visit_all"] > 0) | (X["eng_form_fill_all"] > 0)
    medium = X["eng_decay"] > 0
    return np.select([high, medium], ["high", "medium"], default="low").astype(object)


def segment_frame(X: pd.DataFrame) -> pd.DataFrame:
    """The segment key of the sparse-data estimator: ICP tier × intent tier."""
    return pd.DataFrame({"tier": X["tier"].to_numpy(dtype=object), "intent": intent_tier(X)})


@dataclass
class UpliftScorer:
    """What an uplift version stores: the feature encoding, the per-lead model (None
    when data was too thin), the segment estimator and the segment thresholds."""

    vocabulary: dict[str, list[str]]
    model: UpliftModel | None
    segments: SegmentUplift
    thresholds: SegmentThresholds = field(default_factory=SegmentThresholds)
    min_uplift: float = 0.0

    @property
    def actions(self) -> list[str]:
        return list(self.model.actions_ if self.model is not None else self.segments.actions_)

    @property
    def feature_names_in_(self) -> tuple[str, ...]:
        return UPLIFT_FEATURES

    @staticmethod
    def learn_vocabulary(X: pd.DataFrame) -> dict[str, list[str]]:
        return {c: sorted(X[c].astype(str).unique().tolist()) for c in CATEGORICAL}

    def encode(self, X: pd.DataFrame) -> pd.DataFrame:
        """Numeric columns for the uplift learners: categoricals as their vocabulary
        index (-1 when unseen), numerics as they are."""
        # One column-major block: the learners read it back as an array without a copy.
        out = np.empty((len(X), len(UPLIFT_FEATURES)), order="F")
        for j, c in enumerate(CATEGORICAL):
            vocabulary = pd.Index(self.vocabulary[c])

            def codes(values: pd.Series, vocabulary: pd.Index = vocabulary) -> np.ndarray:
                # Categorical codes without pandas' warning about unseen values.
                return vocabulary.get_indexer(values.astype(str))

            out[:, j] = map_distinct(X[c], codes)
        for j, c in enumerate(UPLIFT_NUMERIC, start=len(CATEGORICAL)):
            out[:, j] = X[c].to_numpy(dtype=float)
        return pd.DataFrame(out, columns=list(UPLIFT_FEATURES), copy=False)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Uplift per action (probability difference), one column per action."""
        if self.model is not None:
            return self.model.predict(self.encode(X)).set_axis(X.index)
        return self.segments.predict(segment_frame(X)).set_axis(X.index)

    def classify(self, propensity: np.ndarray, uplift: pd.DataFrame) -> np.ndarray:
        return np.asarray(classify_segments(propensity, uplift, self.thresholds), dtype=object)


def _thin(values: np.ndarray, points: int = CURVE_POINTS) -> list[float]:
    index = np.unique(np.linspace(0, len(values) - 1, points).round().astype(int))
    return [float(v) for v in values[index]]


def per_action_metrics(
    uplift: pd.DataFrame, arm: np.ndarray, y: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """Qini (scikit-uplift's normalised coefficient), AUUC, uplift@k and policy value
    per action, each on that action's rows and the holdout's."""
    metrics, curves = {}, {}
    for action in uplift.columns:
        rows = np.isin(arm, (action, CONTROL))
        treated = (arm[rows] == action).astype(int)
        if treated.sum() == 0 or (1 - treated).sum() == 0 or y[rows].sum() == 0:
            continue
        score, outcome = uplift[action].to_numpy()[rows], y[rows]
        block = {
            "rows": int(rows.sum()),
            "qini_auc": qini_auc_score(outcome, score, treated),
            "uplift_auc": uplift_auc_score(outcome, score, treated),
            "policy_value_per_1000_top20": policy_value(outcome, score, treated, k=0.2),
            "mean_predicted_uplift": float(score.mean()),
            "observed_uplift": float(outcome[treated == 1].mean() - outcome[treated == 0].mean()),
        }
        for k in TOP_SHARES:
            block[f"uplift_at_{round(k * 100)}"] = uplift_at_k(outcome, score, treated, k=k)
        metrics[action] = {k: v if isinstance(v, int) else float(v) for k, v in block.items()}
        x, q = qini_curve(outcome, score, treated)
        share = x / x[-1]
        curves[action] = {"x": _thin(share), "y": _thin(q), "random": _thin(share * q[-1])}
    return metrics, curves


def best_action_policy_gain(uplift: pd.DataFrame, arm: np.ndarray, y: np.ndarray) -> float:
    """Incremental conversions per 1,000 leads when each gets its predicted best action,
    estimated by inverse probability weighting from the randomized arms:
    ``mean(1[arm = pi(x)] y / e_pi(x)) - mean(1[arm = control] y / e_control)``."""
    shares = pd.Series(arm).value_counts(normalize=True)
    if CONTROL not in shares:
        return float("nan")
    pick = np.asarray(uplift.columns, dtype=object)[uplift.to_numpy().argmax(axis=1)]
    e_pick = shares.reindex(pick).fillna(np.inf).to_numpy()
    follows = (arm == pick) * y / e_pick
    holdout = (arm == CONTROL) * y / shares[CONTROL]
    return float(1000 * (follows.mean() - holdout.mean()))


def segment_table(segments: SegmentUplift) -> list[dict[str, Any]]:
    table = segments.effects_
    keep = ["segment", "action", "n_treated", "n_control", "raw_uplift", "uplift", "ci_low",
            "ci_high"]  # fmt: skip
    rounded = table[keep].copy()
    for column in ("raw_uplift", "uplift", "ci_low", "ci_high"):
        rounded[column] = rounded[column].astype(float).round(4)
    return rounded.to_dict("records")


def _owners(store: Store, connection_id: int, leads: np.ndarray) -> np.ndarray:
    with store.session() as session:
        rows = dict(
            session.execute(
                select(Lead.crm_id, Lead.owner_crm_id).where(Lead.connection_id == connection_id)
            ).all()
        )
    return np.array([rows.get(lead) or "unassigned" for lead in leads], dtype=object)


def fit_scorer(X: pd.DataFrame, arm: np.ndarray, y: np.ndarray) -> tuple[UpliftScorer, str, str]:
    """(scorer, mode, why): the per-lead model, or the segment estimator when thin."""
    if not (arm == CONTROL).any():
        raise ModelError(
            "no holdout: uplift needs a randomized control arm to compare actions with "
            "(past experiments' arms come from the Experiment_Arm field)"
        )
    vocabulary = UpliftScorer.learn_vocabulary(X)
    segments = SegmentUplift(control=CONTROL, random_state=RANDOM_STATE).fit(
        segment_frame(X), arm, y
    )
    scorer = UpliftScorer(vocabulary, None, segments)
    try:
        model = UpliftModel(control=CONTROL, random_state=RANDOM_STATE)
        scorer.model = model.fit(scorer.encode(X), arm, y, randomized=True)
    except ValueError as exc:
        return scorer, "segments", f"per-lead model not fitted ({exc}); segment estimates"
    return scorer, "per_lead", f"learner {scorer.model.learner_}"


def train_uplift(
    store: Store,
    settings: Settings,
    connection_id: int,
    now: datetime | None = None,
    frames: Frames | None = None,
) -> TrainResult:
    """Train, measure on the test period, backtest against the champion, register."""
    now = now or utcnow()
    window_days = settings.outcome_window_days
    frames = frames if frames is not None else load_frames(store, connection_id)
    arms = load_arms(store, connection_id)
    panel = uplift_panel(frames, arms, now, window_days)
    if panel.empty:
        raise ModelError("no experiment arms on any lead: uplift needs a past holdout experiment")
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    arm = panel["treatment"].to_numpy(dtype=object)
    y = panel["label"].to_numpy().astype(int)
    cutoffs = pd.Series(pd.to_datetime(panel["cutoff"], utc=True))
    train, test = time_split(cutoffs, timedelta(days=window_days), TEST_SHARE)

    measured, _, _ = fit_scorer(X[train], arm[train], y[train])
    metrics: dict[str, Any] = {
        "arms": {str(k): int(v) for k, v in pd.Series(arm).value_counts().items()},
        "split": {
            "train_rows": int(train.sum()),
            "test_rows": int(test.sum()),
            "test_from": pd.Timestamp(cutoffs[test].min()).isoformat(),
        },
        "evaluated_on": "leads of the experiments created in the test period (last quarter)",
    }
    if y[test].sum() >= MIN_TEST_POSITIVES:
        predicted = measured.predict(X[test].reset_index(drop=True))
        metrics["per_action"], metrics["qini_curves"] = per_action_metrics(
            predicted, arm[test], y[test]
        )
        metrics["held_out"] = {
            "qini_auc": float(np.mean([m["qini_auc"] for m in metrics["per_action"].values()])),
            "best_action_gain_per_1000": best_action_policy_gain(predicted, arm[test], y[test]),
            "rows": int(test.sum()),
            "positives": int(y[test].sum()),
        }
    else:
        metrics["not_measured"] = f"{int(y[test].sum())} conversions in the test period"
    if measured.model is not None and measured.model.validation_ is not None:
        metrics["validation"] = measured.model.validation_.to_dict("records")

    deployed, deployed_mode, deployed_why = fit_scorer(X, arm, y)
    metrics["segments"] = segment_table(deployed.segments)
    by_rep = uplift_by_rep(_owners(store, connection_id, panel["lead_crm_id"].to_numpy()), arm, y)
    metrics["by_rep"] = by_rep.round(4).to_dict("records")

    champion = active(store, connection_id, "uplift")
    promote, metrics["backtest"] = uplift_backtest(champion, deployed, X, arm, y, cutoffs)
    registered = register(
        store, connection_id, "uplift", deployed,
        status=ACTIVE if promote else SHADOW, cutoff=now,
        train_start=cutoffs.min().to_pydatetime(), train_end=cutoffs.max().to_pydatetime(),
        metrics=metrics, readiness={"arms": metrics["arms"], "mode": deployed_mode,
                                    "why": deployed_why},
        features=feature_spec() | {"uplift_features": list(UPLIFT_FEATURES)},
        params={
            "estimator": registered_estimator(deployed),
            "mode": deployed_mode, "mode_why": deployed_why,
            "label": f"meeting_booked within {window_days} days of assignment",
            "actions": deployed.actions,
            "segment_thresholds": asdict(deployed.thresholds),
            "segment_key": "ICP tier x intent tier, per action",
        },
        library_versions=library_versions(),
    )  # fmt: skip
    return TrainResult.of(
        "uplift", registered, registered_estimator(deployed), deployed_mode, metrics
    )


def registered_estimator(scorer: UpliftScorer) -> str:
    return scorer.model.learner_ if scorer.model is not None else "segments"


def _mean_qini(scorer: UpliftScorer, X: pd.DataFrame, arm: np.ndarray, y: np.ndarray) -> float:
    metrics, _ = per_action_metrics(scorer.predict(X.reset_index(drop=True)), arm, y)
    return float(np.mean([m["qini_auc"] for m in metrics.values()])) if metrics else float("nan")


def uplift_backtest(champion, challenger: UpliftScorer, X, arm, y, cutoffs):
    """Mean per-action Qini of both on the experiment leads created after the
    champion's training cut-off."""
    if champion is None:
        return True, {"decision": "promoted: no active model"}
    info: dict[str, Any] = {"champion_version": champion.version}
    rows = (cutoffs.dt.tz_convert(None) >= naive_time(champion.cutoff)).to_numpy()
    positives = int(y[rows].sum())
    info |= {"rows": int(rows.sum()), "positives": positives}
    if positives < MIN_TEST_POSITIVES:
        return False, info | {
            "decision": f"shadow: {positives} conversions since the champion was trained, "
            f"{MIN_TEST_POSITIVES} needed for a fair backtest"
        }
    old = load(champion)
    if set(getattr(old, "actions", [])) != set(challenger.actions):
        return True, info | {"decision": "promoted: the set of actions changed"}
    info["champion_qini"] = _mean_qini(old, X[rows], arm[rows], y[rows])
    info["challenger_qini"] = _mean_qini(challenger, X[rows], arm[rows], y[rows])
    wins = bool(info["challenger_qini"] > info["champion_qini"])
    info["decision"] = (
        "promoted: higher Qini on the backtest"
        if wins
        else "shadow: did not beat the champion's Qini on the backtest"
    )
    return wins, info
