"""Connecting a CRM: the OAuth flows, JWT bearer and existing tokens, ending in a stored,
encrypted connection that `leadlift run` can use at once."""

from __future__ import annotations

import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.http import retrying_session
from connectors.hubspot import HubSpotConnector, HubSpotCredentials
from connectors.hubspot import auth as hubspot_auth
from connectors.salesforce import SalesforceConnector, SalesforceCredentials
from connectors.salesforce import auth as salesforce_auth
from integration.config import Settings
from integration.connections import save_connection
from integration.errors import ConfigError
from integration.oauth_cli import browser_login
from integration.store import Store

Browser = Callable[[str], object]


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def _require(value: str | None, name: str) -> str:
    if not value:
        raise ConfigError(f"{name}: required for this connect flow")
    return value


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
    client_id, client_secret = client or (
        _require(settings.salesforce_client_id, "LEADLIFT_SALESFORCE_CLIENT_ID"),
        _secret(settings.salesforce_client_secret),
    )
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
    session = retrying_session(verify=ca_file or True)
    token = salesforce_auth.exchange_code(
        session, login, client_id, client_secret, redirect_uri, code, pkce.verifier
    )
    tokens = salesforce_tokens_to_store(
        token, {"client_id": client_id, "client_secret": client_secret}
    )
    return _save_salesforce(store, settings, name, token["instance_url"], tokens, login, ca_file)


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
    authorize_base: str = hubspot_auth.OAUTH_AUTHORIZE_URL,
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
    client_id, client_secret = client or (
        _require(settings.hubspot_client_id, "LEADLIFT_HUBSPOT_CLIENT_ID"),
        _require(_secret(settings.hubspot_client_secret), "LEADLIFT_HUBSPOT_CLIENT_SECRET"),
    )
    base = (api_base or settings.hubspot_api_base).rstrip("/")
    code, redirect_uri = browser_login(
        lambda redirect, state: hubspot_auth.authorize_url(
            client_id, redirect, state, base=authorize_base
        ),
        open_browser=open_browser,
        announce=announce,
        port=port,
    )
    session = retrying_session(verify=ca_file or True)
    token = hubspot_auth.exchange_code(session, base, client_id, client_secret, redirect_uri, code)
    tokens = {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": time.time() + float(token.get("expires_in", 1800)),
        "client_id": client_id,
        "client_secret": client_secret,
    }
    return _save_hubspot(store, settings, name, base, tokens, ca_file, rate_limits)


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
