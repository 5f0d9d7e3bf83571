"""The HubSpot objects leadlift syncs, as data.

Contacts keep their modification stamp in ``lastmodifieddate``; every other
object uses ``hs_lastmodifieddate``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubSpotObject:
    name: str  # object type in API paths
    sdk: str  # attribute path under ``client.crm``
    cursor: str
    property_list: str  # space-separated
    associations: tuple[str, ...] = ()
    history: tuple[str, ...] = ()

    @property
    def properties(self) -> list[str]:
        return [*self.property_list.split(), self.cursor, "hs_object_id"]


OBJECTS: tuple[HubSpotObject, ...] = (
    HubSpotObject(
        "companies",
        "companies",
        "hs_lastmodifieddate",
        "name domain industry numberofemployees annualrevenue country "
        "hs_ideal_customer_profile hubspot_owner_id createdate",
    ),
    HubSpotObject(
        "contacts",
        "contacts",
        "lastmodifieddate",
        "firstname lastname email phone jobtitle company associatedcompanyid lead_source "
        "hs_analytics_source lifecyclestage hs_lead_status hubspot_owner_id hs_email_optout "
        "createdate",
        associations=("companies",),
        history=("hs_lead_status",),
    ),
    HubSpotObject(
        "calls",
        "objects.calls",
        "hs_lastmodifieddate",
        "hs_timestamp hs_call_title hs_call_direction hs_call_disposition hs_call_duration "
        "hs_call_status hubspot_owner_id hs_createdate",
        associations=("contacts",),
    ),
    HubSpotObject(
        "emails",
        "objects.emails",
        "hs_lastmodifieddate",
        "hs_timestamp hs_email_direction hs_email_subject hs_email_status hubspot_owner_id "
        "hs_createdate",
        associations=("contacts",),
    ),
    HubSpotObject(
        "tasks",
        "objects.tasks",
        "hs_lastmodifieddate",
        "hs_timestamp hs_task_subject hs_task_type hs_task_status hubspot_owner_id hs_createdate",
        associations=("contacts",),
    ),
    HubSpotObject(
        "meetings",
        "objects.meetings",
        "hs_lastmodifieddate",
        "hs_timestamp hs_meeting_title hs_meeting_start_time hs_meeting_outcome "
        "hubspot_owner_id hs_createdate",
        associations=("contacts",),
    ),
    HubSpotObject(
        "deals",
        "deals",
        "hs_lastmodifieddate",
        "dealname dealstage pipeline amount closedate createdate hubspot_owner_id",
        associations=("contacts",),
    ),
)

OBJECTS_BY_NAME = {spec.name: spec for spec in OBJECTS}
OWNERS = "owners"
