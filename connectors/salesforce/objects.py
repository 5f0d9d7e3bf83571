"""The Salesforce objects leadlift syncs, as data: adding one is one row here.

Field lists name what leadlift wants; the connector keeps only those the
org's ``describe`` actually has, so a missing custom field is skipped rather
than failing the query with INVALID_FIELD.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIT = "Id CreatedDate SystemModstamp"


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    field_list: str  # space-separated API names
    cursor_field: str = "SystemModstamp"
    has_is_deleted: bool = True
    where: str | None = None  # a fixed filter, e.g. queues only

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.field_list.split())


OBJECTS: tuple[ObjectSpec, ...] = (
    ObjectSpec("User", f"{AUDIT} Name Email IsActive", has_is_deleted=False),
    ObjectSpec(
        "Group", f"{AUDIT} Name DeveloperName Type", has_is_deleted=False, where="Type = 'Queue'"
    ),
    ObjectSpec(
        "Account",
        f"{AUDIT} IsDeleted Name Website Industry NumberOfEmployees AnnualRevenue "
        "BillingCountry BillingCountryCode OwnerId",
    ),
    ObjectSpec(
        "Lead",
        f"{AUDIT} IsDeleted FirstName LastName Email Phone Title Company Industry "
        "NumberOfEmployees LeadSource Status OwnerId IsConverted ConvertedDate "
        "ConvertedAccountId ConvertedContactId ConvertedOpportunityId EmailBouncedDate "
        "EmailBouncedReason HasOptedOutOfEmail",
    ),
    ObjectSpec(
        "Contact",
        f"{AUDIT} IsDeleted AccountId FirstName LastName Email Phone Title LeadSource OwnerId "
        "EmailBouncedDate EmailBouncedReason HasOptedOutOfEmail",
    ),
    ObjectSpec(
        "Task",
        f"{AUDIT} IsDeleted WhoId WhatId OwnerId Subject Status Type TaskSubtype ActivityDate "
        "CompletedDateTime CallType CallDurationInSeconds CallDisposition IsArchived",
    ),
    ObjectSpec(
        "Event",
        f"{AUDIT} IsDeleted WhoId WhatId OwnerId Subject Type StartDateTime DurationInMinutes",
    ),
    ObjectSpec(
        "Opportunity",
        f"{AUDIT} IsDeleted AccountId Name StageName IsClosed IsWon Amount CloseDate OwnerId",
    ),
    # History rows are immutable: CreatedDate is their modification stamp.
    ObjectSpec(
        "LeadHistory",
        "Id CreatedDate IsDeleted LeadId Field OldValue NewValue",
        cursor_field="CreatedDate",
        where="Field = 'Status'",
    ),
)

OBJECTS_BY_NAME = {spec.name: spec for spec in OBJECTS}
