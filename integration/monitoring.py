"""Model health on fresh outcomes, and the triggers that recalibrate (retrain) a model.

A deployed model is judged on what happened after it scored: each lead's first
score by the active model, once that score's outcome window has closed, labelled
as training labels it (a meeting booked within the window). Against the model's
own held-out figures (``metrics["held_out"]``):

* AUC fell by more than ``monitor_auc_drop`` (5 points by default),
* expected calibration error above ``monitor_max_ece``,
* the probability-bucket mix drifted (the latest pass's drift alerts),
* or the model is older than ``recalibrate_every_days`` (quarterly at most).

Fewer than ``monitor_min_outcomes`` fresh labelled leads (or no positive among
them) is too thin to judge: the check says so and fires nothing on metrics. Every
check that fires is logged as a `TriggerEvent` with its reason and figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import func, select

from integration.config import Settings
from integration.features import read_frame
from integration.modeling.metrics import expected_calibration_error
from integration.registry import active
from integration.store import Store
from integration.store.models import Outcome, PipelineRun, Score, TriggerEvent, utcnow

LABEL_KIND = "meeting_booked"
CALIBRATION_BINS = 10


@dataclass
class HealthCheck:
    connection_id: int
    model_version: int | None
    fresh: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fire(self) -> bool:
        return bool(self.reasons)


def fresh_outcomes(
    store: Store, connection_id: int, model_id: int, window_days: int, now: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """(propensity, label) of each lead's first score by ``model_id`` whose outcome
    window closed by ``now``: the label is a meeting booked within the window after
    that score, the score itself knowing nothing of it."""
    window = timedelta(days=window_days)
    first = (
        select(
            Score.lead_crm_id,
            func.min(Score.id).label("id"),
        )
        .where(
            Score.connection_id == connection_id,
            Score.model_version_id == model_id,
            Score.shadow.is_(False),
        )
        .group_by(Score.lead_crm_id)
        .subquery()
    )
    scores = read_frame(
        store,
        select(Score.lead_crm_id, Score.propensity, Score.scored_at)
        .join(first, Score.id == first.c.id)
        .where(Score.scored_at <= now - window),
    )
    if scores.empty:
        return np.zeros(0), np.zeros(0, dtype=int)
    meetings = read_frame(
        store,
        select(Outcome.lead_crm_id, func.min(Outcome.occurred_at).label("occurred_at"))
        .where(
            Outcome.connection_id == connection_id,
            Outcome.kind == LABEL_KIND,
            Outcome.deleted.is_(False),
        )
        .group_by(Outcome.lead_crm_id),
    ).set_index("lead_crm_id")["occurred_at"]
    met = pd.Series(pd.to_datetime(meetings.reindex(scores["lead_crm_id"]).to_numpy(), utc=True))
    scored_at = pd.to_datetime(scores["scored_at"], utc=True).reset_index(drop=True)
    # A lead that had met before its score is not a fresh outcome of that score.
    keep = (met.isna() | (met > scored_at)).to_numpy()
    label = (met.notna() & (met > scored_at) & (met <= scored_at + window)).to_numpy()
    return scores["propensity"].to_numpy(dtype=float)[keep], label[keep].astype(int)


def _drift_alerts(store: Store, connection_id: int) -> list[str]:
    with store.session() as session:
        stats = session.scalar(
            select(PipelineRun.stats)
            .where(
                PipelineRun.connection_id == connection_id,
                PipelineRun.step == "score",
                PipelineRun.status == "ok",
            )
            .order_by(PipelineRun.id.desc())
            .limit(1)
        )
    return list((stats or {}).get("drift_alerts") or [])


def check_health(
    store: Store, settings: Settings, connection_id: int, now: datetime | None = None
) -> HealthCheck:
    """Whether the active propensity model needs recalibrating, and why."""
    now = now or utcnow()
    row = active(store, connection_id, "propensity")
    if row is None:
        return HealthCheck(connection_id, None, reasons=["no active model: train one"])
    check = HealthCheck(connection_id, row.version)
    age = now - row.trained_at
    if age >= timedelta(days=settings.recalibrate_every_days):
        check.reasons.append(
            f"model v{row.version} is {age.days} days old; recalibration is due every "
            f"{settings.recalibrate_every_days} days"
        )
    held_out = (row.metrics or {}).get("held_out") or {}
    p, y = fresh_outcomes(store, connection_id, row.id, settings.outcome_window_days, now)
    check.fresh = {"leads": len(y), "positives": int(y.sum())}
    if len(y) < settings.monitor_min_outcomes or not 0 < y.sum() < len(y):
        check.details["judged"] = (
            f"{len(y)} fresh labelled leads ({int(y.sum())} meetings): too few to judge "
            f"(at least {settings.monitor_min_outcomes} with both outcomes)"
        )
    else:
        auc = float(roc_auc_score(y, p))
        ece = float(expected_calibration_error(y, p, bins=CALIBRATION_BINS))
        check.fresh |= {"auc": round(auc, 4), "ece": round(ece, 4)}
        baseline = held_out.get("auc")
        if baseline is not None and baseline - auc > settings.monitor_auc_drop:
            check.reasons.append(
                f"AUC on fresh outcomes {auc:.3f} is {100 * (baseline - auc):.1f} pp below "
                f"the model's held-out {baseline:.3f} "
                f"(threshold {100 * settings.monitor_auc_drop:.0f} pp)"
            )
        if ece > settings.monitor_max_ece:
            check.reasons.append(
                f"calibration error on fresh outcomes {ece:.3f} exceeds {settings.monitor_max_ece}"
            )
    alerts = _drift_alerts(store, connection_id)
    if alerts:
        check.reasons.append("bucket-share drift: " + "; ".join(alerts))
    check.details |= {
        "baseline": {k: held_out.get(k) for k in ("auc", "ece")},
        "fresh": check.fresh,
    }
    return check


def log_trigger(
    store: Store, connection_id: int, job: str, reason: str, details: dict[str, Any] | None = None,
    fired: bool = True,
) -> None:  # fmt: skip
    with store.session() as session:
        session.add(
            TriggerEvent(
                connection_id=connection_id, job=job, fired=fired, reason=reason,
                details=details or {},
            )
        )  # fmt: skip


def recent_triggers(store: Store, connection_id: int, limit: int = 50) -> list[TriggerEvent]:
    with store.session() as session:
        return list(
            session.scalars(
                select(TriggerEvent)
                .where(TriggerEvent.connection_id == connection_id)
                .order_by(TriggerEvent.id.desc())
                .limit(limit)
            )
        )
