"""HubSpot OAuth: authorize URL, code exchange, refresh, token metadata.

Uses ``requests`` (not the SDK's urllib3 OAuth client) so the token endpoint
is testable with ``responses`` and the request carries exactly what HubSpot
documents.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests

from connectors.errors import AuthError, TransientError
from connectors.hubspot.paths import (
    DEFAULT_API_BASE,
    OAUTH_ACCESS_TOKEN_INFO_PATH,
    OAUTH_AUTHORIZE_URL,
    OAUTH_TOKEN_PATH,
)

SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
)
# Refresh this long before HubSpot's 30-minute expiry, not on the first 401.
REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class HubSpotCredentials:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None for private-app tokens
    client_id: str | None = None
    client_secret: str | None = None
    api_base: str = DEFAULT_API_BASE

    def __repr__(self) -> str:
        return f"HubSpotCredentials(api_base={self.api_base!r}, access_token=***)"

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)

    def expiring(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or time.time()) >= self.expires_at - REFRESH_MARGIN_SECONDS


def authorize_url(
    client_id: str,
    redirect_uri: str,
    state: str,
    scopes: tuple[str, ...] = SCOPES,
    base: str = OAUTH_AUTHORIZE_URL,
) -> str:
    params = urlencode(
        {"client_id": client_id, "redirect_uri": redirect_uri, "scope": " ".join(scopes),
         "state": state},
        quote_via=quote,
    )  # fmt: skip
    return f"{base}?{params}"


def exchange_code(
    session: requests.Session,
    api_base: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
) -> dict[str, Any]:
    return _token_request(
        session,
        api_base,
        {"grant_type": "authorization_code", "client_id": client_id,
         "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code},
    )  # fmt: skip


def refresh_access_token(session: requests.Session, credentials: HubSpotCredentials) -> dict:
    if not credentials.can_refresh:
        raise AuthError("HubSpot token expired and no refresh token is stored: reconnect")
    return _token_request(
        session,
        credentials.api_base,
        {"grant_type": "refresh_token", "client_id": credentials.client_id,
         "client_secret": credentials.client_secret,
         "refresh_token": credentials.refresh_token},
    )  # fmt: skip


def token_info(session: requests.Session, api_base: str, access_token: str) -> dict[str, Any]:
    """Token metadata; ``hub_id`` is the portal id webhooks are routed by."""
    url = api_base.rstrip("/") + OAUTH_ACCESS_TOKEN_INFO_PATH.format(token=access_token)
    response = _send(session, "GET", url)
    if response.status_code != 200:
        raise AuthError(f"HubSpot rejected the access token (HTTP {response.status_code})")
    return response.json()


def credentials_from_token(
    token: dict[str, Any], previous: HubSpotCredentials, now: float | None = None
) -> HubSpotCredentials:
    expires_in = token.get("expires_in")
    return HubSpotCredentials(
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token") or previous.refresh_token,
        expires_at=(now or time.time()) + float(expires_in) if expires_in else None,
        client_id=previous.client_id,
        client_secret=previous.client_secret,
        api_base=previous.api_base,
    )


def _send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        response = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise TransientError(f"HubSpot OAuth endpoint unreachable: {type(exc).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(
            f"HubSpot OAuth endpoint answered {response.status_code}", status=response.status_code
        )
    return response


def _token_request(session: requests.Session, api_base: str, data: dict) -> dict[str, Any]:
    response = _send(session, "POST", api_base.rstrip("/") + OAUTH_TOKEN_PATH, data=data)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        status = body.get("status") or body.get("error", "error")
        raise AuthError(f"HubSpot refused the token request: {status}")
    return body
