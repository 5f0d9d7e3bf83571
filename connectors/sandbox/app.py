"""`create_app`: one Flask app serving both CRM APIs, OAuth and the control endpoints.

Every request passes one pipeline (`_before`): classify by path prefix, count it,
apply an injected fault, check the bearer token, then apply the CRM's limits
(Salesforce daily API usage, HubSpot rolling windows). `_after` adds the limit
headers each CRM sends.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from . import bulk_api, control_api, hubspot_api, metadata_api, oauth_api, salesforce_api
from .auth import OAuthError
from .faults import RequestFault
from .hubspot_portal import HubSpotApiError
from .hubspot_schema import CRM_V3, CRM_V4
from .salesforce_metadata import soap_operation, soap_session_id
from .salesforce_org import SalesforceApiError
from .sandbox import SandboxCRM
from .soql import SoqlError
from .stats import retry_after_seconds
from .wire import SF_JSON, hs_error, json_response, sf_error

OAUTH_PREFIXES = ("/services/oauth2/", "/oauth/", "/id/")
SOAP_PREFIX = "/services/Soap/"


def classify(path: str) -> str | None:
    """Return which CRM a path belongs to ("salesforce", "hubspot", "oauth") or None."""
    if path.startswith(OAUTH_PREFIXES):
        return "oauth"
    if path.startswith("/services/"):
        return "salesforce"
    if path.startswith((CRM_V3 + "/", CRM_V4 + "/")):
        return "hubspot"
    return None


def _is_search(path: str) -> bool:
    return path.endswith("/search")


def _soap_fault_response(fault: RequestFault) -> Response:
    code = {
        401: (
            "sf:INVALID_SESSION_ID",
            "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader",
        ),
        403: ("sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
        429: ("sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
        503: ("sf:SERVER_UNAVAILABLE", "SERVER_UNAVAILABLE: Service Unavailable"),
    }.get(fault.status, ("sf:UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION: injected fault"))
    response = metadata_api.soap_fault(*code, status=fault.status)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


def _fault_response(crm: str, fault: RequestFault) -> Response:
    if request.path.startswith(SOAP_PREFIX):
        return _soap_fault_response(fault)
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(
            fault.retry_after
            if not float(fault.retry_after).is_integer()
            else int(fault.retry_after)
        )
    status = fault.status
    if crm == "hubspot":
        if status == 429:
            headers.setdefault("Retry-After", "1")
            body = {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "sandbox-fault",
                "policyName": "TEN_SECONDLY_ROLLING",
                "requestId": "sandbox-fault",
            }
            return json_response(body, 429, headers)
        if status == 401:
            return hs_error(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired 0 second(s) ago.",
                headers,
            )
        category = "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
        return hs_error(
            status, category, "internal error" if status >= 500 else "injected fault", headers
        )
    if crm == "oauth":
        return json_response(
            {"error": "server_error", "error_description": "injected fault"}, status, headers
        )
    if status in (403, 429):
        return sf_error(
            status, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers=headers
        )
    if status == 401:
        return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid", headers=headers)
    if status == 503:
        return sf_error(503, "SERVER_UNAVAILABLE", "Service Unavailable", headers=headers)
    if status >= 500:
        return sf_error(
            status,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please "
            "include this ErrorId if you contact support: 1234567890-12345 "
            "(-1234567890)",
            headers=headers,
        )
    return sf_error(status, "INJECTED_FAULT", "injected fault", headers=headers)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def create_app(sandbox: SandboxCRM) -> Flask:
    """Build the Flask app serving ``sandbox``.

    Args:
        sandbox: the state to serve.

    Returns:
        A Flask app with Salesforce (``/services/...``), HubSpot (``/crm/...``, ``/oauth/...``)
        and control (``/_sandbox/...``) routes.
    """
    app = Flask("leadlift_sandbox")
    app.url_map.strict_slashes = False
    app.config["SANDBOX"] = sandbox
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for blueprint in (
        salesforce_api.bp,
        bulk_api.bp,
        metadata_api.bp,
        hubspot_api.bp,
        oauth_api.bp,
        control_api.bp,
    ):
        app.register_blueprint(blueprint)

    @app.before_request
    def _before() -> Response | None:
        path = request.path
        crm = classify(path)
        g.crm = crm
        if crm is None:
            return None
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        soap = path.startswith(SOAP_PREFIX)
        endpoint = f"{request.method} {rule}"
        if soap:
            # One URL serves every Metadata API call: count them per SOAP operation.
            endpoint += f" {soap_operation(request.get_data(cache=True)) or '<unknown>'}"
        sandbox.count(crm, endpoint)
        fault = sandbox.faults.take_request_fault(crm, path, request.method)
        if fault is not None:
            return _fault_response(crm, fault)
        if crm == "salesforce" and rule != "/services/data/":
            token = soap_session_id(request.get_data(cache=True)) if soap else _bearer()
            record = sandbox.tokens.check("salesforce", token or _bearer())
            if record is None:
                if soap:
                    return metadata_api.soap_fault(
                        "sf:INVALID_SESSION_ID",
                        "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
                        "Illegal Session",
                    )
                return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            g.sf_user = record.user_id or sandbox.salesforce.integration_user_id
            usage, over = sandbox.salesforce.count_api_call()
            g.sf_usage = usage
            if over:
                if soap:
                    return metadata_api.soap_fault(
                        "sf:REQUEST_LIMIT_EXCEEDED",
                        "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
                    )
                return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        elif crm == "hubspot":
            token = _bearer()
            if token is None:
                return hs_error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth "
                    "2.0 authentication.",
                )
            if sandbox.tokens.check("hubspot", token) is None:
                return _hubspot_expired(sandbox, token)
            return _hubspot_limits(sandbox, path)
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        crm = g.get("crm")
        if crm == "salesforce" and g.get("sf_usage") is not None:
            limit = sandbox.config.salesforce_daily_api_limit
            response.headers["Sforce-Limit-Info"] = f"api-usage={g.sf_usage}/{limit}"
        elif crm == "hubspot" and g.get("hs_remaining") is not None:
            response.headers["X-HubSpot-RateLimit-Max"] = str(g.hs_max)
            response.headers["X-HubSpot-RateLimit-Remaining"] = str(g.hs_remaining)
            response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
        return response

    @app.errorhandler(SoqlError)
    def _soql_error(exc: SoqlError) -> Response:
        return sf_error(400, exc.error_code, exc.message)

    @app.errorhandler(SalesforceApiError)
    def _sf_error(exc: SalesforceApiError) -> Response:
        return sf_error(exc.status, exc.error_code, exc.message, exc.fields)

    @app.errorhandler(HubSpotApiError)
    def _hs_error(exc: HubSpotApiError) -> Response:
        return hs_error(exc.status, exc.category, exc.message, **exc.extra)

    @app.errorhandler(OAuthError)
    def _oauth_error(exc: OAuthError) -> Response:
        return json_response(exc.body(), exc.http_status)

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        crm = classify(request.path)
        if crm == "hubspot":
            return hs_error(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")
        if crm == "salesforce":
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return json_response({"error": "not_found", "path": request.path}, 404)

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        if classify(request.path) == "salesforce":
            return sf_error(
                405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed."
            )
        return json_response(
            {"status": "error", "message": "Method not allowed", "category": "VALIDATION_ERROR"},
            405,
        )

    @app.errorhandler(500)
    def _server_error(_exc: Exception) -> Response:
        if classify(request.path) == "salesforce":
            return json_response(
                [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}],
                500,
                content_type=SF_JSON,
            )
        return json_response(
            {"status": "error", "message": "internal error", "category": "INTERNAL_ERROR"}, 500
        )

    return app


def _hubspot_expired(sandbox: SandboxCRM, token: str) -> Response:
    record = sandbox.tokens.lookup(token)
    now = sandbox.config.now().timestamp()
    if record is not None and record.expires is not None:
        ago = max(int(now - record.expires), 0)
        message = f"The OAuth token used to make this call expired {ago} second(s) ago."
    else:
        message = "The OAuth token used to make this call expired or is invalid."
    return hs_error(401, "EXPIRED_AUTHENTICATION", message)


def _hubspot_limits(sandbox: SandboxCRM, path: str) -> Response | None:
    config = sandbox.config
    if _is_search(path):
        allowed, _, wait = sandbox.hubspot_search_window.acquire(config.hubspot_search_per_second)
        if not allowed:
            return json_response(
                {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": "sandbox-rate-limit",
                    "policyName": "SECONDLY",
                    "requestId": "sandbox-rate-limit",
                },
                429,
                {"Retry-After": retry_after_seconds(wait)},
            )
        return None
    limit = config.hubspot_requests_per_10s
    allowed, remaining, wait = sandbox.hubspot_window.acquire(limit)
    shown_max = limit if limit is not None else 110
    if limit is None:
        remaining = max(shown_max - len(sandbox.hubspot_window.events), 0)
    if not allowed:
        return json_response(
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "sandbox-rate-limit",
                "policyName": "TEN_SECONDLY_ROLLING",
                "requestId": "sandbox-rate-limit",
            },
            429,
            {
                "Retry-After": retry_after_seconds(wait),
                "X-HubSpot-RateLimit-Max": str(shown_max),
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            },
        )
    g.hs_max = shown_max
    g.hs_remaining = remaining
    return None
