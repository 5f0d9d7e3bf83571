"""A scoring pass spread over workers: plan chunks, stage each chunk, finish the pass.

`integration.scoring.score_leads` does a pass in one process. Here the same pass
is cut into chunks of whole people and whole accounts
(`integration.score_partition`), so any number of workers on any number of
machines can each load, featurise and score a chunk against the shared store
(`stage_chunk`: the heavy part, model reasons included). What needs every lead
at once, the percentile buckets and the queue capacities, runs last
(`finish_pass`): it reads the staged rows, routes them, appends the rows that
changed to the score history exactly as a single-process pass would, and clears
the stage. Re-running a chunk replaces its staged rows; re-running the finish
writes nothing new, so a task that dies mid-way is simply retried.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select

from integration.errors import ModelError
from integration.experiment_cycle import arms_frame
from integration.features import FeatureBuilder, among, load_frames, read_frame
from integration.routing import RoutingPolicy, load_policy
from integration.score_partition import plan_chunks
from integration.scoring import (
    CHUNK,
    WORKERS,
    Models,
    ScoreStats,
    finish_reasons,
    guarded,
    items_text,
    latest,
    lead_context,
    lead_statuses,
    model_sets,
    route_and_write,
    score_chunk,
    uplift_json,
)
from integration.store import Store
from integration.store.bulk import copy_rows
from integration.store.models import ScoreStage, Writeback, utcnow

log = logging.getLogger(__name__)

STAGE_COLUMNS = (
    "lead_crm_id", "crm_object", "propensity", "probability_bucket", "floor", "cap",
    "best_action", "uplift_best", "segment", "uplift", "reasons", "guarded",
)  # fmt: skip


@dataclass(frozen=True)
class PassPlan:
    pass_id: str
    chunks: list[list[str]]

    @property
    def leads(self) -> int:
        return sum(len(c) for c in self.chunks)


# A pass whose finish never ran (a chunk failed for good) leaves its stage rows; they
# are cleared once this old. Pass ids start with their start time, so age is a prefix.
STALE_AFTER = timedelta(days=1)
PASS_TIME = "%Y%m%dT%H%M%S"


def plan_pass(
    store: Store, connection_id: int, chunk_leads: int, now: datetime | None = None
) -> PassPlan:
    """A new pass id and its chunks (lead crm ids, merged duplicates included); stage
    rows of this connection's passes that never finished are cleared."""
    started = now or utcnow()
    stale = (started - STALE_AFTER).strftime(PASS_TIME)
    with store.engine.begin() as connection:
        connection.execute(
            delete(ScoreStage).where(
                ScoreStage.connection_id == connection_id, ScoreStage.pass_id < stale
            )
        )
    pass_id = f"{started.strftime(PASS_TIME)}-{uuid.uuid4().hex[:16]}"
    return PassPlan(pass_id, plan_chunks(store, connection_id, chunk_leads))


def _stage_rows(
    models: Models, X: pd.DataFrame, ids: np.ndarray, objects: np.ndarray, scored: dict
) -> list[tuple[Any, ...]]:
    rows = np.arange(len(ids))
    texts = items_text(models, X, scored, rows)
    flags = guarded(scored, rows).tolist()
    uplift = uplift_json(models, scored, rows)
    best = scored["uplift_best"]
    columns = (
        ids.tolist(), objects.tolist(), scored["propensity"].tolist(),
        list(scored["probability_bucket"]), scored["floor"].tolist(), scored["cap"].tolist(),
        list(scored["best_action"]), [None if np.isnan(b) else float(b) for b in best],
        list(scored["segment"]), uplift, texts, flags,
    )  # fmt: skip
    return list(zip(*columns, strict=True))


def stage_chunk(
    store: Store, connection_id: int, pass_id: str, chunk: int, lead_ids: list[str], now: datetime
) -> int:
    """Score one chunk's open leads with the active models (and the shadows) and stage
    them; returns the leads staged. Replaces whatever an earlier try staged."""
    clock = [time.perf_counter()]
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        now_ = time.perf_counter()
        laps[name] = laps.get(name, 0.0) + now_ - clock[0]
        clock[0] = now_

    sets = model_sets(store, connection_id)
    frames = load_frames(store, connection_id, lead_ids=lead_ids)
    lap("load")
    # Converted leads are closed (and read-only in Salesforce): the score is for prospects.
    leads = frames.leads.loc[frames.leads["converted_at"].isna(), ["crm_id", "crm_object"]]
    ids = leads["crm_id"].to_numpy()
    objects = leads["crm_object"].to_numpy()
    builder = FeatureBuilder(frames, pd.Series([now]))
    statuses = lead_statuses(frames)
    del frames, leads
    lap("prepare")
    table = ScoreStage.__table__
    staged: list[tuple[Any, ...]] = []
    with ThreadPoolExecutor(WORKERS) as pool:
        for start in range(0, len(ids), CHUNK):
            part_ids, part_objects = ids[start : start + CHUNK], objects[start : start + CHUNK]
            X = builder.build(pd.DataFrame({"lead_crm_id": part_ids, "cutoff": now}))
            context = lead_context(statuses, part_ids)
            lap("features")
            for models in sets:
                scored = score_chunk(models, X, context, pool)
                lap("models")
                fixed = (pass_id, connection_id, chunk, models.shadow)
                staged.extend(
                    fixed + row for row in _stage_rows(models, X, part_ids, part_objects, scored)
                )
                lap("reasons")
    names = ("pass_id", "connection_id", "chunk", "shadow", *STAGE_COLUMNS)
    with store.engine.begin() as connection:
        connection.execute(delete(table).where(table.c.pass_id == pass_id, table.c.chunk == chunk))
        if staged and store.dialect != "postgresql":
            connection.execute(insert(table), [dict(zip(names, r, strict=True)) for r in staged])
    if staged and store.dialect == "postgresql":
        copy_rows(store, table, names, staged)
    lap("stage write")
    log.info(
        "pass %s chunk %d: %d leads staged; %s", pass_id, chunk, len(ids),
        ", ".join(f"{k} {v:.1f} s" for k, v in laps.items()),
    )  # fmt: skip
    return len(ids)


def pushed_arms(
    store: Store, connection_id: int, arm_field: str, lead_ids: list[str] | None = None
) -> pd.DataFrame | None:
    """Arm and experiment per lead (of ``lead_ids``, or every lead) as leadlift last
    wrote them to the CRM: a pass on its own routes with the arms the experiment step
    assigned and wrote."""
    only = () if lead_ids is None else (among(store, Writeback.crm_id, lead_ids),)
    with store.session() as session:
        rows = session.execute(
            select(Writeback.crm_id, Writeback.field_values).where(
                Writeback.connection_id == connection_id, Writeback.status == "ok", *only
            )
        ).all()
    return arms_frame(
        {
            crm_id: str(values[arm_field])
            for crm_id, values in rows
            if values and values.get(arm_field) and "/" in str(values[arm_field])
        }
    )


def _staged(store: Store, pass_id: str, shadow: bool) -> pd.DataFrame:
    table = ScoreStage.__table__
    columns = [table.c[name] for name in STAGE_COLUMNS]
    statement = (
        select(*columns)
        .where(table.c.pass_id == pass_id, table.c.shadow.is_(shadow))
        .order_by(table.c.chunk, table.c.id)
    )
    return read_frame(store, statement)


def finish_pass(
    store: Store,
    connection_id: int,
    pass_id: str,
    now: datetime,
    policy: RoutingPolicy | None = None,
    arms: pd.DataFrame | None = None,
) -> ScoreStats:
    """Route the staged pass as a whole, append the changed rows, clear the stage."""
    started = time.perf_counter()
    policy = policy or load_policy()
    sets = model_sets(store, connection_id)
    previous = {m.shadow: latest(store, connection_id, m.shadow) for m in sets}
    passes = []
    for models in sets:
        stage = _staged(store, pass_id, models.shadow)
        if stage.empty:
            if models.shadow:
                continue
            raise ModelError(f"scoring pass {pass_id}: nothing staged (no open leads?)")
        ids = stage["lead_crm_id"].to_numpy(dtype=object)
        scored: dict[str, Any] = {
            "propensity": stage["propensity"].to_numpy(dtype=float),
            "probability_bucket": stage["probability_bucket"].to_numpy(dtype=object),
            "floor": stage["floor"].to_numpy(dtype=np.int64),
            "cap": stage["cap"].to_numpy(dtype=np.int64),
            "best_action": stage["best_action"].to_numpy(dtype=object),
            "uplift_best": stage["uplift_best"].to_numpy(dtype=float),
            "segment": stage["segment"].to_numpy(dtype=object),
            # Routing reads the uplift columns only when an uplift model scored.
            "uplift": None if models.uplift is None else "staged",
        }
        uplift_texts = stage["uplift"].to_numpy(dtype=object)
        item_texts = stage["reasons"].to_numpy(dtype=object)
        flags = stage["guarded"].to_numpy(dtype=bool)

        def texts(rows, scored=scored, uplift_texts=uplift_texts, item_texts=item_texts,
                  flags=flags):  # fmt: skip
            return (
                uplift_texts[rows].tolist(),
                finish_reasons(item_texts[rows].tolist(), flags[rows], scored, rows),
            )

        passes.append((models, scored, ids, stage["crm_object"].to_numpy(dtype=object), texts))
    read = time.perf_counter()
    stats = route_and_write(
        store, connection_id, passes, previous, policy, arms, None, now, full_pass=True
    )
    written = time.perf_counter()
    with store.engine.begin() as connection:
        connection.execute(delete(ScoreStage).where(ScoreStage.pass_id == pass_id))
    log.info(
        "pass %s finished: %d leads routed, %d rows appended in %.1f s (read %.1f s, route and "
        "append %.1f s, clear %.1f s)", pass_id, stats.scored, stats.written,
        time.perf_counter() - started, read - started, written - read,
        time.perf_counter() - written,
    )  # fmt: skip
    return stats
