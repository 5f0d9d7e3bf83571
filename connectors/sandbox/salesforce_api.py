"""Flask routes of the Salesforce REST subset (``/services/data``)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from .salesforce_org import SalesforceApiError, SalesforceOrg, parse_replication_time
from .wire import SF_JSON, json_body, json_response, sf_error

DATA = "/services/data"
VERSIONS = [f"{v}.0" for v in range(31, 68)]
RELEASES = {
    62: "Winter '25",
    63: "Spring '25",
    64: "Summer '25",
    65: "Winter '26",
    66: "Spring '26",
    67: "Summer '26",
}
MAX_COLLECTION = 200

bp = Blueprint("salesforce", __name__)


def _org() -> SalesforceOrg:
    return current_app.config["SANDBOX"].salesforce


def current_user() -> str | None:
    """The Salesforce user id of the request's access token (set by the app's auth step)."""
    return g.get("sf_user")


def record_fault_hook():
    """The per-record fault hook of the sandbox (``Faults.record_fault`` for Salesforce)."""
    sandbox = current_app.config["SANDBOX"]
    return lambda rid: sandbox.faults.record_fault("salesforce", rid)


def _ok(body: Any, status: int = 200) -> Response:
    return json_response(body, status, content_type=SF_JSON)


def _version(version: str) -> str:
    if not re.fullmatch(r"\d{2}\.\d", version):
        raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return version


def _object(name: str, tooling: bool = False) -> str:
    canonical = _org().object_name(name, tooling)
    if canonical is None:
        raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return canonical


def _batch_size() -> int | None:
    header = request.headers.get("Sforce-Query-Options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", header)
    return int(match.group(1)) if match else None


@bp.get(f"{DATA}/")
def versions() -> Response:
    return _ok(
        [
            {"label": RELEASES.get(int(float(v)), f"API {v}"), "url": f"{DATA}/v{v}", "version": v}
            for v in VERSIONS
        ]
    )


@bp.get(f"{DATA}/v<version>/")
def resources(version: str) -> Response:
    base = f"{DATA}/v{_version(version)}"
    names = ["sobjects", "query", "queryAll", "limits", "tooling", "composite", "jobs"]
    return _ok({n: f"{base}/{n}" for n in names})


@bp.get(f"{DATA}/v<version>/limits/")
def limits(version: str) -> Response:
    _version(version)
    return _ok(_org().limits())


def _query(version: str, include_deleted: bool, tooling: bool = False) -> Response:
    soql = request.args.get("q")
    if not soql:
        raise SalesforceApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return _ok(
        _org().query(
            soql,
            include_deleted=include_deleted,
            batch_size=_batch_size(),
            version=_version(version),
            tooling=tooling,
            user=current_user(),
        )
    )


@bp.get(f"{DATA}/v<version>/query/")
def query(version: str) -> Response:
    return _query(version, include_deleted=False)


@bp.get(f"{DATA}/v<version>/queryAll/")
def query_all(version: str) -> Response:
    return _query(version, include_deleted=True)


@bp.get(f"{DATA}/v<version>/query/<locator>")
def query_more(version: str, locator: str) -> Response:
    return _ok(_org().query_more(locator, batch_size=_batch_size(), version=_version(version)))


@bp.get(f"{DATA}/v<version>/queryAll/<locator>")
def query_all_more(version: str, locator: str) -> Response:
    return _ok(
        _org().query_more(
            locator, batch_size=_batch_size(), version=_version(version), include_deleted=True
        )
    )


@bp.get(f"{DATA}/v<version>/sobjects/")
def describe_global(version: str) -> Response:
    return _ok(_org().describe_global(_version(version)))


@bp.get(f"{DATA}/v<version>/sobjects/<sobject>/")
def sobject_info(version: str, sobject: str) -> Response:
    version = _version(version)
    head = _org().describe(_object(sobject), version, user=current_user())
    head.pop("fields")
    return _ok({"objectDescribe": head, "recentItems": []})


@bp.post(f"{DATA}/v<version>/sobjects/<sobject>/")
def create_record(version: str, sobject: str) -> Response:
    _version(version)
    return _ok(_org().create(_object(sobject), _json_object(), user=current_user()), 201)


@bp.get(f"{DATA}/v<version>/sobjects/<sobject>/describe/")
def describe(version: str, sobject: str) -> Response:
    return _ok(_org().describe(_object(sobject), _version(version), user=current_user()))


def _window() -> tuple[Any, Any]:
    start = parse_replication_time(request.args.get("start"))
    end = parse_replication_time(request.args.get("end"))
    if start is None or end is None:
        raise SalesforceApiError(
            400,
            "INVALID_REPLICATION_DATE",
            "start and end must be ISO-8601 datetimes with a time zone",
        )
    if end < start:
        raise SalesforceApiError(
            400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"
        )
    return start, end


@bp.get(f"{DATA}/v<version>/sobjects/<sobject>/deleted/")
def deleted(version: str, sobject: str) -> Response:
    _version(version)
    return _ok(_org().deleted_between(_object(sobject), *_window()))


@bp.get(f"{DATA}/v<version>/sobjects/<sobject>/updated/")
def updated(version: str, sobject: str) -> Response:
    _version(version)
    return _ok(_org().updated_between(_object(sobject), *_window()))


def _fields_arg() -> list[str] | None:
    raw = request.args.get("fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


@bp.get(f"{DATA}/v<version>/sobjects/<sobject>/<record_id>")
def get_record(version: str, sobject: str, record_id: str) -> Response:
    return _ok(
        _org().read_record(
            _object(sobject), record_id, _fields_arg(), _version(version), user=current_user()
        )
    )


@bp.patch(f"{DATA}/v<version>/sobjects/<sobject>/<record_id>")
def patch_record(version: str, sobject: str, record_id: str) -> Response:
    _version(version)
    body = _json_object()
    _org().update(_object(sobject), record_id, body, record_fault_hook(), user=current_user())
    return Response(status=204)


@bp.delete(f"{DATA}/v<version>/sobjects/<sobject>/<record_id>")
def delete_record(version: str, sobject: str, record_id: str) -> Response:
    _version(version)
    _org().delete(_object(sobject), record_id)
    return Response(status=204)


def _json_object() -> Any:
    try:
        body = json_body()
    except ValueError as exc:
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", f"Unexpected body: {exc}") from exc
    if not isinstance(body, dict):
        raise SalesforceApiError(
            400, "JSON_PARSER_ERROR", "Can not deserialize SObject out of START_ARRAY token"
        )
    return body


@bp.patch(f"{DATA}/v<version>/composite/sobjects")
def collections_update(version: str) -> Response:
    _version(version)
    body = _json_object()
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise SalesforceApiError(400, "INVALID_FIELD", "records is required", [])
    if len(records) > MAX_COLLECTION:
        raise SalesforceApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    # Sforce-Auto-Assign is accepted and ignored: the sandbox runs no assignment rules.
    results = _org().update_collection(
        records, all_or_none, record_fault_hook(), user=current_user()
    )
    return _ok(results)


@bp.route(f"{DATA}/v<version>/composite/sobjects/<sobject>", methods=["GET", "POST"])
def collections_retrieve(version: str, sobject: str) -> Response:
    version = _version(version)
    if request.method == "POST":
        body = _json_object()
        ids, fields = body.get("ids") or [], body.get("fields")
    else:
        ids = [i for i in (request.args.get("ids") or "").split(",") if i]
        fields = _fields_arg()
    if not ids:
        raise SalesforceApiError(400, "MALFORMED_QUERY", "ids is required")
    if len(ids) > 2000:
        raise SalesforceApiError(400, "EXCEEDED_ID_LIMIT", "Too many ids: more than 2000")
    return _ok(_org().retrieve(_object(sobject), ids, fields, version, user=current_user()))


# ---- tooling --------------------------------------------------------------------------------
@bp.get(f"{DATA}/v<version>/tooling/query/")
def tooling_query(version: str) -> Response:
    return _query(version, include_deleted=False, tooling=True)


@bp.get(f"{DATA}/v<version>/tooling/query/<locator>")
def tooling_query_more(version: str, locator: str) -> Response:
    return _ok(
        _org().query_more(
            locator, batch_size=_batch_size(), version=_version(version), tooling=True
        )
    )


@bp.post(f"{DATA}/v<version>/tooling/sobjects/CustomField/")
def create_custom_field(version: str) -> Response:
    _version(version)
    return _ok(_org().create_custom_field(_json_object()), 201)


@bp.get(f"{DATA}/v<version>/tooling/sobjects/CustomField/<field_id>")
def get_custom_field(version: str, field_id: str) -> Response:
    return _ok(_org().get_custom_field(field_id, _version(version)))


@bp.delete(f"{DATA}/v<version>/tooling/sobjects/CustomField/<field_id>")
def delete_custom_field(version: str, field_id: str) -> Response:
    _version(version)
    _org().delete_custom_field(field_id)
    return Response(status=204)


@bp.get(f"{DATA}/v<version>/tooling/sobjects/<sobject>/describe/")
def tooling_describe(version: str, sobject: str) -> Response:
    return _ok(_org().describe(_object(sobject, tooling=True), _version(version), tooling=True))


@bp.errorhandler(SalesforceApiError)
def _sf_error(exc: SalesforceApiError) -> Response:
    return sf_error(exc.status, exc.error_code, exc.message, exc.fields)
