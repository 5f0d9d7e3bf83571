"""Salesforce rows → leadlift's domain records.

Which picklist values mean what differs from org to org, so every
vocabulary here is an option with a documented default.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import (
    AccountRecord,
    DomainRecord,
    EngagementRecord,
    LeadRecord,
    OutcomeRecord,
    RawRecord,
    TouchRecord,
    UserRecord,
)
from connectors.normalize import (
    domain_from_website,
    parse_datetime,
    region_for_country,
    size_band,
    to_bool,
    to_float,
    to_int,
)

LEAD_PREFIX = "00Q"
CONTACT_PREFIX = "003"


@dataclass(frozen=True)
class SalesforceOptions:
    """Org-specific vocabulary. Defaults match a standard org plus two common custom fields."""

    tier_field: str = "ICP_Tier__c"
    lead_account_field: str = "Account__c"  # lead-to-account matching lookup
    extra_lead_fields: tuple[str, ...] = ("Experiment_Arm__c",)
    # Further fields (custom ones included) to sync per object, kept in each row's raw.
    extra_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Task.Type (or TaskSubtype) → touch type
    touch_types: Mapping[str, str] = field(
        default_factory=lambda: {
            "Email": "email",
            "Call": "call",
            "LinkedIn": "linkedin",
            "Offer": "offer",
            "Meeting": "meeting",
        }
    )
    # Tasks of this Type were written by marketing automation: lead behaviour, not sales.
    marketing_task_type: str = "Marketing"
    engagement_subjects: Mapping[str, str] = field(
        default_factory=lambda: {
            "Visited pricing page": "pricing_page_visit",
            "Visited website": "page_view",
            "Filled out form": "form_fill",
            "Attended webinar": "webinar_attended",
            "Downloaded": "content_download",
            "Clicked email": "email_click",
        }
    )
    meeting_event_types: tuple[str, ...] = ("Meeting",)
    # Opportunity.StageName → outcome; a closed stage missing here falls back to IsWon
    # and is reported as unmapped, so RevOps can extend the vocabulary.
    stage_outcomes: Mapping[str, str] = field(
        default_factory=lambda: {
            "Prospecting": "opportunity",
            "Qualification": "opportunity",
            "Needs Analysis": "opportunity",
            "Value Proposition": "opportunity",
            "Id. Decision Makers": "opportunity",
            "Perception Analysis": "opportunity",
            "Proposal/Price Quote": "opportunity",
            "Negotiation/Review": "opportunity",
            "Closed Won": "closed_won",
            "Closed Lost": "closed_lost",
        }
    )
    disqualified_statuses: tuple[str, ...] = ("Closed - Not Converted", "Disqualified")
    no_answer_dispositions: tuple[str, ...] = ("No Answer", "Left Voicemail", "Busy")


_CHANNEL = {"email": "email", "offer": "email", "call": "phone", "linkedin": "linkedin"}


class SalesforceMapper:
    def __init__(self, options: SalesforceOptions) -> None:
        self.options = options
        # Picklist values met that the vocabulary does not map: field -> value -> count.
        self.unmapped: dict[str, Counter[str]] = defaultdict(Counter)

    def map(self, record: RawRecord) -> list[DomainRecord]:
        handler = getattr(self, f"_map_{record.object.lower()}", None)
        return handler(record) if handler else []

    def _map_user(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        return [
            UserRecord(
                "User", record.crm_id, f.get("Name"), f.get("Email"),
                to_bool(f.get("IsActive", True)), record.modified_at,
            )
        ]  # fmt: skip

    def _map_group(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        return [
            UserRecord(
                "Group", record.crm_id, f.get("Name"), None, True, record.modified_at, kind="queue"
            )
        ]

    def _map_account(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        employees = to_int(f.get("NumberOfEmployees"))
        tier = f.get(self.options.tier_field)
        return [
            AccountRecord(
                crm_object="Account",
                crm_id=record.crm_id,
                name=f.get("Name"),
                domain=domain_from_website(f.get("Website")),
                industry=f.get("Industry"),
                employees=employees,
                size_band=size_band(employees),
                region=region_for_country(f.get("BillingCountryCode") or f.get("BillingCountry")),
                tier=str(tier).removeprefix("Tier ").strip() if tier else None,
                owner_id=f.get("OwnerId"),
                created_at=parse_datetime(f.get("CreatedDate")),
                modified_at=record.modified_at,
                deleted=record.deleted,
                raw=dict(f),
            )
        ]

    def _map_lead(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        lead = LeadRecord(
            crm_object="Lead",
            crm_id=record.crm_id,
            account_crm_id=f.get(self.options.lead_account_field) or f.get("ConvertedAccountId"),
            email=f.get("Email"),
            first_name=f.get("FirstName"),
            last_name=f.get("LastName"),
            title=f.get("Title"),
            company=f.get("Company"),
            phone=f.get("Phone"),
            source=f.get("LeadSource"),
            status=f.get("Status"),
            owner_id=f.get("OwnerId"),
            created_at=parse_datetime(f.get("CreatedDate")),
            modified_at=record.modified_at,
            converted_at=parse_datetime(f.get("ConvertedDate")),
            deleted=record.deleted,
            raw=dict(f),
            converted_contact_id=f.get("ConvertedContactId"),
        )
        out: list[DomainRecord] = [lead]
        bounced_at = parse_datetime(f.get("EmailBouncedDate"))
        if bounced_at:
            out.append(
                OutcomeRecord(
                    "Lead", f"{record.crm_id}:bounced", record.crm_id, "bounced", bounced_at,
                    record.modified_at, deleted=record.deleted,
                    raw={"reason": f.get("EmailBouncedReason")},
                )
            )  # fmt: skip
        return out

    def _map_contact(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        out: list[DomainRecord] = [
            LeadRecord(
                crm_object="Contact",
                crm_id=record.crm_id,
                account_crm_id=f.get("AccountId"),
                email=f.get("Email"),
                first_name=f.get("FirstName"),
                last_name=f.get("LastName"),
                title=f.get("Title"),
                company=None,
                phone=f.get("Phone"),
                source=f.get("LeadSource"),
                status=None,
                owner_id=f.get("OwnerId"),
                created_at=parse_datetime(f.get("CreatedDate")),
                modified_at=record.modified_at,
                deleted=record.deleted,
                raw=dict(f),
            )
        ]
        bounced_at = parse_datetime(f.get("EmailBouncedDate"))
        if bounced_at:
            out.append(
                OutcomeRecord(
                    "Contact", f"{record.crm_id}:bounced", record.crm_id, "bounced", bounced_at,
                    record.modified_at, deleted=record.deleted,
                    raw={"reason": f.get("EmailBouncedReason")},
                )
            )  # fmt: skip
        return out

    def _map_task(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        who = f.get("WhoId") or ""
        if not who.startswith((LEAD_PREFIX, CONTACT_PREFIX)):
            return []
        occurred = parse_datetime(f.get("CompletedDateTime")) or parse_datetime(
            f.get("CreatedDate")
        )
        if occurred is None:
            return []
        if f.get("Type") == self.options.marketing_task_type:
            kind, detail = self._engagement_kind(f.get("Subject") or "")
            if kind is None:
                return []
            return [
                EngagementRecord(
                    "Task", record.crm_id, who, kind, detail, occurred, record.modified_at,
                    deleted=record.deleted,
                )
            ]  # fmt: skip
        touch_type = self.options.touch_types.get(f.get("Type") or "") or (
            self.options.touch_types.get(f.get("TaskSubtype") or "")
        )
        if touch_type is None:
            self.unmapped["Task.Type"][str(f.get("Type") or f.get("TaskSubtype"))] += 1
            return []
        status = "completed"
        if touch_type == "call" and f.get("CallDisposition") in self.options.no_answer_dispositions:
            status = "no_answer"
        return [
            TouchRecord(
                crm_object="Task",
                crm_id=record.crm_id,
                lead_crm_id=who,
                type=touch_type,
                channel=_CHANNEL.get(touch_type, touch_type),
                subject=f.get("Subject"),
                status=status,
                rep_id=f.get("OwnerId"),
                occurred_at=occurred,
                modified_at=record.modified_at,
                deleted=record.deleted,
                raw={k: f.get(k) for k in ("Type", "TaskSubtype", "CallDurationInSeconds")},
            )
        ]

    def _engagement_kind(self, subject: str) -> tuple[str | None, str | None]:
        head, _, detail = subject.partition(":")
        for prefix, kind in self.options.engagement_subjects.items():
            if head.strip().startswith(prefix):
                return kind, detail.strip() or None
        return None, None

    def _map_event(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        who = f.get("WhoId") or ""
        if f.get("Type") not in self.options.meeting_event_types or not who.startswith(
            (LEAD_PREFIX, CONTACT_PREFIX)
        ):
            return []
        booked = parse_datetime(f.get("CreatedDate"))
        if booked is None:
            return []
        # The outcome is the booking (when the lead said yes), not the meeting's start.
        return [
            OutcomeRecord(
                "Event", f"{record.crm_id}:meeting_booked", who, "meeting_booked", booked,
                record.modified_at, deleted=record.deleted,
                raw={"start": f.get("StartDateTime")},
            )
        ]  # fmt: skip

    def _map_opportunity(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        leads: list[str] = list(f.get("_converted_lead_ids") or ())
        created = parse_datetime(f.get("CreatedDate"))
        amount = to_float(f.get("Amount"))
        out: list[DomainRecord] = []
        stage = f.get("StageName") or ""
        kind = self.options.stage_outcomes.get(stage)
        if kind is None:
            self.unmapped["Opportunity.StageName"][stage] += 1
            if to_bool(f.get("IsClosed")):
                kind = "closed_won" if to_bool(f.get("IsWon")) else "closed_lost"
        for lead in leads:
            if created:
                out.append(self._opp_outcome(record, lead, "opportunity", created, amount))
            if kind in ("closed_won", "closed_lost"):
                closed = parse_datetime(f.get("CloseDate")) or record.modified_at
                out.append(self._opp_outcome(record, lead, kind, closed, amount))
        return out

    @staticmethod
    def _opp_outcome(
        record: RawRecord, lead: str, kind: str, when: Any, amount: float | None
    ) -> OutcomeRecord:
        return OutcomeRecord(
            "Opportunity", f"{record.crm_id}:{lead}:{kind}", lead, kind, when,
            record.modified_at, value=amount, deleted=record.deleted,
            raw={"stage": record.fields.get("StageName")},
        )  # fmt: skip

    def _map_leadhistory(self, record: RawRecord) -> list[DomainRecord]:
        f = record.fields
        if f.get("Field") != "Status" or f.get("NewValue") not in (
            self.options.disqualified_statuses
        ):
            return []
        return [
            OutcomeRecord(
                "LeadHistory", f"{record.crm_id}:disqualified", f.get("LeadId") or "",
                "disqualified", record.modified_at, record.modified_at, deleted=record.deleted,
                raw={"status": f.get("NewValue")},
            )
        ]  # fmt: skip
