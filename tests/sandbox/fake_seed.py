"""A small, hand-made CrmSeed generator for the sandbox tests (vectorised, so it scales)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from connectors.sandbox.seed import (
    ENGAGEMENT_KINDS,
    INDUSTRIES,
    LEAD_SOURCES,
    REGIONS,
    SIZE_BANDS,
    TIERS,
    CrmSeed,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "AU", "JP", "CA")


def _ts(base: pd.Timestamp, seconds: np.ndarray) -> pd.Series:
    return pd.Series(base + pd.to_timedelta(seconds, unit="s")).dt.tz_convert("UTC")


def make_seed(n_leads: int = 300, n_accounts: int | None = None, seed: int = 7) -> CrmSeed:
    """Build a deterministic CrmSeed with ``n_leads`` leads and proportional activity."""
    rng = np.random.default_rng(seed)
    now = pd.Timestamp(NOW)
    start = now - pd.Timedelta(days=400)
    span = int((now - start).total_seconds())
    n_accounts = n_accounts or max(5, n_leads // 4)

    roles = ["sdr"] * 4 + ["ae"] * 2 + ["senior_ae", "marketing_automation", "integration"]
    users = pd.DataFrame(
        {
            "user_key": np.arange(len(roles)),
            "first_name": [f"User{i}" for i in range(len(roles))],
            "last_name": [r.title() for r in roles],
            "email": [f"user{i}@acme.example" for i in range(len(roles))],
            "role": roles,
            "active": [True] * (len(roles) - 1) + [True],
            "created_at": _ts(start, np.zeros(len(roles))),
        }
    )
    reps = np.arange(7)
    queues = pd.DataFrame(
        {
            "queue_key": [0, 1],
            "name": ["Inbound Queue", "Nurture Queue"],
            "developer_name": ["Inbound_Queue", "Nurture_Queue"],
        }
    )
    a_created = rng.integers(0, span // 2, n_accounts)
    accounts = pd.DataFrame(
        {
            "account_key": np.arange(n_accounts),
            "name": [f"Company {i}" for i in range(n_accounts)],
            "domain": [f"company{i}.example" for i in range(n_accounts)],
            "industry": pd.Series(rng.choice(INDUSTRIES, n_accounts), dtype=object),
            "employees": rng.integers(1, 20000, n_accounts).astype(float),
            "size_band": rng.choice(SIZE_BANDS, n_accounts),
            "annual_revenue": rng.integers(1, 1000, n_accounts) * 100000.0,
            "country": rng.choice(COUNTRIES, n_accounts),
            "region": rng.choice(REGIONS, n_accounts),
            "tier": rng.choice(TIERS, n_accounts),
            "owner_key": rng.choice(reps, n_accounts),
            "created_at": _ts(start, a_created),
            "modified_at": _ts(start, a_created + rng.integers(0, span // 2, n_accounts)),
        }
    )
    accounts.loc[accounts.index % 11 == 0, "industry"] = None

    lead_keys = np.arange(n_leads) * 3 + 5  # keys need not be contiguous
    created = rng.integers(0, span - 86400 * 30, n_leads)
    status = rng.choice(
        ["new", "working", "meeting_booked", "converted", "disqualified"],
        n_leads,
        p=[0.3, 0.3, 0.15, 0.15, 0.1],
    )
    account_key = pd.array(rng.integers(0, n_accounts, n_leads), dtype="Int64")
    account_key[np.arange(n_leads) % 9 == 0] = pd.NA
    converted = status == "converted"
    converted_at = np.where(converted, created + 86400 * 20, -1)
    n_opps = int(converted.sum())
    opp_keys = np.arange(n_opps) + 1000
    opportunity_key = pd.array([pd.NA] * n_leads, dtype="Int64")
    opportunity_key[np.flatnonzero(converted)] = opp_keys
    leads = pd.DataFrame(
        {
            "lead_key": lead_keys,
            "account_key": account_key,
            "first_name": [f"First{i}" for i in range(n_leads)],
            "last_name": [f"Last{i}" for i in range(n_leads)],
            "email": [f"lead{i}@mail{i % 50}.example" for i in range(n_leads)],
            "phone": pd.Series(
                [f"+1-555-{i:07d}" if i % 4 else None for i in range(n_leads)], dtype=object
            ),
            "title": pd.Series(
                rng.choice(["VP Sales", "CTO", "Engineer", None], n_leads), dtype=object
            ),
            "company": [f"Company {k}" if k is not pd.NA else "Gmail" for k in account_key],
            "lead_source": pd.Series(rng.choice([*LEAD_SOURCES, None], n_leads), dtype=object),
            "status": status,
            "owner_key": rng.choice(reps, n_leads),
            "email_opt_out": rng.random(n_leads) < 0.05,
            "experiment_arm": pd.Series(
                rng.choice(["call_first_v1/control", "call_first_v1/treatment", None], n_leads),
                dtype=object,
            ),
            "created_at": _ts(start, created),
            "modified_at": _ts(start, created + 86400 * 25),
            "converted_at": pd.Series(
                [start + pd.Timedelta(seconds=int(c)) if c >= 0 else pd.NaT for c in converted_at],
                dtype="datetime64[ns, UTC]",
            ),
            "opportunity_key": opportunity_key,
        }
    )

    order = ["new", "working", "meeting_booked", "converted"]
    rows = []
    for i, st in enumerate(status):
        path = order[: order.index(st) + 1] if st in order else ["new", "working", "disqualified"]
        for j in range(1, len(path)):
            rows.append((lead_keys[i], path[j - 1], path[j], created[i] + 86400 * (4 * j)))
    status_changes = pd.DataFrame(
        {
            "change_key": np.arange(len(rows)),
            "lead_key": [r[0] for r in rows],
            "old_status": [r[1] for r in rows],
            "new_status": [r[2] for r in rows],
            "changed_at": _ts(start, np.array([r[3] for r in rows])),
        }
    )

    n_touch = n_leads * 4
    t_lead = rng.integers(0, n_leads, n_touch)
    kind = rng.choice(["email", "call", "linkedin", "offer"], n_touch, p=[0.4, 0.3, 0.2, 0.1])
    t_status = np.where(
        kind == "call",
        rng.choice(["completed", "no_answer"], n_touch),
        np.where(
            np.isin(kind, ["email", "offer"]) & (rng.random(n_touch) < 0.05), "bounced", "completed"
        ),
    )
    subject = np.where(
        kind == "offer", "Offer: 20% off annual plan", np.char.add("Touch ", kind.astype(str))
    )
    touches = pd.DataFrame(
        {
            "touch_key": np.arange(n_touch),
            "lead_key": lead_keys[t_lead],
            "kind": kind,
            "status": t_status,
            "subject": subject,
            "owner_key": rng.choice(reps, n_touch),
            "occurred_at": _ts(start, created[t_lead] + rng.integers(60, 86400 * 30, n_touch)),
            "duration_seconds": np.where(kind == "call", rng.integers(10, 900, n_touch), np.nan),
        }
    )

    n_eng = n_leads * 3
    e_lead = rng.integers(0, n_leads, n_eng)
    e_kind = rng.choice(ENGAGEMENT_KINDS, n_eng)
    details = {
        "page_view": "/blog",
        "pricing_page_visit": "/pricing",
        "form_fill": "Demo request",
        "webinar_attended": "Scaling outbound",
        "content_download": "ROI guide",
        "email_click": "Spring newsletter",
    }
    engagements = pd.DataFrame(
        {
            "engagement_key": np.arange(n_eng),
            "lead_key": lead_keys[e_lead],
            "kind": e_kind,
            "detail": [details[k] for k in e_kind],
            "occurred_at": _ts(start, created[e_lead] + rng.integers(60, 86400 * 30, n_eng)),
        }
    )

    booked = np.flatnonzero(np.isin(status, ["meeting_booked", "converted"]))
    meetings = pd.DataFrame(
        {
            "meeting_key": np.arange(len(booked)),
            "lead_key": lead_keys[booked],
            "owner_key": rng.choice(reps, len(booked)),
            "subject": "Intro call",
            "booked_at": _ts(start, created[booked] + 86400 * 10),
            "start_at": _ts(start, created[booked] + 86400 * 14),
            "duration_minutes": 30,
        }
    )

    conv = np.flatnonzero(converted)
    stages = rng.choice(
        ["qualification", "proposal", "negotiation", "closed_won", "closed_lost"], n_opps
    )
    closed = np.isin(stages, ["closed_won", "closed_lost"])
    opp_created = converted_at[conv]
    opportunities = pd.DataFrame(
        {
            "opportunity_key": opp_keys,
            "account_key": account_key[conv],
            "lead_key": lead_keys[conv],
            "owner_key": rng.choice(reps, n_opps),
            "name": [f"Deal {k}" for k in opp_keys],
            "stage": stages,
            "amount": rng.integers(5, 200, n_opps) * 1000.0,
            "created_at": _ts(start, opp_created),
            "close_date": _ts(start, (opp_created // 86400 + 30) * 86400),
            "closed_at": pd.Series(
                [
                    start + pd.Timedelta(seconds=int(c) + 86400 * 25) if cl else pd.NaT
                    for c, cl in zip(opp_created, closed, strict=True)
                ],
                dtype="datetime64[ns, UTC]",
            ),
            "modified_at": _ts(start, opp_created + 86400 * 26),
        }
    )
    seed_obj = CrmSeed(
        now=NOW,
        users=users,
        queues=queues,
        accounts=accounts,
        leads=leads,
        status_changes=status_changes,
        touches=touches,
        engagements=engagements,
        meetings=meetings,
        opportunities=opportunities,
    )
    seed_obj.validate()
    return seed_obj
