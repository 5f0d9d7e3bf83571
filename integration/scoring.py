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

import json
import os
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from threadpoolctl import threadpool_limits

from integration.errors import ModelError
from integration.features import (
    FeatureBuilder,
    Frames,
    among,
    connection_hygiene,
    load_frames,
    read_frame,
)
from integration.modeling import DEFAULT_BUCKETS, Reason, apply_guardrails, best_action
from integration.modeling.reasons import DEFAULT_EXCLUDED, group_features, reasons_parts
from integration.modeling.rules import guard_items
from integration.registry import active, load, newest_shadow
from integration.routing import RoutingPolicy, bucket_drift, load_policy, route
from integration.score_partition import neighbourhood
from integration.store import Store
from integration.store.bulk import appending
from integration.store.models import ModelVersion, Score, utcnow

CHUNK = 50_000
# Threads that predict a chunk's uplift side by side, and the fewest rows worth a thread.
WORKERS = min(2, os.cpu_count() or 1)
WORKER_MIN_ROWS = 5_000
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


def newest_score_ids(connection_id: int, shadow: bool = False, *where: Any):
    """Subquery of each lead's latest score id: the current score is the newest row."""
    return (
        select(func.max(Score.id).label("id"))
        .where(Score.connection_id == connection_id, Score.shadow.is_(shadow), *where)
        .group_by(Score.lead_crm_id)
        .subquery()
    )


def latest_scores(
    store: Store, connection_id: int, lead_ids: Collection[str] | None = None
) -> list[Score]:
    """Each lead's current score (of ``lead_ids`` only, when given: a webhook's leads
    without reading every lead's)."""
    only = () if lead_ids is None else (among(store, Score.lead_crm_id, list(lead_ids)),)
    newest = newest_score_ids(connection_id, False, *only)
    with store.session() as session:
        return list(session.scalars(select(Score).join(newest, Score.id == newest.c.id)))


def latest(
    store: Store, connection_id: int, shadow: bool, lead_ids: Collection[str] | None = None
) -> pd.DataFrame:
    """Each lead's (or each of ``lead_ids``') current score, what a pass compares with."""
    only = () if lead_ids is None else (among(store, Score.lead_crm_id, list(lead_ids)),)
    newest = newest_score_ids(connection_id, shadow, *only)
    # The uplift model's version is read out of the JSON by the database, not per row here.
    version = Score.uplift["model_version"].as_integer().label("uplift_version")
    columns = [Score.lead_crm_id, Score.propensity, Score.model_version_id, Score.bucket,
               Score.action, Score.segment, Score.queue, version]  # fmt: skip
    frame = read_frame(store, select(*columns).join(newest, Score.id == newest.c.id))
    return frame.set_index("lead_crm_id")


def _current_propensities(store: Store, connection_id: int) -> np.ndarray:
    newest = newest_score_ids(connection_id)
    frame = read_frame(store, select(Score.propensity).join(newest, Score.id == newest.c.id))
    return frame["propensity"].to_numpy(float)


def _newer_shadow(store: Store, connection_id: int, kind: str, than: ModelVersion | None):
    """The newest shadow of ``kind`` trained after the active version (older ones lost
    to a champion that has since been replaced, and are not worth scoring)."""
    newest = newest_shadow(store, connection_id, kind)
    return (
        newest if newest is not None and (than is None or newest.version > than.version) else None
    )


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


def lead_statuses(frames: Frames) -> pd.Series:
    status = frames.leads.set_index("crm_id")["status"]
    return status[~status.index.duplicated()]


def lead_context(statuses: pd.Series, lead_ids: np.ndarray) -> pd.DataFrame:
    """Per-lead CRM columns guardrails may read beyond the features (the lead status,
    from `lead_statuses`)."""
    return pd.DataFrame({"status": statuses.reindex(lead_ids).fillna("").to_numpy(dtype=object)})


def _predict_uplift(model: Any, X: pd.DataFrame, pool: Executor | None) -> pd.DataFrame:
    """``model.predict(X)``, slices of the rows in parallel threads when a pool is given
    (each row is predicted on its own, so the values are the same; LightGBM and numpy
    release the GIL while they work)."""
    # UpliftModel predicts with BLAS held to its n_jobs (1) thread; held here around
    # both threads, their own holds cannot undo each other's.
    single = getattr(getattr(model, "model", None), "n_jobs", 1) == 1
    if pool is None or len(X) < 2 * WORKER_MIN_ROWS or not single:
        return model.predict(X)
    slices = np.array_split(np.arange(len(X)), WORKERS)
    with threadpool_limits(limits=1, user_api="blas"):
        return pd.concat(list(pool.map(lambda rows: model.predict(X.iloc[rows]), slices)))


def score_chunk(
    models: Models, X: pd.DataFrame, context: pd.DataFrame, pool: Executor | None = None
) -> dict[str, Any]:
    """Everything the models say about a chunk of leads (vectorised); routing comes after,
    over the whole pass, and the model's reasons only for the rows written (`_reasons`):
    per-lead attributions and their text are costly, and a pass writes only what changed."""
    raw, weights, groups = _explained(models.propensity, X)
    guarded = apply_guardrails(X, raw, context=context)
    low, high = guarded.limits
    n = len(X)
    out: dict[str, Any] = {
        "propensity": guarded.proba,
        "probability_bucket": guarded.buckets,
        "floor": low,
        "cap": high,
        "best_action": np.full(n, None, dtype=object),
        "uplift_best": np.full(n, np.nan),
        "segment": np.full(n, None, dtype=object),
        "uplift": None,
        # Which guardrail moved which row: (rows, rules), the rules alongside.
        "guard_moved": guarded.moved.T,
        "guard_rules": guarded.rules,
    }
    if weights is not None:
        # What the reasons of the rows written are ranked from (`items_text`).
        out["reason_weights"], out["reason_groups"] = weights, groups
    if models.uplift is not None:
        uplift = _predict_uplift(models.uplift, X, pool)
        best = best_action(uplift, models.uplift.min_uplift)
        out["best_action"] = best["action"].to_numpy(dtype=object)
        out["uplift_best"] = best["uplift"].to_numpy(dtype=float)
        out["segment"] = models.uplift.classify(guarded.proba, uplift)
        # Rounded here, stored as {"model_version", "by_action"} for the rows written.
        out["uplift"] = uplift.to_numpy(dtype=float).round(5)
        out["uplift_actions"] = list(uplift.columns)
    return out


def _explained(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, Any, Any]:
    """P(meeting) per row and, when the model gives them in the same pass over its trees,
    the contributions per reason group (the lead's age left out, as in its `reasons`)
    and those groups; else None, None and the reasons come from the model later."""
    fused = getattr(model, "proba_and_group_contributions", None)
    if fused is None:
        return model.predict_proba(X)[:, 1], None, None
    features = [f for f in getattr(model, "feature_names_in_", X.columns) if f in X.columns]
    groups = {
        name: group for name, group in group_features(features).items()
        if name not in DEFAULT_EXCLUDED
    }  # fmt: skip
    proba, weights = fused(X, groups)
    return proba, weights, [group for group, _ in groups.values()]


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in parts[0]:
        if parts[0][key] is None or key in ("uplift_actions", "guard_rules", "reason_groups"):
            out[key] = parts[0][key]
        elif isinstance(parts[0][key], np.ndarray):
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
    if scored["uplift"] is None:
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
    return {
        "bucket": bucket,
        "action": result["action"].to_numpy(dtype=object),
        "queue": result["queue"].to_numpy(dtype=object),
        "spilled": result["spilled"].to_numpy(dtype=bool),
        "held": held != level,
        "route_reason": result["reason"].to_numpy(dtype=object),
    }


def item_parts(
    models: Models, X: pd.DataFrame, scored: dict[str, Any], rows: np.ndarray
) -> tuple[list[Sequence[str]], np.ndarray]:
    """Per row of ``X`` (``rows`` of the pass), the model's top reasons then the
    guardrails that moved the score, as columns of text whose join, row by row, is the
    inside of a JSON list (the route is appended once the pass is routed); and per row,
    whether that text is not empty."""
    if "reason_weights" in scored:  # a PropensityModel's, from its pass over the trees
        weights = scored["reason_weights"][rows]
        parts, found = reasons_parts(weights, scored["reason_groups"], X, TOP_REASONS)
    else:  # the rules fallback's
        text = np.asarray(models.propensity.reasons_json(X, top=TOP_REASONS), dtype=object)
        parts, found = [text], text != ""
    guards = guard_items(scored["guard_rules"], scored["guard_moved"][rows].T)
    moved = guards != ""
    return [*parts, np.where(found & moved, ", ", ""), guards], found | moved


def items_text(
    models: Models, X: pd.DataFrame, scored: dict[str, Any], rows: np.ndarray
) -> list[str]:
    """`item_parts`' text per row."""
    return _joined(item_parts(models, X, scored, rows)[0])


def _joined(columns: Sequence[Any]) -> list[str]:
    """Per row, the join of ``columns`` (lists or arrays of text, or one text for every
    row): one new string per row, however many pieces it is made of."""
    n = next(len(c) for c in columns if not isinstance(c, str))
    lists = [
        repeat(c, n) if isinstance(c, str) else c if isinstance(c, list) else c.tolist()
        for c in columns
    ]
    return list(map("".join, zip(*lists, strict=True)))


def guarded(scored: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Whether a guardrail moved each of ``rows``."""
    return np.asarray(scored["guard_moved"][rows]).any(axis=1)


HELD = json.dumps(Reason("guard.bucket", "= bucket held by an ICP guardrail", 0.0).as_dict())


def finish_reasons(
    items: list[str], guarded: np.ndarray, scored: dict[str, Any], rows: np.ndarray
) -> list[str]:
    """The stored ``reasons`` JSON of ``rows``: their items, a guardrail holding the
    routed bucket (unless a guardrail reason already says so: ``guarded``, aligned with
    ``items``), the route."""
    text = np.asarray(items, dtype=object)
    return _stored_reasons([text], text != "", guarded, scored, rows)


def _stored_reasons(
    parts: Sequence[Any],
    nonempty: np.ndarray,
    guarded: np.ndarray,
    scored: dict[str, Any],
    rows: np.ndarray,
) -> list[str]:
    """`finish_reasons` of items given as ``parts`` (see `item_parts`)."""
    if not len(rows):
        return []
    # A route reason is one of a few thousand texts: each is serialised once.
    route_codes, route_texts = pd.factorize(pd.Series(scored["route_reason"][rows], dtype=object))
    routes = np.array(
        [json.dumps(Reason("route", f"= {t}", 0.0).as_dict()) for t in route_texts], dtype=object
    )[route_codes]
    held = np.asarray(scored["held"][rows], dtype=bool) & ~np.asarray(guarded, dtype=bool)
    return _joined(
        [
            '{"items": [',
            *parts,
            np.where(nonempty, ", ", ""),
            np.where(held, HELD + ", ", ""),
            routes,
            "]}",
        ]
    )


def _reasons(
    models: Models, X: pd.DataFrame, scored: dict[str, Any], rows: np.ndarray
) -> list[str]:
    """The stored ``reasons`` JSON of ``rows`` (a chunk at a time: attributions and text
    are made only for the rows written)."""
    out: list[str] = []
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        parts, nonempty = item_parts(models, X.iloc[part], scored, part)
        out.extend(_stored_reasons(parts, nonempty, guarded(scored, part), scored, part))
    return out


def uplift_json(models: Models, scored: dict[str, Any], rows: np.ndarray) -> list[str]:
    """``json.dumps({"model_version": …, "by_action": {action: uplift}})`` per row, the
    same text, each distinct number formatted once."""
    if scored["uplift"] is None:
        return ["{}"] * len(rows)
    values = np.ascontiguousarray(scored["uplift"][rows], dtype=np.float64)
    # Distinct by bit pattern, so -0.0 keeps its sign as json.dumps writes it.
    distinct, inverse = np.unique(values.view(np.int64).ravel(), return_inverse=True)
    numbers = [json.dumps(v) for v in distinct.view(np.float64).tolist()]
    texts = np.asarray(numbers, dtype=object)[inverse.ravel()].reshape(values.shape)
    columns: list[Any] = [f'{{"model_version": {json.dumps(models.uplift_row.id)}, "by_action": {{']
    for j, name in enumerate(scored["uplift_actions"]):
        columns += [f"{', ' if j else ''}{json.dumps(name)}: ", texts[:, j]]
    return _joined([*columns, "}}"])


def _changed(previous: pd.DataFrame, ids: np.ndarray, scored: dict[str, Any], models: Models):
    if previous.empty:  # a first pass: every row is new
        return np.ones(len(ids), dtype=bool)
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
    frames: Frames | None = None,
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
    if frames is None:
        # A few leads (a webhook's) read only what their scores depend on.
        hygiene = connection_hygiene(store, connection_id)
        around = (
            None if lead_ids is None else neighbourhood(store, connection_id, lead_ids, hygiene)
        )
        frames = load_frames(store, connection_id, hygiene, lead_ids=around)
    # Converted leads are closed (and read-only in Salesforce): the score is for prospects.
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), ["crm_id", "crm_object"]]
    if lead_ids is not None:
        leads = leads[leads["crm_id"].isin(lead_ids)]
    if leads.empty:
        raise ModelError("no open leads to score: run a sync first")
    previous = {m.shadow: latest(store, connection_id, m.shadow, lead_ids) for m in sets}
    # A few leads take their percentile among every lead's current score.
    reference = None if lead_ids is None else _current_propensities(store, connection_id)
    ids = leads["crm_id"].to_numpy()
    objects = leads["crm_object"].to_numpy()
    builder = FeatureBuilder(frames, pd.Series([now]))
    context = lead_context(lead_statuses(frames), ids)
    # The builder holds what the features need: the frames can go before they are built.
    del frames, leads
    # Every open lead's features in one build (one pass over the events per question),
    # kept for the reasons of the rows written.
    X = builder.build(pd.DataFrame({"lead_crm_id": ids, "cutoff": now}))
    del builder
    chunks = [np.arange(start, min(start + CHUNK, len(ids))) for start in range(0, len(ids), CHUNK)]
    passes = []
    # BLAS held to one thread around both threads (the models' own holds, entered and
    # left by two threads at once, could otherwise leave the wrong count behind).
    with ThreadPoolExecutor(WORKERS) as pool, threadpool_limits(limits=1, user_api="blas"):
        for models in sets:
            parts = []
            # Chunks side by side: the models' heavy loops release the GIL.
            for done in pool.map(
                lambda rows, models=models: score_chunk(models, X.iloc[rows], context.iloc[rows]),
                chunks,
            ):
                parts.append(done)
                if progress and not models.shadow:
                    progress(len(done["propensity"]))
            scored = _concat(parts)

            def texts(rows: np.ndarray, models=models, scored=scored) -> tuple[Any, Any]:
                return uplift_json(models, scored, rows), _reasons(models, X, scored, rows)

            passes.append((models, scored, ids, objects, texts))
    return route_and_write(
        store, connection_id, passes, previous, policy, arms, reference, now, lead_ids is None
    )


Texts = Callable[[np.ndarray], tuple[list[str], list[str]]]


def route_and_write(
    store: Store,
    connection_id: int,
    passes: list[tuple[Models, dict[str, Any], np.ndarray, np.ndarray, Texts]],
    previous: dict[bool, pd.DataFrame],
    policy: RoutingPolicy,
    arms: pd.DataFrame | None,
    reference: np.ndarray | None,
    now: datetime,
    full_pass: bool,
) -> ScoreStats:
    """Route each model set's pass as a whole, append the rows that changed (their
    texts from ``texts``), and report; the drift baseline is the first full pass."""
    written = shadow_written = 0
    main: dict[str, Any] = {}
    for models, scored, ids, objects, texts in passes:
        scored |= routed(scored, ids, policy, arms, reference)
        keep = np.flatnonzero(_changed(previous[models.shadow], ids, scored, models))
        # Appended in lead-id order: the history's (connection, lead, id) index then takes
        # its new entries page after page instead of all over (a third of the append).
        keep = keep[pc.sort_indices(pa.array(ids[keep], type=pa.string())).to_numpy()]
        _insert(store, connection_id, models, ids, objects, scored, keep, now, texts)
        if models.shadow:
            shadow_written = len(keep)
        else:
            written, main, main_ids = len(keep), scored, ids
    first = passes[0][0]
    # The routed mix is fixed by percentiles; the model's own mix is what drifts, measured
    # against the mix of the first full pass the model made.
    baseline = (first.propensity_row.metrics or {}).get("scoring_baseline")
    drift = bucket_drift(main["probability_bucket"], policy, baseline) if baseline else None
    if baseline is None and full_pass:
        _save_baseline(store, first.propensity_row, main["probability_bucket"], now)
    return ScoreStats(
        scored=len(main_ids), written=written, model_version=first.propensity_row.version,
        mean_propensity=float(np.mean(main["propensity"])), scored_at=now,
        uplift_version=first.uplift_row.version if first.uplift_row else None,
        mode=(first.propensity_row.params or {}).get("mode", "ml"),
        buckets=_counts(main["bucket"]), segments=_counts(main["segment"]),
        actions=_counts(main["action"]), queues=_counts(main["queue"]),
        spilled=int(main["spilled"].sum()), drift_alerts=list(drift.alerts) if drift else [],
        shadow_written=shadow_written,
    )  # fmt: skip


def _save_baseline(store: Store, row: ModelVersion, buckets: np.ndarray, now: datetime) -> None:
    shares = pd.Series(buckets, dtype=object).value_counts(normalize=True)
    baseline = {label: float(shares.get(label, 0.0)) for label in DEFAULT_BUCKETS.labels}
    with store.session() as session:
        stored = session.get(ModelVersion, row.id)
        stored.metrics = {**(stored.metrics or {}), "scoring_baseline": baseline,
                          "scoring_baseline_at": now.isoformat()}  # fmt: skip


def _insert(store, connection_id, models, ids, objects, scored, keep, now, texts: Texts) -> None:
    """Append the ``keep`` rows a chunk at a time, in one transaction: the pass's
    constants bound once, JSON serialised once per row, no Python per value; the database
    takes a chunk while the next one's texts are made (`integration.store.bulk`)."""
    constants = {"connection_id": connection_id, "model_version_id": models.propensity_row.id,
                 "scored_at": now, "shadow": models.shadow}  # fmt: skip
    with appending(store, Score.__table__, constants, JSON_COLUMNS, rows=len(keep)) as write:
        for start in range(0, len(keep), CHUNK):
            part = keep[start : start + CHUNK]
            uplift, reasons = texts(part)
            write(
                {
                    "lead_crm_id": ids[part], "crm_object": objects[part],
                    "propensity": scored["propensity"][part], "bucket": scored["bucket"][part],
                    "action": scored["action"][part], "segment": scored["segment"][part],
                    "queue": scored["queue"][part], "uplift": np.asarray(uplift, dtype=object),
                    "reasons": np.asarray(reasons, dtype=object),
                }
            )  # fmt: skip


JSON_COLUMNS = ("uplift", "reasons")  # score columns handed over as serialised JSON
