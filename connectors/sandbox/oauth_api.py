"""OAuth endpoints of both CRMs (counted under "oauth", never API calls)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, request

from .auth import JWT_BEARER, OAuthError
from .hubspot_schema import OAUTH_V1
from .wire import base_url, hs_error, json_response, sf_error

bp = Blueprint("oauth", __name__)


def _sandbox():
    return current_app.config["SANDBOX"]


def _form() -> dict[str, str]:
    form = {k: v for k, v in request.form.items()}
    # Salesforce also accepts parameters in the query string and client auth via HTTP Basic.
    for key, value in request.args.items():
        form.setdefault(key, value)
    if request.authorization and request.authorization.type == "basic":
        form.setdefault("client_id", request.authorization.username or "")
        form.setdefault("client_secret", request.authorization.password or "")
    return form


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return redirect(uri + joiner + urlencode({k: v for k, v in params.items() if v}), code=302)


# ---- Salesforce -------------------------------------------------------------------------------
@bp.get("/services/oauth2/authorize")
def sf_authorize() -> Response:
    args = request.args
    tokens = _sandbox().tokens
    if args.get("response_type") != "code":
        if args.get("client_id") == tokens.client("salesforce")[0] and args.get("redirect_uri"):
            return _redirect(
                args["redirect_uri"],
                {
                    "error": "unsupported_response_type",
                    "error_description": "response type not supported",
                    "state": args.get("state", ""),
                },
            )
        raise OAuthError("unsupported_response_type", "response type not supported")
    code = tokens.authorize(
        "salesforce",
        args.get("client_id"),
        args.get("redirect_uri"),
        args.get("scope", "api refresh_token"),
        args.get("code_challenge"),
        args.get("code_challenge_method"),
    )
    return _redirect(args["redirect_uri"], {"code": code, "state": args.get("state", "")})


@bp.post("/services/oauth2/token")
def sf_token() -> Response:
    sandbox = _sandbox()
    form = _form()
    grant_type = form.get("grant_type")
    org_id = sandbox.salesforce.org_id
    if grant_type == "authorization_code":
        access = sandbox.tokens.exchange_code("salesforce", form, org_id)
        body = sandbox.salesforce_token_response(access, access.refresh_token, base_url())
    elif grant_type == "refresh_token":
        access, rotated = sandbox.tokens.refresh_grant("salesforce", form, org_id)
        body = sandbox.salesforce_token_response(access, rotated, base_url())
    elif grant_type == JWT_BEARER:
        access = sandbox.tokens.issue_jwt(
            form,
            org_id,
            sandbox.salesforce.user_by_username,
            (base_url(), sandbox.base_url),
        )
        body = sandbox.salesforce_token_response(access, None, base_url())
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    no_cache = "no-cache,must-revalidate,max-age=0,no-store,private"
    return json_response(body, headers={"Cache-Control": no_cache})


@bp.route("/services/oauth2/revoke", methods=["GET", "POST"])
def sf_revoke() -> Response:
    token = _form().get("token", "")
    if not _sandbox().tokens.revoke(token):
        raise OAuthError("unsupported_token_type", "this token type is not supported")
    return Response(status=200)


def _sf_token_record():
    header = request.headers.get("Authorization", "")
    token = header.split(" ", 1)[1] if " " in header else request.args.get("oauth_token")
    return _sandbox().tokens.check("salesforce", token)


@bp.route("/services/oauth2/userinfo", methods=["GET", "POST"])
def sf_userinfo() -> Response:
    """OpenID Connect userinfo of the token's user."""
    sandbox = _sandbox()
    record = _sf_token_record()
    if record is None:
        return Response("Bad_OAuth_Token", status=403)
    org = sandbox.salesforce
    user_id = record.user_id or org.integration_user_id
    user = org.get("User", user_id)
    identity = f"{base_url()}/id/{org.org_id}/{user_id}"
    return json_response(
        {
            "sub": identity,
            "user_id": user_id,
            "organization_id": org.org_id,
            "preferred_username": user["Username"],
            "nickname": user["FirstName"] or user["LastName"],
            "name": user["Name"],
            "email": user["Email"],
            "email_verified": True,
            "given_name": user["FirstName"],
            "family_name": user["LastName"],
            "zoneinfo": "Etc/UTC",
            "active": user["IsActive"],
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "updated_at": user["LastModifiedDate"],
            "is_app_installed": True,
            "urls": {"rest": f"{base_url()}/services/data/v{{version}}/"},
        }
    )


@bp.get("/id/<org_id>/<user_id>")
def sf_identity(org_id: str, user_id: str) -> Response:
    sandbox = _sandbox()
    if _sf_token_record() is None:
        return Response("Bad_OAuth_Token", status=403)
    org = sandbox.salesforce
    try:
        user = org.get("User", user_id)
    except KeyError:
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
    return json_response(
        {
            "id": f"{base_url()}/id/{org_id}/{user_id}",
            "asserted_user": True,
            "user_id": user_id,
            "organization_id": org_id,
            "username": user["Username"],
            "display_name": user["Name"],
            "email": user["Email"],
            "active": user["IsActive"],
            "user_type": "STANDARD",
            "urls": {"rest": f"{base_url()}/services/data/v{{version}}/"},
        }
    )


# ---- HubSpot ------------------------------------------------------------------------------------
@bp.get("/oauth/authorize")
def hs_authorize() -> Response:
    args = request.args
    code = _sandbox().tokens.authorize(
        "hubspot",
        args.get("client_id"),
        args.get("redirect_uri"),
        args.get("scope", ""),
        args.get("code_challenge"),
        args.get("code_challenge_method"),
    )
    return _redirect(args["redirect_uri"], {"code": code, "state": args.get("state", "")})


@bp.post(f"{OAUTH_V1}/token")
def hs_token() -> Response:
    sandbox = _sandbox()
    form = _form()
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        access = sandbox.tokens.exchange_code("hubspot", form)
    elif grant_type == "refresh_token":
        access, _ = sandbox.tokens.refresh_grant("hubspot", form)
    else:
        raise OAuthError(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
            "BAD_GRANT_TYPE",
        )
    return json_response(sandbox.hubspot_token_response(access))


@bp.get(f"{OAUTH_V1}/access-tokens/<token>")
def hs_token_info(token: str) -> Response:
    sandbox = _sandbox()
    record = sandbox.tokens.check("hubspot", token)
    if record is None:
        return hs_error(404, "OBJECT_NOT_FOUND", "Token not found or expired")
    config = sandbox.config
    remaining = int(record.expires - config.now().timestamp()) if record.expires else 0
    return json_response(
        {
            "token": token,
            "user": sandbox.hubspot.integration_user_email,
            "hub_domain": config.hubspot_hub_domain,
            "scopes": [s for s in record.scope.split() if s] or ["oauth"],
            "hub_id": config.hubspot_hub_id,
            "app_id": config.hubspot_app_id,
            "expires_in": max(remaining, 0),
            "user_id": sandbox.hubspot.integration_user_id,
            "token_type": "access",
        }
    )


@bp.route(f"{OAUTH_V1}/refresh-tokens/<token>", methods=["GET", "DELETE"])
def hs_refresh_token(token: str) -> Response:
    sandbox = _sandbox()
    entry = sandbox.tokens.refresh.get(token)
    if entry is None or entry[0] != "hubspot":
        return hs_error(404, "OBJECT_NOT_FOUND", "refresh token not found")
    if request.method == "DELETE":
        sandbox.tokens.revoke(token)
        return Response(status=204)
    config = sandbox.config
    return json_response(
        {
            "token": token,
            "user": sandbox.hubspot.integration_user_email,
            "hub_domain": config.hubspot_hub_domain,
            "scopes": entry[2].split(),
            "hub_id": config.hubspot_hub_id,
            "client_id": config.hubspot_client_id,
            "user_id": sandbox.hubspot.integration_user_id,
            "token_type": "refresh",
        }
    )


@bp.errorhandler(OAuthError)
def _oauth_error(exc: OAuthError) -> Response:
    return json_response(exc.body(), exc.http_status)
