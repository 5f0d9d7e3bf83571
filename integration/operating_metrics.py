"""Operating metrics: the funnel numbers the score exists to move, read from the store.

A lead score is only worth its keep if reps act on it: high buckets should
convert more *and* be touched sooner, and touches should stop going to leads
who convert anyway (sure things) or never will (lost causes). These numbers
are observational: they show whether behaviour follows the score, not what
the score caused (that is what the experiment readouts are for).

Definitions:

- bucket: the lead's latest non-shadow ``Score.bucket`` (shadow scores were
  never shown to reps); ``unscored`` without one.
- opportunity: an ``opportunity``, ``closed_won`` or ``closed_lost`` outcome,
  or a lead conversion (`integration.experiments.readout.outcome_events`).
- speed to first touch: hours from lead creation to its first sales touch
  (email, call, LinkedIn, offer) at or after creation.
- wasted touches: touches on leads whose latest non-shadow score *at or before
  the touch* put them in ``sure_thing`` or ``lost_cause``; a touch before any
  score is ``unscored``, one after a score without a segment ``unsegmented``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from integration.experiments.readout import json_float, outcome_events
from integration.features import TOUCH_TYPES, Frames, load_frames, naive_times
from integration.fields import BUCKETS
from integration.modeling.segments import SEGMENT_LABELS
from integration.store import Store
from integration.store.models import Score

UNSCORED = "unscored"
UNSEGMENTED = "unsegmented"
UNKNOWN_SOURCE = "unknown"
WASTED = ("sure_thing", "lost_cause")
TOUCH_SEGMENTS = (*SEGMENT_LABELS, UNSEGMENTED, UNSCORED)


def _scores(store: Store, connection_id: int, aliases: pd.Series | None, now: datetime):
    """Non-shadow score history up to ``now``: lead_crm_id, id, bucket, segment, scored_at."""
    statement = select(
        Score.lead_crm_id, Score.id, Score.bucket, Score.segment, Score.scored_at
    ).where(
        Score.connection_id == connection_id,
        Score.shadow.is_(False),
        Score.scored_at <= now,
    )
    with store.engine.connect() as connection:
        result = connection.execute(statement)
        scores = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    scores["scored_at"] = pd.to_datetime(scores["scored_at"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    if aliases is not None and len(aliases) and len(scores):
        # A merged duplicate's scores follow the lead it was merged into.
        target = aliases.reindex(scores["lead_crm_id"].to_numpy()).to_numpy()
        scores["lead_crm_id"] = np.where(pd.notna(target), target, scores["lead_crm_id"])
    scores["lead_crm_id"] = scores["lead_crm_id"].astype(object)
    return scores.sort_values(["scored_at", "id"], ignore_index=True)


def _ordered(labels: pd.Index, known: tuple[str, ...], last: str) -> list[str]:
    """Known vocabulary first (in its order), then the rest alphabetically, ``last`` last."""
    present = [str(x) for x in labels]
    rest = sorted(x for x in present if x not in known and x != last)
    return [x for x in known if x in present] + rest + ([last] if last in present else [])


def _conversion(leads: pd.DataFrame, by: str, order: list[str]) -> list[dict[str, Any]]:
    g = leads.groupby(by)["opportunity"].agg(["size", "sum"]).reindex(order)
    return [
        {
            by: str(key),
            "leads": int(row["size"]),
            "opportunities": int(row["sum"]),
            "rate": json_float(row["sum"] / row["size"], 4),
        }
        for key, row in g.iterrows()
    ]


def _speed(leads: pd.DataFrame, order: list[str]) -> list[dict[str, Any]]:
    if leads.empty:
        return []
    everyone = leads.assign(bucket="all")
    both = pd.concat([leads, everyone], ignore_index=True)
    g = both.groupby("bucket")["hours"]
    table = pd.DataFrame(
        {
            "leads": g.size(),
            "touched": g.count(),
            "median": g.median(),
            "p90": g.quantile(0.9),
        }
    ).reindex([*order, "all"])
    return [
        {
            "bucket": str(key),
            "leads": int(row["leads"]),
            "touched": int(row["touched"]),
            "never_touched_share": json_float(1 - row["touched"] / row["leads"], 4),
            "median_hours": json_float(row["median"], 2),
            "p90_hours": json_float(row["p90"], 2),
        }
        for key, row in table.iterrows()
    ]


def _wasted_row(counts: pd.Series) -> dict[str, Any]:
    touches = int(counts.sum())
    wasted = int(counts[list(WASTED)].sum())
    scored = touches - int(counts[[UNSEGMENTED, UNSCORED]].sum())
    return {
        "touches": touches,
        **{segment: int(counts[segment]) for segment in TOUCH_SEGMENTS},
        "wasted": wasted,
        "wasted_share": json_float(wasted / touches, 4) if touches else None,
        "wasted_share_of_segmented": json_float(wasted / scored, 4) if scored else None,
    }


def _wasted(touches: pd.DataFrame, scores: pd.DataFrame) -> dict[str, Any]:
    touches = touches.sort_values("occurred_at", ignore_index=True)
    touches["occurred_at"] = touches["occurred_at"].astype("datetime64[ns, UTC]")
    touches["lead_crm_id"] = touches["lead_crm_id"].astype(object)
    asof = pd.merge_asof(
        touches,
        scores[["lead_crm_id", "scored_at", "segment"]].assign(scored=True),
        left_on="occurred_at",
        right_on="scored_at",
        by="lead_crm_id",
        direction="backward",
    )
    segment = asof["segment"].astype(object).where(asof["segment"].notna(), UNSEGMENTED)
    segment = segment.where(asof["scored"].notna().to_numpy(), UNSCORED)
    month = asof["occurred_at"].dt.strftime("%Y-%m")
    counts = pd.crosstab(month, segment).reindex(columns=list(TOUCH_SEGMENTS), fill_value=0)
    return {
        "total": _wasted_row(counts.sum(axis=0)),
        "by_month": [{"month": str(m)} | _wasted_row(row) for m, row in counts.iterrows()],
    }


def operating_metrics(
    store: Store, connection_id: int, now: datetime | None = None, frames: Frames | None = None
) -> dict[str, Any]:
    """Conversion, speed to first touch and wasted touches, as of ``now`` (JSON-safe).

    Only leads created, touches made, outcomes reached and scores written at
    or before ``now`` count, so a past ``now`` replays what the numbers were.
    """
    now = now or datetime.now(UTC)
    stamp = pd.Timestamp(now)
    frames = frames if frames is not None else load_frames(store, connection_id)
    leads = frames.leads[~(frames.leads["created_at"] > stamp)]
    leads = leads[["crm_id", "source", "created_at"]].reset_index(drop=True)
    scores = _scores(store, connection_id, frames.aliases, now)

    latest = scores.drop_duplicates("lead_crm_id", keep="last").set_index("lead_crm_id")
    bucket = latest["bucket"].reindex(leads["crm_id"]).to_numpy()
    leads["bucket"] = pd.Series(bucket, dtype=object).fillna(UNSCORED).to_numpy()
    leads["source"] = leads["source"].fillna(UNKNOWN_SOURCE).astype(str)
    events = outcome_events(frames, "opportunity")
    reached = events.loc[events["occurred_at"] <= stamp, "lead_crm_id"]
    leads["opportunity"] = leads["crm_id"].isin(reached)

    touches = frames.touches
    touches = touches[touches["type"].isin(TOUCH_TYPES) & (touches["occurred_at"] <= stamp)]
    starts = leads.set_index("crm_id")["created_at"]
    after = touches["occurred_at"] >= starts.reindex(touches["lead_crm_id"]).to_numpy()
    first = touches[after.to_numpy()].groupby("lead_crm_id")["occurred_at"].min()
    delay = naive_times(first.reindex(leads["crm_id"])) - naive_times(leads["created_at"])
    leads["hours"] = delay / np.timedelta64(1, "h")

    buckets = _ordered(pd.Index(leads["bucket"].unique()), BUCKETS, UNSCORED)
    sources = _ordered(pd.Index(leads["source"].unique()), (), UNKNOWN_SOURCE)
    return {
        "as_of": stamp.isoformat(),
        "leads": len(leads),
        "conversion_by_bucket": _conversion(leads, "bucket", buckets),
        "conversion_by_source": _conversion(leads, "source", sources),
        "speed_to_first_touch": _speed(leads, buckets),
        "wasted_touches": _wasted(touches[["lead_crm_id", "occurred_at"]].copy(), scores),
    }
