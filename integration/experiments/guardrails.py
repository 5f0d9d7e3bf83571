"""Guardrails: who may never be held out, and when an arm is stopped for doing harm.

Holding a unit out costs whatever the action would have earned there, so some
units are never held out: accounts of a protected tier, accounts with an open
opportunity, accounts with more than a set amount at stake, and anything past a
stratum's daily holdout cap. Such a unit is *forced to treatment*: it still gets
an action, but it was not randomized, so every forced unit is logged as a
`GuardrailEvent` with its reason and a readout must leave it out
(`forced_unit_ids`). The amount at stake is the unit's open pipeline plus its
won deals (the ACV), from the opportunity amounts the connectors store on
``opportunity``/``closed_won`` outcome rows (``Outcome.value``); when no outcome
carries an amount the amount rule cannot apply and the caller is told so.

The auto-pause (`check_arms`) is a safety brake, not the readout: it compares
each action's conversion with the holdout's and stops assigning units to an
action that is clearly worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from integration.experiments.registry import find
from integration.experiments.spec import ExperimentSpec, GuardrailSpec, unit_ids
from integration.features import Frames, load_frames
from integration.store import Store
from integration.store.models import Assignment, Experiment, GuardrailEvent, Outcome, utcnow

FORCED = "forced_treatment"
PAUSED_ARM = "paused_arm"
CLOSES = ("closed_won", "closed_lost")


@dataclass(frozen=True)
class GuardrailDecision:
    """One guardrail decision, as logged in ``guardrail_event``."""

    rule: str  # never_hold_out_tier | open_opportunity | max_holdout_amount | daily_holdout_cap
    #            | auto_pause
    decision: str  # forced_treatment | paused_arm
    reason: str
    unit_id: str | None = None
    lead_crm_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def event(self, connection_id: int, experiment_id: int, at: datetime) -> GuardrailEvent:
        return GuardrailEvent(
            connection_id=connection_id, experiment_id=experiment_id, unit_id=self.unit_id,
            lead_crm_id=self.lead_crm_id, rule=self.rule, decision=self.decision,
            reason=self.reason, details=self.details, at=at,
        )  # fmt: skip


experiment_row = find  # the name the assignment code reads best with


def paused_arms(row: Experiment) -> dict[str, Any]:
    """The actions the auto-pause stopped (action -> the numbers behind it)."""
    return dict((row.guardrails or {}).get("paused_arms", {}))


def forced_unit_ids(session: Session, experiment_id: int) -> set[str]:
    """Units a guardrail forced to treatment: not randomized, so never in a comparison."""
    return set(
        session.scalars(
            select(GuardrailEvent.unit_id).where(
                GuardrailEvent.experiment_id == experiment_id,
                GuardrailEvent.decision == FORCED,
                GuardrailEvent.unit_id.is_not(None),
            )
        )
    )


def load_assignments(session: Session, experiment_id: int) -> pd.DataFrame:
    """The experiment's assignments: unit_id, arm, stratum, assigned_at, override."""
    rows = session.execute(
        select(
            Assignment.unit_id, Assignment.arm, Assignment.stratum, Assignment.assigned_at,
            Assignment.override,
        ).where(Assignment.experiment_id == experiment_id)
    ).all()  # fmt: skip
    unit, arm, stratum, at, override = zip(*rows, strict=True) if rows else ((),) * 5
    # Typed even when empty, so merges with other id columns never see floats.
    frame = pd.DataFrame(
        {
            "unit_id": pd.Series(unit, dtype=object),
            "arm": pd.Series(arm, dtype=object),
            "stratum": pd.Series(stratum, dtype=object),
            "assigned_at": pd.to_datetime(pd.Series(at, dtype=object), utc=True),
            "override": pd.Series(override, dtype=bool),
        }
    )
    return frame


# -- who may be held out ---------------------------------------------------------------


def scope_of(frames: Frames) -> pd.Series:
    """Each lead's account (or the lead itself without one): the scope where an open
    deal or an amount protects every contact, whatever the experiment's unit."""
    leads = frames.leads.drop_duplicates("crm_id").set_index("crm_id")
    account = leads["account_crm_id"].astype(object)
    has = account.notna() & (account.astype(str).str.strip() != "")
    return ("account:" + account.astype(str)).where(has, "lead:" + leads.index.to_series())


def _opportunity_key(crm_id: str, kind: str) -> str | None:
    """The deal an outcome row belongs to: connectors key them ``<deal>:<lead>:<kind>``."""
    parts = str(crm_id).split(":")
    return parts[0] if len(parts) >= 3 and parts[-1] == kind else None


def exposure(store: Store, connection_id: int, frames: Frames, now: datetime) -> pd.DataFrame:
    """Per scope (see `scope_of`): ``open_opportunity`` and ``amount`` at stake.

    An opportunity is open when no close (closed_won/closed_lost) of the same lead
    follows it, at or after its creation and by ``now``, for the same deal when
    both rows name one. The amount is the sum over distinct deals of the open
    ones' and the won ones' value (NaN when none carries a value).
    """
    with store.session() as session:
        rows = session.execute(
            select(Outcome.crm_id, Outcome.lead_crm_id, Outcome.kind, Outcome.occurred_at,
                   Outcome.value)
            .where(
                Outcome.connection_id == connection_id,
                Outcome.deleted.is_(False),
                Outcome.kind.in_(("opportunity", *CLOSES)),
                Outcome.occurred_at <= now,
            )
        ).all()  # fmt: skip
    empty = pd.DataFrame(
        {"open_opportunity": pd.Series(dtype=bool), "amount": pd.Series(dtype=float)}
    )
    if not rows:
        return empty
    out = pd.DataFrame(rows, columns=["crm_id", "lead", "kind", "at", "value"])
    if frames.aliases is not None and len(frames.aliases):
        # object dtype: an all-NaN float map cannot take strings as its fill (pandas 3).
        out["lead"] = out["lead"].map(frames.aliases).astype(object).fillna(out["lead"])
    out["at"] = pd.to_datetime(out["at"], utc=True)
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    out["deal"] = [_opportunity_key(c, k) for c, k in zip(out["crm_id"], out["kind"], strict=True)]
    opps = out[out["kind"] == "opportunity"].reset_index(drop=True)
    closes = out[out["kind"].isin(CLOSES)]
    pairs = opps.reset_index().merge(closes, on="lead", suffixes=("", "_close"))
    same_deal = pairs["deal"].isna() | pairs["deal_close"].isna()
    same_deal |= pairs["deal"] == pairs["deal_close"]
    closed = pairs[(pairs["at_close"] >= pairs["at"]) & same_deal]["index"].unique()
    opps["open"] = ~opps.index.isin(closed)
    scope = scope_of(frames)
    at_stake = pd.concat([opps[opps["open"]], out[out["kind"] == "closed_won"]])
    at_stake = at_stake.assign(
        scope=at_stake["lead"].map(scope).astype(object).fillna("lead:" + at_stake["lead"])
    )
    # One deal on several contacts counts once.
    at_stake["deal"] = at_stake["deal"].astype(object).fillna(at_stake["crm_id"])
    amount = (
        at_stake.drop_duplicates(["scope", "deal", "kind"])
        .groupby("scope")["value"]
        .sum(min_count=1)
    )
    opps["scope"] = opps["lead"].map(scope).astype(object).fillna("lead:" + opps["lead"])
    open_opp = opps.groupby("scope")["open"].any()
    result = pd.DataFrame({"open_opportunity": open_opp, "amount": amount})
    result["open_opportunity"] = result["open_opportunity"].fillna(False).astype(bool)
    return result


def holdout_blocks(
    units: pd.DataFrame, stakes: pd.DataFrame, rules: GuardrailSpec
) -> dict[str, GuardrailDecision]:
    """The units that may not be held out, each with the first rule that forbids it.

    Args:
        units: one row per unit: ``unit_id``, ``scope``, ``tier``, ``lead_crm_id``
            (a representative lead, for the log).
        stakes: `exposure` per scope.
        rules: the experiment's guardrails.
    """
    blocked: dict[str, GuardrailDecision] = {}
    tiers = set(rules.never_hold_out_tiers)
    for row in units.itertuples(index=False):
        stake = stakes.loc[row.scope] if row.scope in stakes.index else None
        amount = float(stake["amount"]) if stake is not None else math.nan
        decision = None
        if row.tier in tiers:
            decision = ("never_hold_out_tier", f"tier {row.tier} is never held out", {})
        elif rules.skip_open_opportunity and stake is not None and stake["open_opportunity"]:
            decision = ("open_opportunity", "the account has an open opportunity", {})
        elif (
            rules.max_holdout_amount is not None
            and not math.isnan(amount)
            and amount > rules.max_holdout_amount
        ):
            decision = (
                "max_holdout_amount",
                f"{amount:,.0f} at stake is above the {rules.max_holdout_amount:,.0f} limit",
                {"amount": amount, "limit": rules.max_holdout_amount},
            )
        if decision:
            rule, reason, details = decision
            blocked[row.unit_id] = GuardrailDecision(
                rule, FORCED, reason, row.unit_id, row.lead_crm_id, details
            )
    return blocked


def cap_decision(
    unit_id: str, lead_crm_id: str | None, stratum: str, cap: int
) -> GuardrailDecision:
    """A unit left out of randomization because its stratum's holdout reached today's cap."""
    return GuardrailDecision(
        "daily_holdout_cap", FORCED,
        f"stratum {stratum} reached its cap of {cap} held-out units today", unit_id, lead_crm_id,
        {"stratum": stratum, "cap": cap},
    )  # fmt: skip


# -- auto-pause -------------------------------------------------------------------------


def unit_results(
    frames: Frames,
    assignments: pd.DataFrame,
    spec: ExperimentSpec,
    now: datetime,
    forced: set[str] = frozenset(),  # type: ignore[assignment]
) -> pd.DataFrame:
    """Each assigned unit's result: the assignments plus ``forced``, ``window_closed``
    and ``converted`` (any lead of the unit reached ``spec.outcome`` within
    ``window_days`` after the unit's assignment)."""
    result = assignments.copy()
    result["forced"] = result["unit_id"].isin(forced)
    end = result["assigned_at"] + pd.Timedelta(days=spec.window_days)
    result["window_closed"] = end <= pd.Timestamp(now)
    leads = frames.leads.drop_duplicates("crm_id")
    lead_unit = pd.Series(unit_ids(leads, spec.unit).to_numpy(), index=leads["crm_id"].to_numpy())
    hits = frames.outcomes[frames.outcomes["kind"] == spec.outcome]
    hits = pd.DataFrame(
        {"unit_id": hits["lead_crm_id"].map(lead_unit).astype(object), "at": hits["occurred_at"]}
    ).dropna()
    joined = hits.merge(result[["unit_id", "assigned_at"]], on="unit_id")
    inside = (joined["at"] > joined["assigned_at"]) & (
        joined["at"] <= joined["assigned_at"] + pd.Timedelta(days=spec.window_days)
    )
    result["converted"] = result["unit_id"].isin(set(joined.loc[inside, "unit_id"]))
    return result


@dataclass(frozen=True)
class ArmCheck:
    """One action against the holdout (units whose window has closed)."""

    action: str
    n_treated: int
    converted_treated: int
    n_control: int
    converted_control: int
    z: float | None
    p_value: float | None
    paused: bool  # paused now (newly or before)
    newly_paused: bool


def one_sided_z_test(x_t: int, n_t: int, x_c: int, n_c: int) -> tuple[float, float] | None:
    """Pooled two-proportion z-test of H1 "treated converts less than control".

    z = (p_t − p_c) / sqrt(p(1 − p)(1/n_t + 1/n_c)) with the pooled p = (x_t + x_c) /
    (n_t + n_c); the p-value is Φ(z), the lower tail. None when a group is empty or
    the pooled rate is 0 or 1 (no variance, no evidence either way).
    """
    if n_t == 0 or n_c == 0:
        return None
    pooled = (x_t + x_c) / (n_t + n_c)
    variance = pooled * (1 - pooled) * (1 / n_t + 1 / n_c)
    if variance <= 0:
        return None
    z = (x_t / n_t - x_c / n_c) / math.sqrt(variance)
    return z, 0.5 * math.erfc(-z / math.sqrt(2))


def check_arms(
    store: Store,
    connection_id: int,
    key: str,
    now: datetime | None = None,
    frames: Frames | None = None,
) -> list[ArmCheck]:
    """Pause every action that converts clearly worse than the holdout.

    Among randomized units whose outcome window has closed (overrides and units a
    guardrail forced to treatment left out), each action is compared with the
    control by a one-sided two-proportion z-test with pooled variance (see
    `one_sided_z_test`). An action is paused when p < ``auto_pause_alpha`` and
    both groups have at least ``auto_pause_min_units`` units: it gets no new
    units (already assigned units keep their arm), the pause is recorded under
    ``paused_arms`` in the experiment's guardrails column and logged as a
    `GuardrailEvent` with z and p. The check runs again on every call, so the
    nominal alpha is per look, not per experiment: it is a brake for clear harm,
    never a significance claim.
    """
    now = now or utcnow()
    frames = frames if frames is not None else load_frames(store, connection_id)
    checks: list[ArmCheck] = []
    with store.session() as session:
        row = experiment_row(session, connection_id, key)
        spec = ExperimentSpec.from_row(row)
        rules = spec.guardrails
        already = paused_arms(row)
        results = unit_results(
            frames, load_assignments(session, row.id), spec, now, forced_unit_ids(session, row.id)
        )
        usable = results[results["window_closed"] & ~results["forced"] & ~results["override"]]
        control = usable[usable["arm"] == "control"]
        newly: dict[str, Any] = {}
        for action in sorted(spec.actions):
            treated = usable[usable["arm"] == action]
            n_t, x_t = len(treated), int(treated["converted"].sum())
            n_c, x_c = len(control), int(control["converted"].sum())
            test = one_sided_z_test(x_t, n_t, x_c, n_c)
            z, p = test if test else (None, None)
            pause = (
                action not in already
                and p is not None
                and p < rules.auto_pause_alpha
                and min(n_t, n_c) >= rules.auto_pause_min_units
            )
            if pause:
                numbers = {
                    "arm": action, "z": round(z, 4), "p": p, "n_treated": n_t,
                    "converted_treated": x_t, "n_control": n_c, "converted_control": x_c,
                    "at": now.isoformat(),
                }  # fmt: skip
                newly[action] = numbers
                decision = GuardrailDecision(
                    "auto_pause", PAUSED_ARM,
                    f"{action} converts worse than control: {x_t}/{n_t} vs {x_c}/{n_c}, "
                    f"z={z:.2f}, one-sided p={p:.2g} < {rules.auto_pause_alpha}",
                    details=numbers,
                )  # fmt: skip
                session.add(decision.event(connection_id, row.id, now))
            checks.append(
                ArmCheck(action, n_t, x_t, n_c, x_c, z, p, pause or action in already, pause)
            )
        if newly:
            # A new dict: SQLAlchemy only notices a JSON column that is reassigned.
            row.guardrails = {**(row.guardrails or {}), "paused_arms": {**already, **newly}}
    return checks


def held_out_today(assignments: pd.DataFrame, now: datetime) -> pd.Series:
    """Control units assigned on ``now``'s UTC day, per stratum (for the daily cap)."""
    day = pd.Timestamp(now).tz_convert("UTC").normalize()
    today = assignments[
        (assignments["arm"] == "control")
        & (assignments["assigned_at"] >= day)
        & (assignments["assigned_at"] < day + timedelta(days=1))
    ]
    return today.groupby("stratum").size() if len(today) else pd.Series(dtype=np.int64)
