"""Salesforce object and field metadata: what describe returns and how values are typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .seed import INDUSTRIES, LEAD_SOURCES
from .table import Kind

STRING_TYPES = frozenset(
    {"id", "string", "picklist", "reference", "textarea", "email", "phone", "url", "combobox"}
)
NUMBER_TYPES = frozenset({"double", "int", "currency", "percent"})

LEAD_STATUS = {
    "new": "Open - Not Contacted",
    "working": "Working - Contacted",
    "meeting_booked": "Meeting Booked",
    "converted": "Closed - Converted",
    "disqualified": "Closed - Not Converted",
}
OPPORTUNITY_STAGE = {
    "qualification": "Qualification",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
STAGE_PROBABILITY = {
    "qualification": 10.0,
    "proposal": 75.0,
    "negotiation": 90.0,
    "closed_won": 100.0,
    "closed_lost": 0.0,
}


@dataclass
class FieldDef:
    """One field as describe reports it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    custom: bool = False
    updateable: bool = True
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    custom_field_id: str | None = None
    # Created through the Tooling API: hidden from API users until a permission set grants it.
    protected: bool = False
    # A formula field: never writable, values are not computed by the sandbox.
    calculated: bool = False
    formula: str | None = None

    @property
    def kind(self) -> Kind:
        if self.type in NUMBER_TYPES:
            return "num"
        if self.type == "boolean":
            return "bool"
        if self.type in ("datetime", "date"):
            return "datetime"
        return "str"

    def describe(self) -> dict[str, Any]:
        """Return the describe ``fields[]`` entry."""
        soap = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "boolean": "xsd:boolean",
            "datetime": "xsd:dateTime",
            "date": "xsd:date",
            "double": "xsd:double",
            "currency": "xsd:double",
            "percent": "xsd:double",
            "int": "xsd:int",
        }.get(self.type, "xsd:string")
        relationship = None
        if self.type == "reference":
            relationship = (
                self.name[:-2] if self.name.endswith("Id") else self.name.replace("__c", "__r")
            )
        return {
            "aggregatable": True,
            "autoNumber": False,
            "byteLength": self.length * 3,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "caseSensitive": False,
            "createable": self.updateable and not self.calculated,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultedOnCreate": self.type == "boolean" or self.name in ("Id", "OwnerId"),
            "digits": 0,
            "externalId": False,
            "filterable": True,
            "groupable": self.type not in NUMBER_TYPES,
            "idLookup": self.name == "Id",
            "label": self.label or _label(self.name),
            "length": self.length,
            "name": self.name,
            "nillable": self.nillable,
            "permissionable": self.custom,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": relationship,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": soap,
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": False,
            "updateable": self.updateable and not self.calculated,
        }


def _label(name: str) -> str:
    base = name.removesuffix("__c").replace("_", " ")
    out = []
    for i, char in enumerate(base):
        if i and char.isupper() and base[i - 1].islower():
            out.append(" ")
        out.append(char)
    return "".join(out)


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    defaults = {
        "string": 255,
        "email": 80,
        "phone": 40,
        "url": 255,
        "picklist": 255,
        "id": 18,
        "reference": 18,
        "textarea": 32000,
    }
    kw.setdefault("length", defaults.get(type_, 0))
    if type_ in NUMBER_TYPES:
        kw.setdefault("precision", 18)
        kw.setdefault("scale", 2 if type_ != "int" else 0)
    return FieldDef(name, type_, **kw)


def _audit(with_deleted: bool = True) -> list[FieldDef]:
    fields = [
        _f("Id", "id", updateable=False, nillable=False, label="Record ID"),
        _f("CreatedDate", "datetime", updateable=False, nillable=False),
        _f("LastModifiedDate", "datetime", updateable=False, nillable=False),
        _f("SystemModstamp", "datetime", updateable=False, nillable=False),
    ]
    if with_deleted:
        fields.append(_f("IsDeleted", "boolean", updateable=False, nillable=False))
    return fields


def standard_fields() -> dict[str, list[FieldDef]]:
    """Return the built-in field definitions of every sandbox object, in describe order."""
    ro = {"updateable": False}
    owner_any = ("Group", "User")
    return {
        "User": [
            *_audit(),
            _f("Name", "string", length=121, **ro),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _f("Email", "email", nillable=False),
            _f("IsActive", "boolean", nillable=False),
            _f("Username", "string", length=80, nillable=False),
            _f("Title", "string", length=80),
        ],
        "Group": [
            *_audit(),
            _f("Name", "string", length=40, nillable=False),
            _f("DeveloperName", "string", length=80),
            _f("Type", "picklist", picklist=("Queue", "Regular"), **ro),
            _f("Email", "email"),
        ],
        "QueueSobject": [
            *_audit(),
            _f("QueueId", "reference", reference_to=("Group",), **ro),
            _f("SobjectType", "picklist", picklist=QUEUE_SOBJECT_TYPES, **ro),
        ],
        "PermissionSet": [
            *_audit(with_deleted=False),
            _f("Name", "string", length=80, nillable=False, label="API Name"),
            _f("Label", "string", length=80, nillable=False),
            _f("Description", "textarea", length=255),
            _f("IsOwnedByProfile", "boolean", nillable=False, **ro),
            _f("IsCustom", "boolean", nillable=False, **ro),
            _f("NamespacePrefix", "string", length=15, **ro),
        ],
        "FieldPermissions": [
            *_audit(with_deleted=False),
            _f("ParentId", "reference", reference_to=("PermissionSet",), nillable=False),
            _f("SobjectType", "picklist", length=40, nillable=False),
            _f("Field", "picklist", length=80, nillable=False),
            _f("PermissionsRead", "boolean", nillable=False),
            _f("PermissionsEdit", "boolean", nillable=False),
        ],
        "PermissionSetAssignment": [
            *_audit(with_deleted=False),
            _f("AssigneeId", "reference", reference_to=("User",), nillable=False),
            _f("PermissionSetId", "reference", reference_to=("PermissionSet",), nillable=False),
        ],
        "Organization": [*_audit(), _f("Name", "string", length=80, **ro)],
        "Account": [
            *_audit(),
            _f("Name", "string", nillable=False),
            _f("Website", "url"),
            _f("Industry", "picklist", picklist=INDUSTRIES),
            _f("NumberOfEmployees", "int", precision=8),
            _f("AnnualRevenue", "currency"),
            _f("BillingCountry", "string", length=80),
            _f("BillingCountryCode", "picklist", length=10),
            _f("OwnerId", "reference", reference_to=("User",), nillable=False),
            _f(
                "ICP_Tier__c",
                "picklist",
                picklist=("A", "B", "C", "D"),
                custom=True,
                label="ICP Tier",
            ),
        ],
        "Lead": [
            *_audit(),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _f("Name", "string", length=121, **ro),
            _f("Email", "email"),
            _f("Phone", "phone"),
            _f("Title", "string", length=128),
            _f("Company", "string", nillable=False),
            _f("Industry", "picklist", picklist=INDUSTRIES),
            _f("NumberOfEmployees", "int", precision=8),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f(
                "Status",
                "picklist",
                picklist=tuple(LEAD_STATUS.values()),
                restricted=True,
                nillable=False,
            ),
            _f("OwnerId", "reference", reference_to=owner_any, nillable=False),
            _f("IsConverted", "boolean", nillable=False, **ro),
            _f("ConvertedDate", "date", **ro),
            _f("ConvertedAccountId", "reference", reference_to=("Account",), **ro),
            _f("ConvertedContactId", "reference", reference_to=("Contact",), **ro),
            _f("ConvertedOpportunityId", "reference", reference_to=("Opportunity",), **ro),
            _f("EmailBouncedDate", "datetime"),
            _f("EmailBouncedReason", "string"),
            _f("HasOptedOutOfEmail", "boolean", nillable=False),
            _f("Account__c", "reference", reference_to=("Account",), custom=True, label="Account"),
            _f("Experiment_Arm__c", "string", length=80, custom=True, label="Experiment Arm"),
        ],
        "Contact": [
            *_audit(),
            _f("AccountId", "reference", reference_to=("Account",)),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _f("Name", "string", length=121, **ro),
            _f("Email", "email"),
            _f("Title", "string", length=128),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f("OwnerId", "reference", reference_to=("User",), nillable=False),
        ],
        "Task": [
            *_audit(),
            _f("WhoId", "reference", reference_to=("Contact", "Lead")),
            _f("WhatId", "reference", reference_to=("Account", "Opportunity")),
            _f("OwnerId", "reference", reference_to=owner_any, nillable=False),
            _f("Subject", "combobox"),
            _f(
                "Status",
                "picklist",
                nillable=False,
                picklist=(
                    "Not Started",
                    "In Progress",
                    "Completed",
                    "Waiting on someone else",
                    "Deferred",
                ),
            ),
            _f("Priority", "picklist", picklist=("High", "Normal", "Low"), nillable=False),
            _f("IsClosed", "boolean", nillable=False, **ro),
            _f("ActivityDate", "date"),
            _f("CompletedDateTime", "datetime", **ro),
            _f(
                "TaskSubtype",
                "picklist",
                updateable=False,
                picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
            ),
            _f(
                "Type",
                "picklist",
                picklist=("Call", "Email", "LinkedIn", "Meeting", "Offer", "Marketing", "Other"),
            ),
            _f("CallType", "picklist", picklist=("Inbound", "Outbound", "Internal")),
            _f("CallDurationInSeconds", "int", precision=8),
            _f("CallDisposition", "string"),
            _f("IsArchived", "boolean", nillable=False, **ro),
        ],
        "Event": [
            *_audit(),
            _f("WhoId", "reference", reference_to=("Contact", "Lead")),
            _f("OwnerId", "reference", reference_to=owner_any, nillable=False),
            _f("Subject", "combobox"),
            _f("Type", "picklist", picklist=("Call", "Email", "Meeting", "Other")),
            _f("EventSubtype", "picklist", picklist=("Event",), **ro),
            _f("StartDateTime", "datetime"),
            _f("EndDateTime", "datetime"),
            _f("ActivityDateTime", "datetime"),
            _f("ActivityDate", "date"),
            _f("DurationInMinutes", "int", precision=8),
        ],
        "Opportunity": [
            *_audit(),
            _f("AccountId", "reference", reference_to=("Account",)),
            _f("Name", "string", length=120, nillable=False),
            _f(
                "StageName",
                "picklist",
                picklist=tuple(OPPORTUNITY_STAGE.values()),
                restricted=True,
                nillable=False,
            ),
            _f("IsClosed", "boolean", nillable=False, **ro),
            _f("IsWon", "boolean", nillable=False, **ro),
            _f("Amount", "currency"),
            _f("CloseDate", "date", nillable=False),
            _f("Probability", "percent", precision=3, scale=0),
            _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
            _f("OwnerId", "reference", reference_to=("User",), nillable=False),
        ],
        "LeadHistory": [
            _f("Id", "id", updateable=False, nillable=False),
            _f("LeadId", "reference", reference_to=("Lead",), **ro),
            _f("Field", "picklist", picklist=("Status", "Owner", "created"), **ro),
            _f("OldValue", "string", **ro),
            _f("NewValue", "string", **ro),
            _f("CreatedDate", "datetime", updateable=False, nillable=False),
            _f("IsDeleted", "boolean", updateable=False, nillable=False),
        ],
    }


def tooling_fields() -> dict[str, list[FieldDef]]:
    """Return the Tooling API objects the sandbox serves (CustomField only)."""
    return {
        "CustomField": [
            _f("Id", "id", updateable=False, nillable=False),
            _f("DeveloperName", "string", length=40, updateable=False),
            _f("TableEnumOrId", "string", length=40, updateable=False),
            _f("FullName", "string", updateable=False),
            _f("Description", "textarea", updateable=False),
            _f("NamespacePrefix", "string", length=15, updateable=False),
            _f("CreatedDate", "datetime", updateable=False, nillable=False),
            _f("LastModifiedDate", "datetime", updateable=False, nillable=False),
            _f("SystemModstamp", "datetime", updateable=False, nillable=False),
        ]
    }


OBJECT_LABELS: dict[str, tuple[str, str]] = {
    "Lead": ("Lead", "Leads"),
    "Contact": ("Contact", "Contacts"),
    "Account": ("Account", "Accounts"),
    "Task": ("Task", "Tasks"),
    "Event": ("Event", "Events"),
    "Opportunity": ("Opportunity", "Opportunities"),
    "User": ("User", "Users"),
    "Group": ("Group", "Groups"),
    "QueueSobject": ("Queue Sobject", "Queue Sobjects"),
    "LeadHistory": ("Lead History", "Lead History"),
    "Organization": ("Organization", "Organizations"),
    "CustomField": ("Custom Field", "Custom Fields"),
    "PermissionSet": ("Permission Set", "Permission Sets"),
    "FieldPermissions": ("Field Permissions", "Field Permissions"),
    "PermissionSetAssignment": ("Permission Set Assignment", "Permission Set Assignments"),
}
UPDATEABLE_OBJECTS = frozenset(
    {"Lead", "Contact", "Account", "Task", "Event", "Opportunity", "User"}
)
DELETABLE_OBJECTS = frozenset({"Lead", "Contact", "Account", "Task", "Event", "Opportunity"})
# Setup objects created and (hard-)deleted through the generic sObject endpoints.
SETUP_OBJECTS = ("PermissionSet", "FieldPermissions", "PermissionSetAssignment")
# Objects records can be created in (REST POST and Bulk insert).
CREATEABLE_OBJECTS = frozenset({"Lead", "Contact", "Account", "Task", "Event", "Opportunity"})
# Objects whose records may be owned by a queue (given a QueueSobject row).
QUEUE_SOBJECT_TYPES = ("Lead", "Case")


@dataclass
class ObjectSchema:
    """The fields of one object, looked up case-insensitively."""

    name: str
    fields: list[FieldDef] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}

    def get(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def add(self, fdef: FieldDef) -> None:
        self.fields.append(fdef)
        self._by_lower[fdef.name.lower()] = fdef

    def remove(self, name: str) -> None:
        fdef = self._by_lower.pop(name.lower(), None)
        if fdef is not None:
            self.fields.remove(fdef)
