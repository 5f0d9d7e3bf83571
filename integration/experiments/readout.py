"""Experiment readouts: did an action move the outcome, by how much, and can we trust it.

One input shape serves both kinds of experiment, so one readout (and one HTML
report) covers them: a *readout frame* with one row per lead and the columns
in `FRAME_COLUMNS`. `from_assignments` builds it from leadlift's own
experiments (Assignment rows); `from_past_arms` from the arm labels that
experiments run before leadlift left on each lead.

Statistics (`readout`):

- Uplift is treated rate − control rate in percentage points, per experiment,
  action arm and stratum, plus a pooled ``all`` row (the plain difference: the
  design randomizes with the same shares in every stratum, so it is unbiased).
- Its interval is **Newcombe's hybrid score interval** (Newcombe 1998,
  method 10: Wilson score limits of each rate, combined by the square-and-add
  rule), chosen over Wald because Wald collapses at rates near 0, the usual
  case for B2B conversions.
- Units (accounts) are randomized, not leads, and leads of one account may
  convert together, so a lead-level interval could be too narrow. Each arm's Wilson
  limits therefore use its effective size n / deff, where deff is the ratio of
  the cluster-robust (by unit) variance of the rate to the binomial one,
  floored at 1. With one lead per unit deff is exactly 1 and the interval is
  plain Newcombe.
- Sample-ratio mismatch: a chi-square goodness-of-fit test of the units per
  arm against the designed shares (holdout share for control, the rest split
  evenly among actions), flagged at p < 0.001. A mismatch means assignment or
  data loss is broken, and no uplift from that experiment should be believed.
- Overrides (a rep did something other than the arm said) are reported as a
  rate, and uplift is given twice: intention-to-treat (every lead in its
  assigned arm, overrides kept) and excluding overrides. ITT answers "what
  happens if we adopt this policy, reps included"; excluding overrides is
  closer to the action's own effect but is no longer purely randomized.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select

from integration.experiments.guardrails import forced_unit_ids, load_assignments
from integration.experiments.registry import find
from integration.experiments.spec import unit_ids
from integration.features import TERMINAL_OUTCOMES, TOUCH_TYPES, Frames, load_frames
from integration.store import Store
from integration.store.models import Experiment
from integration.uplift_data import ASSIGNMENT_SLACK_DAYS, CONTROL, load_arms

OVERRIDE = "override"  # the label leadlift gives a held-out unit a rep overrode
TREATMENT = "treatment"  # past experiments' one treated arm

ALL = "all"
NO_STRATUM = "none"
SRM_ALPHA = 0.001
METHOD = (
    "Newcombe hybrid score interval (Wilson limits per arm, effective size n/deff "
    "for unit clustering)"
)
FRAME_COLUMNS = (
    "experiment",  # experiment key
    "lead_crm_id",
    "unit",  # randomization unit: account or lead id
    "arm",  # "control" or the action's name
    "stratum",
    "assigned_at",  # when this lead entered its arm (UTC)
    "converted",  # nullable boolean: NA while the outcome window is still open
    "override",  # a rep overrode the arm
    "override_known",  # False when overrides could not be detected at all
    "design_share",  # the designed share of units for this row's arm
)
# What reaching an outcome means; an opportunity also counts when the lead converted.
OUTCOME_KINDS: dict[str, tuple[str, ...]] = {
    "meeting_booked": ("meeting_booked",),
    "opportunity": ("opportunity", "closed_won", "closed_lost"),
    "closed_won": ("closed_won",),
}


def outcome_events(frames: Frames, outcome: str) -> pd.DataFrame:
    """Every (lead_crm_id, occurred_at) at which a lead reached ``outcome``.

    For ``opportunity`` a lead conversion counts as well: converting a lead is how
    Salesforce creates the opportunity, and not every org syncs opportunities.
    """
    kinds = OUTCOME_KINDS.get(outcome, (outcome,))
    events = frames.outcomes.loc[
        frames.outcomes["kind"].isin(kinds), ["lead_crm_id", "occurred_at"]
    ]
    if outcome == "opportunity":
        converted = frames.leads.loc[
            frames.leads["converted_at"].notna(), ["crm_id", "converted_at"]
        ]
        converted = converted.set_axis(["lead_crm_id", "occurred_at"], axis=1)
        events = pd.concat([events, converted], ignore_index=True)
    return events.reset_index(drop=True)


def _finished_at(frames: Frames) -> pd.Series:
    """When each lead stopped being an open prospect (first terminal outcome or conversion)."""
    done = frames.outcomes.loc[frames.outcomes["kind"].isin(TERMINAL_OUTCOMES)]
    converted = frames.leads[["crm_id", "converted_at"]].dropna()
    times = pd.concat(
        [
            done.set_index("lead_crm_id")["occurred_at"],
            converted.set_index("crm_id")["converted_at"].rename("occurred_at"),
        ]
    )
    return times.groupby(level=0).min()


def _within(
    rows: pd.DataFrame, events: pd.DataFrame, window: pd.Timedelta, index: str = "row"
) -> pd.Series:
    """Per row of ``rows`` (lead_crm_id, start): any event in (start, start + window]."""
    hits = rows[["lead_crm_id", "start"]].reset_index(names=index).merge(events, on="lead_crm_id")
    inside = (hits["occurred_at"] > hits["start"]) & (hits["occurred_at"] <= hits["start"] + window)
    found = hits.loc[inside.to_numpy(), index].unique()
    return pd.Series(rows.index.isin(found), index=rows.index)


def _finish(
    leads: pd.DataFrame, events: pd.DataFrame, window: pd.Timedelta, now: datetime
) -> pd.DataFrame:
    """Add ``converted`` (NA while open) and return the frame in `FRAME_COLUMNS` order."""
    leads = leads.reset_index(drop=True)
    hit = _within(leads.rename(columns={"assigned_at": "start"}), events, window)
    closed = (leads["assigned_at"] + window <= pd.Timestamp(now)).to_numpy()
    leads["converted"] = pd.array(np.where(closed, hit.to_numpy(), None), dtype="boolean")
    leads["override"] = leads["override"].astype(bool)
    leads["override_known"] = leads["override_known"].astype(bool)
    return leads[list(FRAME_COLUMNS)].sort_values(["experiment", "lead_crm_id"], ignore_index=True)


def _design_share(arm: pd.Series, holdout_share: float, actions: list[str]) -> pd.Series:
    """Designed share of each row's arm; NaN for an arm the design does not know."""
    shares = {CONTROL: holdout_share} | {a: (1 - holdout_share) / len(actions) for a in actions}
    return arm.map(shares).astype(float)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in FRAME_COLUMNS})


def from_assignments(
    store: Store, connection_id: int, key: str, now: datetime, frames: Frames | None = None
) -> pd.DataFrame:
    """The readout frame of one of leadlift's own experiments.

    Units are read as the assignment wrote them (`spec.unit_ids`: the account,
    or the lead itself without one or under ``unit: lead``). Every lead of an
    assigned account shares the account's arm, stratum and override flag; a lead
    created after its account was assigned enters the arm at its creation (its
    window starts then); leads created after the experiment stopped, or already
    closed (terminal outcome, conversion) when they entered, are left out, and so
    are units a guardrail forced to treatment (not randomized). The outcome is
    the experiment's, counted in (entry, entry + window_days].

    Raises:
        NotFoundError: no experiment ``key`` on this connection.
    """
    with store.session() as session:
        experiment = find(session, connection_id, key)
        assigned = load_assignments(session, experiment.id).rename(
            columns={"unit_id": "unit", "assigned_at": "unit_assigned_at"}
        )
        unit_kind, stopped_at = experiment.unit, experiment.stopped_at
        holdout, window_days = experiment.holdout_share, experiment.window_days
        outcome = experiment.outcome
        designed = [a for a in (experiment.arms or {}) if a != CONTROL]
        forced = forced_unit_ids(session, experiment.id)
    # A unit a guardrail forced to treatment was not randomized: no comparison may use it.
    assigned = assigned[~assigned["unit"].isin(forced)]
    if assigned.empty:
        return _empty()
    assigned["unit_assigned_at"] = pd.to_datetime(assigned["unit_assigned_at"], utc=True)
    frames = frames if frames is not None else load_frames(store, connection_id)
    if frames.aliases is not None and len(frames.aliases):
        # A merged duplicate's assignment follows the lead it was merged into.
        alias = frames.aliases.reindex(assigned["unit"].to_numpy()).to_numpy()
        assigned["unit"] = np.where(pd.notna(alias), alias, assigned["unit"].to_numpy())
        assigned = assigned.drop_duplicates("unit")
    leads = frames.leads[["crm_id", "account_crm_id", "created_at"]]
    leads = leads.assign(unit=unit_ids(leads, unit_kind).to_numpy())
    merged = leads.merge(assigned, on="unit")
    if stopped_at is not None:
        merged = merged[~(merged["created_at"] > pd.Timestamp(stopped_at))]
    entry = merged[["unit_assigned_at", "created_at"]].max(axis=1)
    # A lead already closed when its unit was assigned was never in play: the
    # assignment labels only open leads, and dropping on a pre-assignment fact
    # keeps the arms comparable.
    finished = _finished_at(frames).reindex(merged["crm_id"].to_numpy())
    finished = pd.Series(pd.to_datetime(finished.to_numpy(), utc=True), index=merged.index)
    open_then = ~(finished <= entry)
    merged, entry = merged[open_then], entry[open_then]
    actions = designed or sorted(set(merged["arm"]) - {CONTROL})
    frame = pd.DataFrame(
        {
            "experiment": key,
            "lead_crm_id": merged["crm_id"].to_numpy(),
            "unit": merged["unit"].to_numpy(),
            "arm": merged["arm"].to_numpy(),
            "stratum": merged["stratum"].fillna(NO_STRATUM).to_numpy(),
            "assigned_at": entry.to_numpy(),
            "override": merged["override"].to_numpy(),
            "override_known": True,
            "design_share": _design_share(merged["arm"], holdout, actions).to_numpy(),
        }
    )
    frame["assigned_at"] = pd.to_datetime(frame["assigned_at"], utc=True)
    return _finish(frame, outcome_events(frames, outcome), pd.Timedelta(days=window_days), now)


def _strata_labels(leads: pd.DataFrame, frames: Frames, strata: tuple[str, ...]) -> pd.Series:
    """ "A" or "A/EMEA": the lead's values of the stratum columns (account first, then lead)."""
    if not strata:
        return pd.Series(NO_STRATUM, index=leads.index)
    accounts = frames.accounts.drop_duplicates("crm_id").set_index("crm_id")
    parts = []
    for name in strata:
        if name in accounts.columns:
            values = accounts[name].reindex(leads["account_crm_id"].to_numpy()).to_numpy()
        elif name in frames.leads.columns:
            values = frames.leads.set_index("crm_id")[name].reindex(leads["crm_id"]).to_numpy()
        else:
            raise ValueError(f"unknown stratum column {name!r}")
        parts.append(pd.Series(values, index=leads.index).fillna(NO_STRATUM).astype(str))
    return parts[0].str.cat(parts[1:], sep="/") if len(parts) > 1 else parts[0]


def from_past_arms(
    store: Store,
    connection_id: int,
    now: datetime,
    window_days: int = 21,
    strata: tuple[str, ...] = ("tier",),
    holdout_share: float = 0.2,
    outcome: str = "meeting_booked",
    frames: Frames | None = None,
) -> pd.DataFrame:
    """The readout frame of the experiments run before leadlift, from lead labels.

    Those experiments left only ``<action>_v<n>/<arm>`` on each lead, so: the unit
    is the lead's account (the lead itself without one); assignment happened
    within `ASSIGNMENT_SLACK_DAYS` of creation, so the window runs from creation
    for window_days + that slack (as in `integration.uplift_data`); the design
    is assumed to be ``holdout_share`` control and the rest treatment (leadlift
    cannot know it). A control lead that got any sales touch inside its window,
    or that carries an ``override`` label, is an override (its holdout was
    broken) and stays in control for the intention-to-treat comparison; when an
    experiment's leads have no touch and no override label at all, overrides
    cannot be seen and the frame says so (``override_known`` False). An arm
    label other than control / override / treatment is kept as its own arm,
    outside the design, which the sample-ratio check flags. Experiments that
    leadlift itself runs (an ``experiment`` row with that key) are left to
    `from_assignments`.
    """
    arms = load_arms(store, connection_id)
    with store.session() as session:
        own = set(
            session.scalars(select(Experiment.key).where(Experiment.connection_id == connection_id))
        )
    # leadlift's own experiments label leads too ("<key>/<arm>"); they are read from
    # their Assignment rows by `from_assignments`, never from the labels.
    arms = arms[~arms["experiment"].isin(own)]
    if arms.empty:
        return _empty()
    frames = frames if frames is not None else load_frames(store, connection_id)
    if frames.aliases is not None and len(frames.aliases):
        # A merged duplicate's label follows the lead it was merged into, unless it has one.
        alias = frames.aliases.reindex(arms["crm_id"].to_numpy()).to_numpy()
        moved = pd.notna(alias)
        arms = arms.assign(crm_id=np.where(moved, alias, arms["crm_id"].to_numpy()), moved=moved)
        arms = arms.sort_values("moved", kind="stable").drop_duplicates("crm_id")
    leads = frames.leads[["crm_id", "account_crm_id", "created_at"]].merge(arms, on="crm_id")
    leads = leads[leads["created_at"].notna()].reset_index(drop=True)
    window = pd.Timedelta(days=window_days + ASSIGNMENT_SLACK_DAYS)
    label = leads["arm"].to_numpy()
    control = np.isin(label, (CONTROL, OVERRIDE))
    # Treatment reads as its action; any other label stays as it is, outside the design.
    arm = np.where(control, CONTROL, np.where(label == TREATMENT, leads["action"], label))

    touches = frames.touches.loc[frames.touches["type"].isin(TOUCH_TYPES)]
    starts = leads[["crm_id", "created_at"]].set_axis(["lead_crm_id", "start"], axis=1)
    touched = _within(starts, touches[["lead_crm_id", "occurred_at"]], window).to_numpy()
    labelled = label == OVERRIDE
    evidence = pd.Series(leads["crm_id"].isin(touches["lead_crm_id"]).to_numpy() | labelled)
    known = evidence.groupby(leads["experiment"].to_numpy()).transform("any").to_numpy()

    frame = pd.DataFrame(
        {
            "experiment": leads["experiment"].to_numpy(),
            "lead_crm_id": leads["crm_id"].to_numpy(),
            "unit": unit_ids(leads, "account").to_numpy(),
            "arm": arm,
            "stratum": _strata_labels(leads, frames, strata).to_numpy(),
            "assigned_at": leads["created_at"].to_numpy(),
            "override": control & (touched | labelled) & known,
            "override_known": known,
            "design_share": np.select(
                [control, label == TREATMENT], [holdout_share, 1 - holdout_share], np.nan
            ),
        }
    )
    frame["assigned_at"] = pd.to_datetime(frame["assigned_at"], utc=True)
    return _finish(frame, outcome_events(frames, outcome), window, now)


# ---------------------------------------------------------------- statistics


def wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion (successes and n may be effective, non-integer)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(
    x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """p1 − p2 with Newcombe's hybrid score interval (his method 10).

    Returns:
        (difference, lower, upper) as proportions.
    """
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def json_float(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe float: None for NaN/None."""
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class Estimate:
    """One arm against control, on one set of leads."""

    n_treated: int
    n_control: int
    conversions_treated: int
    conversions_control: int
    rate_treated: float | None
    rate_control: float | None
    uplift_pp: float | None
    ci_low_pp: float | None
    ci_high_pp: float | None
    design_effect_treated: float
    design_effect_control: float

    @property
    def verdict(self) -> str:
        """ "lift" / "harm" when the interval excludes 0, else "inconclusive"."""
        if self.ci_low_pp is None or self.ci_high_pp is None:
            return "no data"
        if self.ci_low_pp > 0:
            return "lift"
        return "harm" if self.ci_high_pp < 0 else "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """An action arm against control in one stratum (``all`` = pooled)."""

    experiment: str
    arm: str
    stratum: str
    itt: Estimate
    excluding_overrides: Estimate
    overrides: int
    override_rate: float | None  # None when overrides could not be detected


@dataclass(frozen=True)
class SampleRatioCheck:
    """Units per arm against the design; ``flagged`` when p < `SRM_ALPHA`."""

    units: dict[str, int]
    observed_share: dict[str, float]
    designed_share: dict[str, float | None]
    chi2: float | None
    p_value: float | None
    flagged: bool
    note: str


@dataclass(frozen=True)
class ExperimentReadout:
    experiment: str
    leads: int
    units: int
    closed: int  # leads whose outcome window has closed (the ones measured)
    overrides: int
    override_rate: float | None
    srm: SampleRatioCheck
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True)
class Readout:
    confidence: float
    method: str
    experiments: tuple[ExperimentReadout, ...]

    def comparisons(self) -> list[Comparison]:
        return [c for e in self.experiments for c in e.comparisons]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: plain types, None for anything not measurable."""
        out = asdict(self)
        for e_out, e in zip(out["experiments"], self.experiments, strict=True):
            for c_out, c in zip(e_out["comparisons"], e.comparisons, strict=True):
                c_out["itt"]["verdict"] = c.itt.verdict
                c_out["excluding_overrides"]["verdict"] = c.excluding_overrides.verdict
        return out

    def text(self) -> str:
        """A compact table for the terminal: one block per experiment, one row per comparison."""
        level = f"{self.confidence:.0%}"
        lines = [
            f"uplift in percentage points, {level} intervals: {self.method}; "
            "* = the interval excludes 0"
        ]
        for e in self.experiments:
            lines += ["", _experiment_line(e), _HEADER.format(*_COLUMNS)]
            lines += [_comparison_line(c) for c in e.comparisons]
        return "\n".join(lines)


_COLUMNS = ("arm", "stratum", "treated", "control", "ITT", "excl. overrides", "overr.")
_HEADER = "  {:<16} {:<14} {:>15} {:>15} {:>22} {:>22} {:>6}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _rate(conversions: int, n: int) -> str:
    return f"{conversions}/{n} {_pct(conversions / n if n else None)}"


def _interval(e: Estimate) -> str:
    if e.uplift_pp is None:
        return "—"
    mark = "*" if e.verdict in ("lift", "harm") else " "
    return f"{e.uplift_pp:+.1f} [{e.ci_low_pp:+.1f}, {e.ci_high_pp:+.1f}]{mark}"


def _comparison_line(c: Comparison) -> str:
    return _HEADER.format(
        c.arm[:16],
        c.stratum[:14],
        _rate(c.itt.conversions_treated, c.itt.n_treated),
        _rate(c.itt.conversions_control, c.itt.n_control),
        _interval(c.itt),
        _interval(c.excluding_overrides),
        _pct(c.override_rate),
    )


def _experiment_line(e: ExperimentReadout) -> str:
    srm = e.srm
    if srm.flagged:
        shares = ", ".join(
            f"{arm} {srm.observed_share[arm]:.1%} (designed {_pct(srm.designed_share[arm])})"
            for arm in srm.units
        )
        check = f"SRM FLAGGED p={srm.p_value:.2g}: {shares}" if srm.p_value is not None else ""
        check = check or f"SRM FLAGGED: {srm.note}"
    else:
        check = f"SRM ok (p={srm.p_value:.2g})" if srm.p_value is not None else srm.note
    overrides = (
        "overrides unknown" if e.override_rate is None else f"overrides {e.override_rate:.1%}"
    )
    return (
        f"{e.experiment}: {e.leads:,} leads in {e.units:,} units, {e.closed:,} with a closed "
        f"window; {check}; {overrides}"
    )


def _arm_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, stratum, arm): n, conversions, overrides and the design effect.

    The design effect compares the cluster-robust variance of the rate,
    Σ_units (y_j − p·m_j)² / n², with the binomial p(1−p)/n.
    """
    keys = ["experiment", "stratum", "arm"]
    y = rows["converted"].astype(int)
    units = (
        rows.assign(y=y, o=rows["override"].astype(int))
        .groupby([*keys, "unit"], sort=False)
        .agg(m=("y", "size"), y=("y", "sum"), o=("o", "sum"))
    )
    units = units.assign(yy=units.y**2, ym=units.y * units.m, mm=units.m**2)
    g = units.groupby(level=keys).agg(
        n=("m", "sum"), x=("y", "sum"), overrides=("o", "sum"),
        yy=("yy", "sum"), ym=("ym", "sum"), mm=("mm", "sum"), largest=("m", "max"),
    )  # fmt: skip
    p = g.x / g.n
    robust = (g.yy - 2 * p * g.ym + p * p * g.mm) / g.n**2
    binomial = p * (1 - p) / g.n
    ratio = np.divide(robust, binomial, out=np.ones(len(g)), where=binomial.to_numpy() > 0)
    g["deff"] = np.where(g.largest > 1, np.maximum(ratio, 1.0), 1.0)
    return g[["n", "x", "overrides", "deff"]]


def _estimate(t: pd.Series | None, c: pd.Series | None, confidence: float) -> Estimate:
    def get(s: pd.Series | None, k: str, default: float = 0) -> float:
        return default if s is None else float(s[k])

    n1, x1, n2, x2 = get(t, "n"), get(t, "x"), get(c, "n"), get(c, "x")
    d1, d2 = get(t, "deff", 1.0), get(c, "deff", 1.0)
    uplift = low = high = None
    if n1 > 0 and n2 > 0:
        # Wilson limits on effective counts: the same rates, fewer independent trials.
        d, lo, hi = newcombe(x1 / d1, n1 / d1, x2 / d2, n2 / d2, confidence)
        uplift, low, high = 100 * d, 100 * lo, 100 * hi
    return Estimate(
        n_treated=int(n1),
        n_control=int(n2),
        conversions_treated=int(x1),
        conversions_control=int(x2),
        rate_treated=json_float(x1 / n1) if n1 else None,
        rate_control=json_float(x2 / n2) if n2 else None,
        uplift_pp=json_float(uplift, 4),
        ci_low_pp=json_float(low, 4),
        ci_high_pp=json_float(high, 4),
        design_effect_treated=json_float(d1, 4) or 1.0,
        design_effect_control=json_float(d2, 4) or 1.0,
    )


def sample_ratio_check(rows: pd.DataFrame) -> SampleRatioCheck:
    """Chi-square goodness of fit of one experiment's units per arm to its design."""
    units = rows.drop_duplicates(["unit", "arm"])
    counts = units.groupby("arm").size().sort_index()
    designed = units.groupby("arm")["design_share"].first().reindex(counts.index)
    total = int(counts.sum())
    observed_share = {str(a): json_float(n / total, 4) or 0.0 for a, n in counts.items()}
    designed_share = {str(a): json_float(s, 4) for a, s in designed.items()}
    base = {"units": {str(a): int(n) for a, n in counts.items()}}
    base |= {"observed_share": observed_share, "designed_share": designed_share}
    unexpected = sorted(str(a) for a in designed.index[designed.isna()])
    if unexpected:
        note = f"arms outside the design: {', '.join(unexpected)}"
        return SampleRatioCheck(**base, chi2=None, p_value=None, flagged=True, note=note)
    observed = counts.to_numpy(dtype=float)
    shares = designed.to_numpy(dtype=float)
    missing = 1.0 - shares.sum()
    if missing > 1e-9:
        # Designed arms with no unit at all: a category observed 0 times.
        observed, shares = np.append(observed, 0.0), np.append(shares, missing)
    if len(observed) < 2 or total == 0:
        note = "one arm only: nothing to compare"
        return SampleRatioCheck(**base, chi2=None, p_value=None, flagged=False, note=note)
    chi2, p = stats.chisquare(observed, shares / shares.sum() * total)
    flagged = bool(p < SRM_ALPHA)
    note = "sample ratio mismatch: do not trust this experiment" if flagged else "ok"
    if missing > 1e-9:
        note += f"; designed arms with no units ({missing:.0%} of the design)"
    return SampleRatioCheck(
        **base, chi2=json_float(chi2, 4), p_value=json_float(p, 10), flagged=flagged, note=note
    )


def readout(frame: pd.DataFrame, confidence: float = 0.95) -> Readout:
    """Uplift per experiment, action arm and stratum, with SRM and override checks.

    Args:
        frame: a readout frame (`FRAME_COLUMNS`), from `from_assignments`,
            `from_past_arms` or built by hand.
        confidence: the intervals' two-sided confidence level.
    """
    missing = set(FRAME_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"readout frame lacks {sorted(missing)}")
    frame = frame.assign(
        stratum=frame["stratum"].astype(str),
        arm=frame["arm"].astype(str),
        override=frame["override"].astype(bool),
    )
    closed = frame[frame["converted"].notna().to_numpy()]
    clean = closed[~closed["override"].to_numpy()]
    # Pooled rows are counted apart, so a stratum that happens to be named "all"
    # can never put a lead into the pooled row twice.
    tables = {
        (analysis, pooled): _arm_stats(rows.assign(stratum=ALL) if pooled else rows)
        for analysis, rows in (("itt", closed), ("clean", clean))
        for pooled in (True, False)
        if len(rows)
    }

    def side(analysis: str, pooled: bool, key: tuple[str, str, str]) -> pd.Series | None:
        table = tables.get((analysis, pooled))
        return table.loc[key] if table is not None and key in table.index else None

    experiments = []
    for key, rows in frame.groupby("experiment", sort=True):
        key = str(key)
        known = bool(rows["override_known"].astype(bool).all())
        strata = sorted(set(rows["stratum"]))
        shown = [(ALL, True)] + ([(s, False) for s in strata] if len(strata) > 1 else [])
        comparisons = []
        for arm in sorted(set(rows["arm"]) - {CONTROL}):
            for stratum, pooled in shown:
                label = ALL if pooled else stratum
                t, c = (side("itt", pooled, (key, label, a)) for a in (arm, CONTROL))
                overrides = int(sum(s["overrides"] for s in (t, c) if s is not None))
                n = sum(int(s["n"]) for s in (t, c) if s is not None)
                comparisons.append(
                    Comparison(
                        experiment=key,
                        arm=arm,
                        stratum=stratum,
                        itt=_estimate(t, c, confidence),
                        excluding_overrides=_estimate(
                            side("clean", pooled, (key, label, arm)),
                            side("clean", pooled, (key, label, CONTROL)),
                            confidence,
                        ),
                        overrides=overrides if known else 0,
                        override_rate=json_float(overrides / n, 4) if known and n else None,
                    )
                )
        n_overrides = int(rows["override"].sum()) if known else 0
        experiments.append(
            ExperimentReadout(
                experiment=key,
                leads=len(rows),
                units=int(rows["unit"].nunique()),
                closed=int(rows["converted"].notna().sum()),
                overrides=n_overrides,
                override_rate=json_float(n_overrides / len(rows), 4) if known else None,
                srm=sample_ratio_check(rows),
                comparisons=tuple(comparisons),
            )
        )
    return Readout(confidence=confidence, method=METHOD, experiments=tuple(experiments))
