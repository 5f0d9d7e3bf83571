"""Connecting a CRM: the OAuth flows, JWT bearer and existing tokens, ending in a stored,
encrypted connection that `leadlift run` can use at once; and disconnecting it.

The browser leg differs (a loopback receiver for the CLI, the web app's callback for
hosted installs); both end in the same ``finish_*_oauth`` exchange-and-save."""

from __future__ import annotations

import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors.http import retrying_session
from connectors.hubspot import HubSpotConnector, HubSpotCredentials
from connectors.hubspot import auth as hubspot_auth
from connectors.salesforce import SalesforceConnector, SalesforceCredentials
from connectors.salesforce import auth as salesforce_auth
from integration.config import Settings, secret_value
from integration.connections import decrypt_tokens, get_connection, save_connection, wipe_tokens
from integration.errors import ConfigError
from integration.oauth_cli import browser_login
from integration.store import Store
from integration.store.models import Connection

Browser = Callable[[str], object]

SALESFORCE_REVOKE_PATH = "/services/oauth2/revoke"
# Revoking a HubSpot refresh token ("archive" in hubspot-api-client) also ends its access tokens.
HUBSPOT_REFRESH_TOKEN_PATH = "/oauth/v1/refresh-tokens/{token}"
HUBSPOT_API_DOMAIN = "hubapi.com"


def _require(value: str | None, name: str) -> str:
    if not value:
        raise ConfigError(f"{name}: required for this connect flow")
    return value


@dataclass(frozen=True)
class OAuthGrant:
    """What the browser leg of a flow returns: the code and the values it is bound to."""

    code: str
    redirect_uri: str
    code_verifier: str | None = None  # PKCE; Salesforce only


def salesforce_app(settings: Settings) -> tuple[str, str | None]:
    """The configured Salesforce client id and (optional, with PKCE) secret."""
    return (
        _require(settings.salesforce_client_id, "LEADLIFT_SALESFORCE_CLIENT_ID"),
        secret_value(settings.salesforce_client_secret),
    )


def hubspot_app(settings: Settings) -> tuple[str, str]:
    return (
        _require(settings.hubspot_client_id, "LEADLIFT_HUBSPOT_CLIENT_ID"),
        _require(secret_value(settings.hubspot_client_secret), "LEADLIFT_HUBSPOT_CLIENT_SECRET"),
    )


def hubspot_authorize_base(api_base: str) -> str:
    """Where the consent screen lives: app.hubspot.com for HubSpot's own API hosts; a
    stand-in API (the bundled sandbox) serves its consent page on its own host."""
    host = urlsplit(api_base).hostname or ""
    if host == HUBSPOT_API_DOMAIN or host.endswith("." + HUBSPOT_API_DOMAIN):
        return hubspot_auth.OAUTH_AUTHORIZE_URL
    return api_base.rstrip("/") + urlsplit(hubspot_auth.OAUTH_AUTHORIZE_URL).path


def salesforce_tokens_to_store(token: dict[str, Any], app: dict[str, str | None]) -> dict:
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "user_id": salesforce_auth.user_id_from_identity(token.get("id")),
        **{k: v for k, v in app.items() if v},
    }


def connect_salesforce_oauth(
    store: Store,
    settings: Settings,
    name: str = "salesforce",
    login_url: str | None = None,
    ca_file: str | None = None,
    open_browser: Browser = webbrowser.open,
    announce: Callable[[str], None] = print,
    port: int = 0,
    client: tuple[str, str | None] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Web-server flow with PKCE and state, through the admin's browser."""
    client_id, client_secret = client or salesforce_app(settings)
    login = (login_url or settings.salesforce_login_url).rstrip("/")
    pkce = salesforce_auth.PkcePair.new()
    code, redirect_uri = browser_login(
        lambda redirect, state: salesforce_auth.authorize_url(
            login, client_id, redirect, state, pkce.challenge
        ),
        open_browser=open_browser,
        announce=announce,
        port=port,
        timeout=timeout,
    )
    grant = OAuthGrant(code, redirect_uri, pkce.verifier)
    return finish_salesforce_oauth(
        store, settings, name, login, (client_id, client_secret), grant, ca_file
    )


def finish_salesforce_oauth(
    store: Store,
    settings: Settings,
    name: str,
    login_url: str,
    client: tuple[str, str | None],
    grant: OAuthGrant,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Exchange the code of a web-server flow and store the connection (CLI and web app)."""
    client_id, client_secret = client
    session = retrying_session(verify=ca_file or True)
    token = salesforce_auth.exchange_code(
        session, login_url, client_id, client_secret, grant.redirect_uri, grant.code,
        grant.code_verifier or "",
    )  # fmt: skip
    tokens = salesforce_tokens_to_store(
        token, {"client_id": client_id, "client_secret": client_secret}
    )
    instance_url = token["instance_url"]
    return _save_salesforce(store, settings, name, instance_url, tokens, login_url, ca_file)


def connect_salesforce_jwt(
    store: Store,
    settings: Settings,
    username: str,
    key_file: str | Path,
    name: str = "salesforce",
    login_url: str | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Server-to-server: JWT bearer with the app's certificate, no browser, no refresh token."""
    client_id = _require(settings.salesforce_client_id, "LEADLIFT_SALESFORCE_CLIENT_ID")
    login = (login_url or settings.salesforce_login_url).rstrip("/")
    private_key = Path(key_file).read_text()
    session = retrying_session(verify=ca_file or True)
    token = salesforce_auth.jwt_bearer_token(session, login, client_id, username, private_key)
    tokens = salesforce_tokens_to_store(
        token, {"client_id": client_id, "username": username, "private_key": private_key}
    )
    return _save_salesforce(store, settings, name, token["instance_url"], tokens, login, ca_file)


def connect_salesforce_token(
    store: Store,
    settings: Settings,
    instance_url: str,
    access_token: str,
    refresh_token: str | None = None,
    name: str = "salesforce",
    login_url: str | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Quick start from an existing session (and optionally a refresh token)."""
    tokens = {"access_token": access_token, "refresh_token": refresh_token}
    login = (login_url or settings.salesforce_login_url).rstrip("/")
    return _save_salesforce(store, settings, name, instance_url, tokens, login, ca_file)


def _save_salesforce(store, settings, name, instance_url, tokens, login, ca_file) -> dict:
    credentials = SalesforceCredentials(instance_url, tokens["access_token"])
    identity = SalesforceConnector(credentials, verify=ca_file or True).ping()
    options: dict[str, Any] = {"login_url": login}
    if ca_file:
        options["verify"] = str(ca_file)
    save_connection(
        store, settings, name, "salesforce", tokens, instance_url, identity["external_id"], options
    )
    return {"name": name, "org": identity["name"], "org_id": identity["external_id"]}


def connect_hubspot_oauth(
    store: Store,
    settings: Settings,
    name: str = "hubspot",
    api_base: str | None = None,
    authorize_base: str | None = None,
    ca_file: str | None = None,
    open_browser: Browser = webbrowser.open,
    announce: Callable[[str], None] = print,
    port: int = 0,
    client: tuple[str, str] | None = None,
    rate_limits: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """Authorization-code flow with state, through the admin's browser.

    ``rate_limits`` overrides the configured client-side limits for this portal
    (``per_10_seconds``, ``search_per_second``; None switches one off).
    """
    client_id, client_secret = client or hubspot_app(settings)
    base = (api_base or settings.hubspot_api_base).rstrip("/")
    consent = authorize_base or hubspot_authorize_base(base)
    code, redirect_uri = browser_login(
        lambda uri, state: hubspot_auth.authorize_url(client_id, uri, state, base=consent),
        open_browser=open_browser,
        announce=announce,
        port=port,
    )
    return finish_hubspot_oauth(
        store, settings, name, base, (client_id, client_secret),
        OAuthGrant(code, redirect_uri), ca_file, rate_limits,
    )  # fmt: skip


def hubspot_tokens_to_store(
    token: dict[str, Any], client: tuple[str, str], now: float | None = None
) -> dict[str, Any]:
    # HubSpot states a lifetime (30 min); keeping the deadline lets the connector refresh
    # ahead of it instead of waiting for a 401.
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": (now or time.time()) + float(token.get("expires_in", 1800)),
        "client_id": client[0],
        "client_secret": client[1],
    }


def finish_hubspot_oauth(
    store: Store,
    settings: Settings,
    name: str,
    api_base: str,
    client: tuple[str, str],
    grant: OAuthGrant,
    ca_file: str | None = None,
    rate_limits: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """Exchange the code of an authorization-code flow and store the connection."""
    client_id, client_secret = client
    session = retrying_session(verify=ca_file or True)
    token = hubspot_auth.exchange_code(
        session, api_base, client_id, client_secret, grant.redirect_uri, grant.code
    )
    tokens = hubspot_tokens_to_store(token, client)
    return _save_hubspot(store, settings, name, api_base, tokens, ca_file, rate_limits)


def connect_hubspot_token(
    store: Store,
    settings: Settings,
    access_token: str,
    refresh_token: str | None = None,
    name: str = "hubspot",
    api_base: str | None = None,
    ca_file: str | None = None,
    rate_limits: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    base = (api_base or settings.hubspot_api_base).rstrip("/")
    tokens = {"access_token": access_token, "refresh_token": refresh_token}
    return _save_hubspot(store, settings, name, base, tokens, ca_file, rate_limits)


def _save_hubspot(store, settings, name, base, tokens, ca_file, rate_limits=None) -> dict:
    credentials = HubSpotCredentials(tokens["access_token"], api_base=base)
    identity = HubSpotConnector(credentials, verify=ca_file or True).ping()
    options: dict[str, Any] = {"verify": str(ca_file)} if ca_file else {}
    if rate_limits is not None:
        options["rate_limits"] = dict(rate_limits)
    save_connection(
        store, settings, name, "hubspot", tokens, base, identity["external_id"], options
    )
    return {"name": name, "portal": identity["external_id"]}


@dataclass(frozen=True)
class Disconnected:
    name: str
    revoked: bool  # a token was revoked at the CRM
    error: str | None = None  # why revoking failed; the local tokens are gone regardless


def disconnect(store: Store, settings: Settings, name: str) -> Disconnected:
    """Revoke the connection's grant at the CRM, then wipe its stored tokens.

    The wipe happens even when the CRM cannot be reached or refuses: an admin who
    disconnects wants leadlift unable to act on the CRM from now on.
    """
    connection = get_connection(store, name)
    revoked, error = False, None
    try:
        tokens = decrypt_tokens(settings, connection.tokens)
        revoked = _revoke(settings, connection, tokens)
    except (ConfigError, RevokeError) as exc:
        error = str(exc)
    finally:
        wipe_tokens(store, connection.id)
    return Disconnected(name, revoked, error)


class RevokeError(Exception):
    pass


def _revoke(settings: Settings, connection: Connection, tokens: dict[str, Any]) -> bool:
    """True when a token was revoked; False when none revocable was stored."""
    options = connection.settings or {}
    session = retrying_session(verify=options.get("verify", True))
    if connection.crm == "salesforce":
        # The refresh token covers every access token it issued; JWT bearer has none.
        token = tokens.get("refresh_token") or tokens.get("access_token")
        if not token:
            return False
        login = (options.get("login_url") or settings.salesforce_login_url).rstrip("/")
        _send_revoke(session, "POST", login + SALESFORCE_REVOKE_PATH, data={"token": token})
        return True
    token = tokens.get("refresh_token")
    if not token:  # a private-app token: only the portal's admin can rotate it
        return False
    base = (connection.instance_url or settings.hubspot_api_base).rstrip("/")
    path = HUBSPOT_REFRESH_TOKEN_PATH.format(token=quote(token, safe=""))
    _send_revoke(session, "DELETE", base + path)
    return True


def _send_revoke(session: requests.Session, method: str, url: str, **kwargs: Any) -> None:
    try:
        response = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise RevokeError(f"the CRM could not be reached to revoke: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise RevokeError(f"the CRM refused to revoke the token (HTTP {response.status_code})")
