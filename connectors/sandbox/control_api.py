"""``/_sandbox`` control endpoints: stats, faults, tokens. Not API calls; never counted."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .wire import base_url, json_response

bp = Blueprint("control", __name__, url_prefix="/_sandbox")


def _sandbox():
    return current_app.config["SANDBOX"]


@bp.get("/health")
def health() -> Response:
    return json_response({"status": "ok"})


@bp.get("/stats")
def stats() -> Response:
    return json_response(_sandbox().stats())


@bp.post("/stats/reset")
def reset_stats() -> Response:
    _sandbox().reset_stats()
    return json_response({"status": "ok"})


@bp.get("/faults")
def list_faults() -> Response:
    return json_response(_sandbox().faults.pending())


@bp.post("/faults")
def inject_fault() -> Response:
    body = request.get_json(force=True, silent=True) or {}
    try:
        fault = _sandbox().faults.inject(
            crm=body["crm"],
            status=int(body["status"]),
            count=int(body.get("count", 1)),
            path_contains=body.get("path_contains"),
            method=body.get("method"),
            retry_after=body.get("retry_after"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        return json_response({"error": f"bad fault: {exc}"}, 400)
    return json_response(fault.as_dict(), 201)


@bp.post("/faults/records")
def fail_records() -> Response:
    body = request.get_json(force=True, silent=True) or {}
    try:
        _sandbox().faults.fail_records(
            crm=body["crm"],
            ids=list(body["ids"]),
            code=str(body["code"]),
            message=str(body.get("message", body["code"])),
            times=int(body.get("times", 1)),
        )
    except (KeyError, ValueError, TypeError) as exc:
        return json_response({"error": f"bad record fault: {exc}"}, 400)
    return json_response({"status": "ok"}, 201)


@bp.delete("/faults")
def clear_faults() -> Response:
    _sandbox().faults.clear()
    return Response(status=204)


@bp.post("/tokens/<crm>")
def issue_tokens(crm: str) -> Response:
    if crm not in ("salesforce", "hubspot"):
        return json_response({"error": "crm must be salesforce or hubspot"}, 400)
    return json_response(_sandbox().issue_tokens(crm, base_url()))


@bp.post("/expire-tokens")
def expire_tokens() -> Response:
    body = request.get_json(force=True, silent=True) or {}
    crm = body.get("crm")
    return json_response({"expired": _sandbox().expire_access_tokens(crm)})
