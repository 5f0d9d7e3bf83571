"""Features as of a cut-off: one spec shared by training and scoring.

Every row of a *panel* is (lead, cut-off). A feature only ever looks at
touches, engagements and outcomes at or before its row's cut-off, so a model
trained on past snapshots sees exactly what scoring will see today.

Vectorised without joining events to rows: each event stream is sorted by
(lead, time) once, and every as-of question (how many before the cut-off, in
the last 7 days, when was the last one, the decayed sum) is a binary search
into it, O((events + rows) log events) and no per-lead Python.

Static lead attributes (title, source, firmographics) are the CRM's current
values: the store keeps no field history except the lead status, and the
status is deliberately *not* a feature (it reveals the outcome). For the same
reason the current email opt-out flag is not a feature: it carries no date, so
a lead who unsubscribed after the cut-off would leak into the past. An
unsubscribe counts only when it arrives as a timestamped event
(``UNSUBSCRIBE_KINDS`` in engagements or outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select, type_coerce
from sqlalchemy.types import NullType

from connectors.base import ENGAGEMENT_KINDS
from integration.store import Store
from integration.store.models import Account, Connection, Engagement, Lead, Outcome, Touch

if TYPE_CHECKING:
    from connectors.sandbox.seed import CrmSeed
    from integration.modeling.hygiene import HygieneConfig, HygieneReport

FEATURE_VERSION = 2
TOUCH_TYPES = ("email", "call", "linkedin", "offer")
WINDOWS_DAYS = (7, 30)
DECAY_DAYS = 14.0  # e-folding time of the recency decay: an event 14 days old weighs 1/e
NONE_DAYS = 999.0  # "days since" when there is nothing: long ago rather than zero
# Outcomes after which a lead is no longer an open prospect for the next meeting.
TERMINAL_OUTCOMES = ("meeting_booked", "opportunity", "disqualified", "closed_won", "closed_lost")
# Timestamped unsubscribes, wherever a connector records them.
UNSUBSCRIBE_KINDS = ("unsubscribe", "unsubscribed", "email_opt_out")
ROLE_MAILBOXES = frozenset(
    {"info", "sales", "contact", "admin", "hello", "support", "office", "marketing", "team",
     "billing", "hr", "jobs", "careers", "enquiries", "inquiries", "noreply", "no-reply"}
)  # fmt: skip

CATEGORICAL = ("tier", "size_band", "industry", "region", "source", "seniority", "department")


def _numeric_names() -> tuple[str, ...]:
    names = [
        "age_days", "free_mail", "role_mailbox", "missing_title", "missing_phone",
        "missing_source", "missing_account", "missing_industry", "missing_employees",
        "log_employees",
    ]  # fmt: skip
    for kind in ENGAGEMENT_KINDS:
        names += [f"eng_{kind}_{w}d" for w in WINDOWS_DAYS] + [f"eng_{kind}_all"]
        names += [f"eng_{kind}_decay", f"eng_{kind}_days_since_last"]
    names += [
        "eng_decay", "eng_days_since_last", "eng_days_since_first", "eng_kinds",
        "eng_before_created", "eng_after_touch", "eng_pricing_then_form",
        "eng_click_then_pricing",
    ]  # fmt: skip
    for kind in TOUCH_TYPES:
        names.append(f"touch_{kind}_all")
    names += [
        "touch_14d", "touch_days_since_last", "touch_days_since_first", "touch_no_answer",
        "touched", "bounced", "unsubscribed", "acct_leads", "acct_meetings",
        "acct_disqualified",
    ]  # fmt: skip
    return tuple(names)


NUMERIC = _numeric_names()
FEATURES = CATEGORICAL + NUMERIC


def feature_spec() -> dict[str, Any]:
    """What a model trained on these features depends on (stored with each model version)."""
    return {
        "version": FEATURE_VERSION,
        "categorical": list(CATEGORICAL),
        "numeric": list(NUMERIC),
        "windows_days": list(WINDOWS_DAYS),
        "decay_days": DECAY_DAYS,
    }


@dataclass(frozen=True)
class Frames:
    """The store's rows for one connection, as DataFrames (deleted rows dropped).

    ``aliases`` (merged crm_id → canonical crm_id) and ``hygiene`` are set once
    the frames went through `integration.modeling.hygiene.clean_frames`.
    """

    leads: pd.DataFrame
    accounts: pd.DataFrame
    touches: pd.DataFrame
    engagements: pd.DataFrame
    outcomes: pd.DataFrame
    aliases: pd.Series | None = None
    hygiene: HygieneReport | None = None


READ_CHUNK = 200_000  # rows fetched and converted at a time


def _shared(values: np.ndarray) -> np.ndarray:
    """The same values, equal strings sharing one object (a million copies of a lead id
    or an event kind would otherwise each hold their own)."""
    codes, uniques = pd.factorize(values)
    if not len(uniques):
        return values
    out = np.asarray(uniques, dtype=object).take(codes)
    out[codes < 0] = None
    return out


def _utc(values: np.ndarray) -> np.ndarray:
    """Stored times (SQLite's text, PostgreSQL's datetimes) as UTC datetime64[us] int64."""
    parsed = pd.to_datetime(values, utc=True, format="ISO8601" if _texts(values) else None)
    return np.asarray(parsed.tz_convert(None).as_unit("us").asi8)


def _texts(values: np.ndarray) -> bool:
    return any(isinstance(v, str) for v in values[:100])


def _read(store: Store, statement, shared: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of ``statement`` as a DataFrame; ``*_at`` columns as UTC datetimes.

    What ``pd.DataFrame(result.fetchall())`` would build (same values, same dtypes),
    fetched in chunks without per-value type processing: times are parsed in bulk,
    and the values of the ``shared`` columns are interned per chunk.
    """
    names = [c.key for c in statement.selected_columns]
    timed = [n.endswith("_at") for n in names]
    # Times come back as the driver gives them and are parsed in bulk below.
    raw = statement.with_only_columns(
        *[
            type_coerce(c, NullType()).label(n) if t else c
            for c, n, t in zip(statement.selected_columns, names, timed, strict=True)
        ]
    )
    parts: list[list[np.ndarray]] = [[] for _ in names]
    with store.engine.connect() as connection:
        result = connection.execution_options(stream_results=True).execute(raw)
        for rows in result.partitions(READ_CHUNK):
            for j, column in enumerate(zip(*rows, strict=True)):
                values = np.array(column, dtype=object)
                if timed[j]:
                    missing = pd.isna(values)
                    stamps = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
                    if not missing.all():
                        stamps[~missing] = _utc(values[~missing])
                    values = stamps
                elif names[j] in shared:
                    values = _shared(values)
                parts[j].append(values)
    if not parts[0]:
        frame = pd.DataFrame([], columns=names)
        for name, is_time in zip(names, timed, strict=True):
            if is_time:
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame
    columns: dict[str, Any] = {}
    for name, is_time, chunks in zip(names, timed, parts, strict=True):
        values = np.concatenate(chunks)
        if not is_time:
            columns[name] = values.tolist()  # inferred exactly as the rows would be
        elif (values == np.iinfo(np.int64).min).all():
            columns[name] = pd.to_datetime(pd.Series([None] * len(values), dtype=object), utc=True)
        else:
            columns[name] = pd.Series(values.view("datetime64[us]")).dt.tz_localize("UTC")
    return pd.DataFrame(columns)


def load_frames(store: Store, connection_id: int, hygiene: HygieneConfig | None = None) -> Frames:
    """The connection's live rows, cleaned (see `integration.modeling.hygiene`).

    Args:
        store: the store.
        connection_id: whose rows.
        hygiene: the cleaning rules; by default the connection's
            ``settings["hygiene"]`` over the built-in defaults.
    """
    # Imported here: integration.modeling's package imports modules that import this one.
    from integration.modeling.hygiene import HygieneConfig, clean_frames

    leads = _read(
        store,
        select(
            Lead.crm_id, Lead.crm_object, Lead.account_crm_id, Lead.email, Lead.email_domain,
            Lead.first_name, Lead.last_name, Lead.company, Lead.title, Lead.phone, Lead.source,
            Lead.status, Lead.raw["lifecyclestage"].as_string().label("lifecycle"),
            Lead.created_at, Lead.converted_at, Lead.converted_contact_crm_id,
        ).where(Lead.connection_id == connection_id, Lead.deleted.is_(False)),
        shared=("crm_object", "account_crm_id", "email_domain", "first_name", "last_name",
                "company", "title", "source", "status", "lifecycle", "converted_contact_crm_id"),
    )  # fmt: skip
    accounts = _read(
        store,
        select(
            Account.crm_id, Account.domain, Account.industry, Account.employees,
            Account.size_band, Account.region, Account.tier,
        ).where(Account.connection_id == connection_id, Account.deleted.is_(False)),
        shared=("industry", "size_band", "region", "tier"),
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
    if hygiene is None:
        with store.session() as session:
            connection = session.get(Connection, connection_id)
            hygiene = HygieneConfig.from_settings(
                (connection.settings or {}).get("hygiene") if connection else None
            )
    return clean_frames(Frames(leads, accounts, touches, engagements, outcomes), hygiene)


def frames_from_seed(seed: CrmSeed, hygiene: HygieneConfig | None = None) -> Frames:
    """Frames as a Salesforce sync of ``seed`` would store them, without a CRM (cleaned).

    Ids are ``L<lead_key>`` / ``A<account_key>``; statuses stay in the seed's
    neutral vocabulary; outcomes follow the connectors' rules: a meeting counts
    when booked, an opportunity when created, a win or loss when closed, a
    disqualification when the status changed to it, a bounce at the first bounced
    email. One known difference: the seed's region is kept, where the Salesforce
    connector derives it from the billing country (and files Mexico under NA).
    """
    from integration.modeling.hygiene import clean_frames

    def ids(prefix: str, keys: pd.Series) -> pd.Series:
        keys = keys.astype("Int64")
        text = prefix + keys.astype(str)
        return text.where(keys.notna().to_numpy(), None).astype(object)

    s = seed
    email = s.leads["email"].astype(object)
    domain = email.str.rsplit("@", n=1).str[-1].str.lower()
    leads = pd.DataFrame(
        {
            "crm_id": ids("L", s.leads["lead_key"]),
            "crm_object": "Lead",
            "account_crm_id": ids("A", s.leads["account_key"]),
            "email": email,
            "email_domain": domain.astype(object),
            "first_name": s.leads["first_name"].astype(object),
            "last_name": s.leads["last_name"].astype(object),
            "company": s.leads["company"].astype(object),
            "title": s.leads["title"].astype(object),
            "phone": s.leads["phone"].astype(object),
            "source": s.leads["lead_source"].astype(object),
            "status": s.leads["status"].astype(object),
            "lifecycle": pd.Series([None] * len(s.leads), dtype=object),
            "created_at": s.leads["created_at"],
            "converted_at": s.leads["converted_at"],
            "converted_contact_crm_id": pd.Series([None] * len(s.leads), dtype=object),
        }
    )
    accounts = pd.DataFrame(
        {
            "crm_id": ids("A", s.accounts["account_key"]),
            "domain": s.accounts["domain"].astype(object),
            "industry": s.accounts["industry"].astype(object),
            "employees": s.accounts["employees"],
            "size_band": s.accounts["size_band"].astype(object),
            "region": s.accounts["region"].astype(object),
            "tier": s.accounts["tier"].astype(object),
        }
    )
    touches = pd.DataFrame(
        {
            "lead_crm_id": ids("L", s.touches["lead_key"]),
            "type": s.touches["kind"].astype(object),
            "status": s.touches["status"].astype(object),
            "occurred_at": s.touches["occurred_at"],
        }
    )
    engagements = pd.DataFrame(
        {
            "lead_crm_id": ids("L", s.engagements["lead_key"]),
            "kind": s.engagements["kind"].astype(object),
            "occurred_at": s.engagements["occurred_at"],
        }
    )
    opps = s.opportunities
    closed = opps[opps["stage"].isin(("closed_won", "closed_lost")) & opps["closed_at"].notna()]
    disqualified = s.status_changes[s.status_changes["new_status"] == "disqualified"]
    bounced = (
        s.touches[s.touches["status"] == "bounced"]
        .groupby("lead_key", as_index=False)["occurred_at"]
        .min()
    )
    parts = [
        (s.meetings["lead_key"], "meeting_booked", s.meetings["booked_at"]),
        (opps["lead_key"], "opportunity", opps["created_at"]),
        (closed["lead_key"], closed["stage"], closed["closed_at"]),
        (disqualified["lead_key"], "disqualified", disqualified["changed_at"]),
        (bounced["lead_key"], "bounced", bounced["occurred_at"]),
    ]
    outcomes = pd.concat(
        [
            pd.DataFrame(
                {
                    "lead_crm_id": ids("L", keys.reset_index(drop=True)),
                    "kind": (kind.to_numpy() if isinstance(kind, pd.Series) else kind),
                    "occurred_at": at.reset_index(drop=True),
                }
            )
            for keys, kind, at in parts
        ],
        ignore_index=True,
    )
    outcomes["kind"] = outcomes["kind"].astype(object)
    return clean_frames(Frames(leads, accounts, touches, engagements, outcomes), hygiene)


def seniority(titles: pd.Series) -> pd.Series:
    """Seniority per title (the rules live in `integration.modeling.hygiene`)."""
    from integration.modeling.hygiene import seniority as classify

    return classify(titles)


def department(titles: pd.Series) -> pd.Series:
    """Department per title (the rules live in `integration.modeling.hygiene`)."""
    from integration.modeling.hygiene import department as classify

    return classify(titles)


def _free_mail() -> frozenset[str]:
    from integration.modeling.hygiene import FREE_MAIL

    return FREE_MAIL


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return frame[column].astype(object)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _lead_attributes(frames: Frames) -> pd.DataFrame:
    """Static per-lead attributes (firmographics joined from the matched account)."""
    leads = frames.leads.drop_duplicates("crm_id").set_index("crm_id")
    accounts = frames.accounts.drop_duplicates("crm_id").set_index("crm_id")
    accounts = accounts.reindex(columns=["tier", "size_band", "industry", "region", "employees"])
    joined = leads[["account_crm_id"]].join(accounts, on="account_crm_id", how="left")
    title = _text(leads, "title")
    out = pd.DataFrame(index=leads.index)
    for column in ("tier", "size_band", "industry", "region"):
        out[column] = joined[column].astype(object).fillna("unknown").astype(str)
    out["source"] = _text(leads, "source").fillna("unknown").astype(str)
    # Clean frames carry the normalised title; hand-made ones are classified here.
    out["seniority"] = (
        leads["seniority"].astype(object).fillna("unknown")
        if "seniority" in leads.columns
        else seniority(title)
    )
    out["department"] = (
        leads["department"].astype(object).fillna("unknown")
        if "department" in leads.columns
        else department(title)
    )
    email = _text(leads, "email").str.strip().str.lower()
    domain = _text(leads, "email_domain").str.lower().fillna(email.str.rsplit("@", n=1).str[-1])
    out["free_mail"] = domain.isin(_free_mail()).astype(float)
    out["role_mailbox"] = email.str.split("@").str[0].isin(ROLE_MAILBOXES).astype(float)
    blank_title = title.isna() | (title.astype(str).str.strip() == "")
    out["missing_title"] = blank_title.astype(float)
    out["missing_phone"] = _text(leads, "phone").isna().astype(float)
    out["missing_source"] = _text(leads, "source").isna().astype(float)
    out["missing_account"] = joined["tier"].isna().astype(float)
    out["missing_industry"] = joined["industry"].isna().astype(float)
    employees = pd.to_numeric(joined["employees"], errors="coerce")
    out["missing_employees"] = employees.isna().astype(float)
    out["log_employees"] = np.log1p(employees.fillna(0.0).clip(lower=0.0))
    out["account_crm_id"] = leads["account_crm_id"].astype(object)
    out["created_at"] = leads["created_at"]
    return out


def _ns(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """UTC times as int64 nanoseconds since the epoch, and a missing mask."""
    series = pd.to_datetime(pd.Series(values).reset_index(drop=True), utc=True)
    missing = series.isna().to_numpy()
    ns = series.dt.tz_convert(None).astype("datetime64[ns]").to_numpy().view(np.int64)
    return np.where(missing, 0, ns), missing


class _Clock:
    """Integer ticks for sorted keys ``code * span + tick``; events round up, cut-offs
    down, so an event never counts before a cut-off it follows."""

    def __init__(self, times_ns: list[np.ndarray], n_codes: int) -> None:
        finite = [t for t in times_ns if t.size]
        lo = min(int(t.min()) for t in finite) if finite else 0
        hi = max(int(t.max()) for t in finite) if finite else 0
        self.unit = 1_000_000  # 1 ms, coarser only when the key would overflow int64
        while (n_codes + 2) * ((hi - lo) // self.unit + 4) > 2**62:
            self.unit *= 10
        self.origin = lo // self.unit - 1
        self.span = (hi - lo) // self.unit + 4
        self.day = 86_400 * 1_000_000_000 / self.unit

    def event(self, ns: np.ndarray) -> np.ndarray:
        return np.clip(-(-ns // self.unit) - self.origin, 1, self.span - 2)

    def cutoff(self, ns: np.ndarray) -> np.ndarray:
        return np.clip(ns // self.unit - self.origin, 0, self.span - 1)


class _Timeline:
    """One event stream sorted by (code, tick) for as-of queries per (code, cut-off)."""

    def __init__(self, codes: np.ndarray, ticks: np.ndarray, clock: _Clock) -> None:
        order = np.lexsort((ticks, codes))
        self.codes = codes[order]
        self.ticks = ticks[order]
        self.span = clock.span
        self.day = clock.day
        self.key = self.codes * self.span + self.ticks
        self._decay: tuple[np.ndarray, np.ndarray] | None = None
        self._start: tuple[np.ndarray, np.ndarray] | None = None

    def upto(self, codes: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        """Index one past the last event of ``codes`` at or before ``ticks``."""
        return np.searchsorted(self.key, codes * self.span + np.maximum(ticks, 0), side="right")

    def start(self, codes: np.ndarray) -> np.ndarray:
        if self._start is None or self._start[0] is not codes:
            # Every query of one build asks about the same rows: search their starts once.
            self._start = (codes, np.searchsorted(self.key, codes * self.span, side="left"))
        return self._start[1]

    def count(self, codes: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        return (self.upto(codes, ticks) - self.start(codes)).astype(float)

    def window(self, codes: np.ndarray, ticks: np.ndarray, days: float) -> np.ndarray:
        """Events in (cut-off - days, cut-off]."""
        earlier = ticks - round(days * self.day)
        return (self.upto(codes, ticks) - self.upto(codes, earlier)).astype(float)

    def last_tick(self, codes: np.ndarray, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tick of the last event at or before each cut-off, and whether there is one."""
        end = self.upto(codes, ticks)
        has = end > self.start(codes)
        return np.where(has, self.ticks[np.maximum(end - 1, 0)] if self.ticks.size else 0, 0), has

    def first_tick(self, codes: np.ndarray, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        begin = self.start(codes)
        has = self.upto(codes, ticks) > begin
        safe = np.minimum(begin, max(self.ticks.size - 1, 0))
        return np.where(has, self.ticks[safe] if self.ticks.size else 0, 0), has

    def days_since_last(self, codes: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        last, has = self.last_tick(codes, ticks)
        return np.where(has, (ticks - last) / self.day, NONE_DAYS)

    def days_since_first(self, codes: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        first, has = self.first_tick(codes, ticks)
        return np.where(has, (ticks - first) / self.day, NONE_DAYS)

    def decayed(self, codes: np.ndarray, ticks: np.ndarray, days: float) -> np.ndarray:
        """Sum over events at or before the cut-off of exp(-age / days)."""
        if not self.ticks.size:
            return np.zeros(codes.shape[0])
        scale = days * self.day
        if self._decay is None:
            # Anchor each code's weights at its last event (weights <= 1) and sum them
            # within the code only, so no large sum is ever subtracted from another.
            last = np.flatnonzero(np.r_[self.codes[1:] != self.codes[:-1], True])
            anchor = np.repeat(self.ticks[last], np.diff(np.r_[-1, last]))
            weights = np.exp((self.ticks - anchor) / scale)
            running = pd.Series(weights).groupby(self.codes).cumsum().to_numpy()
            self._decay = (anchor, running)
        anchor, running = self._decay
        end = self.upto(codes, ticks)
        has = end > self.start(codes)
        at = np.maximum(end - 1, 0)
        with np.errstate(over="ignore"):
            value = running[at] * np.exp((anchor[at] - ticks) / scale)
        return np.where(has, value, 0.0)


@dataclass
class _Coded:
    """An event table's rows as lead codes and ticks (rows of unknown leads dropped)."""

    codes: np.ndarray
    ticks: np.ndarray
    keep: np.ndarray  # which of the table's rows these are

    @classmethod
    def of(cls, frame: pd.DataFrame, lead_index: pd.Index, clock: _Clock) -> _Coded:
        codes = lead_index.get_indexer(frame["lead_crm_id"].astype(object).to_numpy())
        ns, missing = _ns(frame["occurred_at"])
        keep = (codes >= 0) & ~missing
        return cls(codes[keep].astype(np.int64), clock.event(ns[keep]), keep)

    def line(self, clock: _Clock, mask: Any = None) -> _Timeline:
        if mask is None:
            return _Timeline(self.codes, self.ticks, clock)
        chosen = np.asarray(mask, dtype=bool)[self.keep]
        return _Timeline(self.codes[chosen], self.ticks[chosen], clock)


def build_features(frames: Frames, panel: pd.DataFrame) -> pd.DataFrame:
    """Feature matrix for panel rows (``lead_crm_id``, ``cutoff``), in panel order.

    Categorical columns are strings (``"unknown"`` when blank), numeric ones are
    finite floats. Leads missing from ``frames.leads`` get ``unknown`` / zero
    attributes; callers pass real leads.
    """
    n = len(panel)
    attrs = _lead_attributes(frames)
    lead_index = pd.Index(attrs.index.astype(object))
    n_codes = len(lead_index)
    codes = lead_index.get_indexer(panel["lead_crm_id"].astype(object).to_numpy())
    known = codes >= 0
    # An unknown lead gets a code no event carries.
    codes = np.where(known, codes, n_codes).astype(np.int64)
    cutoff_ns, cutoff_missing = _ns(panel["cutoff"])
    if cutoff_missing.any():
        raise ValueError("every panel row needs a cut-off")

    eng, touches, outcomes = frames.engagements, frames.touches, frames.outcomes
    created_ns, created_missing = _ns(attrs["created_at"])
    clock = _Clock(
        [cutoff_ns, created_ns[~created_missing]]
        + [_ns(t["occurred_at"])[0] for t in (eng, touches, outcomes) if len(t)],
        n_codes + 1,
    )
    c = clock.cutoff(cutoff_ns)
    undated = clock.span - 1
    created_tick = np.full(n_codes + 1, undated, dtype=np.int64)
    created_tick[:n_codes] = np.where(created_missing, undated, clock.event(created_ns))
    row_created = created_tick[codes]

    out: dict[str, np.ndarray] = {}
    rows = np.minimum(codes, max(n_codes - 1, 0))
    for column in CATEGORICAL:
        values = attrs[column].to_numpy(dtype=object)[rows] if n_codes else np.full(n, "")
        out[column] = np.where(known, values, "unknown").astype(object)
    out["age_days"] = np.where(row_created < undated, (c - row_created) / clock.day, 0.0).clip(0)
    for column in (
        "free_mail", "role_mailbox", "missing_title", "missing_phone", "missing_source",
        "missing_account", "missing_industry", "missing_employees", "log_employees",
    ):  # fmt: skip
        values = attrs[column].to_numpy(dtype=float)[rows] if n_codes else np.zeros(n)
        out[column] = np.where(known, np.nan_to_num(values), 0.0)

    coded = _Coded.of(eng, lead_index, clock)
    any_eng = coded.line(clock)
    kinds = eng["kind"].astype(object).to_numpy()
    per_kind = {k: coded.line(clock, kinds == k) for k in ENGAGEMENT_KINDS}
    for kind, line in per_kind.items():
        for window in WINDOWS_DAYS:
            out[f"eng_{kind}_{window}d"] = line.window(codes, c, window)
        out[f"eng_{kind}_all"] = line.count(codes, c)
        out[f"eng_{kind}_decay"] = line.decayed(codes, c, DECAY_DAYS)
        out[f"eng_{kind}_days_since_last"] = line.days_since_last(codes, c)
    out["eng_decay"] = any_eng.decayed(codes, c, DECAY_DAYS)
    out["eng_days_since_last"] = any_eng.days_since_last(codes, c)
    out["eng_days_since_first"] = any_eng.days_since_first(codes, c)
    out["eng_kinds"] = np.sum([out[f"eng_{k}_all"] > 0 for k in ENGAGEMENT_KINDS], axis=0) * 1.0
    # Anonymous research attached when the lead was identified (before it existed).
    before_created = np.minimum(c, row_created - 1)
    out["eng_before_created"] = np.where(
        row_created < undated, any_eng.count(codes, before_created), 0.0
    )

    touch_coded = _Coded.of(touches, lead_index, clock)
    touch_line = touch_coded.line(clock)
    first_touch, touched = touch_line.first_tick(codes, c)
    # Engagement after the first sales touch: the lead answering outreach.
    after = any_eng.count(codes, c) - any_eng.count(codes, first_touch)
    out["eng_after_touch"] = np.where(touched, after, 0.0)
    pricing, form = per_kind["pricing_page_visit"], per_kind["form_fill"]
    first_pricing, has_pricing = pricing.first_tick(codes, c)
    last_form, has_form = form.last_tick(codes, c)
    out["eng_pricing_then_form"] = (has_pricing & has_form & (last_form >= first_pricing)) * 1.0
    first_click, has_click = per_kind["email_click"].first_tick(codes, c)
    last_pricing, _ = pricing.last_tick(codes, c)
    out["eng_click_then_pricing"] = (has_click & has_pricing & (last_pricing >= first_click)) * 1.0

    touch_kind = _text(touches, "type" if "type" in touches.columns else "kind").to_numpy()
    for kind in TOUCH_TYPES:
        out[f"touch_{kind}_all"] = touch_coded.line(clock, touch_kind == kind).count(codes, c)
    out["touch_14d"] = touch_line.window(codes, c, 14)
    out["touch_days_since_last"] = touch_line.days_since_last(codes, c)
    out["touch_days_since_first"] = touch_line.days_since_first(codes, c)
    status = _text(touches, "status").to_numpy()
    out["touch_no_answer"] = touch_coded.line(clock, status == "no_answer").count(codes, c)
    out["touched"] = touched * 1.0

    outcome_coded = _Coded.of(outcomes, lead_index, clock)
    outcome_kind = outcomes["kind"].astype(object).to_numpy()
    bounced = outcome_coded.line(clock, outcome_kind == "bounced").count(codes, c)
    bounced += touch_coded.line(clock, status == "bounced").count(codes, c)
    out["bounced"] = (bounced > 0) * 1.0
    unsubscribed = outcome_coded.line(clock, np.isin(outcome_kind, UNSUBSCRIBE_KINDS)).count(
        codes, c
    )
    unsubscribed += coded.line(clock, np.isin(kinds, UNSUBSCRIBE_KINDS)).count(codes, c)
    out["unsubscribed"] = (unsubscribed > 0) * 1.0
    out.update(_account_history(frames, attrs, lead_index, codes, c, created_tick, clock))
    return pd.DataFrame(out, index=range(n))[list(FEATURES)]


def _account_history(
    frames: Frames,
    attrs: pd.DataFrame,
    lead_index: pd.Index,
    codes: np.ndarray,
    c: np.ndarray,
    created_tick: np.ndarray,
    clock: _Clock,
) -> dict[str, np.ndarray]:
    """What the lead's colleagues did by the cut-off: leads at the account, their first
    meetings, their disqualifications (the lead's own never counted)."""
    n_codes = len(lead_index)
    account_of = np.full(n_codes + 1, -1, dtype=np.int64)
    if n_codes:
        account_codes, _ = pd.factorize(attrs["account_crm_id"], use_na_sentinel=True)
        account_of[:n_codes] = account_codes
    n_accounts = int(account_of.max()) + 1
    row_account = account_of[codes]
    query = np.where(row_account >= 0, row_account, n_accounts)  # no account: empty
    out = {}

    def by_account(lead_codes: np.ndarray, ticks: np.ndarray) -> _Timeline:
        keep = (lead_codes >= 0) & (account_of[lead_codes] >= 0)
        return _Timeline(account_of[lead_codes[keep]], ticks[keep], clock)

    leads_ticks = created_tick[:n_codes]
    dated = leads_ticks < clock.span - 1
    account_leads = by_account(np.flatnonzero(dated), leads_ticks[dated])
    own = (created_tick[codes] <= c) & (created_tick[codes] < clock.span - 1)
    out["acct_leads"] = np.maximum(account_leads.count(query, c) - own, 0.0)
    for name, kind in (("acct_meetings", "meeting_booked"), ("acct_disqualified", "disqualified")):
        rows = frames.outcomes[frames.outcomes["kind"] == kind]
        lead_codes = lead_index.get_indexer(rows["lead_crm_id"].astype(object).to_numpy())
        ns, missing = _ns(rows["occurred_at"])
        first = (
            pd.DataFrame({"lead": lead_codes, "tick": clock.event(ns)})[
                (lead_codes >= 0) & ~missing
            ]
            .groupby("lead")["tick"]
            .min()
        )
        lead_first = np.full(n_codes + 1, clock.span, dtype=np.int64)
        lead_first[first.index.to_numpy()] = first.to_numpy()
        line = by_account(first.index.to_numpy(dtype=np.int64), first.to_numpy(dtype=np.int64))
        out[name] = np.maximum(line.count(query, c) - (lead_first[codes] <= c), 0.0)
    return out


def first_outcome(frames: Frames, kinds: tuple[str, ...]) -> pd.Series:
    """Earliest time of any of ``kinds`` per lead."""
    rows = frames.outcomes[frames.outcomes["kind"].isin(kinds)]
    return rows.groupby("lead_crm_id")["occurred_at"].min()


SNAPSHOT_AGES_DAYS = (1, 15, 29, 43, 57)


def naive_times(series: pd.Series) -> np.ndarray:
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
    term = naive_times(terminal.reindex(ids))
    met = naive_times(meeting.reindex(ids))
    created = naive_times(leads["created_at"])
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
