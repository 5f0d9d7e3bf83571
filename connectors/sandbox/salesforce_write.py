"""Column-at-a-time record writes: Bulk API 2.0 ingest and REST sObject create.

`write_rows` validates and applies many rows with the same per-record rules as the
sObject Collections PATCH (`SalesforceOrg._prepare`): each column is coerced once per
distinct value with `SalesforceOrg._coerce` (so messages and owner rules are identical),
ids decode to row positions arithmetically, and accepted values land in the columnar
tables with one vectorised assignment per column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .ids import SF_KEY_PREFIXES, decode_sf_serials, mint_sf_ids
from .salesforce_access import field_error, not_writable
from .salesforce_schema import FieldDef
from .table import append_rows, empty_column, kind_array

if TYPE_CHECKING:
    from .salesforce_org import SalesforceOrg


class _Skip:
    """An empty Bulk CSV cell: leave the field as it is."""

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
RecordFault = Callable[[str], tuple[str, str] | None]

# Values a new record gets when the request leaves the field out.
INSERT_DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted"},
    "Task": {"Status": "Not Started", "Priority": "Normal"},
}


@dataclass
class WriteResult:
    """Per input row: the record id (None when unknown), whether it was created, the error."""

    ids: np.ndarray
    created: np.ndarray
    errors: np.ndarray

    @property
    def failed(self) -> np.ndarray:
        return np.array([e is not None for e in self.errors.tolist()], dtype=bool)


def error_text(error: dict[str, Any]) -> str:
    """Render an error as Bulk API's ``sf__Error`` (``CODE:message:fields --``)."""
    fields = ",".join(error.get("fields") or [])
    tail = f"{fields} --" if fields else "--"
    return f"{error['statusCode']}:{error['message']}:{tail}"


class _Rows:
    """Failure bookkeeping over ``n`` input rows (first error wins)."""

    def __init__(self, n: int):
        self.n = n
        self.errors = np.full(n, None, dtype=object)
        self.failed = np.zeros(n, dtype=bool)

    def fail(self, rows: np.ndarray, error: dict[str, Any]) -> None:
        for i in rows.tolist():
            if not self.failed[i]:
                self.errors[i] = error
                self.failed[i] = True

    def fail_each(self, rows: np.ndarray, errors: np.ndarray) -> None:
        for i, error in zip(rows.tolist(), errors.tolist(), strict=True):
            if not self.failed[i]:
                self.errors[i] = error
                self.failed[i] = True


def coerce_values(
    org: SalesforceOrg, sobject: str, fdef: FieldDef, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coerce a column's values; return (values, errors) arrays (None where fine).

    Each distinct value is checked once with ``org._coerce``.
    """
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    k = len(uniques)
    coerced = np.empty(k + 1, dtype=object)
    errors = np.empty(k + 1, dtype=object)
    for i, value in enumerate(uniques.tolist()):
        coerced[i], errors[i] = org._coerce(sobject, fdef, value)
    coerced[k], errors[k] = org._coerce(sobject, fdef, None)  # code -1: null
    return coerced[codes], errors[codes]


def _present(column: np.ndarray) -> np.ndarray:
    return np.fromiter((v is not SKIP for v in column.tolist()), dtype=bool, count=len(column))


def _locate(
    org: SalesforceOrg,
    sobject: str,
    names: list[str],
    columns: list[np.ndarray],
    rows: _Rows,
    operation: str,
) -> np.ndarray:
    """Return each row's table position from its Id column (-1 where it fails)."""
    table = org.tables[sobject]
    id_index = next((i for i, name in enumerate(names) if name.lower() == "id"), None)
    if id_index is None:
        rows.fail(
            np.arange(rows.n),
            field_error("MISSING_ARGUMENT", f"Id not specified in an {operation} call"),
        )
        return np.full(rows.n, -1, dtype=np.int64)
    raw = columns[id_index]
    serial = decode_sf_serials(raw, SF_KEY_PREFIXES[sobject])
    pos = np.where((serial >= 1) & (serial <= table.n), serial - 1, -1)
    for i in np.flatnonzero(pos < 0).tolist():
        value = raw[i]
        if not isinstance(value, str) or not value:
            error = field_error("MISSING_ARGUMENT", f"Id not specified in an {operation} call")
        elif len(value) not in (15, 18):
            error = field_error(
                "MALFORMED_ID", f"Record ID: id value of incorrect type: {value}", ["Id"]
            )
        elif org.object_for_id(value) not in (sobject, None):
            error = field_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
        else:
            error = field_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        rows.fail(np.array([i]), error)
    found = np.flatnonzero(pos >= 0)
    deleted = found[table.col("IsDeleted")[pos[found]]]
    rows.fail(deleted, field_error("ENTITY_IS_DELETED", "entity is deleted"))
    live = np.flatnonzero(~rows.failed)
    dup = pd.Series(pos[live]).duplicated().to_numpy()
    for i in live[dup].tolist():
        rows.fail(
            np.array([i]),
            field_error(
                "DUPLICATE_VALUE", f"Duplicate id specified: {table.col('Id')[pos[i]]}", ["Id"]
            ),
        )
    return pos


def _validate_columns(
    org: SalesforceOrg,
    sobject: str,
    names: list[str],
    columns: list[np.ndarray],
    rows: _Rows,
    user: str | None,
) -> list[tuple[FieldDef, np.ndarray, np.ndarray]]:
    """Coerce every non-Id column; return (field, row indexes, values) for the accepted cells."""
    schema = org.schemas[sobject]
    pending = []
    for name, column in zip(names, columns, strict=True):
        if name.lower() == "id":
            continue
        idx = np.flatnonzero(_present(column) & ~rows.failed)
        if not len(idx):
            continue
        fdef = schema.get(name)
        if fdef is None:
            rows.fail(
                idx,
                field_error(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                ),
            )
            continue
        if not org.field_editable(sobject, fdef, user):
            rows.fail(idx, not_writable(fdef.name))
            continue
        values, errors = coerce_values(org, sobject, fdef, column[idx])
        bad = np.fromiter((e is not None for e in errors.tolist()), dtype=bool, count=len(idx))
        rows.fail_each(idx[bad], errors[bad])
        pending.append((fdef, idx[~bad], values[~bad]))
    return pending


def _stamp(org: SalesforceOrg, sobject: str, positions: np.ndarray) -> None:
    table = org.tables[sobject]
    stamp = np.maximum(org.now64(), table.col("SystemModstamp")[positions])
    table.columns["SystemModstamp"][positions] = stamp
    table.columns["LastModifiedDate"][positions] = stamp


def _full_names(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    out = np.empty(len(first), dtype=object)
    out[:] = [
        " ".join(p for p in (f, s) if p) or None
        for f, s in zip(first.tolist(), last.tolist(), strict=True)
    ]
    return out


def _faults(rows: _Rows, ids: np.ndarray, record_fault: RecordFault | None) -> None:
    if record_fault is None:
        return
    for i in np.flatnonzero(~rows.failed).tolist():
        fault = record_fault(ids[i])
        if fault:
            rows.fail(np.array([i]), field_error(fault[0], fault[1]))


def _update(
    org: SalesforceOrg,
    sobject: str,
    names: list[str],
    columns: list[np.ndarray],
    user: str | None,
    record_fault: RecordFault | None,
) -> WriteResult:
    table = org.tables[sobject]
    rows = _Rows(len(columns[0]) if columns else 0)
    pos = _locate(org, sobject, names, columns, rows, "update")
    ids = np.full(rows.n, None, dtype=object)
    found = pos >= 0
    ids[found] = table.col("Id")[pos[found]]
    pending = _validate_columns(org, sobject, names, columns, rows, user)
    _faults(rows, ids, record_fault)
    ok = ~rows.failed
    touched: set[str] = set()
    for fdef, idx, values in pending:
        keep = ok[idx]
        table.set_many(pos[idx[keep]], fdef.name, values[keep])
        touched.add(fdef.name)
    changed = pos[ok]
    if "Name" in table and touched & {"FirstName", "LastName"} and len(changed):
        table.columns["Name"][changed] = _full_names(
            table.col("FirstName")[changed], table.col("LastName")[changed]
        )
        table._lower.pop("Name", None)
    if len(changed):
        _stamp(org, sobject, changed)
    return WriteResult(ids, np.zeros(rows.n, dtype=bool), rows.errors)


def _insert(
    org: SalesforceOrg,
    sobject: str,
    names: list[str],
    columns: list[np.ndarray],
    user: str | None,
) -> WriteResult:
    table = org.tables[sobject]
    schema = org.schemas[sobject]
    rows = _Rows(len(columns[0]) if columns else 0)
    pending = _validate_columns(org, sobject, names, columns, rows, user)
    defaults = dict(INSERT_DEFAULTS.get(sobject, {}))
    if "OwnerId" in table:
        defaults["OwnerId"] = user or org.integration_user_id
    given = {fdef.name: (idx, values) for fdef, idx, values in pending}
    missing: dict[int, list[str]] = {}
    for fdef in schema.fields:
        if fdef.nillable or not fdef.updateable or fdef.kind == "bool" or fdef.name in defaults:
            continue
        has = np.zeros(rows.n, dtype=bool)
        if fdef.name in given:
            idx, values = given[fdef.name]
            has[idx[np.fromiter((v is not None for v in values.tolist()), bool, len(idx))]] = True
        for i in np.flatnonzero(~has & ~rows.failed).tolist():
            missing.setdefault(i, []).append(fdef.name)
    for i, fields in missing.items():
        rows.fail(
            np.array([i]),
            field_error(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(fields)}]",
                fields,
            ),
        )
    ok_rows = np.flatnonzero(~rows.failed)
    count = len(ok_rows)
    ids = np.full(rows.n, None, dtype=object)
    if not count:
        return WriteResult(ids, np.zeros(rows.n, dtype=bool), rows.errors)
    slot = np.full(rows.n, -1, dtype=np.int64)
    slot[ok_rows] = np.arange(count)
    new: dict[str, np.ndarray] = {}
    for name, value in defaults.items():
        new[name] = kind_array(table.kinds[name], [value] * count)
    for fdef, idx, values in pending:
        keep = slot[idx] >= 0
        column = new.get(fdef.name)
        if column is None:
            column = empty_column(fdef.kind, count)
        column[slot[idx[keep]]] = kind_array(fdef.kind, values[keep])
        new[fdef.name] = column
    if "Name" in table and "FirstName" in table and "LastName" in table:
        new["Name"] = _full_names(
            new.get("FirstName", empty_column("str", count)),
            new.get("LastName", empty_column("str", count)),
        )
    new_ids = mint_sf_ids(SF_KEY_PREFIXES[sobject], table.n, count)
    now = np.full(count, org.now64(), dtype="datetime64[ns]")
    new.update(Id=new_ids, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
    append_rows(table, new, count)
    ids[ok_rows] = new_ids
    created = np.zeros(rows.n, dtype=bool)
    created[ok_rows] = True
    return WriteResult(ids, created, rows.errors)


def _delete(
    org: SalesforceOrg,
    sobject: str,
    names: list[str],
    columns: list[np.ndarray],
    record_fault: RecordFault | None,
) -> WriteResult:
    table = org.tables[sobject]
    rows = _Rows(len(columns[0]) if columns else 0)
    pos = _locate(org, sobject, names, columns, rows, "delete")
    ids = np.full(rows.n, None, dtype=object)
    found = pos >= 0
    ids[found] = table.col("Id")[pos[found]]
    _faults(rows, ids, record_fault)
    changed = pos[~rows.failed]
    if len(changed):
        table.columns["IsDeleted"][changed] = True
        _stamp(org, sobject, changed)
        stamps = table.col("SystemModstamp")[changed]
        org._deleted.setdefault(sobject, []).extend(
            zip(table.col("Id")[changed].tolist(), stamps, strict=True)
        )
    return WriteResult(ids, np.zeros(rows.n, dtype=bool), rows.errors)


def write_rows(
    org: SalesforceOrg,
    sobject: str,
    operation: str,
    names: list[str],
    columns: list[np.ndarray],
    user: str | None = None,
    record_fault: RecordFault | None = None,
) -> WriteResult:
    """Validate and apply rows; the caller holds ``org.lock``.

    Args:
        org: the org written to.
        sobject: canonical object name.
        operation: "insert", "update", "upsert" (on Id) or "delete".
        names: column (field) names as the request spelled them.
        columns: one object array per name; `SKIP` leaves a field unchanged, None nulls it.
        user: whose field-level security applies (None = the system).
        record_fault: per-record fault hook (``Faults.record_fault``) for update/delete.
    """
    if operation == "update":
        return _update(org, sobject, names, columns, user, record_fault)
    if operation == "insert":
        return _insert(org, sobject, names, columns, user)
    if operation == "delete":
        return _delete(org, sobject, names, columns, record_fault)
    if operation == "upsert":
        n = len(columns[0]) if columns else 0
        id_index = next((i for i, name in enumerate(names) if name.lower() == "id"), None)
        has_id = (
            np.zeros(n, dtype=bool)
            if id_index is None
            else np.fromiter(
                (isinstance(v, str) and bool(v) for v in columns[id_index].tolist()), bool, n
            )
        )
        ids = np.full(n, None, dtype=object)
        created = np.zeros(n, dtype=bool)
        errors = np.full(n, None, dtype=object)
        for mask, op in ((has_id, "update"), (~has_id, "insert")):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            part = [c[idx] for c in columns]
            if op == "update":
                result = _update(org, sobject, names, part, user, record_fault)
            else:
                keep = [i for i, name in enumerate(names) if name.lower() != "id"]
                result = _insert(
                    org, sobject, [names[i] for i in keep], [part[i] for i in keep], user
                )
            ids[idx], created[idx], errors[idx] = result.ids, result.created, result.errors
        return WriteResult(ids, created, errors)
    raise ValueError(f"unsupported operation {operation!r}")
