"""Features as of a cut-off: one spec shared by training and scoring.

Every row of a *panel* is (lead, cut-off). A feature only ever looks at
touches, engagements and outcomes at or before its row's cut-off, so a model
trained on past snapshots sees exactly what scoring will see today.
Vectorised: events are joined to panel rows and aggregated, never looped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from connectors.base import ENGAGEMENT_KINDS
from integration.store import Store
from integration.store.models import Account, Engagement, Lead, Outcome, Touch

TOUCH_TYPES = ("email", "call", "linkedin", "offer")
WINDOWS_DAYS = (7, 30)
DECAY_DAYS = 14.0
# Outcomes after which a lead is no longer an open prospect for the next meeting.
TERMINAL_OUTCOMES = ("meeting_booked", "opportunity", "disqualified", "closed_won", "closed_lost")
FREE_MAIL = frozenset(
    {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com",
     "proton.me", "protonmail.com", "gmx.de", "mail.com", "live.com"}
)  # fmt: skip

SENIORITY_RULES = (
    ("c_level", r"\b(?:chief|ceo|cfo|cto|cmo|coo|cio|ciso|cro|founder|co-founder|president)\b"),
    ("vp", r"\b(?:vp|svp|evp|vice president)\b"),
    ("director", r"\b(?:director|head of)\b"),
    ("manager", r"\b(?:manager|lead|supervisor)\b"),
)
DEPARTMENT_RULES = (
    ("it", r"\b(?:it|information|systems|ciso|cio|security|infrastructure)\b"),
    ("engineering", r"\b(?:engineer\w*|developer|cto|software|devops|technology|architect)\b"),
    ("sales", r"\b(?:sales|account executive|business development|cro|revenue)\b"),
    ("marketing", r"\b(?:marketing|cmo|growth|brand|demand)\b"),
    ("finance", r"\b(?:finance|financial|cfo|controller|accounting|accountant)\b"),
    ("operations", r"\b(?:operations|coo|supply|logistics|procurement)\b"),
)

CATEGORICAL = ("tier", "size_band", "industry", "region", "source", "seniority", "department")


def _numeric_names() -> tuple[str, ...]:
    names = [
        "age_days", "free_mail", "missing_title", "missing_phone", "missing_source",
        "missing_account", "missing_industry", "missing_employees", "log_employees",
    ]  # fmt: skip
    for kind in ENGAGEMENT_KINDS:
        names += [f"eng_{kind}_{w}d" for w in WINDOWS_DAYS] + [f"eng_{kind}_all"]
    names += ["eng_decay", "eng_days_since_last", "eng_days_since_first", "eng_pricing_then_form"]
    for kind in TOUCH_TYPES:
        names.append(f"touch_{kind}_all")
    names += ["touch_14d", "touch_days_since_last", "bounced", "touched"]
    return tuple(names)


NUMERIC = _numeric_names()
FEATURES = CATEGORICAL + NUMERIC


@dataclass(frozen=True)
class Frames:
    """The store's rows for one connection, as DataFrames (deleted rows dropped)."""

    leads: pd.DataFrame
    accounts: pd.DataFrame
    touches: pd.DataFrame
    engagements: pd.DataFrame
    outcomes: pd.DataFrame


def _read(store: Store, statement) -> pd.DataFrame:
    with store.engine.connect() as connection:
        result = connection.execute(statement)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def load_frames(store: Store, connection_id: int) -> Frames:
    leads = _read(
        store,
        select(
            Lead.crm_id, Lead.crm_object, Lead.account_crm_id, Lead.email_domain, Lead.title,
            Lead.phone, Lead.source, Lead.status, Lead.created_at, Lead.converted_at,
            Lead.converted_contact_crm_id,
        ).where(Lead.connection_id == connection_id, Lead.deleted.is_(False)),
    )  # fmt: skip
    # A Contact a lead was converted into is that same person: keep the lead's history only.
    duplicates = set(leads["converted_contact_crm_id"].dropna())
    leads = leads[~leads["crm_id"].isin(duplicates)].reset_index(drop=True)
    accounts = _read(
        store,
        select(
            Account.crm_id, Account.industry, Account.employees, Account.size_band,
            Account.region, Account.tier,
        ).where(Account.connection_id == connection_id, Account.deleted.is_(False)),
    )  # fmt: skip
    touches = _read(
        store,
        select(Touch.lead_crm_id, Touch.type, Touch.status, Touch.occurred_at).where(
            Touch.connection_id == connection_id, Touch.deleted.is_(False)
        ),
    )
    engagements = _read(
        store,
        select(Engagement.lead_crm_id, Engagement.kind, Engagement.occurred_at).where(
            Engagement.connection_id == connection_id, Engagement.deleted.is_(False)
        ),
    )
    outcomes = _read(
        store,
        select(Outcome.lead_crm_id, Outcome.kind, Outcome.occurred_at).where(
            Outcome.connection_id == connection_id, Outcome.deleted.is_(False)
        ),
    )
    return Frames(leads, accounts, touches, engagements, outcomes)


def _classify(titles: pd.Series, rules: tuple[tuple[str, str], ...], default: str) -> pd.Series:
    lowered = titles.fillna("").str.lower()
    out = pd.Series(default, index=titles.index, dtype=object)
    decided = pd.Series(False, index=titles.index)
    for label, pattern in rules:
        hit = lowered.str.contains(pattern, regex=True) & ~decided
        out[hit] = label
        decided |= hit
    out[titles.isna() | (lowered.str.strip() == "")] = "unknown"
    return out


def seniority(titles: pd.Series) -> pd.Series:
    return _classify(titles, SENIORITY_RULES, "individual")


def department(titles: pd.Series) -> pd.Series:
    return _classify(titles, DEPARTMENT_RULES, "other")


def _lead_attributes(frames: Frames) -> pd.DataFrame:
    """Static per-lead attributes (firmographics joined from the matched account)."""
    leads = frames.leads.set_index("crm_id")
    accounts = frames.accounts.set_index("crm_id")
    joined = leads.join(accounts, on="account_crm_id", how="left")
    out = pd.DataFrame(index=leads.index)
    for column in ("tier", "size_band", "industry", "region"):
        out[column] = joined[column].fillna("unknown").astype(str)
    out["source"] = leads["source"].fillna("unknown").astype(str)
    out["seniority"] = seniority(leads["title"])
    out["department"] = department(leads["title"])
    out["created_at"] = leads["created_at"]
    out["free_mail"] = leads["email_domain"].isin(FREE_MAIL).astype(float)
    out["missing_title"] = leads["title"].isna().astype(float)
    out["missing_phone"] = leads["phone"].isna().astype(float)
    out["missing_source"] = leads["source"].isna().astype(float)
    out["missing_account"] = joined["tier"].isna().astype(float)
    out["missing_industry"] = joined["industry"].isna().astype(float)
    employees = pd.to_numeric(joined["employees"], errors="coerce")
    out["missing_employees"] = employees.isna().astype(float)
    out["log_employees"] = np.log1p(employees.fillna(0.0))
    return out


def _events_as_of(events: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Join events to panel rows and keep those at or before each row's cut-off."""
    joined = panel[["row", "lead_crm_id", "cutoff"]].merge(events, on="lead_crm_id", how="inner")
    joined = joined[joined["occurred_at"] <= joined["cutoff"]]
    age = (joined["cutoff"] - joined["occurred_at"]).dt.total_seconds() / 86400.0
    return joined.assign(age_days=age.to_numpy())


def _count_by(frame: pd.DataFrame, key: str, n: int, prefix: str, kinds, suffix: str):
    counts = frame.groupby(["row", key]).size().unstack(fill_value=0)
    out = {}
    for kind in kinds:
        column = counts[kind] if kind in counts.columns else pd.Series(dtype=float)
        out[f"{prefix}_{kind}_{suffix}"] = column.reindex(range(n), fill_value=0).to_numpy(float)
    return out


def build_features(frames: Frames, panel: pd.DataFrame) -> pd.DataFrame:
    """Feature matrix for panel rows (``lead_crm_id``, ``cutoff``), in panel order.

    Leads missing from ``frames.leads`` get NaN attributes; callers pass real leads.
    """
    n = len(panel)
    panel = panel.reset_index(drop=True).assign(row=np.arange(n))
    attrs = _lead_attributes(frames).reindex(panel["lead_crm_id"].to_numpy())
    out = pd.DataFrame(index=range(n))
    for column in CATEGORICAL:
        out[column] = attrs[column].fillna("unknown").to_numpy()
    age = (panel["cutoff"].to_numpy() - attrs["created_at"].to_numpy()) / np.timedelta64(1, "D")
    out["age_days"] = np.clip(np.asarray(age, dtype=float), 0, None)
    for column in (
        "free_mail",
        "missing_title",
        "missing_phone",
        "missing_source",
        "missing_account",
        "missing_industry",
        "missing_employees",
        "log_employees",
    ):
        out[column] = attrs[column].fillna(0.0).to_numpy(float)  # fmt: skip

    eng = _events_as_of(frames.engagements, panel)
    for window in WINDOWS_DAYS:
        recent = eng[eng["age_days"] <= window]
        out = out.assign(**_count_by(recent, "kind", n, "eng", ENGAGEMENT_KINDS, f"{window}d"))
    out = out.assign(**_count_by(eng, "kind", n, "eng", ENGAGEMENT_KINDS, "all"))
    grouped = eng.groupby("row")["age_days"]
    decay = np.exp(-eng["age_days"] / DECAY_DAYS).groupby(eng["row"]).sum()
    out["eng_decay"] = decay.reindex(range(n), fill_value=0.0).to_numpy(float)
    # No activity at all reads as "long ago" rather than as zero days.
    out["eng_days_since_last"] = grouped.min().reindex(range(n)).fillna(999.0).to_numpy(float)
    out["eng_days_since_first"] = grouped.max().reindex(range(n)).fillna(999.0).to_numpy(float)
    first_pricing = eng[eng["kind"] == "pricing_page_visit"].groupby("row")["occurred_at"].min()
    last_form = eng[eng["kind"] == "form_fill"].groupby("row")["occurred_at"].max()
    sequence = pd.concat([first_pricing, last_form], axis=1, keys=["pricing", "form"]).dropna()
    pricing_first = (sequence["pricing"] <= sequence["form"]).reindex(range(n), fill_value=False)
    out["eng_pricing_then_form"] = pricing_first.to_numpy(float)

    touches = _events_as_of(frames.touches.rename(columns={"type": "kind"}), panel)
    out = out.assign(**_count_by(touches, "kind", n, "touch", TOUCH_TYPES, "all"))
    out["touch_14d"] = (
        touches[touches["age_days"] <= 14].groupby("row").size().reindex(range(n), fill_value=0)
    ).to_numpy(float)
    out["touch_days_since_last"] = (
        touches.groupby("row")["age_days"].min().reindex(range(n)).fillna(999.0).to_numpy(float)
    )
    out["touched"] = (touches.groupby("row").size().reindex(range(n), fill_value=0) > 0).to_numpy(
        float
    )
    bounced = _events_as_of(frames.outcomes[frames.outcomes["kind"] == "bounced"], panel)
    out["bounced"] = (bounced.groupby("row").size().reindex(range(n), fill_value=0) > 0).to_numpy(
        float
    )
    return out[list(FEATURES)]


def first_outcome(frames: Frames, kinds: tuple[str, ...]) -> pd.Series:
    """Earliest time of any of ``kinds`` per lead."""
    rows = frames.outcomes[frames.outcomes["kind"].isin(kinds)]
    return rows.groupby("lead_crm_id")["occurred_at"].min()


SNAPSHOT_AGES_DAYS = (1, 15, 29, 43, 57)


def _naive(series: pd.Series) -> np.ndarray:
    """UTC timestamps as naive datetime64[ns] (NaT kept), for fast vectorised comparisons."""
    values = pd.to_datetime(series, utc=True)
    return values.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def training_panel(
    frames: Frames,
    now: datetime,
    window_days: int,
    ages_days: tuple[int, ...] = SNAPSHOT_AGES_DAYS,
) -> pd.DataFrame:
    """Snapshots of open leads at fixed ages, labelled by what happened next.

    A row (lead, T) exists for T = created_at + age when the lead had no
    meeting, opportunity or disqualification by T and the whole label window
    (T, T + window] lies before ``now``. Its label is 1 when a meeting was
    booked in that window. ``age_days`` tells the first snapshot (a new lead,
    where routing decides who works it) from the later ones.
    """
    leads = frames.leads[["crm_id", "created_at"]].dropna()
    empty = pd.DataFrame(columns=["lead_crm_id", "cutoff", "snapshot_age", "label"])
    if leads.empty:
        return empty
    window = pd.Timedelta(days=window_days)
    terminal = first_outcome(frames, TERMINAL_OUTCOMES)
    meeting = first_outcome(frames, ("meeting_booked",))
    ids = leads["crm_id"].to_numpy()
    term = _naive(terminal.reindex(ids))
    met = _naive(meeting.reindex(ids))
    created = _naive(leads["created_at"])
    horizon = np.datetime64(pd.Timestamp(now).tz_convert(None), "ns")
    parts = []
    for age in ages_days:
        cutoff = created + np.timedelta64(age, "D")
        keep = (cutoff + window.to_timedelta64() <= horizon) & ~(term <= cutoff)
        label = (met > cutoff) & (met <= cutoff + window.to_timedelta64())
        parts.append(
            pd.DataFrame(
                {
                    "lead_crm_id": ids[keep],
                    "cutoff": pd.to_datetime(cutoff[keep]).tz_localize("UTC"),
                    "snapshot_age": age,
                    "label": label[keep].astype(int),
                }
            )
        )
    panel = pd.concat(parts, ignore_index=True)
    return panel if len(panel) else empty
