"""Salesforce OAuth 2.0: authorize URL with PKCE and state, code exchange, refresh.

simple-salesforce has no web-server-flow helper and never refreshes a token it
was handed, so leadlift does both here with plain ``requests``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

from connectors.errors import AuthError, TransientError

AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"
DEFAULT_SCOPES = ("api", "refresh_token")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts a JWT assertion whose exp is at most three minutes ahead.
JWT_LIFETIME_SECONDS = 170


@dataclass(frozen=True)
class SalesforceCredentials:
    """What a connector needs to call one org; the refresh fields are optional."""

    instance_url: str
    access_token: str
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    login_url: str | None = None  # https://login.salesforce.com, https://test…, My Domain
    user_id: str | None = None  # the integration user (005…), from the token's identity URL
    username: str | None = None  # JWT bearer: the user the server-to-server app acts as
    private_key: str | None = None  # JWT bearer: PEM key whose certificate the app holds

    def __repr__(self) -> str:  # never print tokens or keys
        return f"SalesforceCredentials(instance_url={self.instance_url!r}, access_token=***)"

    @property
    def uses_jwt(self) -> bool:
        return bool(self.private_key and self.username and self.client_id and self.login_url)

    @property
    def can_refresh(self) -> bool:
        return self.uses_jwt or bool(self.refresh_token and self.client_id and self.login_url)


@dataclass(frozen=True)
class PkcePair:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> PkcePair:
        verifier = secrets.token_urlsafe(64)[:96]
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return cls(verifier, challenge)


def authorize_url(
    login_url: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    prompt: str | None = None,
) -> str:
    """The URL an admin's browser is sent to, to approve leadlift."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    return f"{login_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(params)}"


def exchange_code(
    session: requests.Session,
    login_url: str,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Trade an authorization code for tokens; verifies the response signature."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if client_secret:
        data["client_secret"] = client_secret
    token = _token_request(session, login_url, data)
    if client_secret and not signature_valid(token, client_secret):
        raise AuthError("Salesforce token response signature does not verify")
    return token


def jwt_assertion(
    client_id: str, username: str, audience: str, private_key: str, now: float | None = None
) -> str:
    """An RS256-signed assertion for the OAuth 2.0 JWT bearer flow."""
    issued = int(now or time.time())
    claims = {"iss": client_id, "sub": username, "aud": audience,
              "exp": issued + JWT_LIFETIME_SECONDS}  # fmt: skip
    return jwt.encode(claims, private_key, algorithm="RS256")


def jwt_bearer_token(
    session: requests.Session, login_url: str, client_id: str, username: str, private_key: str
) -> dict[str, Any]:
    """Server-to-server: a session for ``username`` without any browser step.

    The audience is the login host (production, ``test`` for sandboxes, or a My Domain).
    No refresh token is issued: a new assertion is signed whenever the session expires.
    """
    assertion = jwt_assertion(client_id, username, login_url.rstrip("/"), private_key)
    return _token_request(session, login_url, {"grant_type": JWT_GRANT, "assertion": assertion})


def refresh_access_token(session: requests.Session, credentials: SalesforceCredentials) -> dict:
    """A new access token (and, with rotation enabled, a new refresh token)."""
    if credentials.uses_jwt:
        return jwt_bearer_token(
            session, credentials.login_url or "", credentials.client_id or "",
            credentials.username or "", credentials.private_key or "",
        )  # fmt: skip
    if not credentials.can_refresh:
        raise AuthError("Salesforce session expired and no refresh token is stored: reconnect")
    data = {
        "grant_type": "refresh_token",
        "refresh_token": credentials.refresh_token,
        "client_id": credentials.client_id,
    }
    if credentials.client_secret:
        data["client_secret"] = credentials.client_secret
    return _token_request(session, credentials.login_url or "", data)


def signature_valid(token: dict[str, Any], client_secret: str) -> bool:
    """base64(HMAC-SHA256(client_secret, id + issued_at)) == signature."""
    if "signature" not in token or "id" not in token or "issued_at" not in token:
        return False
    message = f"{token['id']}{token['issued_at']}".encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), token["signature"])


def org_id_from_identity(identity_url: str | None) -> str | None:
    """The org id (tenant key) from the token's ``id`` URL: …/id/<org>/<user>."""
    if not identity_url:
        return None
    parts = identity_url.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else None


def user_id_from_identity(identity_url: str | None) -> str | None:
    """The integration user's id from the token's ``id`` URL."""
    if not identity_url:
        return None
    return identity_url.rstrip("/").split("/")[-1] or None


def credentials_from_token(
    token: dict[str, Any], previous: SalesforceCredentials
) -> SalesforceCredentials:
    """Credentials after a token response; a returned refresh token replaces the old one
    (rotation: the old one is dead from now on)."""
    return replace(
        previous,
        instance_url=token.get("instance_url", previous.instance_url),
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token", previous.refresh_token),
        user_id=user_id_from_identity(token.get("id")) or previous.user_id,
    )


def _token_request(session: requests.Session, login_url: str, data: dict) -> dict[str, Any]:
    url = f"{login_url.rstrip('/')}{TOKEN_PATH}"
    try:
        response = session.post(url, data=data)
    except requests.RequestException as exc:
        raise TransientError(
            f"Salesforce token endpoint unreachable: {type(exc).__name__}"
        ) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"Salesforce token endpoint answered {response.status_code}",
            status=response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        error = body.get("error", "error") if isinstance(body, dict) else "error"
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise AuthError(f"Salesforce refused the token request: {error} {description}".strip())
    return body
