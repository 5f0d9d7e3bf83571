"""HubSpotConnector: the CRMConnector protocol over hubspot-api-client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

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
from connectors.errors import AuthError, PermanentError
from connectors.hubspot.auth import HubSpotCredentials, token_info
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limiter import HubSpotLimits
from connectors.hubspot.mapping import HubSpotMapper, HubSpotOptions
from connectors.hubspot.objects import OBJECTS, OBJECTS_BY_NAME, OWNERS, HubSpotObject
from connectors.normalize import parse_datetime

LIST_LIMIT = 100
ARCHIVED = ":archived"  # suffix of the pseudo-object listing an object's deletions
SEARCH_LIMIT = 200
SEARCH_CAP = 10_000  # search cannot page past this many results
BATCH_LIMIT = 100
# 400s that say the request's shape is wrong for the portal, not that one record is bad.
SCHEMA_ERRORS = ("PROPERTY_DOESNT_EXIST",)
ASSOCIATION_BATCH_LIMIT = 1000
PROPERTY_GROUP = "leadlift"
FIELD_TYPES = {
    "number": ("number", "number"),
    "text": ("string", "text"),
    "picklist": ("enumeration", "select"),
    "datetime": ("datetime", "date"),
}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class HubSpotConnector:
    """One HubSpot portal. Credentials, options and transport are injected."""

    crm = "hubspot"

    def __init__(
        self,
        credentials: HubSpotCredentials,
        options: HubSpotOptions | None = None,
        verify: bool | str = True,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        property_prefix: str = "leadlift_",
        search_cap: int = SEARCH_CAP,
        clock: Callable[[], float] = time.time,
        limits: HubSpotLimits | None = None,
        lag_seconds: float = 5.0,
    ) -> None:
        self.options = options or HubSpotOptions()
        self.client = HubSpotClient(credentials, verify=verify, on_tokens=on_tokens, limits=limits)
        self.lag_seconds = lag_seconds
        self.mapper = HubSpotMapper(self.options)
        self.property_prefix = property_prefix
        self.search_cap = search_cap
        self._clock = clock

    def ping(self) -> dict[str, Any]:
        """Prove the token works; returns the portal id when HubSpot reports one."""
        self.client.call("owners.owners_api", "get_page", limit=1)
        try:
            info = token_info(
                self.client.session,
                self.client.credentials.api_base,
                self.client.credentials.access_token,
            )
        except AuthError:  # private-app tokens have no OAuth metadata
            return {"external_id": None, "name": None}
        return {
            "external_id": str(info.get("hub_id") or "") or None,
            "name": info.get("hub_domain"),
        }

    # -- reading ---------------------------------------------------------------------------

    def sync_objects(self) -> Sequence[str]:
        """Owners, the objects, then each object's archive (search never returns deletes)."""
        names = [spec.name for spec in OBJECTS]
        return (OWNERS, *names, *(f"{n}{ARCHIVED}" for n in names))

    def cursor_ordered(self, obj: str, since: Cursor | None) -> bool:
        """Only search pulls ascend by cursor; lists (first pulls, archives) come by id."""
        return since is not None and obj != OWNERS and not obj.endswith(ARCHIVED)

    def pull(self, obj: str, since: Cursor | None) -> Iterator[RawRecord]:
        """Changed rows: a full list first, then search windows ``[since, now - lag)``;
        ``<object>:archived`` lists what was deleted (archivedAt at or after ``since``)."""
        if obj == OWNERS:
            yield from self._owners()
            return
        if obj.endswith(ARCHIVED):
            yield from self._archived(self._spec(obj.removesuffix(ARCHIVED)), since)
            return
        spec = self._spec(obj)
        if since is None:
            yield from self._list_records(spec)
        else:
            upper = int((self._clock() - self.lag_seconds) * 1000) + 1  # LT: exclusive
            lower = _ms(since.modified_at)
            if upper > lower:
                yield from self._search(spec, lower, upper)

    def pull_one(self, obj: str, crm_id: str) -> RawRecord | None:
        spec = self._spec(obj)
        body = self.client.call(
            f"{spec.sdk}.batch_api",
            "read",
            batch_read_input_simple_public_object_id={
                "properties": self._properties(spec),
                "propertiesWithHistory": list(spec.history),
                "inputs": [{"id": crm_id}],
            },
        )
        results = (body or {}).get("results") or []
        if not results:
            return None
        records = [self._raw(spec, results[0])]
        self._attach_associations(spec, records)
        return records[0]

    def to_domain(self, record: RawRecord) -> list[DomainRecord]:
        return self.mapper.map(record)

    def _spec(self, obj: str) -> HubSpotObject:
        try:
            return OBJECTS_BY_NAME[obj]
        except KeyError:
            raise PermanentError(f"leadlift does not sync HubSpot object {obj!r}") from None

    def _properties(self, spec: HubSpotObject) -> list[str]:
        extra = self.options.extra_contact_properties if spec.name == "contacts" else ()
        configured = self.options.extra_properties.get(spec.name, ())
        return list(dict.fromkeys([*spec.properties, *extra, *configured]))

    def _raw(self, spec: HubSpotObject, item: dict[str, Any]) -> RawRecord:
        props: dict[str, Any] = dict(item.get("properties") or {})
        modified = parse_datetime(props.get(spec.cursor)) or parse_datetime(item.get("updatedAt"))
        if modified is None:
            raise PermanentError(f"HubSpot {spec.name} {item.get('id')} has no {spec.cursor}")
        associations = {
            kind: [str(a["id"]) for a in (value or {}).get("results", [])]
            for kind, value in (item.get("associations") or {}).items()
        }
        history = {
            name: [{"value": v.get("value"), "timestamp": v.get("timestamp")} for v in values]
            for name, values in (item.get("propertiesWithHistory") or {}).items()
        }
        props["_associations"] = associations
        props["_history"] = history
        archived = bool(item.get("archived"))
        if archived:
            # Archiving does not bump the modified property: the archive time is the change.
            modified = parse_datetime(item.get("archivedAt")) or modified
        return RawRecord(spec.name, str(item["id"]), modified, archived, props)

    def _owners(self) -> Iterator[RawRecord]:
        for archived in (False, True):
            after = None
            while True:
                body = self.client.call(
                    "owners.owners_api",
                    "get_page",
                    limit=LIST_LIMIT,
                    after=after,
                    archived=archived,
                )
                for owner in body.get("results", []):
                    modified = parse_datetime(owner.get("updatedAt")) or datetime.now(UTC)
                    yield RawRecord(OWNERS, str(owner["id"]), modified, archived, owner)
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break

    def _list(self, spec: HubSpotObject, archived: bool = False) -> Iterator[list[RawRecord]]:
        """Pages of a list, associations riding along."""
        after = None
        while True:
            body = self.client.call(
                f"{spec.sdk}.basic_api",
                "get_page",
                limit=LIST_LIMIT,
                after=after,
                properties=self._properties(spec),
                associations=list(spec.associations) or None,
                archived=archived,
            )
            yield [self._raw(spec, item) for item in body.get("results", [])]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _list_records(self, spec: HubSpotObject) -> Iterator[RawRecord]:
        """Every record of a full list. History is not asked for on the list: it halves
        the page size for every record while few need it; the records that do are held
        back and completed with full batch reads (a list pull has no order to keep)."""
        pending: list[RawRecord] = []
        for page in self._list(spec):
            for record in page:
                if self._needs_history(spec, record):
                    pending.append(record)
                else:
                    yield record
            if len(pending) >= BATCH_LIMIT:
                self._attach_history(spec, pending)
                yield from pending
                pending = []
        self._attach_history(spec, pending)
        yield from pending

    def _needs_history(self, spec: HubSpotObject, record: RawRecord) -> bool:
        return bool(spec.history) and (
            record.fields.get("hs_lead_status") in self.options.disqualified_statuses
        )

    def _archived(self, spec: HubSpotObject, since: Cursor | None) -> Iterator[RawRecord]:
        """Archived records (HubSpot keeps them about 90 days), newest cut by ``since``."""
        for page in self._list(spec, archived=True):
            for record in page:
                if since is None or record.modified_at >= since.modified_at:
                    yield record

    def _search_page(
        self, spec: HubSpotObject, lo: int, hi: int, after: int, min_id: int | None = None
    ) -> dict[str, Any]:
        filters = [
            {"propertyName": spec.cursor, "operator": "GTE", "value": str(lo)},
            {"propertyName": spec.cursor, "operator": "LT", "value": str(hi)},
        ]
        sort = spec.cursor
        if min_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(min_id)})
            sort = "hs_object_id"
        return self.client.call(
            f"{spec.sdk}.search_api",
            "do_search",
            public_object_search_request={
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": self._properties(spec),
                "limit": SEARCH_LIMIT,
                "after": str(after),
            },
        )

    def _search(self, spec: HubSpotObject, lo: int, hi: int) -> Iterator[RawRecord]:
        """Records with lo <= cursor < hi, ascending, never asking search past its cap.

        A window holding more than the cap is halved; a window too narrow to halve
        (one millisecond of bulk updates) is walked by ascending object id instead.
        """
        first = self._search_page(spec, lo, hi, 0)
        if first.get("total", 0) > self.search_cap:
            if hi - lo > 1:
                mid = lo + (hi - lo) // 2
                yield from self._search(spec, lo, mid)
                yield from self._search(spec, mid, hi)
            else:
                yield from self._search_by_id(spec, lo, hi)
            return
        page, offset = first, 0
        while True:
            records = [self._raw(spec, item) for item in page.get("results", [])]
            self._enrich(spec, records)
            yield from records
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or not records:
                return
            offset = int(after)
            page = self._search_page(spec, lo, hi, offset)

    def _search_by_id(self, spec: HubSpotObject, lo: int, hi: int) -> Iterator[RawRecord]:
        last_id = 0
        while True:
            page = self._search_page(spec, lo, hi, 0, min_id=last_id)
            records = [self._raw(spec, item) for item in page.get("results", [])]
            if not records:
                return
            self._enrich(spec, records)
            yield from records
            last_id = max(int(r.crm_id) for r in records)

    def _enrich(self, spec: HubSpotObject, records: list[RawRecord]) -> None:
        """Search returns neither associations nor history: fetch them per page."""
        self._attach_associations(spec, records)
        self._attach_history(spec, records)

    def _attach_history(self, spec: HubSpotObject, records: list[RawRecord]) -> None:
        """Status history, read only for records whose status needs a date (disqualified)."""
        if spec.history and records:
            wanted = [r for r in records if self._needs_history(spec, r)]
            for start in range(0, len(wanted), BATCH_LIMIT):
                chunk = wanted[start : start + BATCH_LIMIT]
                body = self.client.call(
                    f"{spec.sdk}.batch_api",
                    "read",
                    batch_read_input_simple_public_object_id={
                        "properties": [spec.cursor],
                        "propertiesWithHistory": list(spec.history),
                        "inputs": [{"id": r.crm_id} for r in chunk],
                    },
                )
                by_id = {str(item["id"]): item for item in (body or {}).get("results", [])}
                for record in chunk:
                    item = by_id.get(record.crm_id)
                    if item:
                        record.fields["_history"] = self._raw(spec, item).fields["_history"]

    def _attach_associations(self, spec: HubSpotObject, records: list[RawRecord]) -> None:
        if not records:
            return
        for kind in spec.associations:
            for start in range(0, len(records), ASSOCIATION_BATCH_LIMIT):
                chunk = records[start : start + ASSOCIATION_BATCH_LIMIT]
                body = self.client.call(
                    "associations.v4.batch_api",
                    "get_page",
                    spec.name,
                    kind,
                    batch_input_public_fetch_associations_batch_request={
                        "inputs": [{"id": r.crm_id} for r in chunk]
                    },
                )
                found = {
                    str(result["from"]["id"]): [str(t["toObjectId"]) for t in result.get("to", [])]
                    for result in (body or {}).get("results", [])
                }
                for record in chunk:
                    record.fields["_associations"][kind] = found.get(record.crm_id, [])

    # -- writing ---------------------------------------------------------------------------

    def api_name(self, logical: str) -> str:
        return f"{self.property_prefix}{logical.lower()}"

    def ensure_fields(self, specs: Sequence[FieldSpec], dry_run: bool = False) -> InstallReport:
        created: list[str] = []
        existing: list[str] = []
        clashes: list[str] = []
        components: list[Component] = []
        if self._ensure_group(dry_run):
            components.append(Component("property_group", f"contacts.{PROPERTY_GROUP}"))
        for spec in specs:
            name = self.api_name(spec.name)
            current = self._property(name)
            hs_type, field_type = FIELD_TYPES[spec.type]
            if current is not None:
                if current.get("type") == hs_type:
                    existing.append(f"contacts.{name}")
                else:
                    clashes.append(
                        f"contacts.{name} (is {current.get('type')}, leadlift needs {hs_type})"
                    )
                continue
            if not dry_run:
                body: dict[str, Any] = {
                    "name": name, "label": spec.label, "type": hs_type, "fieldType": field_type,
                    "groupName": PROPERTY_GROUP, "description": spec.description,
                    "formField": False, "hasUniqueValue": False, "hidden": False,
                }  # fmt: skip
                if spec.type == "picklist":
                    body["options"] = [
                        {"label": v, "value": v, "displayOrder": i, "hidden": False}
                        for i, v in enumerate(spec.options)
                    ]
                self.client.call("properties.core_api", "create", "contacts", property_create=body)
            created.append(f"contacts.{name}")
            components.append(Component("property", f"contacts.{name}", name))
        return InstallReport(
            tuple(created), tuple(existing), tuple(clashes), dry_run, tuple(components)
        )

    def uninstall(self, components: Sequence[Component], dry_run: bool = False) -> InstallReport:
        """Archive exactly the properties (then the group) leadlift created."""
        removed: list[str] = []
        ordered = sorted(components, key=lambda c: c.kind == "property_group")
        for component in ordered:
            if component.kind not in ("property", "property_group"):
                continue
            if not dry_run:
                try:
                    if component.kind == "property":
                        name = component.crm_id or component.name.split(".", 1)[1]
                        self.client.call("properties.core_api", "archive", "contacts", name)
                    else:
                        self.client.call("properties.groups_api", "archive", "contacts",
                                         PROPERTY_GROUP)  # fmt: skip
                except PermanentError as exc:
                    if exc.status != 404:
                        raise
            removed.append(f"{component.kind} {component.name}")
        return InstallReport(dry_run=dry_run, removed=tuple(removed))

    def _property(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.call("properties.core_api", "get_by_name", "contacts", name)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def _ensure_group(self, dry_run: bool) -> bool:
        """Make sure leadlift's property group exists; True when it is (to be) created."""
        body = self.client.call("properties.groups_api", "get_all", "contacts")
        if any(g.get("name") == PROPERTY_GROUP for g in (body or {}).get("results", [])):
            return False
        if dry_run:
            return True
        try:
            self.client.call(
                "properties.groups_api",
                "create",
                "contacts",
                property_group_create={"name": PROPERTY_GROUP, "label": "leadlift",
                                       "displayOrder": -1},
            )  # fmt: skip
        except PermanentError as exc:
            if exc.status != 409:  # created meanwhile by another worker: fine
                raise
            return False
        return True

    def push(self, updates: Sequence[FieldUpdate]) -> PushReport:
        return self._write(
            [(u.crm_id, {self.api_name(k): _wire(v) for k, v in u.values.items()}) for u in updates]
        )

    def assign(self, assignments: Sequence[OwnerAssignment]) -> PushReport:
        """Owner ids (users, or owners of type QUEUE) through ``hubspot_owner_id``."""
        return self._write([(a.crm_id, {"hubspot_owner_id": a.owner_id}) for a in assignments])

    def _write(self, rows: list[tuple[str, dict[str, str]]]) -> PushReport:
        calls_before = self.client.calls
        errors: list[RecordError] = []
        succeeded = 0
        for start in range(0, len(rows), BATCH_LIMIT):
            ok, failed = self._push_batch(rows[start : start + BATCH_LIMIT])
            succeeded += ok
            errors.extend(failed)
        return PushReport(len(rows), succeeded, tuple(errors), self.client.calls - calls_before)

    def _push_batch(self, batch: list[tuple[str, dict[str, str]]]) -> tuple[int, list[RecordError]]:
        """Update one batch; a 207 names the failed ids, a whole-batch 400 is bisected."""
        if not batch:
            return 0, []
        inputs = [{"id": crm_id, "properties": props} for crm_id, props in batch]
        try:
            body = self.client.call(
                "contacts.batch_api",
                "update",
                batch_input_simple_public_object_batch_input={"inputs": inputs},
            )
        except PermanentError as exc:
            if exc.status != 400:
                raise
            if any(code in exc.message for code in SCHEMA_ERRORS):
                # The portal lacks a property: every record fails alike, bisecting finds nothing.
                code = next(c for c in SCHEMA_ERRORS if c in exc.message)
                return 0, [
                    RecordError("contacts", crm_id, code, exc.message) for crm_id, _ in batch
                ]
            if len(batch) == 1:
                return 0, [RecordError("contacts", batch[0][0], exc.code or "VALIDATION_ERROR",
                                       exc.message)]  # fmt: skip
            mid = len(batch) // 2
            ok_left, err_left = self._push_batch(batch[:mid])
            ok_right, err_right = self._push_batch(batch[mid:])
            return ok_left + ok_right, err_left + err_right
        failed: dict[str, RecordError] = {}
        for error in (body or {}).get("errors", []):
            ids = (error.get("context") or {}).get("ids") or []
            for crm_id in ids:
                failed[str(crm_id)] = RecordError(
                    "contacts",
                    str(crm_id),
                    str(error.get("category", "ERROR")),
                    str(error.get("message", "")),
                    retryable=error.get("category") in ("RATE_LIMITS", "LOCKED"),
                )
        return len(batch) - len(failed), list(failed.values())

    def queues(self) -> list[Queue]:
        return [
            Queue(r.crm_id, " ".join(filter(None, (r.fields.get("firstName"),
                                                   r.fields.get("lastName")))))
            for r in self._owners()
            if r.fields.get("type") == "QUEUE" and not r.deleted
        ]  # fmt: skip

    @property
    def write_batch_size(self) -> int:
        """Records per write call (batch update)."""
        return BATCH_LIMIT

    def usage(self) -> ApiUsage:
        daily = self.client.daily
        return ApiUsage(self.client.calls, *(daily or (None, None)))

    def vocabulary_gaps(self) -> dict[str, dict[str, int]]:
        return {name: dict(counts) for name, counts in self.mapper.unmapped.items() if counts}

    def read_owners(self, obj: str, ids: Sequence[str]) -> dict[str, str | None]:
        """Current ``hubspot_owner_id`` of some records."""
        return {
            i: v["owner"] for i, v in self._read(obj, ids, {"hubspot_owner_id": "owner"}).items()
        }

    def read_fields(self, obj: str, ids: Sequence[str], logical: Sequence[str]) -> dict[str, dict]:
        """Current values of leadlift's properties on some records."""
        return self._read(obj, ids, {self.api_name(n): n for n in logical})

    def _read(self, obj: str, ids: Sequence[str], names: dict[str, str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for start in range(0, len(ids), BATCH_LIMIT):
            body = self.client.call(
                f"{obj}.batch_api",
                "read",
                batch_read_input_simple_public_object_id={
                    "properties": list(names),
                    "inputs": [{"id": i} for i in ids[start : start + BATCH_LIMIT]],
                },
            )
            for item in (body or {}).get("results", []):
                props = item.get("properties") or {}
                out[str(item["id"])] = {names[k]: props.get(k) for k in names}
        return out


def _wire(value: Any) -> str:
    """HubSpot takes every property value as a string; datetimes as epoch ms."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return str(_ms(value))
    return str(value)
