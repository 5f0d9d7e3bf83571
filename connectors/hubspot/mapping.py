"""HubSpot objects → leadlift's domain records. Every property value is a string."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import (
    AccountRecord,
    DomainRecord,
    LeadRecord,
    OutcomeRecord,
    RawRecord,
    TouchRecord,
    UserRecord,
)
from connectors.normalize import (
    parse_datetime,
    region_for_country,
    size_band,
    to_float,
    to_int,
)


@dataclass(frozen=True)
class HubSpotOptions:
    """Portal-specific vocabulary with defaults for a standard portal."""

    tier_property: str = "hs_ideal_customer_profile"
    tiers: Mapping[str, str] = field(
        default_factory=lambda: {"tier_1": "A", "tier_2": "B", "tier_3": "C"}
    )
    source_properties: tuple[str, ...] = ("lead_source", "hs_analytics_source")
    extra_contact_properties: tuple[str, ...] = ("experiment_arm",)
    industries: Mapping[str, str] = field(
        default_factory=lambda: {
            "COMPUTER_SOFTWARE": "Software",
            "FINANCIAL_SERVICES": "Financial Services",
            "HOSPITAL_HEALTH_CARE": "Healthcare",
            "MACHINERY": "Manufacturing",
            "RETAIL": "Retail",
            "EDUCATION_MANAGEMENT": "Education",
            "MANAGEMENT_CONSULTING": "Professional Services",
        }
    )
    disqualified_statuses: tuple[str, ...] = ("UNQUALIFIED",)
    offer_subject_prefixes: tuple[str, ...] = ("Offer",)
    linkedin_task_types: tuple[str, ...] = ("LINKED_IN",)
    # dealstage id → outcome ("opportunity", "closed_won", "closed_lost"); stages of
    # custom pipelines not listed here are reported as unmapped.
    deal_stages: Mapping[str, str] = field(
        default_factory=lambda: {
            "appointmentscheduled": "opportunity",
            "qualifiedtobuy": "opportunity",
            "presentationscheduled": "opportunity",
            "decisionmakerboughtin": "opportunity",
            "contractsent": "opportunity",
            "closedwon": "closed_won",
            "closedlost": "closed_lost",
        }
    )
    # More properties to sync per object type (custom ones too), kept in raw.
    extra_properties: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    no_answer_statuses: tuple[str, ...] = ("NO_ANSWER", "BUSY", "FAILED")


def first_contact(fields: Mapping[str, Any]) -> str | None:
    contacts = (fields.get("_associations") or {}).get("contacts") or []
    return str(contacts[0]) if contacts else None


class HubSpotMapper:
    def __init__(self, options: HubSpotOptions) -> None:
        self.options = options
        self.unmapped: dict[str, Counter[str]] = defaultdict(Counter)

    def map(self, record: RawRecord) -> list[DomainRecord]:
        handler = getattr(self, f"_map_{record.object}", None)
        return handler(record) if handler else []

    def _map_owners(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        name = " ".join(p for p in (f.get("firstName"), f.get("lastName")) if p) or None
        kind = "queue" if f.get("type") == "QUEUE" else "user"
        return [
            UserRecord(
                "owners", record.crm_id, name, f.get("email"), not record.deleted,
                record.modified_at, kind=kind, deleted=record.deleted,
            )
        ]  # fmt: skip

    def _map_companies(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        employees = to_int(f.get("numberofemployees"))
        return [
            AccountRecord(
                crm_object="companies",
                crm_id=record.crm_id,
                name=f.get("name"),
                domain=(f.get("domain") or "").lower() or None,
                industry=self.options.industries.get(f.get("industry") or "", f.get("industry")),
                employees=employees,
                size_band=size_band(employees),
                region=region_for_country(f.get("country")),
                tier=self.options.tiers.get(f.get(self.options.tier_property) or ""),
                owner_id=f.get("hubspot_owner_id"),
                created_at=parse_datetime(f.get("createdate")),
                modified_at=record.modified_at,
                deleted=record.deleted,
                raw=dict(f),
            )
        ]

    def _map_contacts(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        companies = (f.get("_associations") or {}).get("companies") or []
        source = next((f[p] for p in self.options.source_properties if f.get(p)), None)
        out: list[DomainRecord] = [
            LeadRecord(
                crm_object="contacts",
                crm_id=record.crm_id,
                account_crm_id=f.get("associatedcompanyid")
                or (companies[0] if companies else None),
                email=f.get("email"),
                first_name=f.get("firstname"),
                last_name=f.get("lastname"),
                title=f.get("jobtitle"),
                company=f.get("company"),
                phone=f.get("phone"),
                source=source,
                status=f.get("hs_lead_status"),
                owner_id=f.get("hubspot_owner_id"),
                created_at=parse_datetime(f.get("createdate")),
                modified_at=record.modified_at,
                deleted=record.deleted,
                raw={k: v for k, v in f.items() if not k.startswith("_")},
            )
        ]
        history = (f.get("_history") or {}).get("hs_lead_status") or []
        disqualified = [
            parse_datetime(v.get("timestamp"))
            for v in history
            if v.get("value") in self.options.disqualified_statuses
        ]
        disqualified = [d for d in disqualified if d is not None]
        if disqualified:
            out.append(
                OutcomeRecord(
                    "contacts", f"{record.crm_id}:disqualified", record.crm_id, "disqualified",
                    min(disqualified), record.modified_at, deleted=record.deleted,
                )
            )  # fmt: skip
        return out

    def _touch(
        self, record: RawRecord, kind: str, channel: str, subject: str | None, status: str
    ) -> list[DomainRecord]:
        f = record.fields
        lead = first_contact(f)
        occurred = parse_datetime(f.get("hs_timestamp")) or parse_datetime(f.get("hs_createdate"))
        if lead is None or occurred is None:
            return []
        return [
            TouchRecord(
                crm_object=record.object,
                crm_id=record.crm_id,
                lead_crm_id=lead,
                type=kind,
                channel=channel,
                subject=subject,
                status=status,
                rep_id=f.get("hubspot_owner_id"),
                occurred_at=occurred,
                modified_at=record.modified_at,
                deleted=record.deleted,
            )
        ]

    def _map_calls(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        status = (
            "no_answer"
            if f.get("hs_call_status") in self.options.no_answer_statuses
            else "completed"
        )
        return self._touch(record, "call", "phone", f.get("hs_call_title"), status)

    def _map_emails(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        subject = f.get("hs_email_subject") or ""
        kind = "offer" if subject.startswith(self.options.offer_subject_prefixes) else "email"
        bounced = f.get("hs_email_status") == "BOUNCED"
        out = self._touch(record, kind, "email", subject, "bounced" if bounced else "completed")
        if bounced and out:
            touch = out[0]
            out.append(
                OutcomeRecord(
                    "emails", f"{record.crm_id}:bounced", touch.lead_crm_id, "bounced",
                    touch.occurred_at, record.modified_at, deleted=record.deleted,
                )
            )  # fmt: skip
        return out

    def _map_tasks(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        if f.get("hs_task_type") not in self.options.linkedin_task_types:
            return []
        return self._touch(record, "linkedin", "linkedin", f.get("hs_task_subject"), "completed")

    def _map_meetings(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        lead = first_contact(f)
        booked = parse_datetime(f.get("hs_createdate"))
        if lead is None or booked is None:
            return []
        return [
            OutcomeRecord(
                "meetings", f"{record.crm_id}:meeting_booked", lead, "meeting_booked", booked,
                record.modified_at, deleted=record.deleted,
                raw={"start": f.get("hs_meeting_start_time")},
            )
        ]  # fmt: skip

    def _map_deals(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        contacts = (f.get("_associations") or {}).get("contacts") or []
        created = parse_datetime(f.get("createdate"))
        amount = to_float(f.get("amount"))
        stage = f.get("dealstage") or ""
        kind = self.options.deal_stages.get(stage)
        if kind is None:
            self.unmapped["deals.dealstage"][stage] += 1
        out: list[DomainRecord] = []
        for contact in map(str, contacts):
            if created:
                out.append(self._deal_outcome(record, contact, "opportunity", created, amount))
            if kind in ("closed_won", "closed_lost"):
                closed = parse_datetime(f.get("closedate")) or record.modified_at
                out.append(self._deal_outcome(record, contact, kind, closed, amount))
        return out

    @staticmethod
    def _deal_outcome(
        record: RawRecord, contact: str, kind: str, when: Any, amount: float | None
    ) -> OutcomeRecord:
        return OutcomeRecord(
            "deals", f"{record.crm_id}:{contact}:{kind}", contact, kind, when, record.modified_at,
            value=amount, deleted=record.deleted, raw={"stage": record.fields.get("dealstage")},
        )  # fmt: skip
