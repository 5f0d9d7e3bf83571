"""Who gets which arm: deterministic, stratified, sticky, account-level assignment.

Every eligible, open, unassigned unit of a running experiment gets an arm:

* **Deterministic.** A unit's draw is sha256 of ``"<key>:<unit id>"`` read as a
  number in [0, 1), never a stateful RNG, so the same store and the same runs
  give the same arms on any machine, and another experiment key gives an
  independent draw.
* **Stratified quota.** Within each stratum the holdout is brought to
  ``round(holdout_share × randomized units in the stratum so far)`` by giving
  control to the new units with the lowest draw; the rest are treated. Each
  stratum's share is therefore within half a unit of the target, which a coin
  flip per unit cannot promise in small strata. One known limit: when units
  arrive one per run the quota decides by arrival order (every fifth unit at
  20 %); arrival order is not something a rep controls, so this does not bias
  the comparison.
* **Multi-arm.** Treated units split among the actions by a second, independent
  draw (``"<key>:<unit id>:action"``); an action the auto-pause stopped gets no
  new units.
* **Sticky.** A unit with an assignment row never changes arm, whatever later
  happens to the spec's share or to the data; re-running assigns nothing new.
* **Account-level.** With ``unit: account`` every lead of an account carries the
  account's arm, including leads that arrive after the account was assigned.
* **Guardrails first** (`integration.experiments.guardrails`): a unit that may
  not be held out is forced to treatment, logged, and kept out of the quota.

The report carries the CRM label of each lead (``"<key>/<arm>"`` for the
Experiment_Arm field); leads keep being labelled once labelled, so a holdout
that a rep overrode (`detect_overrides`) is relabelled ``"<key>/override"``, an
arm of its own that is never merged into treatment.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from integration.errors import TransientError
from integration.experiments.guardrails import (
    GuardrailDecision,
    cap_decision,
    experiment_row,
    exposure,
    forced_unit_ids,
    held_out_today,
    holdout_blocks,
    load_assignments,
    paused_arms,
    scope_of,
)
from integration.experiments.spec import Condition, ExperimentSpec, unit_ids
from integration.features import TERMINAL_OUTCOMES, Frames, build_features, load_frames
from integration.store import Store
from integration.store.models import Assignment, utcnow
from integration.uplift_data import load_arms

CONTROL, OVERRIDE = "control", "override"
RUNNING = "running"
# Normalised lead statuses (integration.modeling.hygiene) of a lead no longer open.
CLOSED_STATUSES = ("meeting_booked", "converted", "customer", "disqualified")
# Engagement that signals buying intent: the pricing page or a form.
HIGH_INTENT = ("pricing_page_visit", "form_fill")
INTENT_RANK = {"low": 0, "medium": 1, "high": 2}


def unit_hash(key: str, unit_id: str, purpose: str = "") -> float:
    """A uniform number in [0, 1) fixed by the experiment key and the unit."""
    text = f"{key}:{unit_id}" + (f":{purpose}" if purpose else "")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


# -- leads and units -------------------------------------------------------------------


def _matches(column: pd.Series, condition: Condition) -> np.ndarray:
    op, value = condition.op, condition.value
    if op in ("in", "not_in"):
        hit = column.isin(list(value)).to_numpy()
        return hit if op == "in" else ~hit
    if op in ("==", "!="):
        hit = column.isna().to_numpy() if value is None else (column == value).to_numpy()
        return hit if op == "==" else ~hit
    number = pd.to_numeric(column, errors="coerce")
    compare = {">=": number >= value, "<=": number <= value, ">": number > value}
    return compare.get(op, number < value).fillna(False).to_numpy(bool)


def lead_table(frames: Frames, spec: ExperimentSpec, now: datetime) -> pd.DataFrame:
    """One row per lead created by ``now`` (index: crm_id) with what eligibility,
    strata and guardrails read: ``unit_id``, ``scope``, ``open``, ``converted``,
    ``intent``, ``employees``, ``eligible``, and for open leads every model feature
    as of ``now`` (`integration.features.build_features`)."""
    stamp = pd.Timestamp(now)
    leads = frames.leads.drop_duplicates("crm_id")
    created = pd.to_datetime(leads["created_at"], utc=True)
    arrived = (created.isna() | (created <= stamp)).to_numpy()
    leads, created = leads[arrived].reset_index(drop=True), created[arrived].reset_index(drop=True)
    ids = leads["crm_id"].astype(object)

    outcomes = frames.outcomes[pd.to_datetime(frames.outcomes["occurred_at"], utc=True) <= stamp]
    finished = set(outcomes.loc[outcomes["kind"].isin(TERMINAL_OUTCOMES), "lead_crm_id"])
    nothing = pd.Series(None, index=leads.index, dtype=object)
    status = leads.get("status", nothing).astype(object)
    converted = leads["converted_at"].notna() | (status == "converted")
    open_ = ~converted & ~status.isin(CLOSED_STATUSES) & ~ids.isin(finished)

    engaged = frames.engagements[
        pd.to_datetime(frames.engagements["occurred_at"], utc=True) <= stamp
    ]
    high = set(engaged.loc[engaged["kind"].isin(HIGH_INTENT), "lead_crm_id"])
    intent = np.where(
        ids.isin(high), "high", np.where(ids.isin(set(engaged["lead_crm_id"])), "medium", "low")
    )
    accounts = frames.accounts.drop_duplicates("crm_id").set_index("crm_id")
    table = pd.DataFrame(
        {
            "crm_id": ids.to_numpy(),
            "crm_object": leads["crm_object"].to_numpy(),
            "account_crm_id": leads["account_crm_id"].astype(object).to_numpy(),
            "status": status.to_numpy(),
            "lifecycle": leads.get("lifecycle", nothing).to_numpy(),
            "created_at": created,
            "open": open_.to_numpy(bool),
            "converted": converted.to_numpy(bool),
            "intent": intent,
            "employees": leads["account_crm_id"].map(accounts["employees"]).to_numpy(),
        }
    )
    table["unit_id"] = unit_ids(table, spec.unit).to_numpy()
    table["scope"] = table["crm_id"].map(scope_of(frames)).to_numpy()
    features = pd.DataFrame(index=table.index)
    if table["open"].any():
        rows = table.index[table["open"]]
        panel = pd.DataFrame({"lead_crm_id": table.loc[rows, "crm_id"].to_numpy(), "cutoff": stamp})
        features = build_features(frames, panel).set_index(rows)
    table = table.join(features.drop(columns=[c for c in features if c in table]))
    eligible = table["open"].to_numpy(bool).copy()
    for condition in spec.eligibility:
        eligible &= _matches(table[condition.field], condition)
    table["eligible"] = eligible
    return table.set_axis(pd.Index(table["crm_id"].to_numpy(), dtype=object), axis=0)


def new_units(table: pd.DataFrame, spec: ExperimentSpec, assigned: set[str]) -> pd.DataFrame:
    """Unassigned units with an eligible lead: ``unit_id``, ``lead_crm_id`` (the earliest
    eligible lead), ``scope``, ``tier``, ``stratum``, ``draw`` and ``action_draw``.

    An account unit's tier, size band and region are the account's; its source is
    its earliest eligible lead's, its intent the highest of its eligible leads'.
    """
    eligible = table[table["eligible"] & ~table["unit_id"].isin(assigned)]
    columns = ["unit_id", "lead_crm_id", "scope", "tier", "stratum", "draw", "action_draw"]
    if eligible.empty:
        return pd.DataFrame(columns=columns)
    eligible = eligible.sort_values(["created_at", "crm_id"], na_position="last")
    units = eligible.groupby("unit_id", sort=True).agg(
        lead_crm_id=("crm_id", "first"), scope=("scope", "first"), tier=("tier", "first"),
        size_band=("size_band", "first"), region=("region", "first"),
        source=("source", "first"),
        intent=("intent", lambda v: max(v, key=INTENT_RANK.__getitem__)),
    ).reset_index()  # fmt: skip
    units["stratum"] = [
        "|".join(f"{name}={row[name]}" for name in spec.strata) or "all"
        for _, row in units.iterrows()
    ]
    units["draw"] = [unit_hash(spec.key, u) for u in units["unit_id"]]
    units["action_draw"] = [unit_hash(spec.key, u, "action") for u in units["unit_id"]]
    return units[columns]


# -- allocation -------------------------------------------------------------------------


def _quota(share: float, units: int) -> int:
    """round(share × units), halves up (Python's round() would send 2.5 to 2)."""
    return int(np.floor(share * units + 0.5))


def allocate(
    units: pd.DataFrame,
    existing: pd.DataFrame,
    forced: set[str],
    blocked: dict[str, GuardrailDecision],
    spec: ExperimentSpec,
    actions: list[str],
    now: datetime,
) -> tuple[pd.DataFrame, list[GuardrailDecision]]:
    """Arms for new units (`new_units`), given the experiment's assignments so far.

    Per stratum: blocked units are forced to treatment; the free ones are
    randomized, control going to the lowest draws until the stratum's randomized
    units hold ``round(holdout_share × n)`` controls. When that would exceed the
    daily cap, only as many free units are randomized as the cap can balance
    (chosen by a third draw) and the rest are forced to treatment: the randomized
    units keep the designed share on busy days too, instead of being caught up
    later, which would tie a unit's chance of control to its arrival day.

    Returns the new units with an ``arm``, and the guardrail decisions taken.
    """
    share = spec.holdout_share
    randomized = existing[~existing["unit_id"].isin(forced)]
    so_far = randomized.groupby("stratum").size()
    held = randomized[randomized["arm"] == CONTROL].groupby("stratum").size()
    today = held_out_today(existing, now)
    cap = spec.guardrails.daily_holdout_cap_per_stratum
    control: set[str] = set()
    decisions: list[GuardrailDecision] = []
    for stratum, group in units.sort_values(["draw", "unit_id"]).groupby("stratum", sort=True):
        is_blocked = group["unit_id"].isin(blocked).to_numpy()
        decisions += [blocked[u] for u in group["unit_id"][is_blocked]]
        free = group[~is_blocked]
        n0, c0 = int(so_far.get(stratum, 0)), int(held.get(stratum, 0))
        admitted = len(free)
        if cap is not None:
            room = max(cap - int(today.get(stratum, 0)), 0)
            while admitted > 0 and _quota(share, n0 + admitted) - c0 > room:
                admitted -= 1
            if admitted < len(free):
                order = free["unit_id"].map(lambda u: unit_hash(spec.key, u, "admit"))
                keep = order.rank(method="first").to_numpy() <= admitted
                decisions += [
                    cap_decision(u, lead, str(stratum), cap)
                    for u, lead in zip(
                        free["unit_id"][~keep], free["lead_crm_id"][~keep], strict=True
                    )
                ]
                free = free[keep]
        needed = min(max(_quota(share, n0 + admitted) - c0, 0), len(free))
        control.update(free["unit_id"].iloc[:needed])
    out = units.copy()
    slot = (out["action_draw"].to_numpy(float) * len(actions)).astype(int)
    index = np.minimum(slot, len(actions) - 1)
    out["arm"] = np.where(out["unit_id"].isin(control), CONTROL, np.asarray(actions)[index])
    return out, decisions


# -- reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentReport:
    """What one `assign` run did and what the CRM should show.

    ``labels`` maps lead CRM id → Experiment_Arm value; ``units`` counts every
    assigned unit per arm (``override`` for overridden holdouts), ``strata`` the
    same per stratum; ``new_by_arm`` counts this run's new units only.
    """

    key: str
    status: str
    new_units: int
    new_by_arm: dict[str, int]
    units: dict[str, int]
    strata: dict[str, dict[str, int]]
    labels: dict[str, str]
    guardrails: list[GuardrailDecision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OverrideReport:
    """Held-out units a rep touched anyway, newly found, and their leads' new labels."""

    key: str
    new_overrides: list[str]
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def follow_merges(assignments: pd.DataFrame, frames: Frames) -> pd.DataFrame:
    """The assignments plus, for a lead unit since merged into another lead (hygiene),
    the same row under the surviving lead's id, unless that lead has its own row.
    ``assigned_unit`` names the row each one came from."""
    out = assignments.assign(assigned_unit=assignments["unit_id"])
    aliases = frames.aliases
    if aliases is None or not len(aliases) or out.empty:
        return out
    moved = out[out["unit_id"].isin(aliases.index)]
    moved = moved.assign(unit_id=moved["unit_id"].map(aliases))
    moved = moved[~moved["unit_id"].isin(out["unit_id"])].drop_duplicates("unit_id")
    return pd.concat([out, moved], ignore_index=True) if len(moved) else out


def _shown_arm(assignments: pd.DataFrame) -> pd.Series:
    arm = assignments["arm"].where(~assignments["override"].astype(bool), OVERRIDE)
    return pd.Series(arm.to_numpy(), index=assignments["unit_id"].to_numpy())


def _labels(
    store: Store,
    connection_id: int,
    table: pd.DataFrame,
    assignments: pd.DataFrame,
    spec: ExperimentSpec,
    stopped_at: datetime | None,
) -> dict[str, str]:
    """Labels for the leads of assigned units that are eligible now (those created
    after a stop excluded), and for every lead that already carries one of this
    experiment's labels in the CRM, so a relabel (control → override) reaches it."""
    if assignments.empty:
        return {}
    arm_of = _shown_arm(assignments)
    arm_of = arm_of[~arm_of.index.duplicated()]
    joining = table["eligible"] & table["unit_id"].isin(arm_of.index)
    if stopped_at is not None:
        joining &= table["created_at"].isna() | (table["created_at"] <= pd.Timestamp(stopped_at))
    labelled = load_arms(store, connection_id)
    labelled = set(labelled.loc[labelled["experiment"] == spec.key, "crm_id"])
    chosen = table[(joining | table["crm_id"].isin(labelled)) & table["unit_id"].isin(arm_of.index)]
    return {
        lead: spec.label(arm_of[unit])
        for lead, unit in zip(chosen["crm_id"], chosen["unit_id"], strict=True)
    }


def _counts(assignments: pd.DataFrame) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    if assignments.empty:
        return {}, {}
    shown = assignments.assign(shown=_shown_arm(assignments).to_numpy())
    units = {str(k): int(v) for k, v in shown["shown"].value_counts().sort_index().items()}
    strata: dict[str, dict[str, int]] = {}
    for (stratum, arm), n in shown.groupby(["stratum", "shown"]).size().items():
        strata.setdefault(str(stratum), {})[str(arm)] = int(n)
    return units, strata


# -- entry points -----------------------------------------------------------------------


def assign(
    store: Store,
    connection_id: int,
    key: str,
    now: datetime | None = None,
    frames: Frames | None = None,
    table: pd.DataFrame | None = None,
) -> AssignmentReport:
    """Give every eligible, unassigned unit of a running experiment an arm.

    Only a running experiment with at least one unpaused action assigns; any other
    still reports its labels and counts (with a note saying why nothing new was
    assigned). Assignment rows and guardrail events are written in one
    transaction; if another run wrote first, nothing is written and a
    TransientError asks for a retry.

    Args:
        store: the store.
        connection_id: whose leads.
        key: the experiment key.
        now: the assignment time (timezone-aware; default: now). Leads created
            after it are not considered.
        table: `lead_table` of ``frames`` for this experiment at ``now``, when the
            caller built it already (it holds every open lead's features).
    """
    now = _utc(now)
    frames = frames if frames is not None else load_frames(store, connection_id)
    with store.session() as session:
        row = experiment_row(session, connection_id, key)
        spec = ExperimentSpec.from_row(row)
        status, experiment_id, stopped_at = row.status, row.id, row.stopped_at
        paused = paused_arms(row)
        existing = load_assignments(session, experiment_id)
        forced = forced_unit_ids(session, experiment_id)
    table = table if table is not None else lead_table(frames, spec, now)
    actions = [a for a in sorted(spec.actions) if a not in paused]
    notes: list[str] = []
    decisions: list[GuardrailDecision] = []
    new = pd.DataFrame(columns=["unit_id", "arm", "stratum"])
    if status != RUNNING:
        notes.append(f"experiment is {status}: no new units assigned")
    elif not actions:
        notes.append("every action is paused by the auto-pause: no new units assigned")
    else:
        units = new_units(table, spec, set(follow_merges(existing, frames)["unit_id"]))
        rules = spec.guardrails
        stakes = exposure(store, connection_id, frames, now)
        if rules.max_holdout_amount is not None and stakes["amount"].isna().all():
            notes.append(
                "max_holdout_amount not applied: no opportunity in the store carries an amount"
            )
        blocked = holdout_blocks(units, stakes, rules)
        new, decisions = allocate(units, existing, forced, blocked, spec, actions, now)
        if paused:
            notes.append(f"paused actions get no new units: {', '.join(sorted(paused))}")
        write_assignments(store, connection_id, experiment_id, key, new, decisions, now)
    added = new[["unit_id", "arm", "stratum"]].assign(assigned_at=pd.Timestamp(now), override=False)
    # concat() warns about empty frames; there is nothing to add from one anyway.
    parts = [frame for frame in (existing, added) if len(frame)]
    everything = pd.concat(parts, ignore_index=True) if parts else existing
    units_by_arm, strata = _counts(everything)
    return AssignmentReport(
        key=key,
        status=status,
        new_units=len(new),
        new_by_arm={str(k): int(v) for k, v in new["arm"].value_counts().sort_index().items()},
        units=units_by_arm,
        strata=strata,
        labels=_labels(
            store, connection_id, table, follow_merges(everything, frames), spec, stopped_at
        ),
        guardrails=decisions,
        notes=notes,
    )


def write_assignments(
    store: Store,
    connection_id: int,
    experiment_id: int,
    key: str,
    new: pd.DataFrame,
    decisions: list[GuardrailDecision],
    now: datetime,
) -> None:
    """Store new units' arms and the guardrail decisions behind them, all or nothing.

    The unique (experiment, unit) key makes a concurrent run that wrote first win:
    this one then writes nothing and raises TransientError (a retry sees its rows).
    """
    rows = [
        {"connection_id": connection_id, "experiment_id": experiment_id, "unit_id": unit,
         "arm": arm, "stratum": stratum, "assigned_at": now, "override": False}
        for unit, arm, stratum in zip(new["unit_id"], new["arm"], new["stratum"], strict=True)
    ]  # fmt: skip
    if not rows:
        return
    try:
        with store.session() as session:
            session.execute(insert(Assignment), rows)
            session.add_all([d.event(connection_id, experiment_id, now) for d in decisions])
    except IntegrityError:
        raise TransientError(
            f"experiment {key!r}: another assignment run wrote first; nothing was written, retry"
        ) from None


def detect_overrides(
    store: Store,
    connection_id: int,
    key: str,
    now: datetime | None = None,
    frames: Frames | None = None,
    table: pd.DataFrame | None = None,
) -> OverrideReport:
    """Mark held-out units that a rep touched anyway as overrides.

    A control unit whose leads have any touch after the unit's assignment (and
    by ``now``, and not after the experiment stopped, when it stopped) gets
    ``override=True``: the rep's choice, not the draw, decided its treatment, so
    it is its own arm (``"<key>/override"``), left out of the holdout and never
    merged into treatment. Its arm column stays ``control`` (what was drawn).
    """
    now = _utc(now)
    frames = frames if frames is not None else load_frames(store, connection_id)
    with store.session() as session:
        row = experiment_row(session, connection_id, key)
        spec = ExperimentSpec.from_row(row)
        experiment_id, stopped_at = row.id, row.stopped_at
        assignments = load_assignments(session, experiment_id)
    table = table if table is not None else lead_table(frames, spec, now)
    held = assignments[(assignments["arm"] == CONTROL) & ~assignments["override"].astype(bool)]
    leads = frames.leads.drop_duplicates("crm_id")
    unit_of = pd.Series(unit_ids(leads, spec.unit).to_numpy(), index=leads["crm_id"].to_numpy())
    touches = frames.touches.assign(
        unit_id=frames.touches["lead_crm_id"].map(unit_of).astype(object),
        at=pd.to_datetime(frames.touches["occurred_at"], utc=True),
    ).merge(follow_merges(held, frames)[["unit_id", "assigned_unit", "assigned_at"]], on="unit_id")
    until = min(pd.Timestamp(now), pd.Timestamp(stopped_at or now))
    hit = touches[(touches["at"] > touches["assigned_at"]) & (touches["at"] <= until)]
    flagged = sorted(set(hit["assigned_unit"]))
    if flagged:
        with store.session() as session:
            session.execute(
                update(Assignment)
                .where(Assignment.experiment_id == experiment_id, Assignment.unit_id.in_(flagged))
                .values(override=True, override_detected_at=now)
            )
    assignments.loc[assignments["unit_id"].isin(flagged), "override"] = True
    followed = follow_merges(assignments, frames)
    labels = _labels(store, connection_id, table, followed, spec, stopped_at)
    flagged_set = set(followed.loc[followed["assigned_unit"].isin(flagged), "unit_id"])
    return OverrideReport(
        key=key,
        new_overrides=flagged,
        labels={
            lead: label
            for lead, label in labels.items()
            if table.loc[lead, "unit_id"] in flagged_set
        },
    )
