"""The CRM-neutral data a sandbox org or portal is seeded with.

A `CrmSeed` is what a CRM would hold about a company's funnel, and nothing
more: no true propensity, no true uplift, no latent intent. The synthetic
world (``integration.world``) produces one; the sandbox renders it as
Salesforce records (Lead, Account, Task, Event, Opportunity, ...) or HubSpot
objects (contacts, companies, calls, emails, meetings, deals, ...).

Every frame is a pandas DataFrame with exactly the columns listed in
``SEED_COLUMNS``. Keys are small non-negative integers, unique within their
frame; the sandbox mints CRM-style ids from them (nullable keys are ``Int64``).
Timestamps are tz-aware UTC ``datetime64[ns, UTC]``; a missing timestamp is
``NaT``, a missing number ``NaN``, a missing text value ``None`` in an
``object`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

# Lead behaviour kinds are part of the seed vocabulary; the protocol owns the list.
from connectors.base import ENGAGEMENT_KINDS as ENGAGEMENT_KINDS

# Vocabularies shared by the generator and the sandbox renderers.
USER_ROLES = ("sdr", "ae", "senior_ae", "marketing_automation", "integration")
TIERS = ("A", "B", "C", "D")
SIZE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Professional Services",
)
LEAD_SOURCES = (
    "Web Form",
    "Paid Search",
    "Webinar",
    "Content Download",
    "Event",
    "Outbound List",
    "Referral",
    "Partner",
)
# Sales touches: what a rep did to a lead.
TOUCH_KINDS = ("email", "call", "linkedin", "offer")
TOUCH_STATUSES = ("completed", "bounced", "no_answer")
# Lead status vocabulary (neutral); each renderer maps it to its CRM's values.
LEAD_STATUSES = ("new", "working", "meeting_booked", "converted", "disqualified")
OPPORTUNITY_STAGES = ("qualification", "proposal", "negotiation", "closed_won", "closed_lost")

SEED_COLUMNS: dict[str, tuple[str, ...]] = {
    # One row per CRM user (reps, the marketing-automation user, the integration user).
    "users": ("user_key", "first_name", "last_name", "email", "role", "active", "created_at"),
    # Lead queues (Salesforce Group Type='Queue'; HubSpot owners of type QUEUE).
    "queues": ("queue_key", "name", "developer_name"),
    # Firmographics; `employees` is the raw count, `size_band` derived from it.
    "accounts": (
        "account_key",
        "name",
        "domain",
        "industry",  # one of INDUSTRIES or None
        "employees",  # int or NaN
        "size_band",  # one of SIZE_BANDS or None
        "annual_revenue",  # float or NaN
        "country",  # ISO-3166 alpha-2
        "region",  # one of REGIONS
        "tier",  # one of TIERS (the customer's ICP tier field)
        "owner_key",  # users.user_key
        "created_at",
        "modified_at",
    ),
    # People: Salesforce Leads (Contacts once converted), HubSpot contacts.
    "leads": (
        "lead_key",
        "account_key",  # accounts.account_key or <NA> (free-mail / unmatched)
        "first_name",
        "last_name",
        "email",
        "phone",  # None when missing
        "title",  # None when missing
        "company",  # company name as typed on the form
        "lead_source",  # one of LEAD_SOURCES or None
        "status",  # one of LEAD_STATUSES (current value)
        "owner_key",  # users.user_key
        "email_opt_out",  # bool
        "experiment_arm",  # e.g. "call_first_v1/control" or None: a past experiment's arm label
        "created_at",
        "modified_at",
        "converted_at",  # NaT unless status == converted
        "opportunity_key",  # opportunities.opportunity_key created on conversion, or <NA>
    ),
    # Lead status history (Salesforce LeadHistory rows; HubSpot hs_lead_status history).
    "status_changes": ("change_key", "lead_key", "old_status", "new_status", "changed_at"),
    # Sales touches. `experiment_arm` is NOT here: a CRM activity does not know it.
    "touches": (
        "touch_key",
        "lead_key",
        "kind",  # one of TOUCH_KINDS
        "status",  # one of TOUCH_STATUSES ("bounced" only for email/offer)
        "subject",
        "owner_key",  # the rep
        "occurred_at",
        "duration_seconds",  # calls only, else NaN
    ),
    # Marketing engagement captured by automation (web, forms, webinars, email clicks).
    "engagements": ("engagement_key", "lead_key", "kind", "detail", "occurred_at"),
    # Meetings the lead booked (the primary outcome): booked_at is when it was booked.
    "meetings": (
        "meeting_key",
        "lead_key",
        "owner_key",
        "subject",
        "booked_at",
        "start_at",
        "duration_minutes",
    ),
    "opportunities": (
        "opportunity_key",
        "account_key",  # <NA> for free-mail leads' opportunities
        "lead_key",
        "owner_key",
        "name",
        "stage",  # one of OPPORTUNITY_STAGES
        "amount",
        "created_at",
        "close_date",  # expected or actual close date (tz-aware midnight UTC)
        "closed_at",  # NaT while open
        "modified_at",
    ),
}


@dataclass(frozen=True)
class CrmSeed:
    """The CRM-visible records of a synthetic company, keyed by neutral ints.

    Attributes:
        now: the world's clock at generation time. Nothing that happened is later
            than this; planned times (``meetings.start_at``, an open opportunity's
            ``close_date``) may be.
        users, queues, accounts, leads, status_changes, touches, engagements,
        meetings, opportunities: frames with the columns in ``SEED_COLUMNS``.
    """

    now: datetime
    users: pd.DataFrame
    queues: pd.DataFrame
    accounts: pd.DataFrame
    leads: pd.DataFrame
    status_changes: pd.DataFrame
    touches: pd.DataFrame
    engagements: pd.DataFrame
    meetings: pd.DataFrame
    opportunities: pd.DataFrame

    def validate(self) -> None:
        """Raise ValueError naming the first frame whose columns or keys are wrong."""
        for name, columns in SEED_COLUMNS.items():
            frame: pd.DataFrame = getattr(self, name)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"seed frame {name!r} lacks columns {missing}")
            key = columns[0]
            if not frame[key].is_unique:
                raise ValueError(f"seed frame {name!r} has duplicate {key}")
