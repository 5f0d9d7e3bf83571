"""Installing leadlift into an org: custom fields, field-level security, and their removal.

A field created through the Tooling API is invisible to every user until
field permissions grant it (crm-api.md §2.7), so installing means three
steps: the fields, a permission set granting read and edit on them, and that
set's assignment to the integration user. Every created piece is reported as
a ``Component`` so an uninstall can remove exactly what leadlift created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import Component, FieldSpec, InstallReport
from connectors.errors import AuthError, PermanentError
from connectors.salesforce.client import SalesforceClient

# describe() type names that can hold each FieldSpec type.
COMPATIBLE_TYPES = {
    "number": {"double", "int", "percent", "currency"},
    "text": {"string", "textarea"},
    "picklist": {"picklist"},
    "datetime": {"datetime"},
}
PERMISSION_SET = "Leadlift_Fields"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def api_name(logical: str) -> str:
    return f"{logical}__c"


def field_metadata(spec: FieldSpec) -> dict[str, Any]:
    metadata: dict[str, Any] = {"label": spec.label, "description": spec.description}
    if spec.type == "number":
        return metadata | {"type": "Number", "precision": spec.precision, "scale": spec.scale}
    if spec.type == "text":
        return metadata | {"type": "Text", "length": spec.length}
    if spec.type == "datetime":
        return metadata | {"type": "DateTime"}
    values = [{"fullName": v, "default": False, "label": v} for v in spec.options]
    return metadata | {
        "type": "Picklist",
        "valueSet": {"valueSetDefinition": {"sorted": False, "value": values}},
    }


class Installer:
    def __init__(
        self,
        client: SalesforceClient,
        objects: Sequence[str],
        describe,  # (obj) -> {field name: describe entry}; cached by the connector
        forget_describe,  # (obj) -> None
        permission_set: str = PERMISSION_SET,
    ) -> None:
        self.client = client
        self.objects = tuple(objects)
        self.describe = describe
        self.forget_describe = forget_describe
        self.permission_set = permission_set

    def _custom_fields(self, obj: str) -> dict[str, str]:
        """DeveloperName → CustomField id, from Tooling (which sees fields FLS still hides)."""
        soql = f"SELECT Id, DeveloperName FROM CustomField WHERE TableEnumOrId = {quote(obj)}"
        rows = self.client.tooling("query/", params={"q": soql})
        return {r["DeveloperName"]: r["Id"] for r in (rows or {}).get("records", [])}

    def ensure(self, specs: Sequence[FieldSpec], dry_run: bool) -> InstallReport:
        created: list[str] = []
        existing: list[str] = []
        clashes: list[str] = []
        components: list[Component] = []
        wanted: list[tuple[str, str]] = []  # (object, full field name) needing access
        for obj in self.objects:
            visible = self.describe(obj)
            on_org = self._custom_fields(obj)
            for spec in specs:
                name = api_name(spec.name)
                full = f"{obj}.{name}"
                if name in visible:
                    kind = visible[name].get("type")
                    if kind not in COMPATIBLE_TYPES[spec.type]:
                        clashes.append(f"{full} (is {kind}, leadlift needs {spec.type})")
                        continue
                    existing.append(full)
                    wanted.append((obj, full))
                elif spec.name in on_org:
                    # On the org but hidden from us: field-level security not granted yet.
                    existing.append(full)
                    wanted.append((obj, full))
                else:
                    created.append(full)
                    wanted.append((obj, full))
                    field_id = None
                    if not dry_run:
                        field_id = self._create_field(full, spec)
                    components.append(Component("custom_field", full, field_id))
        if wanted and not clashes:
            components += self._grant(wanted, dry_run)
        for obj in self.objects:
            self.forget_describe(obj)
        if clashes:
            # Nothing is granted or checked further until an admin resolves the clash.
            return InstallReport(tuple(created), tuple(existing), tuple(clashes), dry_run,
                                 tuple(components))  # fmt: skip
        if not dry_run:
            self._verify_visible(specs)
        return InstallReport(tuple(created), tuple(existing), (), dry_run, tuple(components))

    def _create_field(self, full_name: str, spec: FieldSpec) -> str | None:
        result = self.client.tooling(
            "sobjects/CustomField",
            method="POST",
            data={"FullName": full_name, "Metadata": field_metadata(spec)},
        )
        if isinstance(result, dict) and not result.get("success", True):
            raise PermanentError(
                f"Salesforce refused to create {full_name}: {result.get('errors')}"
            )
        return result.get("id") if isinstance(result, dict) else None

    def _query(self, soql: str) -> list[dict[str, Any]]:
        return list(self.client.query_pages(soql))

    def _create(self, sobject: str, values: dict[str, Any]) -> str:
        result = self.client.restful(f"sobjects/{sobject}/", method="POST", json=values)
        if not isinstance(result, dict) or not result.get("success", False):
            raise PermanentError(f"Salesforce refused to create a {sobject}: {result}")
        return result["id"]

    def _user_id(self) -> str:
        if self.client.credentials.user_id:
            return self.client.credentials.user_id
        info = self.client.call(lambda sf: sf.oauth2("userinfo"))
        user = (info or {}).get("user_id")
        if not user:
            raise AuthError("cannot tell which user leadlift runs as: reconnect through OAuth")
        return user

    def _grant(self, fields: list[tuple[str, str]], dry_run: bool) -> list[Component]:
        """Read+edit on every leadlift field through one permission set, assigned to us."""
        out: list[Component] = []
        rows = self._query(
            f"SELECT Id FROM PermissionSet WHERE Name = {quote(self.permission_set)}"
        )
        set_id = rows[0]["Id"] if rows else None
        if set_id is None:
            if not dry_run:
                set_id = self._create(
                    "PermissionSet",
                    {"Name": self.permission_set, "Label": "leadlift fields",
                     "Description": "Read and edit leadlift's score fields"},
                )  # fmt: skip
            out.append(Component("permission_set", self.permission_set, set_id))
        granted: set[str] = set()
        if set_id:
            soql = f"SELECT Id, Field FROM FieldPermissions WHERE ParentId = {quote(set_id)}"
            granted = {r["Field"] for r in self._query(soql)}
        for obj, full in fields:
            if full in granted:
                continue
            perm_id = None
            if not dry_run:
                perm_id = self._create(
                    "FieldPermissions",
                    {"ParentId": set_id, "SobjectType": obj, "Field": full,
                     "PermissionsRead": True, "PermissionsEdit": True},
                )  # fmt: skip
            out.append(Component("field_permission", full, perm_id))
        user = self._user_id()
        assigned = bool(set_id) and bool(
            self._query(
                "SELECT Id FROM PermissionSetAssignment "
                f"WHERE PermissionSetId = {quote(set_id)} AND AssigneeId = {quote(user)}"
            )
        )
        if not assigned:
            assignment_id = None
            if not dry_run:
                assignment_id = self._create(
                    "PermissionSetAssignment", {"AssigneeId": user, "PermissionSetId": set_id}
                )
            out.append(Component("permission_set_assignment", f"{self.permission_set}:{user}",
                                 assignment_id))  # fmt: skip
        return out

    def _verify_visible(self, specs: Sequence[FieldSpec]) -> None:
        for obj in self.objects:
            visible = self.describe(obj)
            missing = [api_name(s.name) for s in specs if api_name(s.name) not in visible]
            if missing:
                raise PermanentError(
                    f"{obj} fields still hidden after granting access: {', '.join(missing)}"
                )

    def remove(self, components: Sequence[Component], dry_run: bool) -> InstallReport:
        """Delete exactly the given components, newest first (assignments before sets)."""
        removed: list[str] = []
        for component in reversed(list(components)):
            if component.kind in ("layout_section", "list_view"):
                continue  # views are removed by their own step
            if component.crm_id is None:
                continue
            if not dry_run:
                self._delete(component)
            removed.append(f"{component.kind} {component.name}")
        for obj in self.objects:
            self.forget_describe(obj)
        return InstallReport(dry_run=dry_run, removed=tuple(removed))

    def _delete(self, component: Component) -> None:
        sobject = {
            "custom_field": None,
            "permission_set": "PermissionSet",
            "field_permission": "FieldPermissions",
            "permission_set_assignment": "PermissionSetAssignment",
        }[component.kind]
        try:
            if sobject is None:
                self.client.tooling(f"sobjects/CustomField/{component.crm_id}", method="DELETE")
            else:
                self.client.restful(f"sobjects/{sobject}/{component.crm_id}", method="DELETE")
        except PermanentError as exc:
            if exc.status != 404:  # already gone (or removed with its parent): fine
                raise
