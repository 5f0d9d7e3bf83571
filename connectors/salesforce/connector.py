"""SalesforceConnector: the CRMConnector protocol over simple-salesforce."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import requests

from connectors.base import (
    ApiUsage,
    Component,
    Cursor,
    DomainRecord,
    FieldSpec,
    FieldUpdate,
    InstallReport,
    OwnerAssignment,
    PushReport,
    Queue,
    RawRecord,
    RecordError,
)
from connectors.budget import ApiBudget
from connectors.errors import PermanentError
from connectors.http import CountingSession, retrying_session, transport_retry
from connectors.normalize import parse_datetime, to_bool
from connectors.salesforce import bulk
from connectors.salesforce.auth import SalesforceCredentials
from connectors.salesforce.client import API_VERSION, SalesforceClient
from connectors.salesforce.install import Installer, api_name
from connectors.salesforce.mapping import SalesforceMapper, SalesforceOptions
from connectors.salesforce.objects import OBJECTS, OBJECTS_BY_NAME, ObjectSpec
from connectors.salesforce.views import Views

COLLECTION_LIMIT = 200  # sObject Collections: at most 200 records per call
RETRYABLE_CODES = bulk.RETRYABLE_CODES
# URI + headers must stay under 16,384 bytes; past this a query goes to Bulk (POST body).
MAX_QUERY_CHARS = 12_000
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, whole seconds, UTC). Flooring keeps `>=` inclusive."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def limit_info(response: requests.Response) -> tuple[int, int] | None:
    """(used, limit) from a ``Sforce-Limit-Info: api-usage=18/15000`` header."""
    match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


class SalesforceConnector:
    """One Salesforce org. Credentials, options, budget and transport are injected.

    Args:
        bulk_threshold: a pull whose window holds more rows than this switches from
            REST pages of 2,000 to a Bulk API 2.0 query job.
        bulk_ingest_threshold: a push of more records than this goes through a
            Bulk API 2.0 ingest job instead of sObject Collections.
        field_objects: objects leadlift's fields are installed on.
    """

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
        field_objects: tuple[str, ...] = ("Lead", "Contact"),
        bulk_threshold: int = 50_000,
        bulk_page_rows: int = 50_000,
        bulk_ingest_threshold: int = 250_000,
        bulk_wait: float = 0.5,
        budget: ApiBudget | None = None,
    ) -> None:
        self.options = options or SalesforceOptions()
        self.session = session or retrying_session(transport_retry(), verify=verify)
        self.session.budget = budget
        self.session.usage_header = limit_info
        self.client = SalesforceClient(credentials, self.session, on_tokens, api_version)
        self.mapper = SalesforceMapper(self.options)
        self.batch_size = min(batch_size, COLLECTION_LIMIT)
        self.field_objects = field_objects
        self.bulk_threshold = bulk_threshold
        self.bulk_page_rows = bulk_page_rows
        self.bulk_ingest_threshold = bulk_ingest_threshold
        self.bulk_wait = bulk_wait
        self.budget = budget
        self._describes: dict[str, dict[str, dict[str, Any]]] = {}
        self._bulk_active: set[str] = set()
        self.views = Views(self.client)
        self.installer = Installer(
            self.client, field_objects, self.describe_fields,
            lambda obj: self._describes.pop(obj, None),
        )  # fmt: skip

    def ping(self) -> dict[str, Any]:
        """Prove the credentials work; returns the org's id and name."""
        rows = list(self.client.query_pages("SELECT Id, Name FROM Organization LIMIT 1"))
        org = rows[0] if rows else {}
        return {"external_id": org.get("Id"), "name": org.get("Name")}

    # -- reading ---------------------------------------------------------------------------

    def sync_objects(self) -> Sequence[str]:
        return tuple(spec.name for spec in OBJECTS)

    def describe_fields(self, obj: str, *_: Any) -> dict[str, dict[str, Any]]:
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
        wanted += self.options.extra_fields.get(spec.name, ())
        available = self.describe_fields(spec.name)
        return [name for name in dict.fromkeys(wanted) if name in available]

    def _soql(self, spec: ObjectSpec, conditions: list[str]) -> str:
        where = [spec.where, *conditions] if spec.where else conditions
        soql = f"SELECT {', '.join(self._select_fields(spec))} FROM {spec.name}"
        if where:
            soql += " WHERE " + " AND ".join(where)
        return soql + f" ORDER BY {spec.cursor_field} ASC, Id ASC"

    def cursor_ordered(self, obj: str, since: Cursor | None) -> bool:
        """REST pulls ascend by cursor; a Bulk job's rows come in no promised order."""
        return obj not in self._bulk_active

    def pull(self, obj: str, since: Cursor | None) -> Iterator[RawRecord]:
        """Rows changed at or after ``since``, deleted and archived ones included.

        The first REST page tells how big the window is; past ``bulk_threshold``
        rows (or for a field list too long for a URL) the rest comes from one
        Bulk API 2.0 query job instead of hundreds of REST pages.
        """
        spec = self._spec(obj)
        conditions = []
        if since is not None:
            conditions.append(f"{spec.cursor_field} >= {soql_datetime(since.modified_at)}")
        soql = self._soql(spec, conditions)
        self._bulk_active.discard(obj)
        if len(soql) > MAX_QUERY_CHARS:
            rows: Iterator[dict[str, Any]] = self._bulk_rows(spec, soql)
        else:
            rows = self._rest_or_bulk(spec, soql)
        records = (self._raw(spec, row) for row in rows)
        if obj == "Opportunity":
            records = self._with_converted_leads(records)
        try:
            yield from records
        finally:
            self._bulk_active.discard(obj)

    def _rest_or_bulk(self, spec: ObjectSpec, soql: str) -> Iterator[dict[str, Any]]:
        first = self.client.call(lambda sf: sf.query(soql, include_deleted=spec.has_is_deleted))
        if first.get("totalSize", 0) > self.bulk_threshold and not first.get("done", True):
            try:
                yield from self._bulk_rows(spec, soql)
                return
            except PermanentError as exc:
                if exc.code != "LIMIT_EXCEEDED":  # out of daily Bulk jobs: page over REST
                    raise
        yield from self.client.query_pages(soql, spec.has_is_deleted, first=first)

    def _bulk_rows(self, spec: ObjectSpec, soql: str) -> Iterator[dict[str, Any]]:
        self._bulk_active.add(spec.name)
        types = {
            name: entry.get("type", "") for name, entry in self.describe_fields(spec.name).items()
        }
        yield from bulk.query_rows(
            self.client, spec.name, soql, types, spec.has_is_deleted, self.bulk_page_rows,
            self.bulk_wait,
        )  # fmt: skip

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

    def vocabulary_gaps(self) -> dict[str, dict[str, int]]:
        """Picklist values seen that leadlift's vocabulary does not map (field → value → n)."""
        return {name: dict(counts) for name, counts in self.mapper.unmapped.items() if counts}

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

    # -- installing ------------------------------------------------------------------------

    def api_name(self, logical: str) -> str:
        return api_name(logical)

    def ensure_fields(self, specs: Sequence[FieldSpec], dry_run: bool = False) -> InstallReport:
        """Create missing fields on ``field_objects``, grant access, report every component."""
        return self.installer.ensure(specs, dry_run)

    def install_views(
        self,
        specs: Sequence[FieldSpec],
        layouts: Sequence[str] = (),
        list_view_field: str | None = None,
        list_view_minimum: int = 20,
        dry_run: bool = False,
    ) -> InstallReport:
        """Optionally show the fields on page layouts and in a top-leads list view."""
        fields = [api_name(s.name) for s in specs]
        parts: list[InstallReport] = []
        if layouts:
            parts.append(self.views.add_to_layouts(layouts, fields, dry_run))
        if list_view_field:
            parts.append(
                self.views.create_list_view(api_name(list_view_field), list_view_minimum, dry_run)
            )
        return InstallReport(
            created=tuple(n for p in parts for n in p.created),
            existing=tuple(n for p in parts for n in p.existing),
            dry_run=dry_run,
            components=tuple(c for p in parts for c in p.components),
        )

    def uninstall(self, components: Sequence[Component], dry_run: bool = False) -> InstallReport:
        """Remove exactly these previously created components (views before fields)."""
        removed = self.views.remove(components, dry_run)
        rest = self.installer.remove(components, dry_run)
        return InstallReport(dry_run=dry_run, removed=(*removed, *rest.removed))

    # -- writing ---------------------------------------------------------------------------

    def push(self, updates: Sequence[FieldUpdate]) -> PushReport:
        rows = [
            (u.crm_object, u.crm_id, {self.api_name(k): v for k, v in u.values.items()})
            for u in updates
        ]
        return self._write(rows)

    def assign(self, assignments: Sequence[OwnerAssignment]) -> PushReport:
        return self._write([(a.crm_object, a.crm_id, {"OwnerId": a.owner_id}) for a in assignments])

    def _write(self, rows: list[tuple[str, str, dict[str, Any]]]) -> PushReport:
        calls_before = self.client.calls
        if len(rows) > self.bulk_ingest_threshold:
            succeeded, errors = self._write_bulk(rows)
        else:
            succeeded, errors = self._write_collections(rows)
        return PushReport(len(rows), succeeded, tuple(errors), self.client.calls - calls_before)

    def _write_collections(self, rows) -> tuple[int, list[RecordError]]:
        errors: list[RecordError] = []
        succeeded = 0
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            ok, failed = self._collections_batch(batch)
            retry = [r for r, e in zip(batch, failed, strict=True) if e is not None and e.retryable]
            final = {r[1]: e for r, e in zip(batch, failed, strict=True) if e is not None}
            if retry:  # a lock conflict is usually gone a moment later: retry those alone
                ok_retry, failed_retry = self._collections_batch(retry)
                ok += ok_retry
                for row, error in zip(retry, failed_retry, strict=True):
                    if error is None:
                        final.pop(row[1])
                    else:
                        final[row[1]] = error
            succeeded += ok
            errors.extend(final.values())
        return succeeded, errors

    def _write_bulk(self, rows) -> tuple[int, list[RecordError]]:
        errors: list[RecordError] = []
        by_object: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for row in rows:
            by_object.setdefault(row[0], []).append(row)
        for obj, group in by_object.items():
            payload = [{"Id": crm_id, **_wire_values(values)} for _, crm_id, values in group]
            failed = bulk.ingest_update(self.client, obj, payload, self.bulk_wait)
            retry = {e.crm_id for e in failed if e.retryable}
            errors += [e for e in failed if not e.retryable]
            if retry:
                _, again = self._write_collections([r for r in group if r[1] in retry])
                errors += again
        return len(rows) - len(errors), errors

    def _collections_batch(self, batch) -> tuple[int, list[RecordError | None]]:
        records = [
            {"attributes": {"type": obj}, "id": crm_id, **_wire_values(values)}
            for obj, crm_id, values in batch
        ]
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
        for (obj, crm_id, _), result in zip(batch, results, strict=True):
            if result.get("success"):
                ok += 1
                outcome.append(None)
                continue
            first = (result.get("errors") or [{}])[0]
            code = str(first.get("statusCode", "UNKNOWN"))
            outcome.append(
                RecordError(
                    obj, crm_id, code, str(first.get("message", "")),
                    retryable=code in RETRYABLE_CODES,
                )
            )  # fmt: skip
        return ok, outcome

    def queues(self) -> list[Queue]:
        """Lead queues (and what each may own) from Group and QueueSobject."""
        accepts: dict[str, list[str]] = {}
        for row in self.client.query_pages("SELECT QueueId, SobjectType FROM QueueSobject"):
            accepts.setdefault(row["QueueId"], []).append(row["SobjectType"])
        soql = "SELECT Id, Name, DeveloperName FROM Group WHERE Type = 'Queue' ORDER BY Name"
        return [
            Queue(row["Id"], row["Name"], row.get("DeveloperName"), _objects(accepts, row["Id"]))
            for row in self.client.query_pages(soql)
        ]

    @property
    def write_batch_size(self) -> int:
        """Records per write call (sObject Collections)."""
        return self.batch_size

    def usage(self) -> ApiUsage:
        used, limit = self.client.api_usage()
        return ApiUsage(self.client.calls, used, limit)

    def read_fields(self, obj: str, ids: Sequence[str], logical: Sequence[str]) -> dict[str, dict]:
        """Current values of leadlift's fields on some records (to verify a write landed)."""
        names = [self.api_name(n) for n in logical]
        return {
            crm_id: {n: row.get(self.api_name(n)) for n in logical}
            for crm_id, row in self.read_raw(obj, ids, names).items()
        }

    def read_owners(self, obj: str, ids: Sequence[str]) -> dict[str, str | None]:
        """Current owner (user or queue id) of some records."""
        return {i: row.get("OwnerId") for i, row in self.read_raw(obj, ids, ["OwnerId"]).items()}

    def read_raw(self, obj: str, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for start in range(0, len(ids), COLLECTION_LIMIT):
            chunk = ", ".join(soql_quote(i) for i in ids[start : start + COLLECTION_LIMIT])
            soql = f"SELECT Id, {', '.join(names)} FROM {obj} WHERE Id IN ({chunk})"
            for row in self.client.query_pages(soql):
                out[row["Id"]] = row
        return out


def _objects(accepts: dict[str, list[str]], queue_id: str) -> tuple[str, ...]:
    return tuple(accepts.get(queue_id, ()))


def _wire_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _wire(v) for k, v in values.items()}


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return value
