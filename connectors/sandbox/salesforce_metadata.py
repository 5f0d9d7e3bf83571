"""A Metadata API (SOAP) subset: page layouts and list views.

`MetadataStore` holds the org's ``Layout`` and ``ListView`` components and answers the
``readMetadata`` / ``createMetadata`` / ``updateMetadata`` / ``deleteMetadata`` calls that
simple-salesforce's ``sf.mdapi`` (zeep, with its bundled ``metadata.wsdl``) sends to
``POST /services/Soap/m/{version}``. Requests are parsed with ElementTree and answers are
written as the XML Salesforce returns (SaveResult / DeleteResult / ReadResult, SOAP faults).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from .salesforce_access import DEVELOPER_NAME
from .salesforce_schema import SETUP_OBJECTS, FieldDef

if TYPE_CHECKING:
    from .salesforce_org import SalesforceOrg

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_COMPONENTS = 10
SECTION_STYLES = ("TwoColumnsTopToBottom", "TwoColumnsLeftToRight", "OneColumn", "CustomLinks")
BEHAVIORS = ("Edit", "Required", "Readonly")
FILTER_SCOPES = (
    "Everything",
    "Mine",
    "MineAndMyGroups",
    "Queue",
    "Delegated",
    "MyTerritory",
    "MyTeamTerritory",
    "Team",
    "AssignedToMe",
)
FILTER_OPERATIONS = (
    "equals",
    "notEqual",
    "lessThan",
    "greaterThan",
    "lessOrEqual",
    "greaterOrEqual",
    "contains",
    "notContain",
    "startsWith",
    "includes",
    "excludes",
    "within",
)
# List-view column names Salesforce uses that are not API field names.
SPECIAL_COLUMNS = frozenset(
    {
        "FULL_NAME",
        "NAME",
        "CORE.USERS.ALIAS",
        "CORE.USERS.FULL_NAME",
        "CORE.USERS.LAST_NAME",
        "OWNER.ALIAS",
        "OWNER_NAME",
        "CREATED_DATE",
        "LAST_UPDATE",
        "LAST_ACTIVITY",
        "ACCOUNT.NAME",
        "LEAD.UNREAD",
        "LEAD.CONVERTED",
        "LEAD.STATE",
        "LEAD.CITY",
        "LEAD.COUNTRY",
        "LEAD.STATE_CODE",
        "CONTACT.PHONE1",
        "CONTACT.MAILING_CITY",
    }
)
ListViewDict = dict[str, Any]
LayoutDict = dict[str, Any]


class SoapFault(Exception):
    """A SOAP fault (``faultcode`` like ``sf:INVALID_SESSION_ID``)."""

    def __init__(self, code: str, message: str, status: int = 500):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ComponentError(Exception):
    """One component's save/delete error (becomes a result with ``success=false``)."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = fields or []


# ---- XML helpers -------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return (child.text or "").strip() if child.get(f"{{{XSI_NS}}}nil") != "true" else None
    return None


def _bool(elem: ET.Element, name: str) -> bool:
    return (_text(elem, name) or "").lower() == "true"


def _b(value: bool) -> str:
    return "true" if value else "false"


def _el(name: str, value: Any) -> str:
    if value is None:
        return ""
    text = _b(value) if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


def envelope(body: str) -> str:
    """Wrap a SOAP body in the envelope Salesforce answers with."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="{MD_NS}" xmlns:xsi="{XSI_NS}">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def fault_envelope(code: str, message: str) -> str:
    """A SOAP fault envelope."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:sf="{MD_NS}">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


_SESSION_RE = re.compile(rb"<(?:[\w.-]+:)?sessionId>\s*([^<\s]*)\s*</(?:[\w.-]+:)?sessionId>")
_OPERATION_RE = re.compile(rb"<(?:[\w.-]+:)?Body[^>]*>\s*<(?:[\w.-]+:)?(\w+)")


def soap_session_id(body: bytes) -> str | None:
    """Return the ``SessionHeader/sessionId`` of a SOAP request, if any."""
    match = _SESSION_RE.search(body)
    return match.group(1).decode("utf-8", "replace") if match else None


def soap_operation(body: bytes) -> str | None:
    """Return the local name of the SOAP body's first element (the operation)."""
    match = _OPERATION_RE.search(body)
    return match.group(1).decode("ascii", "replace") if match else None


# ---- defaults ----------------------------------------------------------------------------------
def _section(label: str, *columns: list[str], style: str = "TwoColumnsTopToBottom") -> dict:
    return {
        "label": label,
        "style": style,
        "customLabel": False,
        "detailHeading": True,
        "editHeading": True,
        "columns": [
            [{"field": f, "behavior": None, "emptySpace": False} for f in c] for c in columns
        ],
    }


def default_layouts() -> dict[str, LayoutDict]:
    """The page layouts a fresh sandbox org has."""
    return {
        "Lead-Lead Layout": {
            "fullName": "Lead-Lead Layout",
            "sections": [
                _section(
                    "Lead Information",
                    ["OwnerId", "Name", "Company", "Title", "LeadSource", "Industry"],
                    ["Phone", "Email", "Status", "NumberOfEmployees"],
                ),
                _section(
                    "Additional Information",
                    ["HasOptedOutOfEmail", "EmailBouncedReason"],
                    ["EmailBouncedDate"],
                ),
            ],
        },
        "Contact-Contact Layout": {
            "fullName": "Contact-Contact Layout",
            "sections": [
                _section(
                    "Contact Information",
                    ["OwnerId", "Name", "AccountId", "Title"],
                    ["Email", "LeadSource"],
                ),
                _section("System Information", ["CreatedDate"], ["LastModifiedDate"]),
            ],
        },
    }


def default_list_views() -> dict[str, ListViewDict]:
    """The list views a fresh sandbox org has."""

    def view(full_name: str, label: str, scope: str, columns: list[str], filters: list) -> dict:
        return {
            "fullName": full_name,
            "label": label,
            "filterScope": scope,
            "queue": None,
            "booleanFilter": None,
            "columns": columns,
            "filters": [{"field": f, "operation": o, "value": v} for f, o, v in filters],
        }

    return {
        "Lead.AllOpenLeads": view(
            "Lead.AllOpenLeads",
            "All Open Leads",
            "Everything",
            ["FULL_NAME", "LEAD.COMPANY", "LEAD.EMAIL", "LEAD.STATUS", "CORE.USERS.ALIAS"],
            [("LEAD.CONVERTED", "equals", "0")],
        ),
        "Lead.MyUnreadLeads": view(
            "Lead.MyUnreadLeads",
            "My Unread Leads",
            "Mine",
            ["FULL_NAME", "LEAD.COMPANY", "LEAD.STATUS"],
            [("LEAD.UNREAD", "equals", "1")],
        ),
        "Contact.AllContacts": view(
            "Contact.AllContacts",
            "All Contacts",
            "Everything",
            ["FULL_NAME", "ACCOUNT.NAME", "CONTACT.EMAIL", "CORE.USERS.ALIAS"],
            [],
        ),
    }


# ---- parsing -----------------------------------------------------------------------------------
def parse_layout(elem: ET.Element) -> LayoutDict:
    sections = []
    for sec in _children(elem, "layoutSections"):
        columns = []
        for col in _children(sec, "layoutColumns"):
            columns.append(
                [
                    {
                        "field": _text(item, "field") or None,
                        "behavior": _text(item, "behavior") or None,
                        "emptySpace": _bool(item, "emptySpace"),
                    }
                    for item in _children(col, "layoutItems")
                ]
            )
        sections.append(
            {
                "label": _text(sec, "label"),
                "style": _text(sec, "style") or "TwoColumnsTopToBottom",
                "customLabel": _bool(sec, "customLabel"),
                "detailHeading": _bool(sec, "detailHeading"),
                "editHeading": _bool(sec, "editHeading"),
                "columns": columns,
            }
        )
    return {"fullName": _text(elem, "fullName") or "", "sections": sections}


def parse_list_view(elem: ET.Element) -> ListViewDict:
    return {
        "fullName": _text(elem, "fullName") or "",
        "label": _text(elem, "label"),
        "filterScope": _text(elem, "filterScope"),
        "queue": _text(elem, "queue") or None,
        "booleanFilter": _text(elem, "booleanFilter") or None,
        "columns": [(c.text or "").strip() for c in _children(elem, "columns")],
        "filters": [
            {
                "field": _text(f, "field") or "",
                "operation": _text(f, "operation") or "",
                "value": _text(f, "value"),
            }
            for f in _children(elem, "filters")
        ],
    }


# ---- rendering ---------------------------------------------------------------------------------
def render_layout(layout: LayoutDict, behavior: Any) -> str:
    parts = [_el("fullName", layout["fullName"])]
    for sec in layout["sections"]:
        parts.append("<layoutSections>")
        parts.append(_el("customLabel", sec["customLabel"]))
        parts.append(_el("detailHeading", sec["detailHeading"]))
        parts.append(_el("editHeading", sec["editHeading"]))
        parts.append(_el("label", sec["label"]))
        for column in sec["columns"]:
            parts.append("<layoutColumns>")
            for item in column:
                parts.append("<layoutItems>")
                if item["field"]:
                    parts.append(_el("behavior", item["behavior"] or behavior(item["field"])))
                if item["emptySpace"]:
                    parts.append(_el("emptySpace", True))
                parts.append(_el("field", item["field"]))
                parts.append("</layoutItems>")
            parts.append("</layoutColumns>")
        parts.append(_el("style", sec["style"]))
        parts.append("</layoutSections>")
    return f'<records xsi:type="Layout">{"".join(parts)}</records>'


def render_list_view(view: ListViewDict) -> str:
    parts = [_el("fullName", view["fullName"]), _el("booleanFilter", view["booleanFilter"])]
    parts.extend(_el("columns", c) for c in view["columns"])
    parts.append(_el("filterScope", view["filterScope"]))
    for f in view["filters"]:
        parts.append(
            "<filters>"
            + _el("field", f["field"])
            + _el("operation", f["operation"])
            + _el("value", f["value"])
            + "</filters>"
        )
    parts.append(_el("label", view["label"]))
    parts.append(_el("queue", view["queue"]))
    return f'<records xsi:type="ListView">{"".join(parts)}</records>'


def _save_result(full_name: str, error: ComponentError | None) -> str:
    if error is None:
        return f"<result>{_el('fullName', full_name)}<success>true</success></result>"
    fields = "".join(_el("fields", f) for f in error.fields)
    return (
        f"<result><errors>{fields}{_el('message', error.message)}"
        f"{_el('statusCode', error.status_code)}</errors>{_el('fullName', full_name)}"
        "<success>false</success></result>"
    )


# ---- the store ---------------------------------------------------------------------------------
class MetadataStore:
    """Layouts and list views of one org, plus the SOAP dispatch."""

    def __init__(self, org: SalesforceOrg):
        self.org = org
        self.layouts: dict[str, LayoutDict] = default_layouts()
        self.list_views: dict[str, ListViewDict] = default_list_views()

    # ---- Python access -----------------------------------------------------------------------
    def layout_fields(self, full_name: str) -> dict[str, list[str]]:
        """Return ``{section label: [field names]}`` of a layout (KeyError when unknown)."""
        layout = self.layouts[full_name]
        return {
            sec["label"] or f"Section {i + 1}": [
                item["field"] for column in sec["columns"] for item in column if item["field"]
            ]
            for i, sec in enumerate(layout["sections"])
        }

    def list_view_copies(self) -> dict[str, ListViewDict]:
        return copy.deepcopy(self.list_views)

    def forget_field(self, sobject: str, name: str) -> None:
        """Drop a deleted field from layouts and list views (as Salesforce does)."""
        for full_name, layout in self.layouts.items():
            if full_name.split("-", 1)[0] != sobject:
                continue
            for sec in layout["sections"]:
                sec["columns"] = [
                    [i for i in column if (i["field"] or "").lower() != name.lower()]
                    for column in sec["columns"]
                ]
        for full_name, view in self.list_views.items():
            if full_name.split(".", 1)[0] != sobject:
                continue
            view["columns"] = [c for c in view["columns"] if c.lower() != name.lower()]
            view["filters"] = [f for f in view["filters"] if f["field"].lower() != name.lower()]

    # ---- validation --------------------------------------------------------------------------
    def _object(self, name: str) -> str | None:
        sobject = self.org.object_name(name)
        return None if sobject in SETUP_OBJECTS else sobject

    def _behavior(self, sobject: str) -> Any:
        schema = self.org.schemas[sobject]

        def behavior(field: str) -> str:
            fdef: FieldDef | None = schema.get(field)
            if fdef is None or not fdef.updateable or fdef.calculated:
                return "Readonly"
            return "Required" if not fdef.nillable and fdef.kind != "bool" else "Edit"

        return behavior

    def _check_layout(self, layout: LayoutDict) -> str:
        sobject = self._object(layout["fullName"].split("-", 1)[0])
        if sobject is None or "-" not in layout["fullName"]:
            raise ComponentError(
                "INVALID_CROSS_REFERENCE_KEY",
                f"In field: fullName - no Layout named {layout['fullName']} found",
                ["fullName"],
            )
        schema = self.org.schemas[sobject]
        seen: set[str] = set()
        for sec in layout["sections"]:
            if sec["style"] not in SECTION_STYLES:
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION", f"Invalid section style: {sec['style']}", ["style"]
                )
            for column in sec["columns"]:
                for item in column:
                    field = item["field"]
                    if not field:
                        continue
                    fdef = schema.get(field)
                    if fdef is None:
                        raise ComponentError(
                            "FIELD_INTEGRITY_EXCEPTION",
                            f"In field: field - no CustomField named {sobject}.{field} found",
                            ["field"],
                        )
                    if item["behavior"] and item["behavior"] not in BEHAVIORS:
                        raise ComponentError(
                            "FIELD_INTEGRITY_EXCEPTION",
                            f"Invalid behavior {item['behavior']} for field {fdef.name}",
                            ["behavior"],
                        )
                    if fdef.name in seen:
                        raise ComponentError(
                            "DUPLICATE_VALUE",
                            f"Field: {fdef.name} appears more than once in this layout",
                            ["field"],
                        )
                    seen.add(fdef.name)
                    item["field"] = fdef.name
        return sobject

    def _resolve_column(self, sobject: str, column: str, user: str | None) -> bool:
        if column.upper() in SPECIAL_COLUMNS:
            return True
        schema = self.org.visible_schema(sobject, user)
        if schema.get(column) is not None:
            return True
        prefix = f"{sobject.upper()}."
        if column.upper().startswith(prefix):
            key = column[len(prefix) :].replace("_", "").lower()
            return any(
                not f.custom and f.name.replace("_", "").lower() == key for f in schema.fields
            )
        return False

    def _check_list_view(self, view: ListViewDict, user: str | None) -> None:
        obj, _, name = view["fullName"].partition(".")
        sobject = self._object(obj) if name else None
        if sobject is None:
            raise ComponentError(
                "INVALID_CROSS_REFERENCE_KEY",
                f"In field: fullName - no CustomObject named {obj} found",
                ["fullName"],
            )
        if not DEVELOPER_NAME.fullmatch(name) or len(name) > 40:
            raise ComponentError(
                "FIELD_INTEGRITY_EXCEPTION",
                "The List View Unique Name can only contain underscores and alphanumeric "
                "characters. It must be unique, begin with a letter, not include spaces, not end "
                "with an underscore, and not contain two consecutive underscores.",
                ["fullName"],
            )
        view["fullName"] = f"{sobject}.{name}"
        if not view["label"]:
            raise ComponentError(
                "REQUIRED_FIELD_MISSING", "Required field is missing: label", ["label"]
            )
        if len(view["label"]) > 40:
            raise ComponentError(
                "STRING_TOO_LONG", "View Name: data value too large (max length=40)", ["label"]
            )
        if view["filterScope"] not in FILTER_SCOPES:
            raise ComponentError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"Invalid filterScope: {view['filterScope']}",
                ["filterScope"],
            )
        if view["filterScope"] == "Queue":
            groups = self.org.tables["Group"]
            names = set(groups.col("DeveloperName")[groups.col("Type") == "Queue"].tolist())
            if view["queue"] not in names:
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"In field: queue - no Queue named {view['queue']} found",
                    ["queue"],
                )
        for column in view["columns"]:
            if not self._resolve_column(sobject, column, user):
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"Could not resolve list view column: {column}",
                    ["columns"],
                )
        for f in view["filters"]:
            if not self._resolve_column(sobject, f["field"], user):
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"Could not resolve list view filter field: {f['field']}",
                    ["filters"],
                )
            if f["operation"] not in FILTER_OPERATIONS:
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"Invalid filter operation: {f['operation']}",
                    ["filters"],
                )
        boolean = view["booleanFilter"]
        if boolean:
            numbers = [int(n) for n in re.findall(r"\d+", boolean)]
            rest = re.sub(r"\d+|\bAND\b|\bOR\b|\bNOT\b|[()\s]", "", boolean, flags=re.IGNORECASE)
            if rest or any(not 1 <= n <= len(view["filters"]) for n in numbers):
                raise ComponentError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"The filter logic references an undefined filter: {boolean}",
                    ["booleanFilter"],
                )

    # ---- operations --------------------------------------------------------------------------
    def _read(self, kind: str, names: list[str]) -> str:
        records = []
        for name in names:
            if kind == "Layout":
                layout = self.layouts.get(name)
                if layout is None:
                    records.append('<records xsi:type="Layout"/>')
                else:
                    sobject = name.split("-", 1)[0]
                    records.append(render_layout(layout, self._behavior(sobject)))
            else:
                view = self.list_views.get(self._canonical_view(name))
                records.append(render_list_view(view) if view else '<records xsi:type="ListView"/>')
        return f"<readMetadataResponse><result>{''.join(records)}</result></readMetadataResponse>"

    def _canonical_view(self, full_name: str) -> str:
        obj, _, name = full_name.partition(".")
        sobject = self.org.object_name(obj) or obj
        return f"{sobject}.{name}"

    def _save(self, op: str, kind: str, elem: ET.Element, user: str | None) -> str:
        full_name = _text(elem, "fullName") or ""
        try:
            if kind == "Layout":
                layout = parse_layout(elem)
                exists = layout["fullName"] in self.layouts
                if op == "update" and not exists:
                    raise ComponentError(
                        "INVALID_CROSS_REFERENCE_KEY",
                        f"In field: fullName - no Layout named {full_name} found",
                        ["fullName"],
                    )
                if op == "create" and exists:
                    raise ComponentError(
                        "DUPLICATE_DEVELOPER_NAME",
                        f"There is already a Layout named {full_name}",
                        ["fullName"],
                    )
                self._check_layout(layout)
                self.layouts[layout["fullName"]] = layout
            else:
                view = parse_list_view(elem)
                view["fullName"] = self._canonical_view(view["fullName"])
                exists = view["fullName"] in self.list_views
                if op == "update" and not exists:
                    raise ComponentError(
                        "INVALID_CROSS_REFERENCE_KEY",
                        f"In field: fullName - no ListView named {full_name} found",
                        ["fullName"],
                    )
                if op == "create" and exists:
                    raise ComponentError(
                        "DUPLICATE_DEVELOPER_NAME",
                        "This List View Unique Name already exists or has been previously used. "
                        "Please choose a different name.",
                        ["fullName"],
                    )
                self._check_list_view(view, user)
                self.list_views[view["fullName"]] = view
                full_name = view["fullName"]
        except ComponentError as error:
            return _save_result(full_name, error)
        return _save_result(full_name, None)

    def _delete(self, kind: str, names: list[str]) -> str:
        results = []
        for name in names:
            store = self.layouts if kind == "Layout" else self.list_views
            key = name if kind == "Layout" else self._canonical_view(name)
            if key in store:
                del store[key]
                results.append(_save_result(name, None))
            else:
                results.append(
                    _save_result(
                        name,
                        ComponentError(
                            "INVALID_CROSS_REFERENCE_KEY",
                            f"In field: fullName - no {kind} named {name} found",
                            ["fullName"],
                        ),
                    )
                )
        return f"<deleteMetadataResponse>{''.join(results)}</deleteMetadataResponse>"

    def handle(self, request: bytes, user: str | None) -> str:
        """Answer one SOAP request; returns the response envelope.

        Raises:
            SoapFault: malformed requests, unsupported operations or types, too many names.
        """
        try:
            root = ET.fromstring(request)
        except ET.ParseError as exc:
            raise SoapFault("soapenv:Client", f"Unable to parse the request: {exc}") from exc
        body = next((c for c in root if _local(c.tag) == "Body"), None)
        call = next(iter(body), None) if body is not None else None
        if call is None:
            raise SoapFault("soapenv:Client", "No SOAP body in the request")
        op = _local(call.tag)
        with self.org.lock:
            if op in ("readMetadata", "deleteMetadata"):
                kind = _text(call, "type") or ""
                names = [(c.text or "").strip() for c in _children(call, "fullNames")]
                self._check_kind(kind, len(names))
                inner = (
                    self._read(kind, names) if op == "readMetadata" else self._delete(kind, names)
                )
                return envelope(inner)
            if op in ("createMetadata", "updateMetadata"):
                items = _children(call, "metadata")
                kinds = {_local(m.get(f"{{{XSI_NS}}}type", "")).split(":")[-1] for m in items}
                if len(kinds) > 1:
                    raise SoapFault(
                        "sf:INVALID_TYPE", "You must submit components of only one type per call"
                    )
                kind = kinds.pop() if kinds else ""
                self._check_kind(kind, len(items))
                verb = "create" if op == "createMetadata" else "update"
                results = "".join(self._save(verb, kind, m, user) for m in items)
                return envelope(f"<{op}Response>{results}</{op}Response>")
        raise SoapFault("soapenv:Client", f"No operation available for request {{{MD_NS}}}{op}")

    @staticmethod
    def _check_kind(kind: str, count: int) -> None:
        if kind not in ("Layout", "ListView"):
            raise SoapFault(
                "sf:INVALID_TYPE",
                f"INVALID_TYPE: The sandbox Metadata API serves Layout and ListView, not {kind!r}",
            )
        if count > MAX_COMPONENTS:
            raise SoapFault(
                "sf:EXCEEDED_ID_LIMIT",
                f"EXCEEDED_ID_LIMIT: record limit reached. cannot submit more than "
                f"{MAX_COMPONENTS} records in this operation",
            )
