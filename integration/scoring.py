"""Scoring: every open lead, as of now → propensity, bucket, reasons, uplift per action,
best action and segment → the append-only score history.

The active propensity model (ML or the rules fallback) gives a calibrated
probability; the ICP guardrails then floor or cap its bucket and say so in the
reasons. The active uplift model (when one exists) gives each action's
incremental effect; the best action and the uplift segment follow from both.

History is append-only but not noisy: a lead gets a new row only when what a
rep would see moved (score, bucket, best action, segment) or a model changed,
so re-running a pass with nothing new writes nothing. Challengers that lost
their backtest (shadows) score too, into rows marked ``shadow`` that are never
written back: the comparison a later promotion rests on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

from integration.errors import ModelError
from integration.features import Frames, build_features, load_frames
from integration.modeling import Reason, apply_guardrails, best_action
from integration.registry import SHADOW, active, load
from integration.store import Store
from integration.store.models import ModelVersion, Score, utcnow

CHUNK = 50_000
# A smaller move is below what any field shows (Lead_Score is a whole percent).
MIN_CHANGE = 1e-4
TOP_REASONS = 3


@dataclass(frozen=True)
class ScoreStats:
    scored: int
    written: int
    model_version: int
    mean_propensity: float
    scored_at: datetime
    uplift_version: int | None = None
    mode: str = "ml"
    buckets: dict[str, int] | None = None
    segments: dict[str, int] | None = None
    actions: dict[str, int] | None = None
    shadow_written: int = 0


@dataclass
class Models:
    """The models one pass scores with (the active pair, or a shadow pair)."""

    propensity_row: ModelVersion
    propensity: Any
    uplift_row: ModelVersion | None
    uplift: Any
    shadow: bool = False


def newest_score_ids(connection_id: int, shadow: bool = False):
    """Subquery of each lead's latest score id: the current score is the newest row."""
    return (
        select(func.max(Score.id).label("id"))
        .where(Score.connection_id == connection_id, Score.shadow.is_(shadow))
        .group_by(Score.lead_crm_id)
        .subquery()
    )


def latest_scores(store: Store, connection_id: int) -> list[Score]:
    newest = newest_score_ids(connection_id)
    with store.session() as session:
        return list(session.scalars(select(Score).join(newest, Score.id == newest.c.id)))


def _latest(store: Store, connection_id: int, shadow: bool) -> pd.DataFrame:
    newest = newest_score_ids(connection_id, shadow)
    columns = [Score.lead_crm_id, Score.propensity, Score.model_version_id, Score.bucket,
               Score.action, Score.segment, Score.uplift]  # fmt: skip
    with store.session() as session:
        rows = session.execute(select(*columns).join(newest, Score.id == newest.c.id)).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in columns])
    frame["uplift_version"] = [(u or {}).get("model_version") for u in frame["uplift"]]
    return frame.drop(columns="uplift").set_index("lead_crm_id")


def _newer_shadow(store: Store, connection_id: int, kind: str, than: ModelVersion | None):
    with store.session() as session:
        row = session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == kind,
                ModelVersion.status == SHADOW,
            )
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
    return row if row is not None and (than is None or row.version > than.version) else None


def model_sets(store: Store, connection_id: int) -> list[Models]:
    """The active models, then (when a challenger newer than the champion is a shadow)
    the same with the shadows substituted."""
    propensity_row = active(store, connection_id, "propensity")
    if propensity_row is None:
        raise ModelError("no active propensity model: run `leadlift train` first")
    uplift_row = active(store, connection_id, "uplift")
    sets = [
        Models(
            propensity_row,
            load(propensity_row),
            uplift_row,
            load(uplift_row) if uplift_row else None,
        )
    ]
    shadow_p = _newer_shadow(store, connection_id, "propensity", propensity_row)
    shadow_u = _newer_shadow(store, connection_id, "uplift", uplift_row)
    if shadow_p or shadow_u:
        sets.append(
            Models(
                shadow_p or propensity_row,
                load(shadow_p) if shadow_p else sets[0].propensity,
                shadow_u or uplift_row,
                load(shadow_u) if shadow_u else sets[0].uplift,
                shadow=True,
            )
        )
    return sets


def _context(frames: Frames, lead_ids: np.ndarray) -> pd.DataFrame:
    """Per-lead CRM columns guardrails may read beyond the features (the lead status)."""
    status = frames.leads.set_index("crm_id")["status"]
    status = status[~status.index.duplicated()]
    return pd.DataFrame({"status": status.reindex(lead_ids).fillna("").to_numpy(dtype=object)})


def _uplift_reason(action: str | None, value: float) -> list[Reason]:
    if action is None:
        return []
    text = f"+ {action.replace('_', ' ')} adds {value * 100:.1f} pt"
    return [Reason("uplift.best_action", text, 0.0)]


def score_chunk(models: Models, X: pd.DataFrame, context: pd.DataFrame) -> dict[str, Any]:
    """Everything one row of score history holds, for a chunk of leads (vectorised)."""
    raw = models.propensity.predict_proba(X)[:, 1]
    guarded = apply_guardrails(X, raw, context=context)
    reasons = models.propensity.reasons(X, top=TOP_REASONS)
    out: dict[str, Any] = {
        "propensity": guarded.proba,
        "bucket": guarded.buckets,
        "action": np.full(len(X), None, dtype=object),
        "segment": np.full(len(X), None, dtype=object),
        "uplift": [None] * len(X),
    }
    if models.uplift is not None:
        uplift = models.uplift.predict(X)
        best = best_action(uplift, models.uplift.min_uplift)
        out["action"] = best["action"].to_numpy(dtype=object)
        out["segment"] = models.uplift.classify(guarded.proba, uplift)
        values = uplift.to_numpy(dtype=float).round(5)
        names = list(uplift.columns)
        version = models.uplift_row.id
        out["uplift"] = [
            {"model_version": version, "by_action": dict(zip(names, row.tolist(), strict=True))}
            for row in values
        ]
        picked = best["uplift"].to_numpy(dtype=float)
        reasons = [
            [*r, *g, *_uplift_reason(a, v)]
            for r, g, a, v in zip(reasons, guarded.reasons, out["action"], picked, strict=True)
        ]
    else:
        reasons = [[*r, *g] for r, g in zip(reasons, guarded.reasons, strict=True)]
    out["reasons"] = [{"items": [x.as_dict() for x in r]} for r in reasons]
    return out


def _changed(previous: pd.DataFrame, ids: np.ndarray, scored: dict[str, Any], models: Models):
    before = previous.reindex(ids)
    old = before["propensity"].to_numpy(dtype=float)
    uplift_id = models.uplift_row.id if models.uplift_row is not None else None
    return (
        np.isnan(old)
        | (np.abs(np.nan_to_num(old) - scored["propensity"]) >= MIN_CHANGE)
        | (before["model_version_id"].to_numpy() != models.propensity_row.id)
        | (before["uplift_version"].to_numpy() != uplift_id)
        | _differ(before["bucket"], scored["bucket"])
        | _differ(before["action"], scored["action"])
        | _differ(before["segment"], scored["segment"])
    )


def _differ(old: pd.Series, new: np.ndarray) -> np.ndarray:
    """Element-wise inequality of labels where None and NaN (no label) are equal."""
    missing = "\0none"
    left = old.astype(object).where(old.notna(), missing).to_numpy()
    right = pd.Series(new, dtype=object)
    return left != right.where(right.notna(), missing).to_numpy()


def _counts(values: list[np.ndarray]) -> dict[str, int]:
    if not values:
        return {}
    series = pd.Series(np.concatenate(values)).fillna("none")
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def score_leads(
    store: Store,
    connection_id: int,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    lead_ids: list[str] | None = None,
) -> ScoreStats:
    """Score every open lead (or ``lead_ids``) with the active models, and the shadows;
    append the rows that changed."""
    now = now or utcnow()
    sets = model_sets(store, connection_id)
    frames = load_frames(store, connection_id)
    # Converted leads are closed (and read-only in Salesforce): the score is for prospects.
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), ["crm_id", "crm_object"]]
    if lead_ids is not None:
        leads = leads[leads["crm_id"].isin(lead_ids)]
    if leads.empty:
        raise ModelError("no open leads to score: run a sync first")
    previous = {m.shadow: _latest(store, connection_id, m.shadow) for m in sets}
    total, written, shadow_written = 0.0, 0, 0
    seen: dict[str, list[np.ndarray]] = {"bucket": [], "segment": [], "action": []}
    for start in range(0, len(leads), CHUNK):
        chunk = leads.iloc[start : start + CHUNK]
        ids = chunk["crm_id"].to_numpy()
        X = build_features(frames, pd.DataFrame({"lead_crm_id": ids, "cutoff": now}))
        context = _context(frames, ids)
        for models in sets:
            scored = score_chunk(models, X, context)
            keep = np.flatnonzero(_changed(previous[models.shadow], ids, scored, models))
            rows = [
                {
                    "connection_id": connection_id, "lead_crm_id": ids[i],
                    "crm_object": chunk["crm_object"].iat[i],
                    "model_version_id": models.propensity_row.id,
                    "propensity": float(scored["propensity"][i]), "bucket": scored["bucket"][i],
                    "action": scored["action"][i], "segment": scored["segment"][i],
                    "uplift": scored["uplift"][i] or {}, "reasons": scored["reasons"][i],
                    "scored_at": now, "shadow": models.shadow,
                }
                for i in keep
            ]  # fmt: skip
            if rows:
                with store.session() as session:
                    session.execute(insert(Score), rows)
            if models.shadow:
                shadow_written += len(rows)
                continue
            written += len(rows)
            total += float(np.sum(scored["propensity"]))
            for key in seen:
                seen[key].append(np.asarray(scored[key], dtype=object))
        if progress:
            progress(len(chunk))
    main = sets[0]
    return ScoreStats(
        scored=len(leads), written=written, model_version=main.propensity_row.version,
        mean_propensity=total / len(leads), scored_at=now,
        uplift_version=main.uplift_row.version if main.uplift_row else None,
        mode=(main.propensity_row.params or {}).get("mode", "ml"),
        buckets=_counts(seen["bucket"]), segments=_counts(seen["segment"]),
        actions=_counts(seen["action"]), shadow_written=shadow_written,
    )  # fmt: skip
