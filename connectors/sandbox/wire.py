"""JSON response helpers in each CRM's wire style."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, request

SF_JSON = "application/json;charset=UTF-8"


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Response:
    """Serialise ``body`` compactly (allow_nan=False: NaN must never leak)."""
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(text, status=status, headers=headers, content_type=content_type)


def sf_error(
    status: int,
    error_code: str,
    message: str,
    fields: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A Salesforce error array response."""
    entry: dict[str, Any] = {"message": message, "errorCode": error_code}
    if fields is not None:
        entry["fields"] = fields
    return json_response([entry], status, headers, SF_JSON)


def hs_error(
    status: int, category: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """A HubSpot error object response."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return json_response(body, status, headers)


def json_body() -> Any:
    """Return the parsed JSON request body, or raise ValueError."""
    data = request.get_data(cache=True)
    if not data:
        raise ValueError("empty body")
    return json.loads(data)


def list_arg(name: str) -> list[str] | None:
    """A query parameter given as a comma list and/or repeated (HubSpot SDK style)."""
    values = [v for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]
    return [v.strip() for v in values] or None


def bool_arg(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    return value.lower() in ("true", "1", "yes")


def base_url() -> str:
    """The server's own base URL (scheme, host and port)."""
    return request.host_url.rstrip("/")
