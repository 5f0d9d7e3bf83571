"""Scoring: every lead, as of now, with the active propensity model → score history.

History is append-only but not noisy: a lead gets a new row only when its
score moved or the model changed, so re-running a pass with nothing new
writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

from integration.errors import ModelError
from integration.features import build_features, load_frames
from integration.store import Store
from integration.store.models import Score, utcnow
from integration.training import active_model, load_estimator

CHUNK = 20_000
# A smaller move is below what any field shows (Lead_Score is a whole percent).
MIN_CHANGE = 1e-4


@dataclass(frozen=True)
class ScoreStats:
    scored: int
    written: int
    model_version: int
    mean_propensity: float
    scored_at: datetime


def newest_score_ids(connection_id: int):
    """Subquery of each lead's latest score id: the current score is the newest row."""
    return (
        select(func.max(Score.id).label("id"))
        .where(Score.connection_id == connection_id)
        .group_by(Score.lead_crm_id)
        .subquery()
    )


def latest_scores(store: Store, connection_id: int) -> list[Score]:
    newest = newest_score_ids(connection_id)
    with store.session() as session:
        return list(session.scalars(select(Score).join(newest, Score.id == newest.c.id)))


def _latest(store: Store, connection_id: int) -> pd.DataFrame:
    newest = newest_score_ids(connection_id)
    with store.session() as session:
        rows = session.execute(
            select(Score.lead_crm_id, Score.propensity, Score.model_version_id).join(
                newest, Score.id == newest.c.id
            )
        ).all()
    return pd.DataFrame(rows, columns=["lead_crm_id", "propensity", "model_version_id"])


def score_leads(
    store: Store,
    connection_id: int,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreStats:
    """Score every live lead with the active model; append the scores that changed."""
    now = now or utcnow()
    version = active_model(store, connection_id)
    model = load_estimator(version)
    frames = load_frames(store, connection_id)
    # Converted leads are closed (and read-only in Salesforce): the score is for prospects.
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), ["crm_id", "crm_object"]]
    if leads.empty:
        raise ModelError("no open leads to score: run a sync first")
    previous = _latest(store, connection_id).set_index("lead_crm_id")
    total, written = 0.0, 0
    for start in range(0, len(leads), CHUNK):
        chunk = leads.iloc[start : start + CHUNK]
        panel = pd.DataFrame({"lead_crm_id": chunk["crm_id"].to_numpy(), "cutoff": now})
        p = model.predict_proba(build_features(frames, panel))[:, 1]
        total += float(np.sum(p))
        before = previous.reindex(chunk["crm_id"].to_numpy())
        old = before["propensity"].to_numpy(dtype=float)
        changed = (
            np.isnan(old)
            | (np.abs(np.nan_to_num(old) - p) >= MIN_CHANGE)
            | (before["model_version_id"].to_numpy() != version.id)
        )
        rows = [
            {
                "connection_id": connection_id,
                "lead_crm_id": lead,
                "crm_object": obj,
                "model_version_id": version.id,
                "propensity": float(prob),
                "scored_at": now,
                "uplift": {},
                "reasons": {},
            }
            for lead, obj, prob, keep in zip(
                chunk["crm_id"], chunk["crm_object"], p, changed, strict=True
            )
            if keep
        ]
        if rows:
            with store.session() as session:
                session.execute(insert(Score), rows)
        written += len(rows)
        if progress:
            progress(len(chunk))
    return ScoreStats(len(leads), written, version.version, total / len(leads), now)
