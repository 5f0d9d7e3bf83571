"""Who may see and write what in the sandbox org: field-level security, owners, setup records.

`AccessMixin` is part of `SalesforceOrg`. It keeps the setup objects (PermissionSet,
FieldPermissions, PermissionSetAssignment) that grant API users access to custom fields
created through the Tooling API, and the owner rules every write path applies
(``OwnerId`` = an active user, or a queue that accepts the object type).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .ids import SF_KEY_PREFIXES, mint_sf_id, to_18
from .salesforce_schema import SETUP_OBJECTS, FieldDef, ObjectSchema
from .table import append_row, delete_rows

AUDIT_FIELDS = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"})
DEVELOPER_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)")
Grants = dict[str, tuple[bool, bool]]


def field_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A per-record error entry as Salesforce writes it in SaveResults."""
    return {"statusCode": code, "message": message, "fields": list(fields or [])}


def not_writable(name: str) -> dict[str, Any]:
    """INVALID_FIELD_FOR_INSERT_UPDATE for a field the user may not write."""
    return field_error(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {name}. Please check the security settings of this "
        "field and verify that it is read/write for your profile or permission set.",
        [name],
    )


class SetupError(Exception):
    """A rejected setup-record create (turned into a 400 error array by the org)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []


class AccessMixin:
    """Field-level security, owner rules and setup records of a `SalesforceOrg`."""

    tables: dict
    schemas: dict[str, ObjectSchema]
    config: Any
    _grant_cache: dict[str, Grants]
    _setup_serials: dict[str, int]

    # ---- field-level security ----------------------------------------------------------------
    def _fls_on(self, user: str | None) -> bool:
        return user is not None and bool(self.config.enforce_field_level_security)

    def grants(self, user: str) -> Grants:
        """Return ``{"Lead.Field__c": (read, edit)}`` granted to ``user`` by permission sets."""
        cached = self._grant_cache.get(user)
        if cached is not None:
            return cached
        assignments = self.tables["PermissionSetAssignment"]
        sets = set(
            assignments.col("PermissionSetId")[assignments.col("AssigneeId") == user].tolist()
        )
        perms = self.tables["FieldPermissions"]
        grants: Grants = {}
        if sets and perms.n:
            mask = np.array([p in sets for p in perms.col("ParentId").tolist()], dtype=bool)
            rows = zip(
                perms.col("Field")[mask].tolist(),
                perms.col("PermissionsRead")[mask].tolist(),
                perms.col("PermissionsEdit")[mask].tolist(),
                strict=True,
            )
            for name, read, edit in rows:
                was_read, was_edit = grants.get(name, (False, False))
                grants[name] = (was_read or read or edit, was_edit or edit)
        self._grant_cache[user] = grants
        return grants

    def field_readable(self, sobject: str, fdef: FieldDef, user: str | None) -> bool:
        """Whether ``user`` sees ``fdef`` (None = the system, which sees everything)."""
        if not fdef.protected or not self._fls_on(user):
            return True
        assert user is not None
        return self.grants(user).get(f"{sobject}.{fdef.name}", (False, False))[0]

    def field_editable(self, sobject: str, fdef: FieldDef, user: str | None) -> bool:
        """Whether ``user`` may write ``fdef`` (FLS and the field's own updateability)."""
        if not fdef.updateable or fdef.calculated:
            return False
        if not fdef.protected or not self._fls_on(user):
            return True
        assert user is not None
        return self.grants(user).get(f"{sobject}.{fdef.name}", (False, False))[1]

    def visible_schema(self, sobject: str, user: str | None) -> ObjectSchema:
        """Return the object's schema as ``user`` sees it (hidden custom fields left out)."""
        schema = self.schemas[sobject]
        if not self._fls_on(user) or not any(f.protected for f in schema.fields):
            return schema
        return ObjectSchema(
            sobject, [f for f in schema.fields if self.field_readable(sobject, f, user)]
        )

    def describe_fields(self, sobject: str, user: str | None) -> list[dict[str, Any]]:
        """Describe ``fields[]`` as ``user`` sees them (read-only grants are not updateable)."""
        out = []
        for fdef in self.visible_schema(sobject, user).fields:
            entry = fdef.describe()
            if fdef.protected and not self.field_editable(sobject, fdef, user):
                entry["updateable"] = entry["createable"] = False
            out.append(entry)
        return out

    def _setup_changed(self) -> None:
        self._grant_cache.clear()

    # ---- owners ------------------------------------------------------------------------------
    def check_owner(self, sobject: str, fdef: FieldDef, value: str) -> dict[str, Any] | None:
        """Validate an ``OwnerId``: an active user, or a queue taking ``sobject`` records."""
        target = self._object_for(value)
        pos = self._position_of(target, value) if target in fdef.reference_to else None
        if pos is None:
            return field_error(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )
        table = self.tables[target]
        if "IsDeleted" in table and table.col("IsDeleted")[pos]:
            return field_error(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )
        if target == "User":
            if not table.col("IsActive")[pos]:
                return field_error(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{to_18(value)}] as owner of "
                    f"{sobject.lower()}",
                    [fdef.name],
                )
            return None
        if table.col("Type")[pos] != "Queue":
            return field_error(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )
        queues = self.tables["QueueSobject"]
        accepted = np.any(
            (queues.col("QueueId") == to_18(value))
            & (queues.col("SobjectType") == sobject)
            & ~queues.col("IsDeleted")
        )
        if not accepted:
            return field_error(
                "INVALID_CROSS_REFERENCE_KEY",
                "queue not associated with this SObject type",
                [fdef.name],
            )
        return None

    def add_queue(
        self, name: str, developer_name: str | None = None, sobject_types: tuple[str, ...] = ()
    ) -> str:
        """Create a queue (Group Type='Queue') accepting ``sobject_types``; return its id.

        A test helper: a queue with no ``sobject_types`` can own nothing.
        """
        with self.lock:
            now = self.now64()
            groups = self.tables["Group"]
            queue_id = mint_sf_id(SF_KEY_PREFIXES["Group"], groups.n + 1)
            append_row(
                groups,
                {
                    "Id": queue_id,
                    "Name": name,
                    "DeveloperName": developer_name or re.sub(r"\W+", "_", name),
                    "Type": "Queue",
                    "CreatedDate": now,
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "IsDeleted": False,
                },
            )
            queues = self.tables["QueueSobject"]
            for sobject in sobject_types:
                append_row(
                    queues,
                    {
                        "Id": mint_sf_id(SF_KEY_PREFIXES["QueueSobject"], queues.n + 1),
                        "QueueId": queue_id,
                        "SobjectType": sobject,
                        "CreatedDate": now,
                        "LastModifiedDate": now,
                        "SystemModstamp": now,
                        "IsDeleted": False,
                    },
                )
            return queue_id

    def user_by_username(self, username: str) -> tuple[str, bool] | None:
        """Return ``(user id, active)`` for a ``Username`` (case-insensitive), or None."""
        with self.lock:
            users = self.tables["User"]
            hits = np.flatnonzero(users.lower("Username") == username.lower())
            if not len(hits):
                return None
            pos = int(hits[0])
            return str(users.col("Id")[pos]), bool(users.col("IsActive")[pos])

    # ---- setup records -----------------------------------------------------------------------
    def _scan_position(self, sobject: str, record_id: Any) -> int | None:
        if not isinstance(record_id, str) or len(record_id) not in (15, 18):
            return None
        hits = np.flatnonzero(self.tables[sobject].col("Id") == to_18(record_id))
        return int(hits[0]) if len(hits) else None

    def create_setup_record(self, sobject: str, body: dict[str, Any]) -> str:
        """Create a PermissionSet, FieldPermissions or PermissionSetAssignment; return its id.

        Raises:
            SetupError: with Salesforce's error code for the first problem found.
        """
        schema = self.schemas[sobject]
        values: dict[str, Any] = {}
        for name, raw in body.items():
            if name == "attributes":
                continue
            fdef = schema.get(name)
            if fdef is None:
                raise SetupError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                )
            if not fdef.updateable:
                error = not_writable(fdef.name)
                raise SetupError(error["statusCode"], error["message"], error["fields"])
            if fdef.type == "reference":
                if raw is None or raw == "":
                    continue
                if not isinstance(raw, str):
                    raise SetupError(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        f"{fdef.label or fdef.name}: value not of required type: {raw}",
                        [fdef.name],
                    )
                values[fdef.name] = to_18(raw) if len(raw) == 15 else raw
                continue
            value, error = self._coerce(sobject, fdef, raw)
            if error:
                raise SetupError(error["statusCode"], error["message"], error["fields"])
            values[fdef.name] = value
        required = [
            f.name
            for f in schema.fields
            if not f.nillable and f.updateable and f.kind != "bool" and values.get(f.name) is None
        ]
        if required:
            raise SetupError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(required)}]",
                required,
            )
        check = {
            "PermissionSet": self._check_permission_set,
            "FieldPermissions": self._check_field_permissions,
            "PermissionSetAssignment": self._check_assignment,
        }[sobject]
        check(values)
        table = self.tables[sobject]
        self._setup_serials[sobject] = self._setup_serials.get(sobject, 0) + 1
        record_id = mint_sf_id(SF_KEY_PREFIXES[sobject], self._setup_serials[sobject])
        now = self.now64()
        row = {
            **values,
            "Id": record_id,
            "CreatedDate": now,
            "LastModifiedDate": now,
            "SystemModstamp": now,
        }
        if sobject == "PermissionSet":
            row.update(IsOwnedByProfile=False, IsCustom=True)
        append_row(table, row)
        self._setup_changed()
        return record_id

    def _check_permission_set(self, values: dict[str, Any]) -> None:
        name = str(values["Name"])
        if not DEVELOPER_NAME.fullmatch(name):
            raise SetupError(
                "FIELD_INTEGRITY_EXCEPTION",
                "The API Name can only contain underscores and alphanumeric characters. It must "
                "begin with a letter, not include spaces, not end with an underscore, and not "
                "contain two consecutive underscores.",
                ["Name"],
            )
        table = self.tables["PermissionSet"]
        hits = np.flatnonzero(table.lower("Name") == name.lower())
        if len(hits):
            raise SetupError(
                "DUPLICATE_VALUE",
                "duplicate value found: Name duplicates value on record with id: "
                f"{table.col('Id')[hits[0]]}",
                ["Name"],
            )

    def _check_field_permissions(self, values: dict[str, Any]) -> None:
        if self._scan_position("PermissionSet", values["ParentId"]) is None:
            raise SetupError(
                "INVALID_CROSS_REFERENCE_KEY",
                "Parent ID: id value of incorrect type: " + str(values["ParentId"]),
                ["ParentId"],
            )
        sobject = self.object_name(str(values["SobjectType"]))
        if sobject is None or sobject in SETUP_OBJECTS:
            raise SetupError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Sobject Type Name: bad value for restricted picklist field: "
                f"{values['SobjectType']}",
                ["SobjectType"],
            )
        values["SobjectType"] = sobject
        obj_name, _, field_name = str(values["Field"]).partition(".")
        fdef = self.schemas[sobject].get(field_name) if field_name else None
        permissionable = (
            fdef is not None
            and fdef.name not in AUDIT_FIELDS
            and (fdef.custom or (fdef.nillable and fdef.type not in ("id", "boolean")))
        )
        if obj_name.lower() != sobject.lower() or fdef is None or not permissionable:
            raise SetupError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Field Name: bad value for restricted picklist field: {values['Field']}",
                ["Field"],
            )
        values["Field"] = f"{sobject}.{fdef.name}"
        read, edit = bool(values.get("PermissionsRead")), bool(values.get("PermissionsEdit"))
        if not read and not edit:
            raise SetupError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Field permissions need PermissionsRead or PermissionsEdit; a row granting "
                "nothing cannot be saved.",
                ["PermissionsRead"],
            )
        if edit and not read:
            raise SetupError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Permission Edit depends on permission(s): Read",
                ["PermissionsEdit"],
            )
        if edit and (not fdef.updateable or fdef.calculated):
            raise SetupError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"Field {values['Field']} is not editable, so PermissionsEdit cannot be "
                "granted on it.",
                ["PermissionsEdit"],
            )
        perms = self.tables["FieldPermissions"]
        dup = np.flatnonzero(
            (perms.col("ParentId") == to_18(str(values["ParentId"])))
            & (perms.col("Field") == values["Field"])
        )
        if len(dup):
            raise SetupError(
                "DUPLICATE_VALUE",
                "duplicate value found: <unknown> duplicates value on record with id: "
                f"{perms.col('Id')[dup[0]]}",
                [],
            )
        values["ParentId"] = to_18(str(values["ParentId"]))

    def _check_assignment(self, values: dict[str, Any]) -> None:
        assignee = str(values["AssigneeId"])
        pos = self._position_of("User", assignee) if self._object_for(assignee) == "User" else None
        users = self.tables["User"]
        if pos is None or not users.col("IsActive")[pos]:
            raise SetupError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AssigneeId"]
            )
        if self._scan_position("PermissionSet", values["PermissionSetId"]) is None:
            raise SetupError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["PermissionSetId"]
            )
        values["AssigneeId"] = to_18(assignee)
        values["PermissionSetId"] = to_18(str(values["PermissionSetId"]))
        table = self.tables["PermissionSetAssignment"]
        dup = (table.col("AssigneeId") == values["AssigneeId"]) & (
            table.col("PermissionSetId") == values["PermissionSetId"]
        )
        if np.any(dup):
            raise SetupError(
                "DUPLICATE_VALUE",
                f"Duplicate PermissionSetAssignment. Assignee: {values['AssigneeId']}; "
                f"Permission Set: {values['PermissionSetId']}",
                [],
            )

    def delete_setup_record(self, sobject: str, record_id: str) -> bool:
        """Hard-delete a setup record (a PermissionSet takes its grants along); False if unknown."""
        pos = self._scan_position(sobject, record_id)
        if pos is None:
            return False
        table = self.tables[sobject]
        mask = np.zeros(table.n, dtype=bool)
        mask[pos] = True
        delete_rows(table, mask)
        if sobject == "PermissionSet":
            ps_id = to_18(record_id)
            perms = self.tables["FieldPermissions"]
            delete_rows(perms, perms.col("ParentId") == ps_id)
            assignments = self.tables["PermissionSetAssignment"]
            delete_rows(assignments, assignments.col("PermissionSetId") == ps_id)
        self._setup_changed()
        return True

    def drop_field_permissions(self, full_name: str) -> None:
        """Remove every FieldPermissions row of a deleted field."""
        perms = self.tables["FieldPermissions"]
        if delete_rows(perms, perms.col("Field") == full_name):
            self._setup_changed()

    # provided by SalesforceOrg
    def _object_for(self, record_id: Any) -> str | None:
        return self.object_for_id(record_id)  # type: ignore[attr-defined]

    def _position_of(self, sobject: str | None, record_id: Any) -> int | None:
        if sobject is None:
            return None
        return self.position(sobject, record_id)  # type: ignore[attr-defined]
