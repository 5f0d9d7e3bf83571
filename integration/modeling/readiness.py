"""Data readiness: is there enough honest history to learn a propensity model?

Each check reports ``value``, ``threshold``, ``status`` (pass / warn / fail)
and ``fix`` (what to do about it). `decide_mode` turns the report into the
scoring mode: ``ml`` when the floor holds — enough positives of the outcome
the score predicts (200; below 100 a model is indistinguishable from chance)
and at least the minimum history — otherwise ``rules`` (`RulesModel`, which
says so in its reasons). Never a fake ML score.

Checks (defaults in `Thresholds`):

=========================  ===========================================  ==========  =========
check                      value                                        pass        fail
=========================  ===========================================  ==========  =========
history_months             months from the first lead to now            >= 6        < 3
positives                  leads with the label outcome (meetings)      >= 200      < 100
closed_won                 leads with a closed-won deal                 >= 200      < 100
label_consistency          CRM values no vocabulary maps (sync, status) == 0        > 5 % rows
status_outcome_agreement   leads whose status says met/converted        <= 5 %      > 20 %
                           but no such outcome was synced
source_coverage            leads with a (first-touch) lead source       >= 70 %     < 50 %
company_coverage           leads with an account or business domain     >= 80 %     < 60 %
title_coverage             leads with a job title                       >= 70 %     < 50 %
behavioural_data           leads with any engagement event              >= 30 %     == 0
deals_without_outcome      opportunities older than 120 days, not       <= 20 %     > 50 %
                           closed won or lost
=========================  ===========================================  ==========  =========

Between pass and fail a check warns. The unmapped values of the last sync are
what the connectors recorded in the latest ``PipelineRun(step="sync")``
``stats["unmapped"]``; hygiene adds the lead statuses it could not map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from integration.features import Frames, load_frames
from integration.modeling.hygiene import FREE_MAIL
from integration.modeling.propensity import PropensityModel
from integration.modeling.rules import RulesModel
from integration.store import Store
from integration.store.models import PipelineRun, utcnow

PASS, WARN, FAIL = "pass", "warn", "fail"
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Thresholds:
    """Pass / fail thresholds; between them a check warns."""

    min_wins: int = 200
    random_wins: int = 100
    history_months: float = 6.0
    history_months_fail: float = 3.0
    unmapped_share_fail: float = 0.05
    disagreement_pass: float = 0.05
    disagreement_fail: float = 0.20
    source_coverage: float = 0.70
    source_coverage_fail: float = 0.50
    company_coverage: float = 0.80
    company_coverage_fail: float = 0.60
    title_coverage: float = 0.70
    title_coverage_fail: float = 0.50
    behavioural_share: float = 0.30
    stale_deal_days: int = 120
    open_deals_pass: float = 0.20
    open_deals_fail: float = 0.50


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: float
    status: str
    fix: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ReadinessReport:
    checks: tuple[Check, ...]
    mode: str
    why: str
    label: str
    assessed_at: str

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "why": self.why,
            "label": self.label,
            "assessed_at": self.assessed_at,
            "checks": [c.as_dict() for c in self.checks],
        }


def _at_least(value: float, passing: float, failing: float) -> str:
    return PASS if value >= passing else (WARN if value >= failing else FAIL)


def _at_most(value: float, passing: float, failing: float) -> str:
    return PASS if value <= passing else (WARN if value <= failing else FAIL)


def _share(mask: Any, n: int) -> float:
    return float(np.sum(mask)) / n if n else 0.0


def assess(
    frames: Frames,
    now: datetime,
    *,
    unmapped: dict[str, dict[str, int]] | None = None,
    label: str = "meeting_booked",
    thresholds: Thresholds = Thresholds(),
) -> ReadinessReport:
    """Run every check on (clean) frames; see the module docstring.

    Args:
        frames: the connection's frames (`load_frames` output).
        now: the as-of time.
        unmapped: field → raw value → count the connectors could not map.
        label: the outcome the score predicts (its positives are the "wins" the floor counts).
        thresholds: the thresholds.
    """
    t = thresholds
    leads, outcomes = frames.leads, frames.outcomes
    n = len(leads)
    now_ts = pd.Timestamp(now)
    checks: list[Check] = []

    created = pd.to_datetime(leads["created_at"], utc=True) if n else pd.Series(dtype=object)
    months = float((now_ts - created.min()).days / DAYS_PER_MONTH) if created.notna().any() else 0.0
    checks.append(
        Check(
            "history_months", round(months, 1), t.history_months,
            _at_least(months, t.history_months, t.history_months_fail),
            "Sync more history (older leads, activities and deals), or wait: the label window "
            "needs months of closed outcomes to learn from and to test on.",
        )
    )  # fmt: skip
    known = set(leads["crm_id"])
    by_kind = outcomes[outcomes["lead_crm_id"].isin(known)].groupby("kind")["lead_crm_id"]
    people = {kind: set(ids) for kind, ids in by_kind}
    wins = len(people.get(label, ()))
    checks.append(
        Check(
            "positives", wins, t.min_wins, _at_least(wins, t.min_wins, t.random_wins),
            f"Leads with a {label} outcome are what the model learns from: below "
            f"{t.min_wins} leadlift scores with transparent rules; log every {label} in the "
            "CRM (Salesforce Events of type Meeting, HubSpot meetings) so none is missed.",
            {"label": label},
        )
    )  # fmt: skip
    won = len(people.get("closed_won", ()))
    checks.append(
        Check(
            "closed_won", won, t.min_wins, _at_least(won, t.min_wins, t.random_wins),
            "Close opportunities as won or lost and link them to the converted lead or its "
            "contact; a revenue score needs 200 wins, below 100 it is chance.",
        )
    )  # fmt: skip

    gaps: dict[str, dict[str, int]] = {k: dict(v) for k, v in (unmapped or {}).items()}
    report = frames.hygiene
    for field_name, values in (report.unmapped if report else {}).items():
        gaps.setdefault(field_name, {}).update(values)
    distinct = sum(len(v) for v in gaps.values())
    affected = sum(sum(v.values()) for v in gaps.values())
    share = affected / max(n, 1)
    checks.append(
        Check(
            "label_consistency", distinct, 0,
            PASS if distinct == 0 else (WARN if share <= t.unmapped_share_fail else FAIL),
            "Map these CRM values: opportunity stages and task types in the connector "
            "vocabulary (stage_outcomes / deal_stages / touch_types), lead statuses and "
            "lifecycle stages in the connection's hygiene status_map.",
            {"unmapped": gaps, "rows": affected},
        )
    )  # fmt: skip

    status = leads["status"] if "status" in leads.columns else pd.Series(dtype=object)
    claims_meeting = status.isin(("meeting_booked", "converted", "customer")).to_numpy()
    evidenced = (
        leads["crm_id"]
        .isin(
            people.get("meeting_booked", set())
            | people.get("opportunity", set())
            | people.get("closed_won", set())
            | people.get("closed_lost", set())
        )
        .to_numpy()
    )
    claims = int(claims_meeting.sum())
    missing = _share(claims_meeting & ~evidenced, claims)
    checks.append(
        Check(
            "status_outcome_agreement", round(missing, 4), t.disagreement_pass,
            _at_most(missing, t.disagreement_pass, t.disagreement_fail),
            "Leads marked meeting booked or converted lack the meeting or deal record: log "
            "meetings as calendar events on the lead and convert through opportunities.",
            {"claimed": claims},
        )
    )  # fmt: skip

    def coverage(name: str, mask: Any, passing: float, failing: float, fix: str) -> None:
        value = _share(mask, n)
        checks.append(
            Check(name, round(value, 4), passing, _at_least(value, passing, failing), fix)
        )

    source = leads["source"] if "source" in leads.columns else pd.Series([None] * n)
    coverage(
        "source_coverage", source.notna() & (source.astype(str).str.strip() != ""),
        t.source_coverage, t.source_coverage_fail,
        "Fill Lead Source on every form, import and integration (HubSpot: "
        "hs_analytics_source is read when lead_source is blank).",
    )  # fmt: skip
    domain = leads.get("email_domain", pd.Series([None] * n, index=leads.index))
    business = domain.notna() & ~domain.astype(str).str.lower().isin(FREE_MAIL)
    coverage(
        "company_coverage", leads["account_crm_id"].notna() | business,
        t.company_coverage, t.company_coverage_fail,
        "Match leads to accounts (lead-to-account matching, HubSpot company association) "
        "and keep business email domains; firmographic fit needs them.",
    )  # fmt: skip
    title = leads.get("title", pd.Series([None] * n, index=leads.index))
    coverage(
        "title_coverage", title.notna() & (title.astype(str).str.strip() != ""),
        t.title_coverage, t.title_coverage_fail,
        "Ask for the job title on forms or enrich it; seniority is a strong fit signal.",
    )  # fmt: skip
    engaged = leads["crm_id"].isin(set(frames.engagements["lead_crm_id"]))
    value = _share(engaged, n)
    checks.append(
        Check(
            "behavioural_data", round(value, 4), t.behavioural_share,
            PASS if value >= t.behavioural_share else (WARN if value > 0 else FAIL),
            "Sync marketing engagement (web visits, forms, webinars, email clicks): Salesforce "
            "Tasks of type Marketing or HubSpot analytics; without it the score is fit only.",
        )
    )  # fmt: skip

    deals = outcomes[outcomes["kind"] == "opportunity"]
    opened = pd.to_datetime(deals["occurred_at"], utc=True).groupby(deals["lead_crm_id"]).min()
    stale = opened[opened <= now_ts - pd.Timedelta(days=t.stale_deal_days)]
    closed = people.get("closed_won", set()) | people.get("closed_lost", set())
    open_share = _share(~stale.index.isin(closed), len(stale))
    checks.append(
        Check(
            "deals_without_outcome", round(open_share, 4), t.open_deals_pass,
            _at_most(open_share, t.open_deals_pass, t.open_deals_fail),
            f"Close or update opportunities older than {t.stale_deal_days} days; an open "
            "deal nobody closes is a label nobody can trust.",
            {"stale_deals": len(stale)},
        )
    )  # fmt: skip
    mode, why = decide_mode(checks, t)
    return ReadinessReport(tuple(checks), mode, why, label, now_ts.isoformat())


def decide_mode(checks: Any, thresholds: Thresholds = Thresholds()) -> tuple[str, str]:
    """``("ml", why)`` when the floor holds, else ``("rules", why)``.

    The floor: at least ``min_wins`` positives of the label and at least
    ``history_months_fail`` months of history.
    """
    items = checks.checks if isinstance(checks, ReadinessReport) else tuple(checks)
    by_name = {c.name: c for c in items}
    wins = by_name["positives"].value
    months = by_name["history_months"].value
    if wins < thresholds.min_wins:
        chance = " (below 100 a model is indistinguishable from chance)" * (
            wins < thresholds.random_wins
        )
        return "rules", f"{int(wins)} positives, {thresholds.min_wins} needed{chance}"
    if months < thresholds.history_months_fail:
        return "rules", f"{months} months of history, {thresholds.history_months_fail} needed"
    return "ml", f"{int(wins)} positives over {months} months"


def model_for(report: ReadinessReport, **params: Any) -> PropensityModel | RulesModel:
    """An unfitted model for the report's mode: `PropensityModel` (``params`` passed on)
    when the floor holds, else `RulesModel`, whose reasons carry the report's why."""
    if report.mode == "ml":
        return PropensityModel(**params)
    return RulesModel(why=f"below the data-readiness floor ({report.why})")


def latest_unmapped(store: Store, connection_id: int) -> dict[str, dict[str, int]]:
    """The vocabulary gaps the latest sync recorded."""
    with store.session() as session:
        stats = session.scalar(
            select(PipelineRun.stats)
            .where(PipelineRun.connection_id == connection_id, PipelineRun.step == "sync")
            .order_by(PipelineRun.id.desc())
            .limit(1)
        )
    return dict((stats or {}).get("unmapped") or {})


def assess_store(
    store: Store,
    connection_id: int,
    now: datetime | None = None,
    label: str = "meeting_booked",
    thresholds: Thresholds = Thresholds(),
) -> ReadinessReport:
    """`assess` on a connection's stored rows and its latest sync's vocabulary gaps."""
    frames = load_frames(store, connection_id)
    return assess(
        frames,
        now or utcnow(),
        unmapped=latest_unmapped(store, connection_id),
        label=label,
        thresholds=thresholds,
    )
