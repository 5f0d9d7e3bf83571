"""Render a CrmSeed as Salesforce objects (vectorised, one Table per object)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import SandboxConfig
from .countries import COUNTRY_NAMES
from .ids import SF_KEY_PREFIXES, mint_sf_ids
from .salesforce_schema import (
    LEAD_STATUS,
    OPPORTUNITY_STAGE,
    SETUP_OBJECTS,
    STAGE_PROBABILITY,
    FieldDef,
    ObjectSchema,
    standard_fields,
    tooling_fields,
)
from .seed import CrmSeed
from .seedutil import (
    KeyIndex,
    floor_seconds,
    map_values,
    sorted_frame,
    stable_fraction,
    str_column,
    take,
    take_num,
)
from .table import Table
from .timefmt import to_datetime64, to_naive_utc

BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
ENGAGEMENT_SUBJECTS = {
    "page_view": ("Visited website", False),
    "pricing_page_visit": ("Visited pricing page", False),
    "form_fill": ("Filled out form", True),
    "webinar_attended": ("Attended webinar", True),
    "content_download": ("Downloaded", True),
    "email_click": ("Clicked email", True),
}
TOUCH_SUBTYPE = {"email": "Email", "offer": "Email", "call": "Call", "linkedin": "LinkedIn"}
TOUCH_TYPE = {"email": "Email", "offer": "Offer", "call": "Call", "linkedin": "LinkedIn"}


@dataclass
class KeySource:
    """Where a seed frame's rows live inside an object's table."""

    index: KeyIndex
    offset: int = 0


@dataclass
class RenderedOrg:
    tables: dict[str, Table]
    schemas: dict[str, ObjectSchema]
    tooling_tables: dict[str, Table]
    tooling_schemas: dict[str, ObjectSchema]
    sources: dict[str, dict[str, KeySource]] = field(default_factory=dict)
    default_source: dict[str, str] = field(default_factory=dict)
    org_id: str = ""
    integration_user_id: str | None = None


def _ts(frame: pd.DataFrame, column: str) -> np.ndarray:
    return floor_seconds(to_naive_utc(frame[column]))


def _table(name: str, schema: ObjectSchema, columns: dict[str, object], n: int) -> Table:
    return Table(name, n, columns, {f.name: f.kind for f in schema.fields})


def _audit(n: int, created: np.ndarray, modified: np.ndarray | None = None) -> dict:
    modified = created if modified is None else np.maximum(created, modified)
    return {
        "CreatedDate": created,
        "LastModifiedDate": modified,
        "SystemModstamp": modified,
        "IsDeleted": np.zeros(n, dtype=bool),
    }


def render_salesforce(seed: CrmSeed, config: SandboxConfig) -> RenderedOrg:
    """Render every Salesforce object from ``seed``.

    Args:
        seed: the neutral CRM data.
        config: supplies the org name and the share of leads with blank firmographics.

    Returns:
        Tables, schemas and the key maps `SalesforceOrg` needs.
    """
    std = standard_fields()
    schemas = {name: ObjectSchema(name, list(fields)) for name, fields in std.items()}
    tables: dict[str, Table] = {}
    sources: dict[str, dict[str, KeySource]] = {}
    now = floor_seconds(np.array([to_datetime64(seed.now)]))[0]

    users = sorted_frame(seed.users, "user_key")
    queues = sorted_frame(seed.queues, "queue_key")
    accounts = sorted_frame(seed.accounts, "account_key")
    leads = sorted_frame(seed.leads, "lead_key")
    changes = sorted_frame(seed.status_changes, "change_key")
    touches = sorted_frame(seed.touches, "touch_key")
    engagements = sorted_frame(seed.engagements, "engagement_key")
    meetings = sorted_frame(seed.meetings, "meeting_key")
    opps = sorted_frame(seed.opportunities, "opportunity_key")

    user_idx = KeyIndex(users["user_key"])
    queue_idx = KeyIndex(queues["queue_key"])
    account_idx = KeyIndex(accounts["account_key"])
    lead_idx = KeyIndex(leads["lead_key"])
    opp_idx = KeyIndex(opps["opportunity_key"])

    def ids(obj: str, n: int) -> np.ndarray:
        return mint_sf_ids(SF_KEY_PREFIXES[obj], 0, n)

    # Users -------------------------------------------------------------------------------
    nu = len(users)
    user_ids = ids("User", nu)
    first = str_column(users["first_name"])
    last = str_column(users["last_name"])
    email = str_column(users["email"])
    created = _ts(users, "created_at")
    tables["User"] = _table(
        "User",
        schemas["User"],
        {
            "Id": user_ids,
            "Name": _full_names(first, last),
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "IsActive": users["active"].fillna(False).astype(bool).to_numpy(),
            "Username": np.array([f"{e}.sandbox" if e else None for e in email], dtype=object),
            "Title": str_column(users["role"]),
            **_audit(nu, created),
        },
        nu,
    )
    sources["User"] = {"users": KeySource(user_idx)}
    roles = str_column(users["role"])
    marketing_pos = np.flatnonzero(roles == "marketing_automation")
    integration_pos = np.flatnonzero(roles == "integration")
    org_created = created.min() if nu else now

    # Queues ------------------------------------------------------------------------------
    nq = len(queues)
    queue_ids = ids("Group", nq)
    q_created = np.full(nq, org_created, dtype="datetime64[ns]")
    dev = str_column(queues["developer_name"])
    tables["Group"] = _table(
        "Group",
        schemas["Group"],
        {
            "Id": queue_ids,
            "Name": str_column(queues["name"]),
            "DeveloperName": dev,
            "Type": "Queue",
            "Email": None,
            **_audit(nq, q_created),
        },
        nq,
    )
    tables["QueueSobject"] = _table(
        "QueueSobject",
        schemas["QueueSobject"],
        {
            "Id": ids("QueueSobject", nq),
            "QueueId": queue_ids,
            "SobjectType": "Lead",
            **_audit(nq, q_created),
        },
        nq,
    )
    sources["Group"] = {"queues": KeySource(queue_idx)}
    sources["QueueSobject"] = {"queues": KeySource(queue_idx)}

    # Organization ------------------------------------------------------------------------
    org_ids = ids("Organization", 1)
    tables["Organization"] = _table(
        "Organization",
        schemas["Organization"],
        {
            "Id": org_ids,
            "Name": config.salesforce_org_name,
            **_audit(1, np.array([org_created], dtype="datetime64[ns]")),
        },
        1,
    )

    def owner_ids(keys: pd.Series) -> np.ndarray:
        return take(user_ids, user_idx.positions(keys))

    # Accounts ----------------------------------------------------------------------------
    na = len(accounts)
    account_ids = ids("Account", na)
    domain = str_column(accounts["domain"])
    codes = str_column(accounts["country"])
    tables["Account"] = _table(
        "Account",
        schemas["Account"],
        {
            "Id": account_ids,
            "Name": str_column(accounts["name"]),
            "Website": np.array([f"https://www.{d}" if d else None for d in domain], dtype=object),
            "Industry": str_column(accounts["industry"]),
            "NumberOfEmployees": accounts["employees"].to_numpy(dtype=float, na_value=np.nan),
            "AnnualRevenue": accounts["annual_revenue"].to_numpy(dtype=float, na_value=np.nan),
            "BillingCountry": map_values(
                codes,
                {**COUNTRY_NAMES, **{c: c for c in set(codes.tolist()) - set(COUNTRY_NAMES) if c}},
            ),
            "BillingCountryCode": codes,
            "OwnerId": owner_ids(accounts["owner_key"]),
            "ICP_Tier__c": str_column(accounts["tier"]),
            **_audit(na, _ts(accounts, "created_at"), _ts(accounts, "modified_at")),
        },
        na,
    )
    sources["Account"] = {"accounts": KeySource(account_idx)}

    # Leads and Contacts ------------------------------------------------------------------
    nl = len(leads)
    lead_ids = ids("Lead", nl)
    status = str_column(leads["status"])
    converted = status == "converted"
    converted_pos = np.flatnonzero(converted)
    contact_ids = ids("Contact", len(converted_pos))
    contact_of_lead = np.full(nl, None, dtype=object)
    contact_of_lead[converted_pos] = contact_ids
    acct_pos = account_idx.positions(leads["account_key"])
    lead_account_ids = take(account_ids, acct_pos)
    blank = stable_fraction(leads["lead_key"], 17) < config.lead_firmographics_blank_rate
    industry = take(tables["Account"].col("Industry"), acct_pos)
    industry[blank] = None
    employees = take_num(tables["Account"].col("NumberOfEmployees"), acct_pos)
    employees[blank] = np.nan
    opp_pos = opp_idx.positions(leads["opportunity_key"])
    opp_ids = ids("Opportunity", len(opps))
    converted_at = _ts(leads, "converted_at")
    bounced_at, bounce_reason = _first_bounce(touches, lead_idx, nl)
    lfirst = str_column(leads["first_name"])
    llast = str_column(leads["last_name"])
    lead_created = _ts(leads, "created_at")
    lead_modified = _ts(leads, "modified_at")
    lead_owner = take(
        np.concatenate([user_ids, queue_ids]),
        _owner_positions(leads["owner_key"], user_idx),
    )
    tables["Lead"] = _table(
        "Lead",
        schemas["Lead"],
        {
            "Id": lead_ids,
            "FirstName": lfirst,
            "LastName": llast,
            "Name": _full_names(lfirst, llast),
            "Email": str_column(leads["email"]),
            "Phone": str_column(leads["phone"]),
            "Title": str_column(leads["title"]),
            "Company": str_column(leads["company"]),
            "Industry": industry,
            "NumberOfEmployees": employees,
            "LeadSource": str_column(leads["lead_source"]),
            "Status": map_values(status, LEAD_STATUS),
            "OwnerId": lead_owner,
            "IsConverted": converted,
            "ConvertedDate": converted_at.astype("datetime64[D]").astype("datetime64[ns]"),
            "ConvertedAccountId": np.where(converted, lead_account_ids, None),
            "ConvertedContactId": contact_of_lead,
            "ConvertedOpportunityId": np.where(converted, take(opp_ids, opp_pos), None),
            "EmailBouncedDate": bounced_at,
            "EmailBouncedReason": bounce_reason,
            "HasOptedOutOfEmail": leads["email_opt_out"].fillna(False).astype(bool).to_numpy(),
            "Account__c": lead_account_ids,
            "Experiment_Arm__c": str_column(leads["experiment_arm"]),
            **_audit(nl, lead_created, lead_modified),
        },
        nl,
    )
    sources["Lead"] = {"leads": KeySource(lead_idx)}

    nc = len(converted_pos)
    contact_created = converted_at[converted_pos]
    tables["Contact"] = _table(
        "Contact",
        schemas["Contact"],
        {
            "Id": contact_ids,
            "AccountId": lead_account_ids[converted_pos],
            "FirstName": lfirst[converted_pos],
            "LastName": llast[converted_pos],
            "Name": _full_names(lfirst[converted_pos], llast[converted_pos]),
            "Email": str_column(leads["email"])[converted_pos],
            "Title": str_column(leads["title"])[converted_pos],
            "LeadSource": str_column(leads["lead_source"])[converted_pos],
            "OwnerId": owner_ids(leads["owner_key"].iloc[converted_pos]),
            **_audit(nc, contact_created),
        },
        nc,
    )
    sources["Contact"] = {"leads": KeySource(KeyIndex(leads["lead_key"].iloc[converted_pos]))}

    # Tasks: sales touches, then marketing engagements ----------------------------------------
    nt, ne = len(touches), len(engagements)
    kind = str_column(touches["kind"])
    tstatus = str_column(touches["status"])
    t_at = _ts(touches, "occurred_at")
    is_call = kind == "call"
    disposition = np.full(nt, None, dtype=object)
    disposition[is_call & (tstatus == "completed")] = "Connected"
    disposition[is_call & (tstatus == "no_answer")] = "No Answer"
    e_at = _ts(engagements, "occurred_at")
    mkt_user = user_ids[marketing_pos[0]] if len(marketing_pos) else None
    duration = touches["duration_seconds"].to_numpy(dtype=float, na_value=np.nan)
    task_at = np.concatenate([t_at, e_at])
    year_ago = now - np.timedelta64(365, "D")
    tables["Task"] = _table(
        "Task",
        schemas["Task"],
        {
            "Id": ids("Task", nt + ne),
            "WhoId": np.concatenate(
                [
                    take(lead_ids, lead_idx.positions(touches["lead_key"])),
                    take(lead_ids, lead_idx.positions(engagements["lead_key"])),
                ]
            ),
            "WhatId": None,
            "OwnerId": np.concatenate(
                [owner_ids(touches["owner_key"]), np.full(ne, mkt_user, dtype=object)]
            ),
            "Subject": np.concatenate(
                [str_column(touches["subject"]), _engagement_subjects(engagements)]
            ),
            "Status": "Completed",
            "Priority": "Normal",
            "IsClosed": True,
            "ActivityDate": task_at.astype("datetime64[D]").astype("datetime64[ns]"),
            "CompletedDateTime": task_at,
            "TaskSubtype": np.concatenate(
                [map_values(kind, TOUCH_SUBTYPE), np.full(ne, "Task", object)]
            ),
            "Type": np.concatenate(
                [map_values(kind, TOUCH_TYPE), np.full(ne, "Marketing", object)]
            ),
            "CallType": np.concatenate([np.where(is_call, "Outbound", None), np.full(ne, None)]),
            "CallDurationInSeconds": np.concatenate(
                [np.where(is_call, duration, np.nan), np.full(ne, np.nan)]
            ),
            "CallDisposition": np.concatenate([disposition, np.full(ne, None, dtype=object)]),
            "IsArchived": task_at < year_ago,
            **_audit(nt + ne, task_at),
        },
        nt + ne,
    )
    sources["Task"] = {
        "touches": KeySource(KeyIndex(touches["touch_key"])),
        "engagements": KeySource(KeyIndex(engagements["engagement_key"]), nt),
    }

    # Events (booked meetings) ----------------------------------------------------------------
    nm = len(meetings)
    start = _ts(meetings, "start_at")
    minutes = meetings["duration_minutes"].to_numpy(dtype=float, na_value=np.nan)
    end = start + (np.nan_to_num(minutes) * 60).astype("timedelta64[s]").astype("timedelta64[ns]")
    tables["Event"] = _table(
        "Event",
        schemas["Event"],
        {
            "Id": ids("Event", nm),
            "WhoId": take(lead_ids, lead_idx.positions(meetings["lead_key"])),
            "OwnerId": owner_ids(meetings["owner_key"]),
            "Subject": str_column(meetings["subject"]),
            "Type": "Meeting",
            "EventSubtype": "Event",
            "StartDateTime": start,
            "EndDateTime": end,
            "ActivityDateTime": start,
            "ActivityDate": start.astype("datetime64[D]").astype("datetime64[ns]"),
            "DurationInMinutes": minutes,
            **_audit(nm, _ts(meetings, "booked_at")),
        },
        nm,
    )
    sources["Event"] = {"meetings": KeySource(KeyIndex(meetings["meeting_key"]))}

    # Opportunities ---------------------------------------------------------------------------
    no = len(opps)
    stage = str_column(opps["stage"])
    opp_lead_pos = lead_idx.positions(opps["lead_key"])
    tables["Opportunity"] = _table(
        "Opportunity",
        schemas["Opportunity"],
        {
            "Id": opp_ids,
            "AccountId": take(account_ids, account_idx.positions(opps["account_key"])),
            "Name": str_column(opps["name"]),
            "StageName": map_values(stage, OPPORTUNITY_STAGE),
            "IsClosed": np.isin(stage, ["closed_won", "closed_lost"]),
            "IsWon": stage == "closed_won",
            "Amount": opps["amount"].to_numpy(dtype=float, na_value=np.nan),
            "CloseDate": _ts(opps, "close_date").astype("datetime64[D]").astype("datetime64[ns]"),
            "Probability": map_values(stage, STAGE_PROBABILITY).astype(float),
            "LeadSource": take(str_column(leads["lead_source"]), opp_lead_pos),
            "OwnerId": owner_ids(opps["owner_key"]),
            **_audit(no, _ts(opps, "created_at"), _ts(opps, "modified_at")),
        },
        no,
    )
    sources["Opportunity"] = {"opportunities": KeySource(opp_idx)}

    # LeadHistory -------------------------------------------------------------------------------
    nh = len(changes)
    tables["LeadHistory"] = _table(
        "LeadHistory",
        schemas["LeadHistory"],
        {
            "Id": ids("LeadHistory", nh),
            "LeadId": take(lead_ids, lead_idx.positions(changes["lead_key"])),
            "Field": "Status",
            "OldValue": map_values(str_column(changes["old_status"]), LEAD_STATUS),
            "NewValue": map_values(str_column(changes["new_status"]), LEAD_STATUS),
            "CreatedDate": _ts(changes, "changed_at"),
            "IsDeleted": np.zeros(nh, dtype=bool),
        },
        nh,
    )
    sources["LeadHistory"] = {"status_changes": KeySource(KeyIndex(changes["change_key"]))}

    # Setup objects: empty until permission sets are created through the API -----------------
    for name in SETUP_OBJECTS:
        tables[name] = _table(name, schemas[name], {}, 0)

    # Tooling: the seed's own custom fields ------------------------------------------------------
    tschemas = {name: ObjectSchema(name, list(f)) for name, f in tooling_fields().items()}
    custom = [(obj, f) for obj, s in schemas.items() for f in s.fields if f.custom]
    cf_ids = ids("CustomField", len(custom))
    for fdef, cf_id in zip((f for _, f in custom), cf_ids, strict=True):
        fdef.custom_field_id = cf_id
    cf_created = np.full(len(custom), org_created, dtype="datetime64[ns]")
    tooling_tables = {
        "CustomField": _table(
            "CustomField",
            tschemas["CustomField"],
            {
                "Id": cf_ids,
                "DeveloperName": np.array(
                    [f.name.removesuffix("__c") for _, f in custom], dtype=object
                ),
                "TableEnumOrId": np.array([obj for obj, _ in custom], dtype=object),
                "FullName": np.array([f"{obj}.{f.name}" for obj, f in custom], dtype=object),
                "Description": None,
                "NamespacePrefix": None,
                "CreatedDate": cf_created,
                "LastModifiedDate": cf_created,
                "SystemModstamp": cf_created,
            },
            len(custom),
        )
    }

    return RenderedOrg(
        tables=tables,
        schemas=schemas,
        tooling_tables=tooling_tables,
        tooling_schemas=tschemas,
        sources=sources,
        default_source={obj: next(iter(src)) for obj, src in sources.items()},
        org_id=str(org_ids[0]),
        integration_user_id=str(user_ids[integration_pos[0]])
        if len(integration_pos)
        else (str(user_ids[0]) if nu else None),
    )


def _full_names(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    return np.array(
        [" ".join(p for p in (f, s) if p) or None for f, s in zip(first, last, strict=True)],
        dtype=object,
    )


def _owner_positions(keys: pd.Series, user_idx: KeyIndex) -> np.ndarray:
    # Seed leads are owned by users; the queue half of the concatenated id array is for
    # later reassignment and never addressed here.
    return user_idx.positions(keys)


def _first_bounce(
    touches: pd.DataFrame, lead_idx: KeyIndex, n: int
) -> tuple[np.ndarray, np.ndarray]:
    at = np.full(n, np.datetime64("NaT", "ns"))
    reason = np.full(n, None, dtype=object)
    bounced = touches[touches["kind"].isin(["email", "offer"]) & (touches["status"] == "bounced")]
    if len(bounced):
        first = bounced.groupby("lead_key")["occurred_at"].min()
        pos = lead_idx.positions(first.index.to_numpy())
        ok = pos >= 0
        at[pos[ok]] = floor_seconds(to_naive_utc(first))[ok]
        reason[pos[ok]] = BOUNCE_REASON
    return at, reason


def _engagement_subjects(engagements: pd.DataFrame) -> np.ndarray:
    kinds = str_column(engagements["kind"])
    details = str_column(engagements["detail"])
    base = map_values(kinds, {k: v[0] for k, v in ENGAGEMENT_SUBJECTS.items()})
    unknown = base == None  # noqa: E711 (elementwise on an object array)
    base[unknown] = kinds[unknown]
    with_detail = map_values(kinds, {k: v[1] for k, v in ENGAGEMENT_SUBJECTS.items()})
    idx = np.flatnonzero((with_detail != False) & (details != None))  # noqa: E711, E712
    if len(idx):
        joined = pd.Series(base[idx], dtype=object) + ": " + pd.Series(details[idx], dtype=object)
        base[idx] = joined.to_numpy(dtype=object)
    return base


def custom_field_def(full_name: str, metadata: dict) -> FieldDef:
    """Build the FieldDef a Tooling ``CustomField`` create describes.

    Raises:
        ValueError: with a Salesforce-like message when the metadata is unusable.
    """
    fdef = _custom_field_def(full_name, metadata)
    formula = metadata.get("formula")
    if formula:
        fdef.calculated = True
        fdef.updateable = False
        fdef.formula = str(formula)
    return fdef


def _custom_field_def(full_name: str, metadata: dict) -> FieldDef:
    name = full_name.split(".", 1)[1]
    kind = str(metadata.get("type", ""))
    label = str(metadata.get("label") or name.removesuffix("__c").replace("_", " "))
    if kind == "Number":
        precision = int(metadata.get("precision", 18))
        scale = int(metadata.get("scale", 0))
        if not 1 <= precision <= 18 or not 0 <= scale <= precision:
            raise ValueError("Invalid precision/scale for a Number field")
        return FieldDef(name, "double", label, custom=True, precision=precision, scale=scale)
    if kind == "Currency":
        return FieldDef(
            name,
            "currency",
            label,
            custom=True,
            precision=int(metadata.get("precision", 18)),
            scale=int(metadata.get("scale", 2)),
        )
    if kind == "Percent":
        return FieldDef(
            name,
            "percent",
            label,
            custom=True,
            precision=int(metadata.get("precision", 5)),
            scale=int(metadata.get("scale", 2)),
        )
    if kind == "Text":
        length = int(metadata.get("length", 255))
        if not 1 <= length <= 255:
            raise ValueError("Length must be between 1 and 255")
        return FieldDef(name, "string", label, length=length, custom=True)
    if kind == "LongTextArea":
        return FieldDef(
            name, "textarea", label, length=int(metadata.get("length", 32768)), custom=True
        )
    if kind == "Checkbox":
        return FieldDef(name, "boolean", label, custom=True, nillable=False)
    if kind == "DateTime":
        return FieldDef(name, "datetime", label, custom=True)
    if kind == "Date":
        return FieldDef(name, "date", label, custom=True)
    if kind == "Picklist":
        value_set = metadata.get("valueSet") or {}
        definition = value_set.get("valueSetDefinition") or {}
        values = tuple(
            str(v.get("fullName") or v.get("label")) for v in definition.get("value", [])
        )
        if not values:
            raise ValueError("Picklist fields need valueSet.valueSetDefinition.value")
        return FieldDef(
            name,
            "picklist",
            label,
            length=255,
            custom=True,
            picklist=values,
            restricted=bool(value_set.get("restricted", False)),
        )
    raise ValueError(f"Unsupported custom field type: {kind or '<missing>'}")
