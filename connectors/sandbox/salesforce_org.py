"""The Salesforce half of the sandbox: an org's records, queries and writes."""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .config import SandboxConfig
from .ids import SF_KEY_PREFIXES, decode_sf_serial, mint_sf_id, random_sf_id, to_18
from .salesforce_access import AccessMixin, SetupError, not_writable
from .salesforce_bulk import BulkJobs
from .salesforce_metadata import MetadataStore
from .salesforce_render import KeySource, custom_field_def, render_salesforce
from .salesforce_schema import (
    CREATEABLE_OBJECTS,
    DELETABLE_OBJECTS,
    OBJECT_LABELS,
    SETUP_OBJECTS,
    UPDATEABLE_OBJECTS,
    FieldDef,
    ObjectSchema,
)
from .salesforce_write import SKIP, write_rows
from .seed import CrmSeed
from .soql import Query, SoqlError, error_at, parse
from .soql_eval import Evaluator, sort_positions
from .table import Table, append_row, delete_row
from .timefmt import parse_iso, sf_dates, sf_datetime, sf_datetimes, to_datetime64

RecordFault = Callable[[str], tuple[str, str] | None]
DEFAULT_BATCH = 2000
MIN_BATCH = 200


class SalesforceApiError(Exception):
    """An error Salesforce reports as ``[{"message", "errorCode", "fields"?}]``."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        """Return the JSON error array."""
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]


@dataclass
class QueryLocator:
    """A server-side cursor over a query's matching row positions."""

    locator_id: str
    sobject: str
    fields: list[FieldDef]
    positions: np.ndarray
    include_deleted: bool
    tooling: bool
    batch_size: int
    last_used: float


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


class SalesforceOrg(AccessMixin):
    """A Salesforce org rendered from a seed.

    Methods taking ``user`` apply that API user's field-level security; ``user=None`` is
    the system view (every field), which the Python helpers (`get`, `frame`) use.

    Args:
        seed: the neutral CRM data.
        config: sandbox configuration (limits, clock, org name).
    """

    def __init__(self, seed: CrmSeed, config: SandboxConfig):
        self.config = config
        self.lock = threading.RLock()
        rendered = render_salesforce(seed, config)
        self.tables: dict[str, Table] = rendered.tables
        self.schemas: dict[str, ObjectSchema] = rendered.schemas
        self.tooling_tables = rendered.tooling_tables
        self.tooling_schemas = rendered.tooling_schemas
        self.sources: dict[str, dict[str, KeySource]] = rendered.sources
        self.default_source = rendered.default_source
        self.org_id = rendered.org_id
        self.integration_user_id = rendered.integration_user_id
        self.api_usage = 0
        self._locators: OrderedDict[str, QueryLocator] = OrderedDict()
        self._deleted: dict[str, list[tuple[str, np.datetime64]]] = {}
        self._prefix_to_object = {SF_KEY_PREFIXES[o]: o for o in self.tables}
        self._object_names = {o.lower(): o for o in self.tables}
        self._tooling_names = {o.lower(): o for o in self.tooling_tables}
        self._custom_field_serial = self.tooling_tables["CustomField"].n
        self.created_at = seed.now
        self._grant_cache: dict[str, dict[str, tuple[bool, bool]]] = {}
        self._setup_serials: dict[str, int] = {}
        self.bulk_query_jobs_used = 0
        self.bulk_batches_used = 0
        self.metadata = MetadataStore(self)
        self.bulk = BulkJobs(self)

    # ---- clock -------------------------------------------------------------------------------
    def now64(self) -> np.datetime64:
        """Return the current sandbox time as seconds-precision ``datetime64[ns]``."""
        return np.datetime64(to_datetime64(self.config.now()), "s").astype("datetime64[ns]")

    # ---- lookups -----------------------------------------------------------------------------
    def object_name(self, name: str, tooling: bool = False) -> str | None:
        """Return the canonical object name for a case-insensitive ``name``."""
        names = self._tooling_names if tooling else self._object_names
        return names.get(name.lower())

    def position(self, sobject: str, record_id: Any) -> int | None:
        """Return the row position of ``record_id`` in ``sobject`` (deleted rows included)."""
        table = self.tables[sobject]
        if sobject in SETUP_OBJECTS:
            return self._scan_position(sobject, record_id)
        if sobject == "CustomField" or sobject not in SF_KEY_PREFIXES:
            return None
        serial = decode_sf_serial(record_id, SF_KEY_PREFIXES[sobject])
        if serial is None or not 1 <= serial <= table.n:
            return None
        pos = serial - 1
        return pos if table.col("Id")[pos] == to_18(record_id) else None

    def object_for_id(self, record_id: Any) -> str | None:
        """Return the object an id's key prefix belongs to."""
        if not isinstance(record_id, str) or len(record_id) < 3:
            return None
        return self._prefix_to_object.get(record_id[:3])

    @_locked
    def id_for(self, sobject: str, key: int, source: str | None = None) -> str:
        """Return the Salesforce id of the row rendered from seed key ``key``.

        Args:
            sobject: e.g. "Lead", "Task", "Contact" (keyed by lead_key), "Event".
            key: the seed frame's key (lead_key, touch_key, ...).
            source: the seed frame, when an object has several (Task: "touches" or
                "engagements").

        Raises:
            KeyError: when no row was rendered from that key.
        """
        src = self.sources[sobject][source or self.default_source[sobject]]
        pos = src.index.position(key)
        if pos is None:
            raise KeyError(f"{sobject} has no row for {source or 'key'} {key}")
        return str(self.tables[sobject].col("Id")[src.offset + pos])

    @_locked
    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        """Return a record's current values as the REST API would render them.

        Raises:
            KeyError: unknown object or id.
        """
        sobject = self.object_name(sobject) or sobject
        pos = self.position(sobject, record_id)
        if pos is None:
            raise KeyError(f"no {sobject} {record_id}")
        record = self.render(sobject, np.array([pos]), self.schemas[sobject].fields, "62.0")[0]
        record.pop("attributes")
        return record

    @_locked
    def frame(self, sobject: str) -> pd.DataFrame:
        """Return a copy of an object's table as a DataFrame (for tests and inspection)."""
        return self.tables[sobject].to_frame()

    # ---- rendering ---------------------------------------------------------------------------
    def render(
        self,
        sobject: str,
        positions: np.ndarray,
        fields: list[FieldDef],
        version: str,
        tooling: bool = False,
    ) -> list[dict[str, Any]]:
        """Render rows as REST records (``attributes`` first, then fields in order)."""
        table = (self.tooling_tables if tooling else self.tables)[sobject]
        ids = table.col("Id")[positions].tolist()
        base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{sobject}/"
        attrs = [{"type": sobject, "url": base + i} for i in ids]
        columns = [_format_values(f, table.col(f.name)[positions]) for f in fields]
        keys = ["attributes", *(f.name for f in fields)]
        return [dict(zip(keys, row, strict=True)) for row in zip(attrs, *columns, strict=True)]

    # ---- query -------------------------------------------------------------------------------
    def _schema_table(self, query: Query, tooling: bool) -> tuple[ObjectSchema, Table]:
        name = self.object_name(query.sobject, tooling)
        if name is None:
            raise error_at(
                query.text,
                query.sobject_pos,
                "INVALID_TYPE",
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        schemas = self.tooling_schemas if tooling else self.schemas
        tables = self.tooling_tables if tooling else self.tables
        return schemas[name], tables[name]

    @_locked
    def select(
        self, query: Query, *, include_deleted: bool, tooling: bool = False, user: str | None = None
    ) -> tuple[ObjectSchema, list[FieldDef], np.ndarray]:
        """Validate and evaluate a parsed query; return (schema, selected fields, positions).

        Positions are filtered, ordered, offset and limited; ``user``'s field-level security
        decides which fields exist.

        Raises:
            SoqlError: INVALID_FIELD / INVALID_TYPE / MALFORMED_QUERY and friends.
        """
        schema, table = self._schema_table(query, tooling)
        if not tooling:
            schema = self.visible_schema(schema.name, user)
        today = np.datetime64(self.config.now().date(), "D").astype("datetime64[ns]")
        locate = None
        if not tooling:
            name = schema.name

            def locate(record_id: str) -> int | None:
                return self.position(name, record_id)

        evaluator = Evaluator(query, schema, table, today, locate)
        evaluator.validate()
        seen: set[str] = set()
        fields: list[FieldDef] = []
        for ref in query.fields:
            fdef = schema.get(ref.name)
            assert fdef is not None
            if fdef.name in seen:
                raise error_at(
                    query.text, ref.pos, "MALFORMED_QUERY", f"duplicate field selected: {fdef.name}"
                )
            seen.add(fdef.name)
            fields.append(fdef)
        mask = np.ones(table.n, dtype=bool)
        if query.where is not None:
            mask &= evaluator.mask(query.where)
        if not include_deleted and "IsDeleted" in table:
            mask &= ~table.col("IsDeleted")
        positions = np.flatnonzero(mask)
        positions = sort_positions(positions, query, schema, table)
        if query.offset:
            positions = positions[query.offset :]
        if query.limit is not None:
            positions = positions[: query.limit]
        return schema, fields, positions

    @_locked
    def query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int | None = None,
        version: str = "62.0",
        tooling: bool = False,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Run a SOQL query and return its first page as the REST API does.

        Raises:
            SoqlError: MALFORMED_QUERY / INVALID_FIELD / INVALID_TYPE and friends.
        """
        query = parse(soql)
        schema, fields, positions = self.select(
            query, include_deleted=include_deleted, tooling=tooling, user=user
        )
        if query.count:
            return {"totalSize": len(positions), "done": True, "records": []}
        if query.count_field is not None:
            return {
                "totalSize": 1,
                "done": True,
                "records": [{"attributes": {"type": "AggregateResult"}, "expr0": len(positions)}],
            }
        size = _batch(batch_size)
        locator = QueryLocator(
            random_sf_id("01g")[:18],
            schema.name,
            fields,
            positions,
            include_deleted,
            tooling,
            size,
            time.monotonic(),
        )
        return self._page(locator, 0, size, version, register=True)

    def _page(
        self, locator: QueryLocator, offset: int, size: int, version: str, register: bool
    ) -> dict[str, Any]:
        page = locator.positions[offset : offset + size]
        records = self.render(locator.sobject, page, locator.fields, version, locator.tooling)
        end = offset + len(page)
        result: dict[str, Any] = {
            "totalSize": len(locator.positions),
            "done": end >= len(locator.positions),
        }
        if not result["done"]:
            if register:
                self._remember(locator)
            kind = "queryAll" if locator.include_deleted else "query"
            prefix = "tooling/" if locator.tooling else ""
            result["nextRecordsUrl"] = (
                f"/services/data/v{version}/{prefix}{kind}/{locator.locator_id}-{end}"
            )
        result["records"] = records
        return result

    def _remember(self, locator: QueryLocator) -> None:
        self._expire_locators()
        self._locators[locator.locator_id] = locator
        self._locators.move_to_end(locator.locator_id)
        while len(self._locators) > max(1, self.config.max_query_locators):
            self._locators.popitem(last=False)

    def _expire_locators(self) -> None:
        cutoff = time.monotonic() - self.config.query_locator_ttl_seconds
        for key in [k for k, v in self._locators.items() if v.last_used < cutoff]:
            del self._locators[key]

    @_locked
    def query_more(
        self,
        locator_ref: str,
        *,
        batch_size: int | None = None,
        version: str = "62.0",
        include_deleted: bool = False,
        tooling: bool = False,
    ) -> dict[str, Any]:
        """Serve a ``nextRecordsUrl`` page (``<locator>-<offset>``).

        Raises:
            SalesforceApiError: 404 INVALID_QUERY_LOCATOR for unknown or evicted cursors.
        """
        self._expire_locators()
        locator_id, _, offset_text = locator_ref.partition("-")
        locator = self._locators.get(locator_id)
        if locator is None or locator.tooling != tooling or not offset_text.isdigit():
            raise SalesforceApiError(404, "INVALID_QUERY_LOCATOR", "invalid query locator")
        if locator.include_deleted != include_deleted:
            raise SalesforceApiError(404, "INVALID_QUERY_LOCATOR", "invalid query locator")
        locator.last_used = time.monotonic()
        self._locators.move_to_end(locator_id)
        size = _batch(batch_size) if batch_size else locator.batch_size
        return self._page(locator, int(offset_text), size, version, register=False)

    # ---- describe ----------------------------------------------------------------------------
    @_locked
    def describe(
        self, sobject: str, version: str, tooling: bool = False, user: str | None = None
    ) -> dict[str, Any]:
        """Return the sObject describe result (fields as ``user`` sees them)."""
        if tooling:
            fields = [f.describe() for f in self.tooling_schemas[sobject].fields]
        else:
            fields = self.describe_fields(sobject, user)
        return {
            **self._describe_head(sobject, version, tooling),
            "fields": fields,
            "childRelationships": [],
            "recordTypeInfos": [],
            "supportedScopes": [],
        }

    def _describe_head(self, sobject: str, version: str, tooling: bool = False) -> dict[str, Any]:
        label, plural = OBJECT_LABELS.get(sobject, (sobject, sobject))
        base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{sobject}"
        return {
            "activateable": False,
            "createable": sobject in CREATEABLE_OBJECTS or sobject in SETUP_OBJECTS,
            "custom": False,
            "customSetting": False,
            "deletable": sobject in DELETABLE_OBJECTS or sobject in SETUP_OBJECTS,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "keyPrefix": SF_KEY_PREFIXES.get(sobject),
            "label": label,
            "labelPlural": plural,
            "layoutable": True,
            "mergeable": False,
            "name": sobject,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": sobject not in ("LeadHistory", "QueueSobject", *SETUP_OBJECTS),
            "triggerable": True,
            "undeletable": sobject in DELETABLE_OBJECTS,
            "updateable": sobject in UPDATEABLE_OBJECTS,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    @_locked
    def describe_global(self, version: str) -> dict[str, Any]:
        """Return the global describe (``/sobjects/``)."""
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [self._describe_head(name, version) for name in sorted(self.tables)],
        }

    # ---- writes ------------------------------------------------------------------------------
    def _coerce(self, sobject: str, fdef: FieldDef, value: Any) -> tuple[Any, dict | None]:
        def err(code: str, message: str) -> tuple[Any, dict]:
            return None, {"statusCode": code, "message": message, "fields": [fdef.name]}

        if value is None or (isinstance(value, str) and value == "" and fdef.kind != "str"):
            if fdef.type == "boolean":
                return False, None
            if not fdef.nillable:
                return err("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fdef.name}]")
            return None, None
        not_type = f"{fdef.label or fdef.name}: value not of required type: {value}"
        if fdef.kind == "str":
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
            text = value if isinstance(value, str) else str(value)
            if fdef.type in ("id", "reference"):
                return self._check_reference(sobject, fdef, text)
            if fdef.length and len(text) > fdef.length:
                return err(
                    "STRING_TOO_LONG",
                    f"{fdef.label or fdef.name}: data value too large: {text[:40]} "
                    f"(max length={fdef.length})",
                )
            if fdef.type == "picklist" and fdef.restricted and text not in fdef.picklist:
                return err(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{fdef.label or fdef.name}: bad value for restricted picklist field: {text}",
                )
            if text == "":
                return (
                    (None, None)
                    if fdef.nillable
                    else err(
                        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fdef.name}]"
                    )
                )
            return text, None
        if fdef.kind == "num":
            if isinstance(value, bool):
                return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
            try:
                number = float(value)
            except (TypeError, ValueError):
                return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
            if not math.isfinite(number):
                return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
            number = round(number, fdef.scale) if fdef.type != "int" else float(round(number))
            limit = 10 ** max(fdef.precision - fdef.scale, 0)
            if fdef.precision and abs(number) >= limit:
                return err(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{fdef.label or fdef.name}: number outside valid range: {value}",
                )
            return number, None
        if fdef.kind == "bool":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
        if not isinstance(value, str):
            return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
        parsed = parse_iso(value)
        if parsed is None:
            return err("INVALID_TYPE_ON_FIELD_IN_RECORD", not_type)
        if fdef.type == "date":
            parsed = parsed.astype("datetime64[D]").astype("datetime64[ns]")
        return parsed, None

    def _check_reference(self, sobject: str, fdef: FieldDef, value: str) -> tuple[Any, dict | None]:
        if fdef.name == "OwnerId":
            error = self.check_owner(sobject, fdef, value)
            return (None, error) if error else (to_18(value), None)
        target = self.object_for_id(value)
        ok = target in fdef.reference_to and self.position(target, value) is not None
        if ok and target == "Group":
            # Only queues that accept the object may own its records (QueueSobject rows).
            queues = self.tables["QueueSobject"]
            ok = bool(
                np.any(
                    (queues.col("QueueId") == to_18(value)) & (queues.col("SobjectType") == sobject)
                )
            )
        if ok:
            pos = self.position(target, value)
            ok = not bool(self.tables[target].col("IsDeleted")[pos]) if pos is not None else False
        if not ok:
            return None, {
                "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                "message": "invalid cross reference id",
                "fields": [fdef.name],
            }
        return to_18(value), None

    def _prepare(
        self,
        sobject: str | None,
        record_id: Any,
        values: dict[str, Any],
        user: str | None = None,
    ) -> tuple[int | None, list[tuple[FieldDef, Any]], list[dict]]:
        """Validate one update; return (position, coerced values, errors)."""
        if sobject is None:
            return (
                None,
                [],
                [
                    {
                        "statusCode": "INVALID_TYPE",
                        "message": "sObject type is not specified or not supported",
                        "fields": [],
                    }
                ],
            )
        if not isinstance(record_id, str) or not record_id:
            return (
                None,
                [],
                [
                    {
                        "statusCode": "MISSING_ARGUMENT",
                        "message": "Id not specified in an update call",
                        "fields": [],
                    }
                ],
            )
        if sobject not in UPDATEABLE_OBJECTS:
            return (
                None,
                [],
                [
                    {
                        "statusCode": "INVALID_TYPE_FOR_OPERATION",
                        "message": f"entity type {sobject} does not support update",
                        "fields": [],
                    }
                ],
            )
        if self.object_for_id(record_id) not in (sobject, None) or len(record_id) not in (15, 18):
            code = (
                "MALFORMED_ID"
                if len(record_id) not in (15, 18)
                else ("INVALID_CROSS_REFERENCE_KEY")
            )
            message = (
                f"Record ID: id value of incorrect type: {record_id}"
                if code == "MALFORMED_ID"
                else "invalid cross reference id"
            )
            return None, [], [{"statusCode": code, "message": message, "fields": ["Id"]}]
        pos = self.position(sobject, record_id)
        if pos is None:
            return (
                None,
                [],
                [
                    {
                        "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                        "message": "invalid cross reference id",
                        "fields": [],
                    }
                ],
            )
        if self.tables[sobject].col("IsDeleted")[pos]:
            return (
                pos,
                [],
                [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}],
            )
        schema = self.schemas[sobject]
        prepared: list[tuple[FieldDef, Any]] = []
        errors: list[dict] = []
        for name, value in values.items():
            fdef = schema.get(name)
            if fdef is None:
                errors.append(
                    {
                        "statusCode": "INVALID_FIELD",
                        "message": f"No such column '{name}' on sobject of type {sobject}",
                        "fields": [],
                    }
                )
                continue
            if not self.field_editable(sobject, fdef, user):
                errors.append(not_writable(fdef.name))
                continue
            coerced, error = self._coerce(sobject, fdef, value)
            if error:
                errors.append(error)
            else:
                prepared.append((fdef, coerced))
        return pos, prepared, errors

    def _apply(self, sobject: str, pos: int, prepared: list[tuple[FieldDef, Any]]) -> None:
        table = self.tables[sobject]
        for fdef, value in prepared:
            table.set(pos, fdef.name, value)
        names = {f.name for f, _ in prepared}
        if "Name" in table and names & {"FirstName", "LastName"}:
            parts = [table.col("FirstName")[pos], table.col("LastName")[pos]]
            table.set(pos, "Name", " ".join(p for p in parts if p) or None)
        stamp = max(self.now64(), table.col("SystemModstamp")[pos])
        table.set(pos, "LastModifiedDate", stamp)
        table.set(pos, "SystemModstamp", stamp)

    @_locked
    def update_collection(
        self,
        records: list[Any],
        all_or_none: bool,
        record_fault: RecordFault | None = None,
        user: str | None = None,
    ) -> list[dict[str, Any]]:
        """Apply an sObject Collections update; return SaveResults in input order."""
        plans = []
        for record in records:
            if not isinstance(record, dict):
                plans.append(
                    (
                        None,
                        None,
                        None,
                        [],
                        [
                            {
                                "statusCode": "INVALID_FIELD",
                                "message": "record is not an object",
                                "fields": [],
                            }
                        ],
                    )
                )
                continue
            attrs = record.get("attributes") or {}
            sobject = self.object_name(str(attrs.get("type", ""))) if attrs.get("type") else None
            record_id = record.get("id", record.get("Id"))
            values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
            pos, prepared, errors = self._prepare(sobject, record_id, values, user)
            if not errors and record_fault is not None and isinstance(record_id, str):
                fault = record_fault(to_18(record_id))
                if fault:
                    errors = [{"statusCode": fault[0], "message": fault[1], "fields": []}]
            plans.append((sobject, record_id, pos, prepared, errors))
        failed = any(p[4] for p in plans)
        results = []
        for sobject, record_id, pos, prepared, errors in plans:
            shown_id = to_18(record_id) if isinstance(record_id, str) and pos is not None else None
            if errors:
                results.append(
                    {"id": shown_id, "success": False, "errors": errors}
                    if shown_id
                    else {"success": False, "errors": errors}
                )
            elif all_or_none and failed:
                results.append(
                    {
                        "id": shown_id,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                "message": "Record rolled back because not all records were "
                                "valid and the request was using AllOrNone header",
                                "fields": [],
                            }
                        ],
                    }
                )
            else:
                self._apply(sobject, pos, prepared)
                results.append({"id": shown_id, "success": True, "errors": []})
        return results

    @_locked
    def update(
        self,
        sobject: str,
        record_id: str,
        values: dict[str, Any],
        record_fault: RecordFault | None = None,
        user: str | None = None,
    ) -> None:
        """Update one record (PATCH semantics).

        Raises:
            SalesforceApiError: 404 for unknown ids, 400 with the first field error otherwise.
        """
        canonical = self.object_name(sobject)
        if canonical is None:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        pos = self.position(canonical, record_id)
        if pos is None:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        pos, prepared, errors = self._prepare(canonical, record_id, values, user)
        if not errors and record_fault is not None:
            fault = record_fault(to_18(record_id))
            if fault:
                errors = [{"statusCode": fault[0], "message": fault[1], "fields": []}]
        if errors:
            first = errors[0]
            status = 404 if first["statusCode"] == "ENTITY_IS_DELETED" else 400
            raise SalesforceApiError(
                status, first["statusCode"], first["message"], first.get("fields", [])
            )
        assert pos is not None
        self._apply(canonical, pos, prepared)

    @_locked
    def delete(self, sobject: str, record_id: str) -> None:
        """Soft-delete a record (IsDeleted = true, visible to queryAll and ``deleted/``).

        Raises:
            SalesforceApiError: 404 when unknown or already deleted.
        """
        canonical = self.object_name(sobject)
        if canonical in SETUP_OBJECTS:
            if not self.delete_setup_record(canonical, record_id):
                raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return
        pos = self.position(canonical, record_id) if canonical else None
        if canonical is None or pos is None or canonical not in DELETABLE_OBJECTS:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        table = self.tables[canonical]
        if table.col("IsDeleted")[pos]:
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        stamp = max(self.now64(), table.col("SystemModstamp")[pos])
        table.set(pos, "IsDeleted", True)
        table.set(pos, "SystemModstamp", stamp)
        table.set(pos, "LastModifiedDate", stamp)
        self._deleted.setdefault(canonical, []).append((to_18(record_id), stamp))

    @_locked
    def retrieve(
        self,
        sobject: str,
        record_ids: list[str],
        field_names: list[str] | None,
        version: str,
        user: str | None = None,
    ) -> list[dict[str, Any] | None]:
        """Return records by id (None for unknown ids), as ``GET composite/sobjects/{T}``.

        Raises:
            SalesforceApiError: INVALID_FIELD for unknown field names.
        """
        schema = self.visible_schema(sobject, user)
        fields = self._field_list(schema, field_names)
        out: list[dict[str, Any] | None] = []
        for record_id in record_ids:
            pos = self.position(sobject, record_id)
            if pos is None or self._is_deleted(sobject, pos):
                out.append(None)
            else:
                out.append(self.render(sobject, np.array([pos]), fields, version)[0])
        return out

    def _is_deleted(self, sobject: str, pos: int) -> bool:
        table = self.tables[sobject]
        return "IsDeleted" in table and bool(table.col("IsDeleted")[pos])

    def _field_list(self, schema: ObjectSchema, names: list[str] | None) -> list[FieldDef]:
        if not names:
            return list(schema.fields)
        fields = []
        for name in names:
            fdef = schema.get(name)
            if fdef is None:
                raise SalesforceApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{schema.name}'. "
                    "If you are attempting to use a custom field, be sure to append the '__c' "
                    "after the custom field name. Please reference your WSDL or the describe call "
                    "for the appropriate names.",
                )
            fields.append(fdef)
        if schema.get("Id") not in fields:
            fields.insert(0, schema.get("Id"))
        return fields

    @_locked
    def read_record(
        self,
        sobject: str,
        record_id: str,
        field_names: list[str] | None,
        version: str,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Return one record for ``GET /sobjects/{T}/{id}``.

        Raises:
            SalesforceApiError: 404 NOT_FOUND.
        """
        pos = self.position(sobject, record_id)
        if pos is None or self._is_deleted(sobject, pos):
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        fields = self._field_list(self.visible_schema(sobject, user), field_names)
        return self.render(sobject, np.array([pos]), fields, version)[0]

    @_locked
    def create(self, sobject: str, body: Any, user: str | None = None) -> dict[str, Any]:
        """Create one record (``POST /sobjects/{T}/``); return ``{"id", "success", "errors"}``.

        Setup objects (PermissionSet, FieldPermissions, PermissionSetAssignment) and the
        data objects in ``CREATEABLE_OBJECTS`` can be created.

        Raises:
            SalesforceApiError: 400 with the first error (REQUIRED_FIELD_MISSING,
                DUPLICATE_VALUE, INVALID_CROSS_REFERENCE_KEY, ...).
        """
        if not isinstance(body, dict):
            raise SalesforceApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        canonical = self.object_name(sobject)
        if canonical in SETUP_OBJECTS:
            try:
                record_id = self.create_setup_record(canonical, body)
            except SetupError as exc:
                raise SalesforceApiError(400, exc.code, exc.message, exc.fields) from exc
            return {"id": record_id, "success": True, "errors": []}
        if canonical not in CREATEABLE_OBJECTS:
            raise SalesforceApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {canonical or sobject} does not support insert",
            )
        names = [k for k in body if k != "attributes"]
        columns = []
        for name in names:
            column = np.empty(1, dtype=object)
            column[0] = body[name]
            columns.append(column)
        if not names:
            names, columns = ["Id"], [np.array([SKIP], dtype=object)]
        result = write_rows(self, canonical, "insert", names, columns, user)
        error = result.errors[0]
        if error is not None:
            raise SalesforceApiError(
                400, error["statusCode"], error["message"], error.get("fields", [])
            )
        return {"id": str(result.ids[0]), "success": True, "errors": []}

    # ---- metadata ----------------------------------------------------------------------------
    @_locked
    def layout(self, full_name: str) -> dict[str, list[str]]:
        """Return a page layout as ``{section label: [field names]}``.

        Raises:
            KeyError: no layout of that full name (e.g. ``"Lead-Lead Layout"``).
        """
        return self.metadata.layout_fields(full_name)

    @_locked
    def list_views(self) -> dict[str, dict[str, Any]]:
        """Return every list view by full name (``Lead.AllOpenLeads``): label, filterScope,
        queue, columns, filters (``field``/``operation``/``value``) and booleanFilter."""
        return self.metadata.list_view_copies()

    # ---- replication -------------------------------------------------------------------------
    @_locked
    def deleted_between(self, sobject: str, start: np.datetime64, end: np.datetime64) -> dict:
        """Return the getDeleted result for ``[start, end]``."""
        rows = [(i, t) for i, t in self._deleted.get(sobject, []) if start <= t <= end]
        return {
            "deletedRecords": [{"id": i, "deletedDate": sf_datetime(t)} for i, t in rows],
            "earliestDateAvailable": sf_datetime(to_datetime64(self.created_at)),
            "latestDateCovered": sf_datetime(_floor_minute(end)),
        }

    @_locked
    def updated_between(self, sobject: str, start: np.datetime64, end: np.datetime64) -> dict:
        """Return the getUpdated result for ``[start, end]``."""
        table = self.tables[sobject]
        stamp = table.col("SystemModstamp")
        mask = (stamp >= start) & (stamp <= end) & ~table.col("IsDeleted")
        return {
            "ids": table.col("Id")[mask].tolist(),
            "latestDateCovered": sf_datetime(_floor_minute(end)),
        }

    # ---- tooling -----------------------------------------------------------------------------
    @_locked
    def create_custom_field(self, body: Any) -> dict[str, Any]:
        """Create a custom field from a Tooling ``CustomField`` payload.

        Raises:
            SalesforceApiError: 400 DUPLICATE_DEVELOPER_NAME / FIELD_INTEGRITY_EXCEPTION /
                INVALID_FIELD.
        """
        if not isinstance(body, dict):
            raise SalesforceApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        full_name = body.get("FullName")
        metadata = body.get("Metadata") or {}
        match = re.fullmatch(
            r"([A-Za-z]\w*)\.([A-Za-z](?:[A-Za-z0-9]|_(?!_))*)__c", str(full_name or "")
        )
        if not match or not isinstance(metadata, dict):
            raise SalesforceApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "The Custom Field Name field can only contain underscores and alphanumeric "
                "characters. It must be unique, begin with a letter, not include spaces, not end "
                "with an underscore, and not contain two consecutive underscores.",
                ["FullName"],
            )
        sobject = self.object_name(match.group(1))
        if sobject is None or sobject not in UPDATEABLE_OBJECTS:
            raise SalesforceApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"Invalid object: {match.group(1)}",
                ["TableEnumOrId"],
            )
        name = f"{match.group(2)}__c"
        if self.schemas[sobject].get(name) is not None:
            raise SalesforceApiError(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {match.group(2)} on {sobject}.",
                [],
            )
        try:
            fdef = custom_field_def(f"{sobject}.{name}", metadata)
        except (ValueError, TypeError) as exc:
            raise SalesforceApiError(400, "FIELD_INTEGRITY_EXCEPTION", str(exc), []) from exc
        self._custom_field_serial += 1
        field_id = mint_sf_id(SF_KEY_PREFIXES["CustomField"], self._custom_field_serial)
        fdef.custom_field_id = field_id
        fdef.protected = True
        self.schemas[sobject].add(fdef)
        self.tables[sobject].add_column(fdef.name, fdef.kind)
        now = self.now64()
        append_row(
            self.tooling_tables["CustomField"],
            {
                "Id": field_id,
                "DeveloperName": match.group(2),
                "TableEnumOrId": sobject,
                "FullName": f"{sobject}.{name}",
                "Description": metadata.get("description"),
                "CreatedDate": now,
                "LastModifiedDate": now,
                "SystemModstamp": now,
            },
        )
        return {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []}

    def _custom_field_pos(self, field_id: str) -> int | None:
        ids = self.tooling_tables["CustomField"].col("Id")
        hits = np.flatnonzero(ids == to_18(field_id))
        return int(hits[0]) if len(hits) else None

    @_locked
    def get_custom_field(self, field_id: str, version: str) -> dict[str, Any]:
        """Return a CustomField tooling record including FullName and Metadata."""
        pos = self._custom_field_pos(field_id)
        if pos is None:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        table = self.tooling_tables["CustomField"]
        record = self.render(
            "CustomField",
            np.array([pos]),
            self.tooling_schemas["CustomField"].fields,
            version,
            tooling=True,
        )[0]
        sobject, name = str(table.col("FullName")[pos]).split(".", 1)
        fdef = self.schemas[sobject].get(name)
        record["Metadata"] = _metadata_of(fdef) if fdef else None
        return record

    @_locked
    def delete_custom_field(self, field_id: str) -> None:
        """Delete a custom field (its column and values disappear)."""
        pos = self._custom_field_pos(field_id)
        if pos is None:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        table = self.tooling_tables["CustomField"]
        full_name = str(table.col("FullName")[pos])
        sobject, name = full_name.split(".", 1)
        self.schemas[sobject].remove(name)
        self.tables[sobject].drop_column(name)
        delete_row(table, pos)
        self.drop_field_permissions(full_name)
        self.metadata.forget_field(sobject, name)

    # ---- limits ------------------------------------------------------------------------------
    @_locked
    def count_api_call(self) -> tuple[int, bool]:
        """Count one API request; return (usage after it, whether it is over the limit)."""
        self.api_usage += 1
        return self.api_usage, self.api_usage > self.config.salesforce_daily_api_limit

    def limits(self) -> dict[str, Any]:
        """Return the ``/limits/`` body."""
        limit = self.config.salesforce_daily_api_limit

        def pair(maximum: int, used: int = 0) -> dict[str, int]:
            return {"Max": maximum, "Remaining": max(maximum - used, 0)}

        return {
            "ConcurrentAsyncGetReportInstances": pair(200),
            "DailyApiRequests": pair(limit, self.api_usage),
            "DailyAsyncApexExecutions": pair(250000),
            "DailyBulkApiBatches": pair(self.config.bulk_daily_batches, self.bulk_batches_used),
            "DailyBulkV2QueryFileStorageMB": pair(976562),
            "DailyBulkV2QueryJobs": pair(
                self.config.bulk_daily_query_jobs, self.bulk_query_jobs_used
            ),
            "DataStorageMB": pair(1024),
            "FileStorageMB": pair(1024),
            "SingleEmail": pair(5000),
        }


def _batch(batch_size: int | None) -> int:
    if not batch_size:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(DEFAULT_BATCH, int(batch_size)))


def _floor_minute(value: np.datetime64) -> np.datetime64:
    return np.datetime64(value, "m").astype("datetime64[ns]")


def _format_values(fdef: FieldDef, values: np.ndarray) -> list[Any]:
    if fdef.type == "datetime":
        return sf_datetimes(values)
    if fdef.type == "date":
        return sf_dates(values)
    if fdef.kind == "bool":
        return values.tolist()
    if fdef.kind == "num":
        if fdef.type == "int":
            return [None if v != v else int(v) for v in values.tolist()]
        return [None if v != v else v for v in values.tolist()]
    return values.tolist()


def _metadata_of(fdef: FieldDef) -> dict[str, Any]:
    kind = {
        "double": "Number",
        "currency": "Currency",
        "percent": "Percent",
        "string": "Text",
        "textarea": "LongTextArea",
        "boolean": "Checkbox",
        "datetime": "DateTime",
        "date": "Date",
        "picklist": "Picklist",
        "reference": "Lookup",
    }.get(fdef.type, fdef.type)
    meta: dict[str, Any] = {"label": fdef.label, "type": kind}
    if fdef.kind == "num":
        meta.update(precision=fdef.precision, scale=fdef.scale)
    if fdef.type in ("string", "textarea"):
        meta["length"] = fdef.length
    if fdef.type == "picklist":
        meta["valueSet"] = {
            "restricted": fdef.restricted,
            "valueSetDefinition": {
                "sorted": False,
                "value": [{"fullName": v, "label": v, "default": False} for v in fdef.picklist],
            },
        }
    return meta


def parse_replication_time(text: str | None) -> np.datetime64 | None:
    """Parse a getDeleted/getUpdated ``start``/``end`` parameter (ISO-8601 with zone)."""
    if not text:
        return None
    return parse_iso(text.replace(" ", "+"))


__all__ = [
    "QueryLocator",
    "SalesforceApiError",
    "SalesforceOrg",
    "SoqlError",
    "parse_replication_time",
]
