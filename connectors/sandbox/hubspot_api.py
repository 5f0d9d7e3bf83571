"""Flask routes of the HubSpot CRM subset (``/crm/v3``, ``/crm/v4``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from .hubspot_portal import HubSpotApiError, HubSpotPortal
from .hubspot_schema import CRM_V3, CRM_V4
from .wire import base_url, bool_arg, hs_error, json_body, json_response, list_arg

bp = Blueprint("hubspot", __name__)


def _portal() -> HubSpotPortal:
    return current_app.config["SANDBOX"].hubspot


def _body() -> Any:
    try:
        body = json_body()
    except ValueError as exc:
        raise HubSpotApiError(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HubSpotApiError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise HubSpotApiError(400, "VALIDATION_ERROR", f"{name} must be an integer") from exc


def _record_fault(record_id: str) -> tuple[str, str] | None:
    return current_app.config["SANDBOX"].faults.record_fault("hubspot", record_id)


@bp.get(f"{CRM_V3}/objects/<object_type>")
def list_objects(object_type: str) -> Response:
    return json_response(
        _portal().list_page(
            object_type,
            limit=_int_arg("limit", 10),
            after=request.args.get("after"),
            properties=list_arg("properties"),
            properties_with_history=list_arg("propertiesWithHistory"),
            associations=list_arg("associations"),
            archived=bool_arg("archived"),
            base_url=base_url(),
        )
    )


@bp.get(f"{CRM_V3}/objects/<object_type>/<object_id>")
def get_object(object_type: str, object_id: str) -> Response:
    return json_response(
        _portal().read_one(
            object_type,
            object_id,
            properties=list_arg("properties"),
            properties_with_history=list_arg("propertiesWithHistory"),
            associations=list_arg("associations"),
            archived=bool_arg("archived"),
            id_property=request.args.get("idProperty"),
        )
    )


@bp.patch(f"{CRM_V3}/objects/<object_type>/<object_id>")
def patch_object(object_type: str, object_id: str) -> Response:
    body = _body()
    props = body.get("properties")
    if not isinstance(props, dict):
        raise HubSpotApiError(400, "VALIDATION_ERROR", "Invalid input JSON: properties required")
    return json_response(
        _portal().update_one(
            object_type, object_id, props, request.args.get("idProperty"), _record_fault
        )
    )


@bp.delete(f"{CRM_V3}/objects/<object_type>/<object_id>")
def archive_object(object_type: str, object_id: str) -> Response:
    _portal().archive(object_type, object_id)
    return Response(status=204)


@bp.post(f"{CRM_V3}/objects/<object_type>/batch/read")
def batch_read(object_type: str) -> Response:
    status, body = _portal().batch_read(object_type, _body())
    return json_response(body, status)


@bp.post(f"{CRM_V3}/objects/<object_type>/batch/update")
def batch_update(object_type: str) -> Response:
    status, body = _portal().batch_update(object_type, _body(), _record_fault)
    return json_response(body, status)


@bp.post(f"{CRM_V3}/objects/<object_type>/search")
def search(object_type: str) -> Response:
    return json_response(_portal().search(object_type, _body()))


@bp.get(f"{CRM_V3}/properties/<object_type>")
def list_properties(object_type: str) -> Response:
    return json_response(_portal().list_properties(object_type))


@bp.post(f"{CRM_V3}/properties/<object_type>")
def create_property(object_type: str) -> Response:
    return json_response(_portal().create_property(object_type, _body()), 201)


@bp.get(f"{CRM_V3}/properties/<object_type>/groups")
def list_groups(object_type: str) -> Response:
    return json_response(_portal().list_groups(object_type))


@bp.post(f"{CRM_V3}/properties/<object_type>/groups")
def create_group(object_type: str) -> Response:
    return json_response(_portal().create_group(object_type, _body()), 201)


@bp.get(f"{CRM_V3}/properties/<object_type>/<name>")
def get_property(object_type: str, name: str) -> Response:
    return json_response(_portal().get_property(object_type, name))


@bp.delete(f"{CRM_V3}/properties/<object_type>/<name>")
def delete_property(object_type: str, name: str) -> Response:
    _portal().delete_property(object_type, name)
    return Response(status=204)


@bp.get(f"{CRM_V3}/owners/")
def list_owners() -> Response:
    return json_response(
        _portal().list_owners(
            limit=_int_arg("limit", 100),
            after=request.args.get("after"),
            email=request.args.get("email"),
            archived=bool_arg("archived"),
            base_url=base_url(),
        )
    )


@bp.get(f"{CRM_V3}/owners/<owner_id>")
def get_owner(owner_id: str) -> Response:
    return json_response(_portal().get_owner(owner_id, request.args.get("idProperty", "id")))


@bp.post(f"{CRM_V4}/associations/<from_type>/<to_type>/batch/read")
def associations_batch_read(from_type: str, to_type: str) -> Response:
    status, body = _portal().associations_batch_read(from_type, to_type, _body())
    return json_response(body, status)


@bp.get(f"{CRM_V4}/objects/<from_type>/<object_id>/associations/<to_type>")
def associations_of(from_type: str, object_id: str, to_type: str) -> Response:
    return json_response(_portal().associations_of(from_type, object_id, to_type))


@bp.errorhandler(HubSpotApiError)
def _hs_error(exc: HubSpotApiError) -> Response:
    return hs_error(exc.status, exc.category, exc.message, **exc.extra)
