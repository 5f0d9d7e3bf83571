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

import json
import os
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import any_, bindparam, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import NullType, String

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
_NO_TIME = np.iinfo(np.int64).min  # NaT
BUILD_ROWS = 200_000  # panel rows featurised at a time
BUILD_THREADS = min(2, os.cpu_count() or 1)  # slices featurised side by side


def _utc(values: np.ndarray) -> np.ndarray:
    """Stored times (SQLite's text, PostgreSQL's datetimes) as UTC datetime64[us] int64."""
    text = any(isinstance(v, str) for v in values[:100])
    parsed = pd.to_datetime(values, utc=True, format="ISO8601" if text else None)
    return np.asarray(parsed.tz_convert(None).as_unit("us").asi8)


def _chunks(connection: Any, statement: Any) -> Iterator[list[tuple[Any, ...]]]:
    """The statement's rows as the driver's tuples, a chunk at a time."""
    if connection.dialect.name == "sqlite":
        # sqlite3 steps through the rows as they are fetched: read its cursor directly.
        cursor = connection.execute(statement).cursor
        while rows := cursor.fetchmany(READ_CHUNK):
            yield rows
    else:
        result = connection.execution_options(stream_results=True).execute(statement)
        for rows in result.partitions(READ_CHUNK):
            yield [tuple(row) for row in rows]


def _read(
    store: Store, statement: Any, shared: tuple[str, ...] = (), columnar_ok: bool = True
) -> pd.DataFrame:
    """Rows of ``statement`` as a DataFrame; ``*_at`` columns as UTC datetimes.

    What ``pd.DataFrame(result.fetchall())`` would build (same values, same dtypes),
    fetched in chunks without per-value type processing: times are parsed in bulk,
    and equal values of the ``shared`` columns (lead ids, kinds) become one object
    instead of one per row.

    Read in columns through ADBC where it can (`integration.store.columnar`: the same
    frame, without a Python object per value), unless a short id list picks the rows;
    the rows below are the reference and the fallback.
    """
    # Imported where used: here and in `load_frames`, its only users.
    from integration.store import columnar

    bulk = columnar_ok and not columnar.picks_few(statement)
    frame = columnar.read_frame(store, statement) if bulk else None
    if frame is not None:
        return frame
    names = [c.key for c in statement.selected_columns]
    timed = [n.endswith("_at") for n in names]
    # Times come back as the driver gives them and are parsed in bulk below.
    raw = statement.with_only_columns(
        *[
            type_coerce(c, NullType()).label(n) if t else c
            for c, n, t in zip(statement.selected_columns, names, timed, strict=True)
        ]
    )
    interned: dict[int, dict[Any, Any]] = {j: {} for j, n in enumerate(names) if n in shared}
    parts: list[list[Any]] = [[] for _ in names]
    with store.engine.connect() as connection:
        for rows in _chunks(connection, raw):
            for j in range(len(names)):
                column = list(map(itemgetter(j), rows))
                if timed[j]:
                    values = np.array(column, dtype=object)
                    missing = pd.isna(values)
                    stamps = np.full(len(values), _NO_TIME, dtype=np.int64)
                    if not missing.all():
                        stamps[~missing] = _utc(values[~missing])
                    parts[j].append(stamps)
                elif j in interned:
                    parts[j].append(list(map(interned[j].setdefault, column, column)))
                else:
                    parts[j].append(column)
    if not parts[0]:
        frame = pd.DataFrame([], columns=names)
        for name, is_time in zip(names, timed, strict=True):
            if is_time:
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame
    columns: dict[str, Any] = {}
    for name, is_time, chunks in zip(names, timed, parts, strict=True):
        if not is_time:
            # A list of the values: dtypes are inferred exactly as from the rows.
            columns[name] = [v for chunk in chunks for v in chunk]
            continue
        stamps = np.concatenate(chunks)
        if (stamps == _NO_TIME).all():
            columns[name] = pd.to_datetime(pd.Series([None] * len(stamps), dtype=object), utc=True)
        else:
            columns[name] = pd.Series(stamps.view("datetime64[us]")).dt.tz_localize("UTC")
    return pd.DataFrame(columns)


def read_frame(store: Store, statement: Any) -> pd.DataFrame:
    """The rows of ``statement`` as ``pd.DataFrame(rows)`` would hold them (same values,
    same dtypes; ``*_at`` columns as UTC datetimes), read in bulk."""
    return _read(store, statement)


def among(store: Store, column: Any, ids: Sequence[str]) -> Any:
    """``column IN ids`` as one bound parameter whatever the count (a scoring chunk
    holds 100,000 ids: more than a statement may bind one by one)."""
    if store.dialect == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(String()), unique=True))
    values = select(literal_column("value")).select_from(
        func.json_each(bindparam("ids", json.dumps(list(ids)), unique=True))
    )
    return column.in_(values.scalar_subquery())


def load_frames(
    store: Store,
    connection_id: int,
    hygiene: HygieneConfig | None = None,
    lead_ids: Sequence[str] | None = None,
) -> Frames:
    """The connection's live rows, cleaned (see `integration.modeling.hygiene`).

    Args:
        store: the store.
        connection_id: whose rows.
        hygiene: the cleaning rules; by default the connection's
            ``settings["hygiene"]`` over the built-in defaults.
        lead_ids: only these leads, their accounts and their events (a chunk of a
            pass spread over workers: `integration.score_partition` makes chunks that
            hold whole people and whole accounts, so cleaning and the account
            features see what they would see over every lead).
    """
    from functools import partial

    # Imported here: integration.modeling's package imports modules that import this one.
    from integration.modeling.hygiene import clean_frames, clean_leads
    from integration.store import columnar

    def only(column: Any) -> tuple[Any, ...]:
        return () if lead_ids is None else (among(store, column, lead_ids),)

    accounts_of_leads = select(Lead.account_crm_id).where(
        Lead.connection_id == connection_id, *only(Lead.crm_id)
    )
    reads: dict[str, tuple[Any, tuple[str, ...]]] = {}
    reads["leads"] = (
        select(
            Lead.crm_id, Lead.crm_object, Lead.account_crm_id, Lead.email, Lead.email_domain,
            Lead.first_name, Lead.last_name, Lead.company, Lead.title, Lead.phone, Lead.source,
            Lead.status, Lead.raw["lifecyclestage"].as_string().label("lifecycle"),
            Lead.created_at, Lead.converted_at, Lead.converted_contact_crm_id,
        ).where(Lead.connection_id == connection_id, Lead.deleted.is_(False), *only(Lead.crm_id)),
        ("crm_object", "account_crm_id", "email_domain", "first_name", "last_name", "company",
         "title", "source", "status", "lifecycle", "converted_contact_crm_id"),
    )  # fmt: skip
    reads["accounts"] = (
        select(
            Account.crm_id, Account.domain, Account.industry, Account.employees,
            Account.size_band, Account.region, Account.tier,
        ).where(
            Account.connection_id == connection_id, Account.deleted.is_(False),
            *(() if lead_ids is None else (Account.crm_id.in_(accounts_of_leads),)),
        ),
        ("industry", "size_band", "region", "tier"),
    )  # fmt: skip
    reads["touches"] = (
        select(Touch.lead_crm_id, Touch.type, Touch.status, Touch.occurred_at).where(
            Touch.connection_id == connection_id, Touch.deleted.is_(False), *only(Touch.lead_crm_id)
        ),
        ("lead_crm_id", "type", "status"),
    )
    reads["engagements"] = (
        select(Engagement.lead_crm_id, Engagement.kind, Engagement.occurred_at).where(
            Engagement.connection_id == connection_id,
            Engagement.deleted.is_(False),
            *only(Engagement.lead_crm_id),
        ),
        ("lead_crm_id", "kind"),
    )
    reads["outcomes"] = (
        select(Outcome.lead_crm_id, Outcome.kind, Outcome.occurred_at).where(
            Outcome.connection_id == connection_id,
            Outcome.deleted.is_(False),
            *only(Outcome.lead_crm_id),
        ),
        ("lead_crm_id", "kind"),
    )
    # A connection of a few leads reads faster through the engine, as a few leads' chunk
    # does: a columnar read costs a few tenths of a second to start (a reader process,
    # for SQLite).
    if lead_ids is not None:
        size = len(lead_ids)
    else:
        with store.engine.connect() as connection:
            size = connection.execute(
                select(func.count(Lead.id)).where(Lead.connection_id == connection_id)
            ).scalar_one()
    bulk = size >= columnar.FEW_IDS
    hygiene = hygiene or connection_hygiene(store, connection_id)
    calls = {name: partial(_read, store, *statement, bulk) for name, statement in reads.items()}
    # The leads are cleaned as soon as they are in, while the larger event tables are
    # still being read (the reads wait on their readers with the GIL released).
    read_leads = calls["leads"]
    calls["leads"] = lambda: clean_leads(read_leads(), hygiene)
    # The five reads at once where ADBC reads them (each on a connection or, for SQLite,
    # in a process of its own; the GIL released), one after another otherwise.
    tables = columnar.concurrently(store, calls)
    cleaned = tables["leads"]
    frames = Frames(**(tables | {"leads": cleaned.leads}))
    return clean_frames(frames, hygiene, cleaned=cleaned)


def connection_hygiene(store: Store, connection_id: int) -> HygieneConfig:
    """The connection's ``settings["hygiene"]`` over the built-in cleaning rules."""
    from integration.modeling.hygiene import HygieneConfig

    with store.session() as session:
        connection = session.get(Connection, connection_id)
        return HygieneConfig.from_settings(
            (connection.settings or {}).get("hygiene") if connection else None
        )


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


def _as_is(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column in its own dtype (all missing when absent): for factorizing, where an
    object copy of millions of Arrow strings would cost more than the work itself."""
    if column in frame.columns:
        return frame[column]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _lowered(values: pd.Series) -> pd.Series:
    """``values.str.lower()``, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    lowered = np.array([u.lower() for u in uniques] + [np.nan], dtype=object)
    return pd.Series(lowered[codes], index=values.index, dtype=object)


def _role_mailbox(emails: pd.Series) -> np.ndarray:
    """Whether each address's local part (trimmed, lower case) is a shared mailbox."""
    if not len(emails):
        return np.zeros(0, dtype=bool)
    if emails.dtype == object:
        emails = emails.where(emails.map(lambda v: isinstance(v, str)))
    text = pc.utf8_lower(pc.utf8_trim_whitespace(_arrow_text(emails)))
    local = pc.list_element(pc.split_pattern(text, "@", max_splits=1), 0)
    hit = pc.is_in(local, value_set=pa.array(sorted(ROLE_MAILBOXES)))
    return hit.fill_null(False).to_numpy(zero_copy_only=False)


def _filled(values: pd.Series) -> pd.Series:
    """Text with blanks read as "unknown" (no copy to Python strings for Arrow text)."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.fillna("unknown")
    return values.astype(object).fillna("unknown").astype(str)


def _lead_attributes(frames: Frames, leads: pd.DataFrame) -> pd.DataFrame:
    """Static per-lead attributes (firmographics joined from the matched account) of
    ``leads``: the frames' leads, each crm_id's first row only."""
    leads = leads.set_index("crm_id")
    accounts = frames.accounts.drop_duplicates("crm_id").set_index("crm_id")
    accounts = accounts.reindex(columns=["tier", "size_band", "industry", "region", "employees"])
    joined = leads[["account_crm_id"]].join(accounts, on="account_crm_id", how="left")
    title = _as_is(leads, "title")
    out = pd.DataFrame(index=leads.index)
    for column in ("tier", "size_band", "industry", "region"):
        out[column] = _filled(joined[column])
    out["source"] = _filled(_as_is(leads, "source"))
    # Clean frames carry the normalised title; hand-made ones are classified here.
    out["seniority"] = (
        leads["seniority"].astype(object).fillna("unknown")
        if "seniority" in leads.columns
        else seniority(title.astype(object))
    )
    out["department"] = (
        leads["department"].astype(object).fillna("unknown")
        if "department" in leads.columns
        else department(title.astype(object))
    )
    # Per distinct value where values repeat (domains, titles).
    domain = _lowered(_as_is(leads, "email_domain"))
    no_domain = domain.isna().to_numpy()
    if no_domain.any():
        email = _text(leads, "email")[no_domain].str.strip().str.lower()
        domain[no_domain] = email.str.rsplit("@", n=1).str[-1].to_numpy()
    out["free_mail"] = domain.isin(_free_mail()).astype(float)
    out["role_mailbox"] = _role_mailbox(_as_is(leads, "email")).astype(float)
    codes, titles = pd.factorize(title)
    blank = np.array([str(t).strip() == "" for t in titles] + [True], dtype=bool)
    out["missing_title"] = blank[codes].astype(float)
    out["missing_phone"] = _as_is(leads, "phone").isna().astype(float)
    out["missing_source"] = _as_is(leads, "source").isna().astype(float)
    out["missing_account"] = joined["tier"].isna().astype(float)
    out["missing_industry"] = joined["industry"].isna().astype(float)
    employees = pd.to_numeric(joined["employees"], errors="coerce")
    out["missing_employees"] = employees.isna().astype(float)
    out["log_employees"] = np.log1p(employees.fillna(0.0).clip(lower=0.0))
    out["account_crm_id"] = leads["account_crm_id"]
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


class _Rows:
    """The rows of one as-of question: lead (or account) codes and cut-off ticks.

    When every code carries one cut-off (each lead once in the panel, as in a scoring
    pass, or every row at the same cut-off), a timeline answers with one pass over the
    events of the codes asked about (`_Timeline.per_code`) instead of a binary search
    per row: the same answers, in time linear in the events and without random access.
    """

    def __init__(self, codes: np.ndarray, ticks: np.ndarray, per_code: bool = True) -> None:
        self.codes = codes
        self.ticks = ticks
        self.lo = int(codes.min()) if codes.size else 0
        hi = int(codes.max()) + 1 if codes.size else 0
        # The per-code form needs a table over [lo, hi): worth it while the range is not
        # much wider than the rows themselves.
        self.threshold: np.ndarray | None = None
        if per_code and codes.size and hi - self.lo <= 4 * codes.size + 1024:
            threshold = np.full(hi - self.lo, -1, dtype=np.int64)
            local = codes - self.lo
            threshold[local] = ticks
            if np.array_equal(threshold[local], ticks):
                self.threshold = threshold
        self.hi = hi


class _PerCode:
    """One timeline's events of the codes in [rows.lo, rows.hi) at or before each code's
    cut-off (a prefix of each code's events, which are sorted by tick)."""

    def __init__(self, line: _Timeline, rows: _Rows) -> None:
        assert rows.threshold is not None
        begin, end = np.searchsorted(line.codes, (rows.lo, rows.hi))
        codes = line.codes[begin:end] - rows.lo
        ticks = line.ticks[begin:end]
        width = rows.hi - rows.lo
        cut = rows.threshold[codes]
        seen = ticks <= cut
        self.codes, self.ticks, self.cut = codes[seen], ticks[seen], cut[seen]
        counts = np.bincount(self.codes, minlength=width)
        total = np.bincount(codes, minlength=width)
        # Each code's first event and one past its last event at or before the cut-off,
        # as indexes into the timeline.
        starts = begin + np.r_[0, np.cumsum(total)[:-1]] if width else np.zeros(0, np.int64)
        local = rows.codes - rows.lo
        self.start = starts[local]
        self.end = self.start + counts[local]
        self.local = local
        self.width = width

    def count(self, mask: np.ndarray | None = None) -> np.ndarray:
        codes = self.codes if mask is None else self.codes[mask]
        return np.bincount(codes, minlength=self.width)[self.local].astype(float)


class _Timeline:
    """One event stream sorted by (code, tick) for as-of queries per (code, cut-off)."""

    def __init__(
        self, codes: np.ndarray, ticks: np.ndarray, clock: _Clock, presorted: bool = False
    ) -> None:
        if not presorted:
            order = np.lexsort((ticks, codes))
            codes, ticks = codes[order], ticks[order]
        self.codes = codes
        self.ticks = ticks
        self.span = clock.span
        self.day = clock.day
        # Caches, each written whole (a build's slices may ask from two threads at once).
        self._key: np.ndarray | None = None
        self._decay: tuple[float, np.ndarray, np.ndarray] | None = None
        self._start: tuple[np.ndarray, np.ndarray] | None = None
        # A build asks about a few row sets per slice (the cut-offs, the creation times,
        # the first touches) in turn; each answer lives as long as its rows.
        self._per: weakref.WeakKeyDictionary[_Rows, _PerCode] = weakref.WeakKeyDictionary()

    @property
    def key(self) -> np.ndarray:
        if self._key is None:
            self._key = self.codes * self.span + self.ticks
        return self._key

    def _per_code(self, rows: _Rows) -> _PerCode | None:
        if rows.threshold is None:
            return None
        per = self._per.get(rows)
        if per is None:
            per = self._per[rows] = _PerCode(self, rows)
        return per

    def upto(self, rows: _Rows) -> np.ndarray:
        """Index one past the last event of each row's code at or before its cut-off."""
        per = self._per_code(rows)
        if per is not None:
            return per.end
        return np.searchsorted(
            self.key, rows.codes * self.span + np.maximum(rows.ticks, 0), side="right"
        )

    def start(self, rows: _Rows) -> np.ndarray:
        per = self._per_code(rows)
        if per is not None:
            return per.start
        start = self._start
        if start is None or start[0] is not rows.codes:
            # Every query of one build asks about the same rows: search their starts once.
            codes = rows.codes
            start = self._start = (codes, np.searchsorted(self.key, codes * self.span, side="left"))
        return start[1]

    def count(self, rows: _Rows) -> np.ndarray:
        return (self.upto(rows) - self.start(rows)).astype(float)

    def window(self, rows: _Rows, days: float) -> np.ndarray:
        """Events in (cut-off - days, cut-off]."""
        width = round(days * self.day)
        per = self._per_code(rows)
        if per is not None:
            return per.count(per.ticks > per.cut - width)
        earlier = _Rows(rows.codes, rows.ticks - width, per_code=False)
        return (self.upto(rows) - self.upto(earlier)).astype(float)

    def last_tick(self, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """Tick of the last event at or before each cut-off, and whether there is one."""
        end = self.upto(rows)
        has = end > self.start(rows)
        return np.where(has, self.ticks[np.maximum(end - 1, 0)] if self.ticks.size else 0, 0), has

    def first_tick(self, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        begin = self.start(rows)
        has = self.upto(rows) > begin
        safe = np.minimum(begin, max(self.ticks.size - 1, 0))
        return np.where(has, self.ticks[safe] if self.ticks.size else 0, 0), has

    def days_since_last(self, rows: _Rows) -> np.ndarray:
        last, has = self.last_tick(rows)
        return np.where(has, (rows.ticks - last) / self.day, NONE_DAYS)

    def days_since_first(self, rows: _Rows) -> np.ndarray:
        first, has = self.first_tick(rows)
        return np.where(has, (rows.ticks - first) / self.day, NONE_DAYS)

    def decayed(self, rows: _Rows, days: float) -> np.ndarray:
        """Sum over events at or before the cut-off of exp(-age / days)."""
        if not self.ticks.size:
            return np.zeros(rows.codes.shape[0])
        scale = days * self.day
        per = self._per_code(rows)
        if per is not None:
            # Ages are >= 0 here, so every weight is <= 1 and the sum is exact enough.
            weights = np.exp((per.ticks - per.cut) / scale)
            return np.bincount(per.codes, weights=weights, minlength=per.width)[per.local]
        decay = self._decay
        if decay is None or decay[0] != days:
            # Anchor each code's weights at its last event (weights <= 1) and sum them
            # within the code only, so no large sum is ever subtracted from another.
            last = np.flatnonzero(np.r_[self.codes[1:] != self.codes[:-1], True])
            anchor = np.repeat(self.ticks[last], np.diff(np.r_[-1, last]))
            weights = np.exp((self.ticks - anchor) / scale)
            running = pd.Series(weights).groupby(self.codes).cumsum().to_numpy()
            decay = self._decay = (days, anchor, running)
        _, anchor, running = decay
        end = self.upto(rows)
        has = end > self.start(rows)
        at = np.maximum(end - 1, 0)
        with np.errstate(over="ignore"):
            value = running[at] * np.exp((anchor[at] - rows.ticks) / scale)
        return np.where(has, value, 0.0)


def _lead_codes(leads: pa.Array, ids: pd.Series) -> np.ndarray:
    """Position of each id among ``leads`` (an Arrow array of lead ids; -1 when absent).

    One hash lookup per row in Arrow's compute kernels: an event table holds millions of
    rows, and turning each id into a Python string first would cost more than the rest of
    the features together."""
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    found = pc.index_in(_arrow_text(ids), value_set=leads)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _arrow_text(values: Any) -> pa.Array:
    """Values as an Arrow string array (zero-copy for Arrow-backed pandas strings)."""
    array = values.array if isinstance(values, pd.Series | pd.Index) else values
    if isinstance(array, pd.api.extensions.ExtensionArray) and hasattr(array, "__arrow_array__"):
        out = pa.array(array)
    else:
        out = pa.array(np.asarray(array, dtype=object), from_pandas=True)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return (
        out
        if pa.types.is_string(out.type) or pa.types.is_large_string(out.type)
        else (pc.cast(out, pa.string()))
    )


def _value_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Integer code per row and the distinct values (missing: -1), so that comparing a
    column of millions of rows with a value is an integer comparison."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes), list(uniques)


def _is(codes_uniques: tuple[np.ndarray, list[Any]], *wanted: Any) -> np.ndarray:
    codes, uniques = codes_uniques
    hits = [i for i, u in enumerate(uniques) if u in wanted]
    return np.isin(codes, hits) if hits else np.zeros(codes.shape[0], dtype=bool)


class _Coded:
    """An event table's rows as lead codes and ticks, sorted by (code, tick) once (rows
    of unknown leads dropped); every timeline of the table is a subsequence of it."""

    def __init__(self, codes: np.ndarray, ticks: np.ndarray, keep: np.ndarray, span: int) -> None:
        self.keep = keep  # which of the table's rows these are
        # One int64 key sorts faster than two; ties (same lead, same tick) answer every
        # as-of question alike, so their order does not matter.
        order = np.argsort(codes * span + ticks)
        self.order = order
        self.codes = codes[order]
        self.ticks = ticks[order]

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        leads: pa.Array,
        clock: _Clock,
        times: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> _Coded:
        codes = _lead_codes(leads, frame["lead_crm_id"])
        ns, missing = times if times is not None else _ns(frame["occurred_at"])
        keep = (codes >= 0) & ~missing
        return cls(codes[keep], clock.event(ns[keep]), keep, clock.span)

    def sorted_codes(self, values: tuple[np.ndarray, list[Any]]) -> tuple[np.ndarray, list[Any]]:
        """A `_value_codes` pair of the table's rows, in this timeline's row order."""
        return values[0][self.keep][self.order], values[1]

    def line(self, clock: _Clock, chosen: np.ndarray | None = None) -> _Timeline:
        """The timeline of every row, or of the ``chosen`` ones (a mask in sorted order:
        a sorted sequence's subsequence is sorted)."""
        if chosen is None:
            return _Timeline(self.codes, self.ticks, clock, presorted=True)
        return _Timeline(self.codes[chosen], self.ticks[chosen], clock, presorted=True)


_FLAGS = (
    "free_mail", "role_mailbox", "missing_title", "missing_phone", "missing_source",
    "missing_account", "missing_industry", "missing_employees", "log_employees",
)  # fmt: skip


class FeatureBuilder:
    """`build_features` in two steps: what depends on the frames alone (lead attributes,
    every event stream sorted for as-of queries) is prepared once, then any number of
    panels are built from it, e.g. a scoring pass chunk by chunk.

    ``cutoffs`` are every cut-off the panels will hold (the clock spans them); a panel
    built here is exactly what ``build_features(frames, panel)`` returns.
    """

    def __init__(self, frames: Frames, cutoffs: Any) -> None:
        eng, touches, outcomes = frames.engagements, frames.touches, frames.outcomes
        # The event tables are prepared side by side: their sorts, lookups and factorizing
        # release the GIL for most of their time.
        with ThreadPoolExecutor(BUILD_THREADS) as pool:
            timed = {name: pool.submit(_ns, t["occurred_at"]) for name, t in
                     (("eng", eng), ("touches", touches), ("outcomes", outcomes))}  # fmt: skip
            first_rows = frames.leads.drop_duplicates("crm_id")
            times = {name: future.result() for name, future in timed.items()}
            self._lead_table(first_rows["crm_id"], first_rows["created_at"], cutoffs, times)
            clock, leads = self.clock, self.lead_ids
            # The events, the longest part, start first; the lead attributes are made
            # meanwhile (the event tables need only the leads' ids and creation times).
            events = [
                pool.submit(self._engagements, eng, leads, clock, times["eng"]),
                pool.submit(self._touches_outcomes, touches, outcomes, leads, clock, times),
            ]
            attrs = _lead_attributes(frames, first_rows)
            # Codes into each column's distinct values ("unknown" last, for a missing
            # code): rows are looked up by code, not copied as a million Python strings.
            self.categorical = {}
            for column in CATEGORICAL:
                codes, uniques = pd.factorize(attrs[column])
                values = np.append(np.asarray(uniques, dtype=object), "unknown")
                self.categorical[column] = (np.asarray(codes), values)
            self.flags = {c: attrs[c].to_numpy(dtype=float) for c in _FLAGS}
            self._account_history(frames, attrs)
            unsubscribed_eng = events[0].result()
            self.unsubscribed = (events[1].result(), unsubscribed_eng)

    def _lead_table(
        self,
        lead_ids: pd.Series,
        created_at: pd.Series,
        cutoffs: Any,
        times: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """The leads' codes (``lead_ids``: distinct, in `_lead_attributes`' order) and
        creation ticks, and the clock every timeline counts in."""
        self.lead_index = lead_index = pd.Index(lead_ids.astype(object))
        self.n_codes = n_codes = len(lead_index)
        cutoff_ns, cutoff_missing = _ns(cutoffs)
        if cutoff_missing.any():
            raise ValueError("every panel row needs a cut-off")
        self._range = (int(cutoff_ns.min()), int(cutoff_ns.max())) if cutoff_ns.size else (0, -1)
        created_ns, created_missing = _ns(created_at)
        self.clock = clock = _Clock(
            [cutoff_ns, created_ns[~created_missing]] + [ns for ns, _ in times.values() if ns.size],
            n_codes + 1,
        )
        self.undated = undated = clock.span - 1
        self.created_tick = np.full(n_codes + 1, undated, dtype=np.int64)
        self.created_tick[:n_codes] = np.where(created_missing, undated, clock.event(created_ns))
        self.lead_ids = _arrow_text(lead_index)

    def _engagements(
        self, eng: pd.DataFrame, leads: pa.Array, clock: _Clock, times: tuple[np.ndarray, ...]
    ) -> _Timeline:
        """Engagement timelines (any, per kind); returns the unsubscribing ones."""
        coded = _Coded.of(eng, leads, clock, times)
        self.any_eng = coded.line(clock)
        kinds = coded.sorted_codes(_value_codes(eng["kind"]))
        self.per_kind = {k: coded.line(clock, _is(kinds, k)) for k in ENGAGEMENT_KINDS}
        return coded.line(clock, _is(kinds, *UNSUBSCRIBE_KINDS))

    def _touches_outcomes(
        self,
        touches: pd.DataFrame,
        outcomes: pd.DataFrame,
        leads: pa.Array,
        clock: _Clock,
        times: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> _Timeline:
        """Touch and outcome timelines; returns the unsubscribing outcomes'."""
        touch_coded = _Coded.of(touches, leads, clock, times["touches"])
        self.touch_line = touch_coded.line(clock)
        touch_kind = touch_coded.sorted_codes(
            _value_codes(_as_is(touches, "type" if "type" in touches.columns else "kind"))
        )
        self.touch_kinds = {k: touch_coded.line(clock, _is(touch_kind, k)) for k in TOUCH_TYPES}
        status = touch_coded.sorted_codes(_value_codes(_as_is(touches, "status")))
        self.no_answer = touch_coded.line(clock, _is(status, "no_answer"))

        outcome_coded = _Coded.of(outcomes, leads, clock, times["outcomes"])
        outcome_kind = outcome_coded.sorted_codes(_value_codes(outcomes["kind"]))
        self.bounced = (
            outcome_coded.line(clock, _is(outcome_kind, "bounced")),
            touch_coded.line(clock, _is(status, "bounced")),
        )
        return outcome_coded.line(clock, _is(outcome_kind, *UNSUBSCRIBE_KINDS))

    def _account_history(self, frames: Frames, attrs: pd.DataFrame) -> None:
        """What the lead's colleagues did, as timelines per account: leads at the
        account, their first meetings, their disqualifications."""
        n_codes, clock = self.n_codes, self.clock
        account_of = np.full(n_codes + 1, -1, dtype=np.int64)
        if n_codes:
            account_codes, _ = pd.factorize(attrs["account_crm_id"], use_na_sentinel=True)
            account_of[:n_codes] = account_codes
        self.account_of = account_of
        self.n_accounts = int(account_of.max()) + 1

        def by_account(lead_codes: np.ndarray, ticks: np.ndarray) -> _Timeline:
            keep = (lead_codes >= 0) & (account_of[lead_codes] >= 0)
            return _Timeline(account_of[lead_codes[keep]], ticks[keep], clock)

        leads_ticks = self.created_tick[:n_codes]
        dated = leads_ticks < clock.span - 1
        self.account_leads = by_account(np.flatnonzero(dated), leads_ticks[dated])
        self.account_firsts: dict[str, tuple[np.ndarray, _Timeline]] = {}
        for name, kind in (
            ("acct_meetings", "meeting_booked"),
            ("acct_disqualified", "disqualified"),
        ):
            rows = frames.outcomes[frames.outcomes["kind"] == kind]
            lead_codes = _lead_codes(self.lead_ids, rows["lead_crm_id"])
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
            self.account_firsts[name] = (lead_first, line)

    def build(self, panel: pd.DataFrame) -> pd.DataFrame:
        """Feature matrix for panel rows (``lead_crm_id``, ``cutoff``), in panel order."""
        n = len(panel)
        codes = _lead_codes(self.lead_ids, panel["lead_crm_id"])
        known = codes >= 0
        # An unknown lead gets a code no event carries.
        codes = np.where(known, codes, self.n_codes).astype(np.int64)
        cutoff_ns, cutoff_missing = _ns(panel["cutoff"])
        if cutoff_missing.any():
            raise ValueError("every panel row needs a cut-off")
        if cutoff_ns.size and (
            cutoff_ns.min() < self._range[0] or cutoff_ns.max() > self._range[1]
        ):
            raise ValueError("a panel cut-off lies outside those the builder was prepared for")
        ticks = self.clock.cutoff(cutoff_ns)
        # Filled a slice of rows at a time into one block, the slices' working arrays
        # freed as they go: a million rows would otherwise hold every intermediate at once.
        numeric = np.empty((len(NUMERIC), n)).T
        categorical = {column: np.empty(n, dtype=object) for column in CATEGORICAL}

        def fill(begin: int) -> None:
            rows = slice(begin, min(begin + BUILD_ROWS, n))
            part = self._build(codes[rows], known[rows], ticks[rows])
            for column in CATEGORICAL:
                categorical[column][rows] = part[column]
            for j, column in enumerate(NUMERIC):
                numeric[rows, j] = part[column]

        starts = range(0, n, BUILD_ROWS)
        if len(starts) > 1 and BUILD_THREADS > 1:
            # Slices side by side: their sorts, searches and sums release the GIL.
            with ThreadPoolExecutor(BUILD_THREADS) as pool:
                list(pool.map(fill, starts))
        else:
            for begin in starts:
                fill(begin)
        frame = pd.DataFrame(numeric, columns=list(NUMERIC), index=range(n), copy=False)
        for position, column in enumerate(CATEGORICAL):
            frame.insert(position, column, categorical[column])
        return frame

    def _build(self, codes: np.ndarray, known: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
        """Every feature of rows with lead ``codes`` (unknown leads: ``n_codes``) at cut-off
        ticks ``c``."""
        n = len(codes)
        n_codes, clock, undated = self.n_codes, self.clock, self.undated
        row_created = self.created_tick[codes]
        asof = _Rows(codes, c)

        out: dict[str, np.ndarray] = {}
        attribute_rows = np.minimum(codes, max(n_codes - 1, 0))
        for column in CATEGORICAL:
            codes_of, values_of = self.categorical[column]
            values = values_of[codes_of[attribute_rows]] if n_codes else np.full(n, "")
            out[column] = np.where(known, values, "unknown").astype(object)
        out["age_days"] = np.where(row_created < undated, (c - row_created) / clock.day, 0.0).clip(
            0
        )
        for column in _FLAGS:
            values = self.flags[column][attribute_rows] if n_codes else np.zeros(n)
            out[column] = np.where(known, np.nan_to_num(values), 0.0)

        any_eng, per_kind = self.any_eng, self.per_kind
        for kind, line in per_kind.items():
            for window in WINDOWS_DAYS:
                out[f"eng_{kind}_{window}d"] = line.window(asof, window)
            out[f"eng_{kind}_all"] = line.count(asof)
            out[f"eng_{kind}_decay"] = line.decayed(asof, DECAY_DAYS)
            out[f"eng_{kind}_days_since_last"] = line.days_since_last(asof)
        out["eng_decay"] = any_eng.decayed(asof, DECAY_DAYS)
        out["eng_days_since_last"] = any_eng.days_since_last(asof)
        out["eng_days_since_first"] = any_eng.days_since_first(asof)
        out["eng_kinds"] = np.sum([out[f"eng_{k}_all"] > 0 for k in ENGAGEMENT_KINDS], axis=0) * 1.0
        # Anonymous research attached when the lead was identified (before it existed).
        before_created = np.minimum(c, row_created - 1)
        out["eng_before_created"] = np.where(
            row_created < undated, any_eng.count(_Rows(codes, before_created)), 0.0
        )

        touch_line = self.touch_line
        first_touch, touched = touch_line.first_tick(asof)
        # Engagement after the first sales touch: the lead answering outreach.
        after = any_eng.count(asof) - any_eng.count(_Rows(codes, first_touch))
        out["eng_after_touch"] = np.where(touched, after, 0.0)
        pricing, form = per_kind["pricing_page_visit"], per_kind["form_fill"]
        first_pricing, has_pricing = pricing.first_tick(asof)
        last_form, has_form = form.last_tick(asof)
        out["eng_pricing_then_form"] = (has_pricing & has_form & (last_form >= first_pricing)) * 1.0
        first_click, has_click = per_kind["email_click"].first_tick(asof)
        last_pricing, _ = pricing.last_tick(asof)
        out["eng_click_then_pricing"] = (
            has_click & has_pricing & (last_pricing >= first_click)
        ) * 1.0

        for kind, line in self.touch_kinds.items():
            out[f"touch_{kind}_all"] = line.count(asof)
        out["touch_14d"] = touch_line.window(asof, 14)
        out["touch_days_since_last"] = touch_line.days_since_last(asof)
        out["touch_days_since_first"] = touch_line.days_since_first(asof)
        out["touch_no_answer"] = self.no_answer.count(asof)
        out["touched"] = touched * 1.0

        bounced = self.bounced[0].count(asof)
        bounced += self.bounced[1].count(asof)
        out["bounced"] = (bounced > 0) * 1.0
        unsubscribed = self.unsubscribed[0].count(asof)
        unsubscribed += self.unsubscribed[1].count(asof)
        out["unsubscribed"] = (unsubscribed > 0) * 1.0

        row_account = self.account_of[codes]
        query = np.where(row_account >= 0, row_account, self.n_accounts)  # no account: empty
        own = (row_created <= c) & (row_created < clock.span - 1)
        by_account = _Rows(query, c)
        out["acct_leads"] = np.maximum(self.account_leads.count(by_account) - own, 0.0)
        for name, (lead_first, line) in self.account_firsts.items():
            out[name] = np.maximum(line.count(by_account) - (lead_first[codes] <= c), 0.0)
        return out


def build_features(frames: Frames, panel: pd.DataFrame) -> pd.DataFrame:
    """Feature matrix for panel rows (``lead_crm_id``, ``cutoff``), in panel order.

    Categorical columns are strings (``"unknown"`` when blank), numeric ones are
    finite floats. Leads missing from ``frames.leads`` get ``unknown`` / zero
    attributes; callers pass real leads.
    """
    return FeatureBuilder(frames, panel["cutoff"]).build(panel)


def first_outcome(frames: Frames, kinds: tuple[str, ...]) -> pd.Series:
    """Earliest time of any of ``kinds`` per lead."""
    rows = frames.outcomes[frames.outcomes["kind"].isin(kinds)]
    return rows.groupby("lead_crm_id")["occurred_at"].min()


SNAPSHOT_AGES_DAYS = (1, 15, 29, 43, 57)


def naive_time(value: Any) -> pd.Timestamp:
    """One time as a naive UTC timestamp (a stored time may come back with or without zone)."""
    ts = pd.Timestamp(value)
    return ts.tz_convert(None) if ts.tzinfo else ts


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
