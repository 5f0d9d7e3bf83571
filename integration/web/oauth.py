"""OAuth connect from the admin UI: Salesforce's web-server flow (PKCE + state) and
HubSpot's authorization-code flow, plus disconnect (revoke at the CRM, wipe locally).

Between the redirect to the CRM and its callback the flow's state, PKCE verifier and
choices live in the signed session cookie, Fernet-encrypted (the cookie is signed, not
secret, and the verifier should not be readable) and time-limited. A flow has one
callback: the first one for its CRM ends it, so a replayed redirect finds nothing.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from connectors.hubspot import auth as hubspot_auth
from connectors.salesforce import auth as salesforce_auth
from integration.connect import (
    OAuthGrant,
    disconnect,
    finish_hubspot_oauth,
    finish_salesforce_oauth,
    hubspot_app,
    hubspot_authorize_base,
    salesforce_app,
)
from integration.connections import list_connections
from integration.errors import (
    AuthError,
    ConfigError,
    LeadliftError,
    NotFoundError,
    TransientError,
)

from .auth import admin_required
from .context import app_settings, app_store

bp = Blueprint("oauth", __name__)

PENDING_KEY = "oauth_pending"
# Long enough to sign in to the CRM (and pass its MFA), short enough that a stale
# cookie is useless.
PENDING_SECONDS = 600
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
LABELS = {"salesforce": "Salesforce", "hubspot": "HubSpot"}


class FormError(ValueError):
    pass


@bp.get("/connect")
@admin_required
def connect_page():
    return _page()


@bp.post("/connect/salesforce")
@admin_required
def connect_salesforce():
    settings = app_settings()
    try:
        name = _name(request.form.get("name"), "salesforce")
        login = _https_url(request.form.get("login_url")) or settings.salesforce_login_url
        ca_file = _ca_file(request.form.get("ca_file"))
        client_id, _ = salesforce_app(settings)
    except (FormError, ConfigError) as exc:
        return _page(str(exc), 400)
    pkce = salesforce_auth.PkcePair.new()
    state = secrets.token_urlsafe(32)
    redirect_uri = settings.salesforce_redirect_uri
    _remember(
        "salesforce",
        {"state": state, "verifier": pkce.verifier, "name": name, "login_url": login,
         "ca_file": ca_file, "redirect_uri": redirect_uri},
    )  # fmt: skip
    return redirect(
        salesforce_auth.authorize_url(login, client_id, redirect_uri, state, pkce.challenge)
    )


@bp.post("/connect/hubspot")
@admin_required
def connect_hubspot():
    settings = app_settings()
    try:
        name = _name(request.form.get("name"), "hubspot")
        api_base = _https_url(request.form.get("api_base")) or settings.hubspot_api_base
        ca_file = _ca_file(request.form.get("ca_file"))
        client_id, _ = hubspot_app(settings)
    except (FormError, ConfigError) as exc:
        return _page(str(exc), 400)
    state = secrets.token_urlsafe(32)
    redirect_uri = settings.hubspot_redirect_uri
    _remember(
        "hubspot",
        {"state": state, "name": name, "api_base": api_base.rstrip("/"), "ca_file": ca_file,
         "redirect_uri": redirect_uri},
    )  # fmt: skip
    return redirect(
        hubspot_auth.authorize_url(
            client_id, redirect_uri, state, base=hubspot_authorize_base(api_base)
        )
    )


@bp.get("/oauth/salesforce/callback")
@admin_required
def salesforce_callback():
    flow, failure = _callback_flow("salesforce")
    if failure is not None:
        return failure
    settings = app_settings()
    grant = OAuthGrant(request.args["code"], flow["redirect_uri"], flow["verifier"])
    client = salesforce_app(settings)
    return _finish(
        "salesforce",
        lambda: finish_salesforce_oauth(
            app_store(), settings, flow["name"], flow["login_url"], client, grant, flow["ca_file"]
        ),
    )


@bp.get("/oauth/hubspot/callback")
@admin_required
def hubspot_callback():
    flow, failure = _callback_flow("hubspot")
    if failure is not None:
        return failure
    settings = app_settings()
    grant = OAuthGrant(request.args["code"], flow["redirect_uri"])
    client = hubspot_app(settings)
    return _finish(
        "hubspot",
        lambda: finish_hubspot_oauth(
            app_store(), settings, flow["name"], flow["api_base"], client, grant, flow["ca_file"]
        ),
    )


@bp.post("/connections/<name>/disconnect")
@admin_required
def disconnect_connection(name: str):
    try:
        result = disconnect(app_store(), app_settings(), name)
    except NotFoundError as exc:
        return _page(str(exc), 404)
    if result.error:
        flash(f"Disconnected {name}: stored tokens wiped, but revoking failed: {result.error}")
    elif result.revoked:
        flash(f"Disconnected {name}: access revoked at the CRM and stored tokens wiped.")
    else:
        flash(f"Disconnected {name}: stored tokens wiped (no revocable token was stored).")
    return redirect(url_for("oauth.connect_page"))


# ---- the flow between redirect and callback ----------------------------------------------------
def _remember(crm: str, flow: dict[str, Any]) -> None:
    """Start a flow for ``crm``; a flow already under way for it is replaced."""
    blob = app_settings().fernet.encrypt(json.dumps(flow).encode()).decode()
    pending = dict(session.get(PENDING_KEY) or {})
    pending[crm] = blob
    session[PENDING_KEY] = pending


def _take(crm: str) -> dict[str, Any] | None:
    """End the flow for ``crm`` and return it, or None when none is live."""
    pending = dict(session.get(PENDING_KEY) or {})
    blob = pending.pop(crm, None)
    session[PENDING_KEY] = pending
    if not blob:
        return None
    try:
        return json.loads(app_settings().fernet.decrypt(blob.encode(), ttl=PENDING_SECONDS))
    except InvalidToken:  # expired (or written under another key)
        return None


def _callback_flow(crm: str) -> tuple[dict[str, Any], None] | tuple[None, Any]:
    """The flow a callback belongs to, or the error page to answer instead."""
    label = LABELS[crm]
    flow = _take(crm)
    if flow is None:
        message = (
            f"No {label} connect is in progress here: it expired, was already completed, "
            "or was started in another browser. Start again."
        )
        return None, _page(message, 400)
    state = request.args.get("state", "")
    if not state or not hmac.compare_digest(state.encode(), flow["state"].encode()):
        message = f"The {label} sign-in did not come back with this browser's state. Start again."
        return None, _page(message, 400)
    if "error" in request.args:
        reason = request.args.get("error_description") or request.args["error"]
        return None, _page(f"{label} did not grant access: {reason}", 403)
    if not request.args.get("code"):
        return None, _page(f"{label} sent no authorization code. Start again.", 400)
    return flow, None


def _finish(crm: str, exchange: Callable[[], dict[str, Any]]) -> Any:
    label = LABELS[crm]
    try:
        result = exchange()
    except AuthError as exc:
        return _page(f"{label} refused the authorization: {exc}", 400)
    except ConfigError as exc:
        return _page(str(exc), 409)
    except TransientError as exc:
        return _page(f"{label} could not be reached, try again: {exc}", 502)
    except LeadliftError as exc:
        return _page(f"Connecting {label} failed: {exc}", 502)
    what = result.get("org") or result.get("org_id") or result.get("portal") or ""
    flash(f"Connected {label} {what} as {result['name']}.".replace("  ", " "))
    return redirect(url_for("oauth.connect_page"))


# ---- form values -------------------------------------------------------------------------------
def _name(value: str | None, crm: str) -> str:
    name = (value or "").strip() or crm
    if not NAME.fullmatch(name):
        raise FormError(
            "Connection name: letters, digits, '.', '_' or '-' (up to 100), starting with a "
            "letter or digit."
        )
    # Checked before the trip to the CRM, not only when saving after it.
    for row in list_connections(app_store()):
        if row.name == name and row.crm != crm:
            raise FormError(f"{name!r} is already a {LABELS.get(row.crm, row.crm)} connection")
    return name


def _https_url(value: str | None) -> str | None:
    """An optional https base URL; the client secret is sent there, so never plain http."""
    value = (value or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise FormError(f"{value!r} is not an https:// base URL")
    return value.rstrip("/")


def _ca_file(value: str | None) -> str | None:
    """A CA bundle on this server, for a CRM behind a private CA (as ``--ca-file``)."""
    value = (value or "").strip()
    if not value:
        return None
    if not Path(value).is_file():
        raise FormError(f"CA bundle {value!r}: no such file on the server")
    return value


def _page(error: str | None = None, status: int = 200):
    settings = app_settings()
    configured = {
        "salesforce": bool(settings.salesforce_client_id),
        "hubspot": bool(settings.hubspot_client_id and settings.hubspot_client_secret),
    }
    return render_template(
        "connect.html",
        error=error,
        connections=list_connections(app_store()),
        configured=configured,
        settings=settings,
    ), status
