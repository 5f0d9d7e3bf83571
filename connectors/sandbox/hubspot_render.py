"""Render a CrmSeed as HubSpot objects (vectorised, one Table per object type)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .countries import COUNTRY_NAMES
from .hubspot_schema import (
    ANALYTICS_SOURCE,
    CALL_DISPOSITION,
    DEAL_STAGE,
    ICP_TIER,
    INDUSTRY,
    LEAD_STATUS,
    LIFECYCLE,
    MODIFIED_PROPERTY,
    OBJECT_TYPES,
    PropertyDef,
    builtin_properties,
)
from .ids import HUBSPOT_ID_BASES
from .seed import CrmSeed
from .seedutil import KeyIndex, map_values, sorted_frame, str_column, take
from .table import Table
from .timefmt import to_datetime64, to_naive_utc

PAGE_VIEW_KINDS = ("page_view", "pricing_page_visit")
CONVERSION_KINDS = {
    "form_fill": "Form",
    "webinar_attended": "Webinar",
    "content_download": "Content download",
}


@dataclass
class Edges:
    """Associations from one type to another: ``src`` sorted, ``dst`` aligned."""

    src: np.ndarray
    dst: np.ndarray

    def targets(self, pos: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.src, [pos, pos + 1])
        return self.dst[lo:hi]


@dataclass
class StatusHistory:
    """hs_lead_status versions per contact, newest first within a contact."""

    contact: np.ndarray  # sorted contact positions
    value: np.ndarray
    at: np.ndarray

    def versions(self, pos: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.contact, [pos, pos + 1])
        return self.value[lo:hi], self.at[lo:hi]


@dataclass
class RenderedPortal:
    tables: dict[str, Table]
    properties: dict[str, list[PropertyDef]]
    owners: pd.DataFrame
    sources: dict[str, KeyIndex | tuple[KeyIndex, np.ndarray]] = field(default_factory=dict)
    edges: dict[tuple[str, str], Edges] = field(default_factory=dict)
    status_history: StatusHistory | None = None
    integration_owner: int | None = None


def _ts(frame: pd.DataFrame, column: str) -> np.ndarray:
    # HubSpot keeps millisecond precision.
    return to_naive_utc(frame[column]).astype("datetime64[ms]").astype("datetime64[ns]")


def _edges(src: np.ndarray, dst: np.ndarray) -> Edges:
    ok = (src >= 0) & (dst >= 0)
    src, dst = src[ok], dst[ok]
    order = np.lexsort((dst, src))
    return Edges(src[order], dst[order])


def render_hubspot(seed: CrmSeed) -> RenderedPortal:
    """Render every HubSpot object type from ``seed``."""
    props = {t: builtin_properties(t) for t in OBJECT_TYPES}
    users = sorted_frame(seed.users, "user_key")
    queues = sorted_frame(seed.queues, "queue_key")
    accounts = sorted_frame(seed.accounts, "account_key")
    leads = sorted_frame(seed.leads, "lead_key")
    touches = sorted_frame(seed.touches, "touch_key")
    engagements = sorted_frame(seed.engagements, "engagement_key")
    meetings = sorted_frame(seed.meetings, "meeting_key")
    opps = sorted_frame(seed.opportunities, "opportunity_key")
    now = to_datetime64(seed.now)

    user_idx = KeyIndex(users["user_key"])
    account_idx = KeyIndex(accounts["account_key"])
    lead_idx = KeyIndex(leads["lead_key"])
    opp_idx = KeyIndex(opps["opportunity_key"])

    # Owners: users (PERSON) then queues (QUEUE).
    nu, nq = len(users), len(queues)
    owner_ids = HUBSPOT_ID_BASES["owners"] + np.arange(nu + nq)
    created_users = _ts(users, "created_at")
    q_created = created_users.min() if nu else now
    owners = pd.DataFrame(
        {
            "id": owner_ids.astype(str),
            "email": list(str_column(users["email"])) + [None] * nq,
            "firstName": list(str_column(users["first_name"])) + list(str_column(queues["name"])),
            "lastName": list(str_column(users["last_name"])) + [""] * nq,
            "userId": list(9_000_000 + np.arange(nu)) + [None] * nq,
            "createdAt": np.concatenate([created_users, np.full(nq, q_created)]),
            "archived": list(~users["active"].fillna(False).astype(bool)) + [False] * nq,
            "type": ["PERSON"] * nu + ["QUEUE"] * nq,
            "role": list(str_column(users["role"])) + [None] * nq,
        }
    )
    user_owner = owner_ids[:nu].astype(str).astype(object)

    def owner_of(keys: pd.Series) -> np.ndarray:
        return take(user_owner, user_idx.positions(keys))

    tables: dict[str, Table] = {}

    def table(object_type: str, n: int, columns: dict) -> None:
        kinds = {p.storage: p.kind for p in props[object_type] if p.name != "hs_object_id"}
        kinds["_archived"] = "bool"
        kinds["_archived_at"] = "datetime"
        tables[object_type] = Table(object_type, n, columns, kinds)

    ids = {t: HUBSPOT_ID_BASES[t] for t in OBJECT_TYPES}

    # companies
    na = len(accounts)
    a_created = _ts(accounts, "created_at")
    table(
        "companies",
        na,
        {
            "name": str_column(accounts["name"]),
            "domain": str_column(accounts["domain"]),
            "industry": map_values(accounts["industry"], INDUSTRY),
            "numberofemployees": accounts["employees"].to_numpy(dtype=float, na_value=np.nan),
            "annualrevenue": accounts["annual_revenue"].to_numpy(dtype=float, na_value=np.nan),
            "country": map_values(
                accounts["country"],
                {
                    **COUNTRY_NAMES,
                    **{
                        c: c
                        for c in set(str_column(accounts["country"]).tolist()) - set(COUNTRY_NAMES)
                        if c
                    },
                },
            ),
            "hs_ideal_customer_profile": map_values(accounts["tier"], ICP_TIER),
            "hubspot_owner_id": owner_of(accounts["owner_key"]),
            "createdate": a_created,
            "hs_lastmodifieddate": np.maximum(a_created, _ts(accounts, "modified_at")),
        },
    )

    # contacts
    nl = len(leads)
    status = str_column(leads["status"])
    acct_pos = account_idx.positions(leads["account_key"])
    opp_pos = opp_idx.positions(leads["opportunity_key"])
    won = np.zeros(nl, dtype=bool)
    ok = opp_pos >= 0
    won[ok] = str_column(opps["stage"])[opp_pos[ok]] == "closed_won"
    lifecycle = map_values(status, LIFECYCLE)
    lifecycle[(status == "converted") & won] = "customer"
    l_created = _ts(leads, "created_at")
    rollups = _rollups(engagements, lead_idx, nl)
    table(
        "contacts",
        nl,
        {
            "firstname": str_column(leads["first_name"]),
            "lastname": str_column(leads["last_name"]),
            "email": str_column(leads["email"]),
            "phone": str_column(leads["phone"]),
            "jobtitle": str_column(leads["title"]),
            "company": str_column(leads["company"]),
            "associatedcompanyid": np.where(acct_pos >= 0, ids["companies"] + acct_pos, np.nan),
            "lead_source": str_column(leads["lead_source"]),
            "hs_analytics_source": map_values(leads["lead_source"], ANALYTICS_SOURCE),
            "lifecyclestage": lifecycle,
            "hs_lead_status": map_values(status, LEAD_STATUS),
            "hubspot_owner_id": owner_of(leads["owner_key"]),
            "hs_email_optout": np.where(
                leads["email_opt_out"].fillna(False).astype(bool), "true", "false"
            ).astype(object),
            "experiment_arm": str_column(leads["experiment_arm"]),
            "createdate": l_created,
            "lastmodifieddate": np.maximum(l_created, _ts(leads, "modified_at")),
            **rollups,
        },
    )

    # engagements from touches
    kind = str_column(touches["kind"])
    tstatus = str_column(touches["status"])
    t_at = _ts(touches, "occurred_at")
    t_owner = owner_of(touches["owner_key"])
    t_contact = lead_idx.positions(touches["lead_key"])
    subjects = str_column(touches["subject"])
    sources: dict[str, KeyIndex | tuple[KeyIndex, np.ndarray]] = {}
    touch_idx = KeyIndex(touches["touch_key"])
    edges: dict[tuple[str, str], Edges] = {}

    def engagement(object_type: str, mask: np.ndarray, columns: dict) -> None:
        pos = np.flatnonzero(mask)
        table(
            object_type,
            len(pos),
            {k: (v[pos] if isinstance(v, np.ndarray) else v) for k, v in columns.items()},
        )
        sources[object_type] = (touch_idx, pos)
        edges[(object_type, "contacts")] = _edges(np.arange(len(pos)), t_contact[pos])

    duration_ms = touches["duration_seconds"].to_numpy(dtype=float, na_value=np.nan) * 1000
    common = {
        "hs_timestamp": t_at,
        "hubspot_owner_id": t_owner,
        "createdate": t_at,
        "hs_lastmodifieddate": t_at,
    }
    engagement(
        "calls",
        kind == "call",
        {
            **common,
            "hs_call_title": subjects,
            "hs_call_direction": np.full(len(kind), "OUTBOUND", dtype=object),
            "hs_call_disposition": map_values(tstatus, CALL_DISPOSITION),
            "hs_call_duration": duration_ms,
            "hs_call_status": np.where(tstatus == "no_answer", "NO_ANSWER", "COMPLETED").astype(
                object
            ),
        },
    )
    engagement(
        "emails",
        np.isin(kind, ["email", "offer"]),
        {
            **common,
            "hs_email_direction": np.full(len(kind), "EMAIL", dtype=object),
            "hs_email_subject": subjects,
            "hs_email_status": np.where(tstatus == "bounced", "BOUNCED", "SENT").astype(object),
        },
    )
    engagement(
        "tasks",
        kind == "linkedin",
        {
            **common,
            "hs_task_subject": subjects,
            "hs_task_type": np.full(len(kind), "LINKED_IN", dtype=object),
            "hs_task_status": np.full(len(kind), "COMPLETED", dtype=object),
        },
    )

    # meetings
    nm = len(meetings)
    start = _ts(meetings, "start_at")
    minutes = np.nan_to_num(meetings["duration_minutes"].to_numpy(dtype=float, na_value=0))
    booked = _ts(meetings, "booked_at")
    table(
        "meetings",
        nm,
        {
            "hs_timestamp": start,
            "hs_meeting_title": str_column(meetings["subject"]),
            "hs_meeting_start_time": start,
            "hs_meeting_end_time": start + (minutes * 60_000).astype("timedelta64[ms]"),
            "hs_meeting_outcome": np.where(start <= now, "COMPLETED", "SCHEDULED").astype(object),
            "hubspot_owner_id": owner_of(meetings["owner_key"]),
            "createdate": booked,
            "hs_lastmodifieddate": booked,
        },
    )
    sources["meetings"] = KeyIndex(meetings["meeting_key"])
    edges[("meetings", "contacts")] = _edges(
        np.arange(nm), lead_idx.positions(meetings["lead_key"])
    )

    # deals
    no = len(opps)
    o_created = _ts(opps, "created_at")
    table(
        "deals",
        no,
        {
            "dealname": str_column(opps["name"]),
            "dealstage": map_values(opps["stage"], DEAL_STAGE),
            "pipeline": np.full(no, "default", dtype=object),
            "amount": opps["amount"].to_numpy(dtype=float, na_value=np.nan),
            "closedate": _ts(opps, "close_date"),
            "hubspot_owner_id": owner_of(opps["owner_key"]),
            "createdate": o_created,
            "hs_lastmodifieddate": np.maximum(o_created, _ts(opps, "modified_at")),
        },
    )
    sources["contacts"] = lead_idx
    sources["companies"] = account_idx
    sources["deals"] = opp_idx
    edges[("contacts", "companies")] = _edges(np.arange(nl), acct_pos)
    edges[("deals", "contacts")] = _edges(np.arange(no), lead_idx.positions(opps["lead_key"]))
    edges[("deals", "companies")] = _edges(
        np.arange(no), account_idx.positions(opps["account_key"])
    )
    for (a, b), e in list(edges.items()):
        edges[(b, a)] = _edges(e.dst, e.src)

    # hs_lead_status history from status changes
    changes = seed.status_changes
    c_pos = lead_idx.positions(changes["lead_key"])
    c_at = _ts(changes, "changed_at")
    c_val = map_values(changes["new_status"], LEAD_STATUS)
    keep = c_pos >= 0
    order = np.lexsort((-c_at[keep].view(np.int64), c_pos[keep]))
    history = StatusHistory(c_pos[keep][order], c_val[keep][order], c_at[keep][order])

    for object_type in OBJECT_TYPES:
        assert MODIFIED_PROPERTY[object_type] in tables[object_type]
    roles = str_column(users["role"])
    integ = np.flatnonzero(roles == "integration")
    return RenderedPortal(
        tables=tables,
        properties=props,
        owners=owners,
        sources=sources,
        edges=edges,
        status_history=history,
        integration_owner=int(integ[0]) if len(integ) else (0 if nu else None),
    )


def _rollups(engagements: pd.DataFrame, lead_idx: KeyIndex, n: int) -> dict[str, np.ndarray]:
    nat = np.datetime64("NaT", "ns")
    out = {
        "hs_analytics_num_page_views": np.zeros(n),
        "hs_analytics_num_visits": np.zeros(n),
        "hs_analytics_first_visit_timestamp": np.full(n, nat),
        "hs_analytics_last_visit_timestamp": np.full(n, nat),
        "num_conversion_events": np.zeros(n),
        "first_conversion_event_name": np.full(n, None, dtype=object),
        "first_conversion_date": np.full(n, nat),
        "recent_conversion_event_name": np.full(n, None, dtype=object),
        "recent_conversion_date": np.full(n, nat),
    }
    if not len(engagements):
        return out
    frame = pd.DataFrame(
        {
            "pos": lead_idx.positions(engagements["lead_key"]),
            "kind": str_column(engagements["kind"]),
            "detail": str_column(engagements["detail"]),
            "at": _ts(engagements, "occurred_at"),
        }
    )
    frame = frame[frame["pos"] >= 0]
    views = frame[frame["kind"].isin(PAGE_VIEW_KINDS)]
    if len(views):
        grouped = views.groupby("pos")["at"]
        pos = grouped.size().index.to_numpy()
        out["hs_analytics_num_page_views"][pos] = grouped.size().to_numpy()
        out["hs_analytics_first_visit_timestamp"][pos] = grouped.min().to_numpy()
        out["hs_analytics_last_visit_timestamp"][pos] = grouped.max().to_numpy()
        # A "visit" (session) is a calendar day with page views.
        days = views.assign(day=views["at"].dt.floor("D")).groupby("pos")["day"].nunique()
        out["hs_analytics_num_visits"][days.index.to_numpy()] = days.to_numpy()
    conv = frame[frame["kind"].isin(list(CONVERSION_KINDS))].sort_values(["pos", "at"])
    if len(conv):
        names = (conv["kind"].map(CONVERSION_KINDS) + ": " + conv["detail"].fillna("")).to_numpy()
        conv = conv.assign(name=names)
        grouped = conv.groupby("pos")
        first = grouped.first()
        last = grouped.last()
        pos = first.index.to_numpy()
        out["num_conversion_events"][pos] = grouped.size().to_numpy()
        out["first_conversion_event_name"][pos] = first["name"].to_numpy(dtype=object)
        out["first_conversion_date"][pos] = first["at"].to_numpy()
        out["recent_conversion_event_name"][pos] = last["name"].to_numpy(dtype=object)
        out["recent_conversion_date"][pos] = last["at"].to_numpy()
    return out
