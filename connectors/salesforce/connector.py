"""SalesforceConnector: the CRMConnector protocol over simple-salesforce."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from connectors.base import (
    ApiUsage,
    Cursor,
    DomainRecord,
    FieldSpec,
    FieldUpdate,
    InstallReport,
    PushReport,
    Queue,
    RawRecord,
    RecordError,
)
from connectors.errors import PermanentError
from connectors.http import CountingSession, retrying_session, transport_retry
from connectors.normalize import parse_datetime, to_bool
from connectors.salesforce.auth import SalesforceCredentials
from connectors.salesforce.client import API_VERSION, SalesforceClient
from connectors.salesforce.mapping import SalesforceMapper, SalesforceOptions
from connectors.salesforce.objects import OBJECTS, OBJECTS_BY_NAME, ObjectSpec

COLLECTION_LIMIT = 200  # sObject Collections: at most 200 records per call
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"}
)
# describe() type names that can hold each FieldSpec type.
COMPATIBLE_TYPES = {
    "number": {"double", "int", "percent", "currency"},
    "text": {"string", "textarea"},
    "picklist": {"picklist"},
    "datetime": {"datetime"},
}


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, whole seconds, UTC). Flooring keeps `>=` inclusive."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceConnector:
    """One Salesforce org. Credentials, options and transport are injected."""

    crm = "salesforce"

    def __init__(
        self,
        credentials: SalesforceCredentials,
        options: SalesforceOptions | None = None,
        session: CountingSession | None = None,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        verify: bool | str = True,
        api_version: str = API_VERSION,
        batch_size: int = COLLECTION_LIMIT,
        field_objects: tuple[str, ...] = ("Lead",),
    ) -> None:
        self.options = options or SalesforceOptions()
        self.session = session or retrying_session(transport_retry(), verify=verify)
        self.client = SalesforceClient(credentials, self.session, on_tokens, api_version)
        self.mapper = SalesforceMapper(self.options)
        self.batch_size = min(batch_size, COLLECTION_LIMIT)
        self.field_objects = field_objects
        self._describes: dict[str, dict[str, dict[str, Any]]] = {}

    def ping(self) -> dict[str, Any]:
        """Prove the credentials work; returns the org's id and name."""
        rows = list(self.client.query_pages("SELECT Id, Name FROM Organization LIMIT 1"))
        org = rows[0] if rows else {}
        return {"external_id": org.get("Id"), "name": org.get("Name")}

    # -- reading ---------------------------------------------------------------------------

    def sync_objects(self) -> Sequence[str]:
        return tuple(spec.name for spec in OBJECTS)

    def describe_fields(self, obj: str) -> dict[str, dict[str, Any]]:
        """Field name → describe entry, cached per connector."""
        if obj not in self._describes:
            body = self.client.restful(f"sobjects/{obj}/describe/")
            self._describes[obj] = {f["name"]: f for f in body.get("fields", ())}
        return self._describes[obj]

    def _select_fields(self, spec: ObjectSpec) -> list[str]:
        wanted = list(spec.fields)
        if spec.name == "Account":
            wanted.append(self.options.tier_field)
        if spec.name == "Lead":
            wanted += [self.options.lead_account_field, *self.options.extra_lead_fields]
        available = self.describe_fields(spec.name)
        return [name for name in dict.fromkeys(wanted) if name in available]

    def _soql(self, spec: ObjectSpec, conditions: list[str]) -> str:
        where = [spec.where, *conditions] if spec.where else conditions
        soql = f"SELECT {', '.join(self._select_fields(spec))} FROM {spec.name}"
        if where:
            soql += " WHERE " + " AND ".join(where)
        return soql + f" ORDER BY {spec.cursor_field} ASC, Id ASC"

    def pull(self, obj: str, since: Cursor | None) -> Iterator[RawRecord]:
        spec = self._spec(obj)
        conditions = []
        if since is not None:
            conditions.append(f"{spec.cursor_field} >= {soql_datetime(since.modified_at)}")
        rows = self.client.query_pages(
            self._soql(spec, conditions), include_deleted=spec.has_is_deleted
        )
        records = (self._raw(spec, row) for row in rows)
        if obj == "Opportunity":
            records = self._with_converted_leads(records)
        yield from records

    def pull_one(self, obj: str, crm_id: str) -> RawRecord | None:
        spec = self._spec(obj)
        rows = list(
            self.client.query_pages(
                self._soql(spec, [f"Id = {soql_quote(crm_id)}"]),
                include_deleted=spec.has_is_deleted,
            )
        )
        if not rows:
            return None
        records = [self._raw(spec, rows[0])]
        if obj == "Opportunity":
            records = list(self._with_converted_leads(iter(records)))
        return records[0]

    def to_domain(self, record: RawRecord) -> list[DomainRecord]:
        return self.mapper.map(record)

    def _spec(self, obj: str) -> ObjectSpec:
        try:
            return OBJECTS_BY_NAME[obj]
        except KeyError:
            raise PermanentError(f"leadlift does not sync Salesforce object {obj!r}") from None

    @staticmethod
    def _raw(spec: ObjectSpec, row: dict[str, Any]) -> RawRecord:
        fields = {k: v for k, v in row.items() if k != "attributes"}
        modified = parse_datetime(fields.get(spec.cursor_field))
        if modified is None:
            raise PermanentError(f"Salesforce {spec.name} row without {spec.cursor_field}")
        return RawRecord(
            spec.name, fields["Id"], modified, to_bool(fields.get("IsDeleted", False)), fields
        )

    def _with_converted_leads(self, records: Iterator[RawRecord]) -> Iterator[RawRecord]:
        """Attach the ids of the leads converted into each opportunity.

        An Opportunity row does not name its lead; the Lead's ConvertedOpportunityId
        does. One query per 200 opportunities keeps the URL short.
        """
        while batch := list(islice(records, COLLECTION_LIMIT)):
            ids = ", ".join(soql_quote(r.crm_id) for r in batch)
            leads: dict[str, list[str]] = {}
            soql = (
                "SELECT Id, ConvertedOpportunityId FROM Lead "
                f"WHERE ConvertedOpportunityId IN ({ids})"
            )
            for row in self.client.query_pages(soql):
                leads.setdefault(row["ConvertedOpportunityId"], []).append(row["Id"])
            for record in batch:
                fields = {**record.fields, "_converted_lead_ids": leads.get(record.crm_id, [])}
                yield RawRecord(
                    record.object, record.crm_id, record.modified_at, record.deleted, fields
                )

    # -- writing ---------------------------------------------------------------------------

    @staticmethod
    def api_name(logical: str) -> str:
        return f"{logical}__c"

    def ensure_fields(self, specs: Sequence[FieldSpec], dry_run: bool = False) -> InstallReport:
        created: list[str] = []
        existing: list[str] = []
        clashes: list[str] = []
        for obj in self.field_objects:
            fields = self.describe_fields(obj)
            for spec in specs:
                name = self.api_name(spec.name)
                full = f"{obj}.{name}"
                if name in fields:
                    kind = fields[name].get("type")
                    if kind in COMPATIBLE_TYPES[spec.type]:
                        existing.append(full)
                    else:
                        clashes.append(f"{full} (is {kind}, leadlift needs {spec.type})")
                    continue
                if not dry_run:
                    self._create_field(full, spec)
                created.append(full)
            self._describes.pop(obj, None)
        return InstallReport(tuple(created), tuple(existing), tuple(clashes), dry_run=dry_run)

    def _create_field(self, full_name: str, spec: FieldSpec) -> None:
        metadata: dict[str, Any] = {"label": spec.label, "description": spec.description}
        if spec.type == "number":
            metadata |= {"type": "Number", "precision": spec.precision, "scale": spec.scale}
        elif spec.type == "text":
            metadata |= {"type": "Text", "length": spec.length}
        elif spec.type == "datetime":
            metadata |= {"type": "DateTime"}
        else:
            values = [{"fullName": v, "default": False, "label": v} for v in spec.options]
            metadata |= {
                "type": "Picklist",
                "valueSet": {"valueSetDefinition": {"sorted": False, "value": values}},
            }
        result = self.client.tooling(
            "sobjects/CustomField",
            method="POST",
            data={"FullName": full_name, "Metadata": metadata},
        )
        if isinstance(result, dict) and not result.get("success", True):
            raise PermanentError(
                f"Salesforce refused to create {full_name}: {result.get('errors')}"
            )

    def push(self, updates: Sequence[FieldUpdate]) -> PushReport:
        calls_before = self.client.calls
        errors: list[RecordError] = []
        succeeded = 0
        for start in range(0, len(updates), self.batch_size):
            batch = list(updates[start : start + self.batch_size])
            ok, failed = self._push_batch(batch)
            retry = [u for u, e in zip(batch, failed, strict=True) if e is not None and e.retryable]
            final = {id(u): e for u, e in zip(batch, failed, strict=True) if e is not None}
            if retry:  # a lock conflict is usually gone a moment later: retry those alone
                ok_retry, failed_retry = self._push_batch(retry)
                ok += ok_retry
                for update, error in zip(retry, failed_retry, strict=True):
                    if error is None:
                        final.pop(id(update))
                    else:
                        final[id(update)] = error
            succeeded += ok
            errors.extend(final.values())
        return PushReport(len(updates), succeeded, tuple(errors), self.client.calls - calls_before)

    def _push_batch(self, batch: list[FieldUpdate]) -> tuple[int, list[RecordError | None]]:
        records = []
        for update in batch:
            record: dict[str, Any] = {
                "attributes": {"type": update.crm_object},
                "id": update.crm_id,
            }
            for logical, value in update.values.items():
                record[self.api_name(logical)] = _wire_value(value)
            records.append(record)
        # Sforce-Auto-Assign: FALSE stops active assignment rules from re-owning the lead.
        results = self.client.restful(
            "composite/sobjects",
            method="PATCH",
            json={"allOrNone": False, "records": records},
            headers={"Sforce-Auto-Assign": "FALSE"},
        )
        if not isinstance(results, list) or len(results) != len(batch):
            raise PermanentError(
                f"Salesforce answered {len(results or [])} save results for {len(batch)} records"
            )
        outcome: list[RecordError | None] = []
        ok = 0
        for update, result in zip(batch, results, strict=True):
            if result.get("success"):
                ok += 1
                outcome.append(None)
                continue
            first = (result.get("errors") or [{}])[0]
            code = str(first.get("statusCode", "UNKNOWN"))
            outcome.append(
                RecordError(
                    update.crm_object,
                    update.crm_id,
                    code,
                    str(first.get("message", "")),
                    retryable=code in RETRYABLE_CODES,
                )
            )
        return ok, outcome

    def queues(self) -> list[Queue]:
        soql = "SELECT Id, Name, DeveloperName FROM Group WHERE Type = 'Queue' ORDER BY Name"
        return [
            Queue(row["Id"], row["Name"], row.get("DeveloperName"))
            for row in self.client.query_pages(soql)
        ]

    def usage(self) -> ApiUsage:
        used, limit = self.client.api_usage()
        return ApiUsage(self.client.calls, used, limit)

    def read_fields(self, obj: str, ids: Sequence[str], logical: Sequence[str]) -> dict[str, dict]:
        """Current values of leadlift's fields on some records (to verify a write landed)."""
        names = [self.api_name(n) for n in logical]
        out: dict[str, dict] = {}
        for start in range(0, len(ids), COLLECTION_LIMIT):
            chunk = ", ".join(soql_quote(i) for i in ids[start : start + COLLECTION_LIMIT])
            soql = f"SELECT Id, {', '.join(names)} FROM {obj} WHERE Id IN ({chunk})"
            for row in self.client.query_pages(soql):
                out[row["Id"]] = {n: row.get(self.api_name(n)) for n in logical}
        return out


def _wire_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return value
