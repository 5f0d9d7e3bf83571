"""HubSpot object types, property definitions and association type ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .seed import LEAD_SOURCES
from .table import Kind

# Paths live here so a move to HubSpot's date-based versions touches one file.
CRM_V3 = "/crm/v3"
CRM_V4 = "/crm/v4"
OAUTH_V1 = "/oauth/v1"

OBJECT_TYPES = ("contacts", "companies", "deals", "calls", "emails", "tasks", "meetings")
TYPE_ALIASES: dict[str, str] = {
    **{t: t for t in OBJECT_TYPES},
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "call": "calls",
    "email": "emails",
    "task": "tasks",
    "meeting": "meetings",
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-48": "calls",
    "0-49": "emails",
    "0-27": "tasks",
    "0-47": "meetings",
}
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "tasks": "task",
    "meetings": "meeting",
}
MODIFIED_PROPERTY = {t: "hs_lastmodifieddate" for t in OBJECT_TYPES} | {
    "contacts": "lastmodifieddate"
}
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "calls": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "emails": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "meetings": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
DEFAULT_GROUPS = {
    "contacts": ("contactinformation", "Contact information"),
    "companies": ("companyinformation", "Company information"),
    "deals": ("dealinformation", "Deal information"),
    "calls": ("call", "Call"),
    "emails": ("email", "Email"),
    "tasks": ("task", "Task"),
    "meetings": ("meeting", "Meeting"),
}
TYPE_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "phonenumber", "html", "file"}),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
}

# v4 association type ids (HUBSPOT_DEFINED). Primary labels come first where HubSpot sends them.
ASSOCIATION_TYPES: dict[tuple[str, str], list[tuple[int, str | None]]] = {
    ("contacts", "companies"): [(1, "Primary"), (279, None)],
    ("companies", "contacts"): [(280, None), (2, "Primary")],
    ("calls", "contacts"): [(194, None)],
    ("contacts", "calls"): [(193, None)],
    ("emails", "contacts"): [(198, None)],
    ("contacts", "emails"): [(197, None)],
    ("meetings", "contacts"): [(200, None)],
    ("contacts", "meetings"): [(199, None)],
    ("tasks", "contacts"): [(204, None)],
    ("contacts", "tasks"): [(203, None)],
    ("deals", "contacts"): [(3, None)],
    ("contacts", "deals"): [(4, None)],
    ("deals", "companies"): [(5, "Primary"), (341, None)],
    ("companies", "deals"): [(6, "Primary"), (342, None)],
}

LEAD_STATUS = {
    "new": "NEW",
    "working": "IN_PROGRESS",
    "meeting_booked": "CONNECTED",
    "converted": "OPEN_DEAL",
    "disqualified": "UNQUALIFIED",
}
LIFECYCLE = {
    "new": "lead",
    "working": "lead",
    "meeting_booked": "salesqualifiedlead",
    "converted": "opportunity",
    "disqualified": "other",
}
DEAL_STAGE = {
    "qualification": "qualifiedtobuy",
    "proposal": "presentationscheduled",
    "negotiation": "contractsent",
    "closed_won": "closedwon",
    "closed_lost": "closedlost",
}
INDUSTRY = {
    "Software": "COMPUTER_SOFTWARE",
    "Financial Services": "FINANCIAL_SERVICES",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Manufacturing": "MACHINERY",
    "Retail": "RETAIL",
    "Education": "EDUCATION_MANAGEMENT",
    "Professional Services": "MANAGEMENT_CONSULTING",
}
ICP_TIER = {"A": "tier_1", "B": "tier_2", "C": "tier_3"}
ANALYTICS_SOURCE = {
    "Paid Search": "PAID_SEARCH",
    "Referral": "REFERRALS",
    "Partner": "REFERRALS",
    "Event": "OFFLINE",
    "Outbound List": "OFFLINE",
    "Web Form": "DIRECT_TRAFFIC",
    "Content Download": "ORGANIC_SEARCH",
    "Webinar": "OTHER_CAMPAIGNS",
}
# HubSpot's built-in call outcomes are GUIDs; these are the portal defaults.
CALL_DISPOSITION = {
    "completed": "f240bbac-87c9-4f6e-bf70-924b57d47db7",  # Connected
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",  # No answer
}
CALL_DISPOSITION_LABELS = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": "Connected",
    "73a0d17f-1163-4015-bdd5-ec830791da20": "No answer",
    "9d9162e7-6cf3-4944-bf63-4dff82258764": "Busy",
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "Left live message",
    "b2cf5968-551e-4856-9783-52b3da59a7d0": "Left voicemail",
    "17b47fee-58de-441e-a44c-c6300d46f273": "Wrong number",
}


@dataclass
class PropertyDef:
    """One HubSpot property definition.

    ``column`` is the storage column when it differs from ``name`` (aliases such as
    ``hs_createdate`` share ``createdate``); ``hs_object_id`` has no column.
    """

    name: str
    type: str  # string number date datetime enumeration bool
    field_type: str
    label: str = ""
    group: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    calculated: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    column: str | None = None
    description: str = ""
    has_unique_value: bool = False
    hidden: bool = False
    created_at: str | None = None
    referenced_object_type: str | None = None

    @property
    def storage(self) -> str:
        return self.column or self.name

    @property
    def kind(self) -> Kind:
        if self.type == "number":
            return "num"
        if self.type in ("date", "datetime"):
            return "datetime"
        return "str"

    def definition(self) -> dict[str, Any]:
        """Return the properties-API JSON for this property."""
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label or self.name.replace("_", " ").capitalize(),
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": self.options,
            "displayOrder": -1,
            "calculated": self.calculated,
            "externalOptions": self.referenced_object_type is not None,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only and not self.calculated,
            "dataSensitivity": "non_sensitive",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only or self.calculated,
            },
        }
        if self.referenced_object_type:
            out["referencedObjectType"] = self.referenced_object_type
        if self.created_at:
            out["createdAt"] = self.created_at
            out["updatedAt"] = self.created_at
        return out


def _opts(values: list[str] | dict[str, str]) -> list[dict[str, Any]]:
    pairs = values.items() if isinstance(values, dict) else [(v, v) for v in values]
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (value, label) in enumerate(pairs)
    ]


def _p(name: str, type_: str, **kw: Any) -> PropertyDef:
    field_type = (
        kw.pop("field_type", None)
        or {
            "string": "text",
            "number": "number",
            "date": "date",
            "datetime": "date",
            "enumeration": "select",
            "bool": "booleancheckbox",
        }[type_]
    )
    return PropertyDef(name, type_, field_type, **kw)


def builtin_properties(object_type: str) -> list[PropertyDef]:
    """Return the sandbox's built-in property definitions for ``object_type``."""
    group = DEFAULT_GROUPS[object_type][0]
    modified = MODIFIED_PROPERTY[object_type]
    common = [
        _p("hs_object_id", "number", label="Record ID", read_only=True, group=group),
        _p("createdate", "datetime", label="Create Date", read_only=True, group=group),
        _p(
            "hs_createdate",
            "datetime",
            label="Created at",
            read_only=True,
            group=group,
            column="createdate",
        ),
        _p(modified, "datetime", label="Last Modified Date", read_only=True, group=group),
        _p(
            "hubspot_owner_id",
            "enumeration",
            label="Owner",
            group=group,
            referenced_object_type="OWNER",
        ),
    ]
    if object_type == "contacts":
        common[-2:-2] = [
            _p(
                "hs_lastmodifieddate",
                "datetime",
                read_only=True,
                group=group,
                column="lastmodifieddate",
                hidden=True,
            )
        ]
    specific: dict[str, list[PropertyDef]] = {
        "contacts": [
            _p("firstname", "string", label="First Name"),
            _p("lastname", "string", label="Last Name"),
            _p("email", "string", label="Email", has_unique_value=False),
            _p("phone", "string", label="Phone Number", field_type="phonenumber"),
            _p("jobtitle", "string", label="Job Title"),
            _p("company", "string", label="Company Name"),
            _p("associatedcompanyid", "number", label="Primary Associated Company ID"),
            _p(
                "lead_source",
                "enumeration",
                label="Lead Source",
                hubspot_defined=False,
                options=_opts(list(LEAD_SOURCES)),
            ),
            _p(
                "hs_analytics_source",
                "enumeration",
                label="Original Source",
                read_only=True,
                options=_opts(
                    [
                        "ORGANIC_SEARCH",
                        "PAID_SEARCH",
                        "EMAIL_MARKETING",
                        "SOCIAL_MEDIA",
                        "REFERRALS",
                        "OTHER_CAMPAIGNS",
                        "DIRECT_TRAFFIC",
                        "OFFLINE",
                        "PAID_SOCIAL",
                        "AI_REFERRALS",
                    ]
                ),
            ),
            _p(
                "lifecyclestage",
                "enumeration",
                label="Lifecycle Stage",
                field_type="radio",
                options=_opts(
                    [
                        "subscriber",
                        "lead",
                        "marketingqualifiedlead",
                        "salesqualifiedlead",
                        "opportunity",
                        "customer",
                        "evangelist",
                        "other",
                    ]
                ),
            ),
            _p(
                "hs_lead_status",
                "enumeration",
                label="Lead Status",
                field_type="radio",
                options=_opts(
                    [
                        "NEW",
                        "OPEN",
                        "IN_PROGRESS",
                        "OPEN_DEAL",
                        "UNQUALIFIED",
                        "ATTEMPTED_TO_CONTACT",
                        "CONNECTED",
                        "BAD_TIMING",
                    ]
                ),
            ),
            _p(
                "hs_email_optout",
                "enumeration",
                label="Unsubscribed from all email",
                field_type="booleancheckbox",
                options=_opts({"true": "Yes", "false": "No"}),
            ),
            _p("experiment_arm", "string", label="Experiment arm", hubspot_defined=False),
            _p(
                "hs_analytics_num_page_views",
                "number",
                label="Number of Pageviews",
                calculated=True,
            ),
            _p("hs_analytics_num_visits", "number", label="Number of Sessions", calculated=True),
            _p(
                "hs_analytics_first_visit_timestamp",
                "datetime",
                label="Time of first session",
                calculated=True,
            ),
            _p(
                "hs_analytics_last_visit_timestamp",
                "datetime",
                label="Time of last session",
                calculated=True,
            ),
            _p(
                "num_conversion_events",
                "number",
                label="Number of Form Submissions",
                calculated=True,
            ),
            _p("first_conversion_event_name", "string", label="First Conversion", calculated=True),
            _p("first_conversion_date", "datetime", label="First Conversion Date", calculated=True),
            _p(
                "recent_conversion_event_name", "string", label="Recent Conversion", calculated=True
            ),
            _p(
                "recent_conversion_date",
                "datetime",
                label="Recent Conversion Date",
                calculated=True,
            ),
        ],
        "companies": [
            _p("name", "string", label="Company name"),
            _p("domain", "string", label="Company Domain Name"),
            _p(
                "industry",
                "enumeration",
                label="Industry",
                options=_opts(sorted(set(INDUSTRY.values()))),
            ),
            _p("numberofemployees", "number", label="Number of Employees"),
            _p("annualrevenue", "number", label="Annual Revenue"),
            _p("country", "string", label="Country/Region"),
            _p(
                "hs_ideal_customer_profile",
                "enumeration",
                label="Ideal Customer Profile Tier",
                field_type="radio",
                options=_opts({"tier_1": "Tier 1", "tier_2": "Tier 2", "tier_3": "Tier 3"}),
            ),
        ],
        "deals": [
            _p("dealname", "string", label="Deal Name"),
            _p(
                "dealstage",
                "enumeration",
                label="Deal Stage",
                field_type="radio",
                options=_opts(
                    {
                        "appointmentscheduled": "Appointment Scheduled",
                        "qualifiedtobuy": "Qualified To Buy",
                        "presentationscheduled": "Presentation Scheduled",
                        "decisionmakerboughtin": "Decision Maker Bought-In",
                        "contractsent": "Contract Sent",
                        "closedwon": "Closed Won",
                        "closedlost": "Closed Lost",
                    }
                ),
            ),
            _p(
                "pipeline",
                "enumeration",
                label="Pipeline",
                options=_opts({"default": "Sales Pipeline"}),
            ),
            _p("amount", "number", label="Amount"),
            _p("closedate", "datetime", label="Close Date"),
        ],
        "calls": [
            _p("hs_timestamp", "datetime", label="Activity date"),
            _p("hs_call_title", "string", label="Call Title"),
            _p(
                "hs_call_direction",
                "enumeration",
                label="Call direction",
                options=_opts(["INBOUND", "OUTBOUND"]),
            ),
            _p(
                "hs_call_disposition",
                "enumeration",
                label="Call outcome",
                options=_opts(CALL_DISPOSITION_LABELS),
            ),
            _p("hs_call_duration", "number", label="Call duration"),
            _p(
                "hs_call_status",
                "enumeration",
                label="Call status",
                options=_opts(
                    [
                        "BUSY",
                        "CALLING_CRM_USER",
                        "CANCELED",
                        "COMPLETED",
                        "CONNECTING",
                        "FAILED",
                        "IN_PROGRESS",
                        "MISSED",
                        "NO_ANSWER",
                        "QUEUED",
                        "RINGING",
                    ]
                ),
            ),
        ],
        "emails": [
            _p("hs_timestamp", "datetime", label="Activity date"),
            _p(
                "hs_email_direction",
                "enumeration",
                label="Email direction",
                options=_opts(["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]),
            ),
            _p("hs_email_subject", "string", label="Email subject"),
            _p(
                "hs_email_status",
                "enumeration",
                label="Email send status",
                options=_opts(["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"]),
            ),
        ],
        "tasks": [
            _p("hs_timestamp", "datetime", label="Due date"),
            _p("hs_task_subject", "string", label="Task Title"),
            _p(
                "hs_task_type",
                "enumeration",
                label="Task Type",
                options=_opts(["CALL", "EMAIL", "LINKED_IN", "MEETING", "TODO"]),
            ),
            _p(
                "hs_task_status",
                "enumeration",
                label="Task Status",
                options=_opts(["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
            ),
        ],
        "meetings": [
            _p("hs_timestamp", "datetime", label="Activity date"),
            _p("hs_meeting_title", "string", label="Meeting name"),
            _p("hs_meeting_start_time", "datetime", label="Start Time"),
            _p("hs_meeting_end_time", "datetime", label="End Time"),
            _p(
                "hs_meeting_outcome",
                "enumeration",
                label="Meeting outcome",
                options=_opts(["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"]),
            ),
        ],
    }[object_type]
    for prop in specific:
        prop.group = prop.group or group
    return common + specific
