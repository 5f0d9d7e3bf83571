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
from integration.modeling import DEFAULT_BUCKETS, Reason, apply_guardrails, best_action
from integration.modeling.rules import guardrail_limits
from integration.registry import SHADOW, active, load
from integration.routing import RoutingPolicy, bucket_drift, load_policy, route
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
    queues: dict[str, int] | None = None
    spilled: int = 0
    drift_alerts: list[str] | None = None
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
               Score.action, Score.segment, Score.queue, Score.uplift]  # fmt: skip
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


def score_chunk(models: Models, X: pd.DataFrame, context: pd.DataFrame) -> dict[str, Any]:
    """Everything the models say about a chunk of leads (vectorised); routing comes after,
    over the whole pass."""
    raw = models.propensity.predict_proba(X)[:, 1]
    guarded = apply_guardrails(X, raw, context=context)
    low, high = guardrail_limits(X, context=context)
    reasons = models.propensity.reasons(X, top=TOP_REASONS)
    n = len(X)
    out: dict[str, Any] = {
        "propensity": guarded.proba,
        "probability_bucket": guarded.buckets,
        "floor": low,
        "cap": high,
        "best_action": np.full(n, None, dtype=object),
        "uplift_best": np.full(n, np.nan),
        "segment": np.full(n, None, dtype=object),
        "uplift": [None] * n,
    }
    if models.uplift is not None:
        uplift = models.uplift.predict(X)
        best = best_action(uplift, models.uplift.min_uplift)
        out["best_action"] = best["action"].to_numpy(dtype=object)
        out["uplift_best"] = best["uplift"].to_numpy(dtype=float)
        out["segment"] = models.uplift.classify(guarded.proba, uplift)
        values = uplift.to_numpy(dtype=float).round(5)
        names = list(uplift.columns)
        version = models.uplift_row.id
        out["uplift"] = [
            {"model_version": version, "by_action": dict(zip(names, row.tolist(), strict=True))}
            for row in values
        ]
    out["reasons"] = [[*r, *g] for r, g in zip(reasons, guarded.reasons, strict=True)]
    return out


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in parts[0]:
        if isinstance(parts[0][key], np.ndarray):
            out[key] = np.concatenate([p[key] for p in parts])
        else:
            out[key] = [x for p in parts for x in p[key]]
    return out


def routed(
    scored: dict[str, Any],
    ids: np.ndarray,
    policy: RoutingPolicy,
    arms: pd.DataFrame | None,
    reference: np.ndarray | None,
) -> dict[str, Any]:
    """Bucket, outreach action, queue and route reason for the pass, the ICP guardrails
    holding each bucket between their floor and cap."""
    frame = pd.DataFrame(
        {
            "lead_crm_id": ids,
            "propensity": scored["propensity"],
            "segment": scored["segment"],
            "action": scored["best_action"],
            "uplift_best": scored["uplift_best"],
        }
    )
    if scored["uplift"][0] is None:
        frame = frame[["lead_crm_id", "propensity"]]
    result = route(frame, policy, arms=arms, reference=reference).leads
    position = pd.Series(range(len(DEFAULT_BUCKETS.labels)), index=list(DEFAULT_BUCKETS.labels))
    level = position.reindex(result["bucket"].to_numpy()).to_numpy()
    held = np.clip(level, scored["floor"], scored["cap"])
    bucket = np.where(
        held == level,
        result["bucket"].to_numpy(dtype=object),
        np.asarray(DEFAULT_BUCKETS.labels, dtype=object)[held],
    )
    reasons = []
    for items, guarded, why in zip(scored["reasons"], held != level, result["reason"], strict=True):
        extra = list(items)
        if guarded and not any(r.code.startswith("guard.") for r in extra):
            extra.append(Reason("guard.bucket", "= bucket held by an ICP guardrail", 0.0))
        extra.append(Reason("route", f"= {why}", 0.0))
        reasons.append({"items": [r.as_dict() for r in extra]})
    return {
        "bucket": bucket,
        "action": result["action"].to_numpy(dtype=object),
        "queue": result["queue"].to_numpy(dtype=object),
        "spilled": result["spilled"].to_numpy(dtype=bool),
        "reasons": reasons,
    }


def _changed(previous: pd.DataFrame, ids: np.ndarray, scored: dict[str, Any], models: Models):
    before = previous.reindex(ids)
    old = before["propensity"].to_numpy(dtype=float)
    uplift_id = models.uplift_row.id if models.uplift_row is not None else None
    return (
        np.isnan(old)
        | (np.abs(np.nan_to_num(old) - scored["propensity"]) >= MIN_CHANGE)
        | (before["model_version_id"].to_numpy() != models.propensity_row.id)
        | _differ(before["uplift_version"], np.full(len(ids), uplift_id, dtype=object))
        | _differ(before["bucket"], scored["bucket"])
        | _differ(before["action"], scored["action"])
        | _differ(before["segment"], scored["segment"])
        | _differ(before["queue"], scored["queue"])
    )


def _differ(old: pd.Series, new: np.ndarray) -> np.ndarray:
    """Element-wise inequality of labels where None and NaN (no label) are equal."""
    missing = "\0none"
    left = old.astype(object).where(old.notna(), missing).to_numpy()
    right = pd.Series(new, dtype=object)
    return left != right.where(right.notna(), missing).to_numpy()


def _counts(values: np.ndarray) -> dict[str, int]:
    series = pd.Series(values, dtype=object).fillna("none")
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def score_leads(
    store: Store,
    connection_id: int,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    lead_ids: list[str] | None = None,
    policy: RoutingPolicy | None = None,
    arms: pd.DataFrame | None = None,
) -> ScoreStats:
    """Score every open lead (or ``lead_ids``) with the active models, and the shadows;
    route them with ``policy`` (the packaged default when None); append the rows that
    changed.

    ``arms``: experiment arm per lead (index lead_crm_id, columns ``arm`` and
    ``experiment``). When only some leads are scored, their percentile is taken among
    every lead's current score.
    """
    now = now or utcnow()
    policy = policy or load_policy()
    sets = model_sets(store, connection_id)
    frames = load_frames(store, connection_id)
    # Converted leads are closed (and read-only in Salesforce): the score is for prospects.
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), ["crm_id", "crm_object"]]
    if lead_ids is not None:
        leads = leads[leads["crm_id"].isin(lead_ids)]
    if leads.empty:
        raise ModelError("no open leads to score: run a sync first")
    previous = {m.shadow: _latest(store, connection_id, m.shadow) for m in sets}
    reference = previous[False]["propensity"].to_numpy(float) if lead_ids is not None else None
    ids = leads["crm_id"].to_numpy()
    objects = leads["crm_object"].to_numpy()
    parts: dict[bool, list[dict[str, Any]]] = {m.shadow: [] for m in sets}
    for start in range(0, len(leads), CHUNK):
        chunk_ids = ids[start : start + CHUNK]
        X = build_features(frames, pd.DataFrame({"lead_crm_id": chunk_ids, "cutoff": now}))
        context = _context(frames, chunk_ids)
        for models in sets:
            parts[models.shadow].append(score_chunk(models, X, context))
        if progress:
            progress(len(chunk_ids))
    written = shadow_written = 0
    main: dict[str, Any] = {}
    for models in sets:
        scored = _concat(parts[models.shadow])
        scored |= routed(scored, ids, policy, arms, reference)
        keep = np.flatnonzero(_changed(previous[models.shadow], ids, scored, models))
        _insert(store, connection_id, models, ids, objects, scored, keep, now)
        if models.shadow:
            shadow_written = len(keep)
        else:
            written, main = len(keep), scored
    first = sets[0]
    baseline = _baseline(first.propensity_row)
    # The routed mix is fixed by percentiles; the model's own mix is what drifts.
    drift = bucket_drift(main["probability_bucket"], policy, baseline) if baseline else None
    return ScoreStats(
        scored=len(leads), written=written, model_version=first.propensity_row.version,
        mean_propensity=float(np.mean(main["propensity"])), scored_at=now,
        uplift_version=first.uplift_row.version if first.uplift_row else None,
        mode=(first.propensity_row.params or {}).get("mode", "ml"),
        buckets=_counts(main["bucket"]), segments=_counts(main["segment"]),
        actions=_counts(main["action"]), queues=_counts(main["queue"]),
        spilled=int(main["spilled"].sum()), drift_alerts=list(drift.alerts) if drift else [],
        shadow_written=shadow_written,
    )  # fmt: skip


def _baseline(row: ModelVersion) -> dict[str, float] | None:
    """The probability-bucket mix the model produced on its test period."""
    buckets = (row.metrics or {}).get("probability_buckets") or []
    total = sum(b["rows"] for b in buckets)
    return {b["bucket"]: b["rows"] / total for b in buckets} if total else None


def _insert(store, connection_id, models, ids, objects, scored, keep, now) -> None:
    rows = [
        {
            "connection_id": connection_id, "lead_crm_id": ids[i], "crm_object": objects[i],
            "model_version_id": models.propensity_row.id,
            "propensity": float(scored["propensity"][i]), "bucket": scored["bucket"][i],
            "action": scored["action"][i], "segment": scored["segment"][i],
            "queue": scored["queue"][i], "uplift": scored["uplift"][i] or {},
            "reasons": scored["reasons"][i], "scored_at": now, "shadow": models.shadow,
        }
        for i in keep
    ]  # fmt: skip
    for start in range(0, len(rows), CHUNK):
        with store.session() as session:
            session.execute(insert(Score), rows[start : start + CHUNK])
