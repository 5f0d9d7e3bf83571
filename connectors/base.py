"""The CRMConnector protocol and the records that cross it.

A connector speaks one CRM's wire format and nothing else. It pulls raw rows
(`RawRecord`) incrementally, maps each row to leadlift's domain records
(`AccountRecord`, `LeadRecord`, `TouchRecord`, `EngagementRecord`,
`OutcomeRecord`, `UserRecord`), and pushes field values back. It never reads
the environment or a database: credentials, field names and the HTTP
transport are handed to its constructor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

TouchType = Literal["email", "call", "linkedin", "meeting", "offer"]
OutcomeKind = Literal[
    "meeting_booked", "opportunity", "closed_won", "closed_lost", "disqualified", "bounced"
]
EngagementKind = Literal[
    "page_view",
    "pricing_page_visit",
    "form_fill",
    "webinar_attended",
    "content_download",
    "email_click",
]
TOUCH_TYPES: tuple[str, ...] = ("email", "call", "linkedin", "meeting", "offer")
ENGAGEMENT_KINDS: tuple[str, ...] = (
    "page_view",
    "pricing_page_visit",
    "form_fill",
    "webinar_attended",
    "content_download",
    "email_click",
)
OUTCOME_KINDS: tuple[str, ...] = (
    "meeting_booked",
    "opportunity",
    "closed_won",
    "closed_lost",
    "disqualified",
    "bounced",
)


@dataclass(frozen=True, order=True)
class Cursor:
    """An inclusive, compound incremental-sync position: (modified_at, crm_id)."""

    modified_at: datetime
    crm_id: str = ""


@dataclass(frozen=True)
class RawRecord:
    """One CRM row exactly as the API returned it (fields JSON-safe)."""

    object: str
    crm_id: str
    modified_at: datetime
    deleted: bool
    fields: Mapping[str, Any]

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.modified_at, self.crm_id)


@dataclass(frozen=True)
class AccountRecord:
    crm_object: str
    crm_id: str
    name: str | None
    domain: str | None
    industry: str | None
    employees: int | None
    size_band: str | None
    region: str | None
    tier: str | None
    owner_id: str | None
    created_at: datetime | None
    modified_at: datetime
    deleted: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeadRecord:
    crm_object: str
    crm_id: str
    account_crm_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    company: str | None
    phone: str | None
    source: str | None
    status: str | None
    owner_id: str | None
    created_at: datetime | None
    modified_at: datetime
    converted_at: datetime | None = None
    deleted: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)
    # The Contact a Salesforce lead became: the same person, not another lead.
    converted_contact_id: str | None = None

    @property
    def email_domain(self) -> str | None:
        if not self.email or "@" not in self.email:
            return None
        return self.email.rsplit("@", 1)[1].lower()


@dataclass(frozen=True)
class TouchRecord:
    crm_object: str
    crm_id: str
    lead_crm_id: str
    type: str  # one of TOUCH_TYPES
    channel: str
    subject: str | None
    status: str | None
    rep_id: str | None
    occurred_at: datetime
    modified_at: datetime
    deleted: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngagementRecord:
    crm_object: str
    crm_id: str
    lead_crm_id: str
    kind: str
    detail: str | None
    occurred_at: datetime
    modified_at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class OutcomeRecord:
    """Something the lead did. `crm_id` is unique per (object, kind)."""

    crm_object: str
    crm_id: str
    lead_crm_id: str
    kind: str  # one of OUTCOME_KINDS
    occurred_at: datetime
    modified_at: datetime
    value: float | None = None
    deleted: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    crm_object: str
    crm_id: str
    name: str | None
    email: str | None
    active: bool
    modified_at: datetime
    kind: Literal["user", "queue"] = "user"
    deleted: bool = False


DomainRecord = (
    AccountRecord | LeadRecord | TouchRecord | EngagementRecord | OutcomeRecord | UserRecord
)


@dataclass(frozen=True)
class FieldSpec:
    """A custom field leadlift writes, named logically (``Lead_Score``).

    Each connector derives its CRM name (``Lead_Score__c``, ``leadlift_lead_score``).
    """

    name: str
    label: str
    type: Literal["number", "text", "picklist", "datetime"]
    description: str = ""
    length: int = 255
    precision: int = 5
    scale: int = 0
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldUpdate:
    """New values for one CRM record, keyed by logical field name."""

    crm_object: str
    crm_id: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class RecordError:
    crm_object: str
    crm_id: str
    code: str
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class PushReport:
    attempted: int
    succeeded: int
    errors: tuple[RecordError, ...] = ()
    api_calls: int = 0

    @property
    def failed(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class Component:
    """One thing leadlift created in a CRM, recorded so an uninstall removes exactly it.

    ``kind`` is e.g. ``custom_field``, ``permission_set``, ``field_permission``,
    ``permission_set_assignment``, ``layout_section``, ``list_view``, ``property``,
    ``property_group``; ``details`` holds what reversal needs (a layout's prior state).
    """

    kind: str
    name: str
    crm_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstallReport:
    """What ``ensure_fields`` (or an uninstall) did, by CRM name."""

    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    clashes: tuple[str, ...] = ()  # exists with another type: reported, never overwritten
    dry_run: bool = False
    components: tuple[Component, ...] = ()  # everything created (or, dry-run, to be created)
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnerAssignment:
    """Route one record to a user or a queue."""

    crm_object: str
    crm_id: str
    owner_id: str


@dataclass(frozen=True)
class Queue:
    crm_id: str
    name: str
    developer_name: str | None = None
    objects: tuple[str, ...] = ()  # record types the queue can own (Salesforce QueueSobject)


@dataclass(frozen=True)
class ApiUsage:
    """Calls this connector made, and the CRM's own budget where it reports one."""

    calls: int
    used: int | None = None
    limit: int | None = None


@runtime_checkable
class CRMConnector(Protocol):
    """What the core needs from a CRM. Implemented once per CRM."""

    crm: str

    def sync_objects(self) -> Sequence[str]:
        """Object names to sync, parents before children."""
        ...

    def pull(self, obj: str, since: Cursor | None) -> Iterator[RawRecord]:
        """Rows of `obj` changed at or after `since` (inclusive), ascending by cursor,
        deleted rows included with ``deleted=True``."""
        ...

    def pull_one(self, obj: str, crm_id: str) -> RawRecord | None:
        """Re-read one row (webhooks); None when it no longer exists."""
        ...

    def to_domain(self, record: RawRecord) -> list[DomainRecord]:
        """Map one raw row to zero or more domain records."""
        ...

    def ensure_fields(self, specs: Sequence[FieldSpec], dry_run: bool = False) -> InstallReport:
        """Create missing custom fields idempotently; never change an existing one."""
        ...

    def push(self, updates: Sequence[FieldUpdate]) -> PushReport:
        """Write field values in batches of the API maximum, per-record errors reported."""
        ...

    def queues(self) -> list[Queue]: ...

    @property
    def write_batch_size(self) -> int:
        """Records one write call carries (what write-back plans its calls with)."""
        ...

    def usage(self) -> ApiUsage: ...
