"""Build the output frames (CrmSeed tables and the truth table) from the generator's arrays.

Column order and dtypes follow ``connectors.sandbox.seed.SEED_COLUMNS``: int64 keys
(nullable ``Int64`` where a key may be missing), ``datetime64[ns, UTC]`` times,
object-dtype text with ``None`` for a blank field, float64 numbers with NaN.
Event-like rows are keyed in time order, as CRM ids grow with time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.sandbox.seed import (
    ENGAGEMENT_KINDS,
    INDUSTRIES,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPPORTUNITY_STAGES,
    REGIONS,
    SIZE_BANDS,
    TIERS,
    TOUCH_KINDS,
    TOUCH_STATUSES,
)

from . import params as P
from . import vocab as V
from .behaviour import DETAILS, SUBJECTS, Events, Touches
from .clock import NEVER, to_utc
from .experiments import Assignment, experiment_ids
from .outcomes import Opportunities, StatusChanges
from .params import ACTIONS, ARMS, SEGMENTS
from .population import COUNTRY_CODES, COUNTRY_REGION, Accounts, Leads
from .sampling import MISSING, text


def text_series(values: np.ndarray) -> pd.Series:
    """Object-dtype text column (a blank field stays ``None``)."""
    # Explicit object dtype: pandas 3 would otherwise infer "str" and turn None into NaN.
    return pd.Series(values, dtype=object)


def nullable_key(keys: np.ndarray) -> pd.Series:
    """Nullable ``Int64`` key column; code -1 becomes ``<NA>``."""
    # Nullable Int64 so a missing key is <NA> and present keys stay integers.
    missing = keys == MISSING
    values = np.where(missing, 0, keys).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(values, missing))


def accounts_frame(a: Accounts) -> pd.DataFrame:
    """The accounts table."""
    return pd.DataFrame(
        {
            "account_key": np.arange(a.n, dtype=np.int64),
            "name": text_series(a.name),
            "domain": text_series(a.domain),
            "industry": text_series(text(INDUSTRIES, a.industry)),
            "employees": a.employees,
            "size_band": text_series(text(SIZE_BANDS, a.size_band)),
            "annual_revenue": a.revenue,
            "country": text_series(text(COUNTRY_CODES, a.country)),
            "region": text_series(text(REGIONS, COUNTRY_REGION[a.country])),
            "tier": text_series(text(TIERS, a.tier)),
            "owner_key": a.owner.astype(np.int64),
            "created_at": to_utc(a.created_at),
            "modified_at": to_utc(a.modified_at),
        }
    )


def _arm_labels(asg: Assignment) -> np.ndarray:
    labels = [f"{e}/{arm}" for e in experiment_ids() for arm in ARMS]
    code = asg.experiment * len(ARMS) + asg.control.astype(np.int64)
    return text(labels, np.where(asg.assigned, code, MISSING))


def leads_frame(
    leads: Leads,
    asg: Assignment,
    owner: np.ndarray,
    status: np.ndarray,
    modified: np.ndarray,
    converted_at: np.ndarray,
    opp_key: np.ndarray,
) -> pd.DataFrame:
    """The leads table (arm label only once assigned)."""
    return pd.DataFrame(
        {
            "lead_key": np.arange(leads.n, dtype=np.int64),
            "account_key": nullable_key(leads.account),
            "first_name": text_series(leads.first_name),
            "last_name": text_series(leads.last_name),
            "email": text_series(leads.email),
            "phone": text_series(leads.phone),
            "title": text_series(leads.title),
            "company": text_series(leads.company),
            "lead_source": text_series(text(LEAD_SOURCES, leads.source_seen)),
            "status": text_series(text(LEAD_STATUSES, status)),
            "owner_key": owner.astype(np.int64),
            "email_opt_out": leads.opt_out,
            "experiment_arm": text_series(_arm_labels(asg)),
            "created_at": to_utc(leads.created_at),
            "modified_at": to_utc(modified),
            "converted_at": to_utc(converted_at),
            "opportunity_key": nullable_key(opp_key),
        }
    )


def status_changes_frame(c: StatusChanges) -> pd.DataFrame:
    """The status history (already time-ordered)."""
    return pd.DataFrame(
        {
            "change_key": np.arange(c.lead.shape[0], dtype=np.int64),
            "lead_key": c.lead.astype(np.int64),
            "old_status": text_series(text(LEAD_STATUSES, c.old)),
            "new_status": text_series(text(LEAD_STATUSES, c.new)),
            "changed_at": to_utc(c.at),
        }
    )


def touches_frame(t: Touches, owner: np.ndarray) -> pd.DataFrame:
    """The touches table, keyed in time order; the owner is the lead's owner."""
    order = np.lexsort((t.kind, t.lead, t.at))
    return pd.DataFrame(
        {
            "touch_key": np.arange(order.shape[0], dtype=np.int64),
            "lead_key": t.lead[order].astype(np.int64),
            "kind": text_series(text(TOUCH_KINDS, t.kind[order])),
            "status": text_series(text(TOUCH_STATUSES, t.status[order])),
            "subject": text_series(text(SUBJECTS, t.subject[order])),
            "owner_key": owner[t.lead[order]].astype(np.int64),
            "occurred_at": to_utc(t.at[order]),
            "duration_seconds": t.duration[order],
        }
    )


def engagements_frame(e: Events) -> pd.DataFrame:
    """The engagements table, keyed in time order."""
    order = np.lexsort((e.kind, e.lead, e.at))
    return pd.DataFrame(
        {
            "engagement_key": np.arange(order.shape[0], dtype=np.int64),
            "lead_key": e.lead[order].astype(np.int64),
            "kind": text_series(text(ENGAGEMENT_KINDS, e.kind[order])),
            "detail": text_series(text(DETAILS, e.detail[order])),
            "occurred_at": to_utc(e.at[order]),
        }
    )


def _company_names(leads: Leads, accounts: Accounts, lead: np.ndarray) -> np.ndarray:
    acc = leads.account[lead]
    return np.where(acc == MISSING, leads.company[lead], accounts.name[np.maximum(acc, 0)])


def meetings_frame(
    leads: Leads,
    accounts: Accounts,
    met: np.ndarray,
    owner: np.ndarray,
    booked_at: np.ndarray,
    start_at: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The meetings table, one row per lead in `met` (booking order); draws durations."""
    company = _company_names(leads, accounts, met).astype(str)
    duration = np.array(P.MEETING_DURATIONS)[
        rng.integers(0, len(P.MEETING_DURATIONS), met.shape[0])
    ]
    return pd.DataFrame(
        {
            "meeting_key": np.arange(met.shape[0], dtype=np.int64),
            "lead_key": met.astype(np.int64),
            "owner_key": owner[met].astype(np.int64),
            "subject": text_series(np.strings.add("Discovery call – ", company).astype(object)),
            "booked_at": to_utc(booked_at[met]),
            "start_at": to_utc(start_at),
            "duration_minutes": duration.astype(np.int64),
        }
    )


def opportunities_frame(
    o: Opportunities, leads: Leads, accounts: Accounts, owner: np.ndarray
) -> pd.DataFrame:
    """The opportunities table; the product in the name follows company size."""
    acc = leads.account[o.lead]
    size = np.where(acc == MISSING, MISSING, accounts.size_band[np.maximum(acc, 0)])
    product = np.select([size == MISSING, size <= 1, size <= 3], [1, 0, 1], default=2)
    name = np.strings.add(
        np.strings.add(_company_names(leads, accounts, o.lead).astype(str), " – "),
        np.array(V.OPPORTUNITY_PRODUCTS)[product],
    )
    return pd.DataFrame(
        {
            "opportunity_key": np.arange(o.lead.shape[0], dtype=np.int64),
            "account_key": nullable_key(acc),
            "lead_key": o.lead.astype(np.int64),
            "owner_key": owner[o.lead].astype(np.int64),
            "name": text_series(name.astype(object)),
            "stage": text_series(text(OPPORTUNITY_STAGES, o.stage)),
            "amount": o.amount,
            "created_at": to_utc(o.created_at),
            "close_date": to_utc(o.close_date),
            "closed_at": to_utc(o.closed_at),
            "modified_at": to_utc(o.modified_at),
        }
    )


def truth_frame(
    leads: Leads,
    asg: Assignment,
    p0: np.ndarray,
    tau: np.ndarray,
    p_assigned: np.ndarray,
    segment: np.ndarray,
    meeting: np.ndarray,
) -> pd.DataFrame:
    """One row per lead with everything the CRM cannot see (see the package docstring)."""
    best = tau.argmax(axis=1)
    arm = np.where(asg.assigned, asg.control.astype(np.int64), MISSING)
    frame = {
        "lead_key": np.arange(leads.n, dtype=np.int64),
        "unit_key": asg.unit.astype(np.int64),
        "experiment_id": text_series(text(experiment_ids(), asg.experiment)),
        "arm": text_series(text(ARMS, arm)),
        "action": text_series(text(ACTIONS, asg.experiment)),
        "assigned_at": to_utc(np.where(asg.assigned, asg.assigned_at, NEVER)),
        "override": asg.override,
        "intent": leads.intent,
        "invalid_email": leads.invalid_email,
        "p0": p0,
    }
    for j, action in enumerate(ACTIONS):
        frame[f"tau_{action}"] = tau[:, j]
    frame |= {
        "p_assigned": p_assigned,
        "best_action": text_series(text(ACTIONS, best)),
        "best_tau": tau[np.arange(leads.n), best],
        "segment": text_series(text(SEGMENTS, segment)),
        "meeting": meeting,
    }
    return pd.DataFrame(frame)
