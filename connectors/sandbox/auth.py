"""OAuth apps, authorization codes and tokens for both sandbox CRMs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import SandboxConfig

Crm = Literal["salesforce", "hubspot"]
CODE_TTL_SECONDS = 900


class OAuthError(Exception):
    """An RFC 6749 error (plus HubSpot's legacy ``status``/``message`` fields)."""

    def __init__(
        self,
        error: str,
        description: str,
        hubspot_status: str | None = None,
        http_status: int = 400,
    ):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.hubspot_status = hubspot_status
        self.http_status = http_status

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "error_description": self.description}
        if self.hubspot_status:
            out["status"] = self.hubspot_status
            out["message"] = self.description
        return out


@dataclass
class Grant:
    crm: Crm
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


@dataclass
class AccessToken:
    crm: Crm
    token: str
    issued: float
    expires: float | None
    scope: str
    refresh_token: str | None = None
    revoked: bool = False
    user_id: str | None = None  # Salesforce user the token acts as (None = integration user)

    def valid(self, now: float) -> bool:
        return not self.revoked and (self.expires is None or now < self.expires)


@dataclass
class TokenStore:
    """Issues and checks authorization codes, access tokens and refresh tokens.

    Args:
        config: registered apps and token lifetimes.
    """

    config: SandboxConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, tuple[Crm, str, str]] = field(
        default_factory=dict
    )  # token -> crm, client, scope

    def _now(self) -> float:
        return self.config.now().timestamp()

    # ---- helpers -----------------------------------------------------------------------------
    def client(self, crm: Crm) -> tuple[str, str, tuple[str, ...]]:
        c = self.config
        if crm == "salesforce":
            return c.salesforce_client_id, c.salesforce_client_secret, c.salesforce_redirect_uris
        return c.hubspot_client_id, c.hubspot_client_secret, c.hubspot_redirect_uris

    def _new_access(
        self,
        crm: Crm,
        scope: str,
        refresh_token: str | None,
        org_id: str = "",
        user_id: str | None = None,
    ) -> AccessToken:
        now = self._now()
        if crm == "salesforce":
            token = f"{org_id}!AQ{secrets.token_urlsafe(72)}"
            life = self.config.salesforce_session_seconds
        else:
            token = "CK" + secrets.token_urlsafe(96)
            life = float(self.config.hubspot_token_seconds)
        record = AccessToken(
            crm, token, now, now + life if life else None, scope, refresh_token, user_id=user_id
        )
        self.access[token] = record
        return record

    # ---- authorize ---------------------------------------------------------------------------
    def authorize(
        self,
        crm: Crm,
        client_id: str | None,
        redirect_uri: str | None,
        scope: str,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> str:
        """Validate an authorize request and return a new authorization code.

        Raises:
            OAuthError: unknown client, bad redirect URI, unsupported PKCE method.
        """
        expected_id, _, allowed = self.client(crm)
        if client_id != expected_id:
            raise OAuthError(
                "invalid_client_id",
                "client identifier invalid",
                "BAD_CLIENT_ID" if crm == "hubspot" else None,
            )
        if not redirect_uri or (allowed and redirect_uri not in allowed):
            raise OAuthError(
                "redirect_uri_mismatch",
                "redirect_uri must match configuration",
                "BAD_REDIRECT_URI" if crm == "hubspot" else None,
            )
        if code_challenge and (code_challenge_method or "S256") != "S256":
            raise OAuthError("invalid_request", "unsupported code_challenge_method")
        if crm == "salesforce" and self.config.salesforce_require_pkce and not code_challenge:
            raise OAuthError("invalid_request", "missing required code challenge")
        code = ("aPrx" if crm == "salesforce" else "") + secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = Grant(
                crm,
                client_id,
                redirect_uri,
                scope,
                code_challenge,
                code_challenge_method,
                self._now() + CODE_TTL_SECONDS,
            )
        return code

    def _check_client(self, crm: Crm, client_id: str | None, client_secret: str | None) -> None:
        expected_id, expected_secret, _ = self.client(crm)
        if client_id != expected_id:
            raise OAuthError(
                "invalid_client_id",
                "client identifier invalid",
                "BAD_CLIENT_ID" if crm == "hubspot" else None,
            )
        if not client_secret or not hmac.compare_digest(client_secret, expected_secret):
            raise OAuthError(
                "invalid_client",
                "invalid client credentials",
                "BAD_CLIENT_SECRET" if crm == "hubspot" else None,
            )

    def exchange_code(self, crm: Crm, form: dict[str, str], org_id: str = "") -> AccessToken:
        """Handle ``grant_type=authorization_code``.

        Raises:
            OAuthError: per RFC 6749 (``invalid_grant``, ``invalid_client``, ...).
        """
        self._check_client(crm, form.get("client_id"), form.get("client_secret"))
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant.crm != crm or grant.expires < self._now():
            raise OAuthError(
                "invalid_grant",
                "invalid authorization code",
                "BAD_AUTH_CODE" if crm == "hubspot" else None,
            )
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError(
                "redirect_uri_mismatch",
                "redirect_uri must match configuration",
                "BAD_REDIRECT_URI" if crm == "hubspot" else None,
            )
        if grant.code_challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                # Salesforce: a challenge was sent at authorize time but no verifier now.
                raise OAuthError(
                    "invalid_grant",
                    "invalid code verifier",
                    "BAD_AUTH_CODE" if crm == "hubspot" else None,
                )
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if not hmac.compare_digest(digest.rstrip(b"=").decode(), grant.code_challenge):
                raise OAuthError(
                    "invalid_request",
                    "invalid code verifier",
                    "BAD_AUTH_CODE" if crm == "hubspot" else None,
                )
        return self.issue(crm, grant.scope, org_id)

    def issue(self, crm: Crm, scope: str, org_id: str = "") -> AccessToken:
        """Issue a fresh refresh token and access token (no OAuth dance)."""
        refresh_token = ("5Aep86" if crm == "salesforce" else "") + secrets.token_urlsafe(48)
        client_id = self.client(crm)[0]
        with self.lock:
            self.refresh[refresh_token] = (crm, client_id, scope)
            return self._new_access(crm, scope, refresh_token, org_id)

    def issue_jwt(self, form: dict[str, str], org_id: str, find_user, audiences) -> AccessToken:
        """Handle ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``.

        Args:
            form: the token request (``assertion``).
            org_id: the org id (access-token prefix).
            find_user: ``username -> (user id, active) | None``.
            audiences: accepted ``aud`` values.

        Raises:
            OAuthError: ``invalid_grant`` / ``invalid_client_id`` as Salesforce answers.
        """
        claims = verify_jwt_assertion(form.get("assertion", ""), self.config, audiences)
        username = str(claims.get("sub") or "")
        found = find_user(username) if username else None
        allowed = self.config.salesforce_jwt_preauthorized_usernames
        if found is None or (
            allowed is not None and username.lower() not in {u.lower() for u in allowed}
        ):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        user_id, active = found
        if not active:
            raise OAuthError("invalid_grant", "inactive user")
        with self.lock:
            return self._new_access("salesforce", "api", None, org_id, user_id=user_id)

    def refresh_grant(
        self, crm: Crm, form: dict[str, str], org_id: str = ""
    ) -> tuple[AccessToken, str | None]:
        """Handle ``grant_type=refresh_token``; returns (access token, rotated refresh token).

        Raises:
            OAuthError: ``invalid_grant`` for unknown/revoked refresh tokens.
        """
        self._check_client(crm, form.get("client_id"), form.get("client_secret"))
        token = form.get("refresh_token", "")
        with self.lock:
            entry = self.refresh.get(token)
            if entry is None or entry[0] != crm:
                raise OAuthError(
                    "invalid_grant",
                    "expired access/refresh token"
                    if crm == "salesforce"
                    else "refresh token is invalid, expired or revoked",
                    "BAD_REFRESH_TOKEN" if crm == "hubspot" else None,
                )
            scope = entry[2]
            rotated = None
            if crm == "salesforce" and self.config.rotate_refresh_tokens:
                del self.refresh[token]
                rotated = "5Aep86" + secrets.token_urlsafe(48)
                self.refresh[rotated] = entry
                token = rotated
            return self._new_access(crm, scope, token, org_id), rotated

    def revoke(self, token: str) -> bool:
        """Revoke an access token, or a refresh token and every access token it issued."""
        with self.lock:
            if token in self.access:
                self.access[token].revoked = True
                return True
            if token in self.refresh:
                del self.refresh[token]
                for record in self.access.values():
                    if record.refresh_token == token:
                        record.revoked = True
                return True
        return False

    def check(self, crm: Crm, token: str | None) -> AccessToken | None:
        """Return the access token record when ``token`` is valid for ``crm``."""
        if not token:
            return None
        with self.lock:
            record = self.access.get(token)
        if record is None or record.crm != crm or not record.valid(self._now()):
            return None
        return record

    def lookup(self, token: str) -> AccessToken | None:
        with self.lock:
            return self.access.get(token)

    def expire(self, crm: Crm | None = None) -> int:
        """Expire every current access token (of one CRM, or all); return how many."""
        now = self._now()
        count = 0
        with self.lock:
            for record in self.access.values():
                if (crm is None or record.crm == crm) and record.valid(now):
                    record.expires = now - 0.001
                    count += 1
        return count


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_MAX_LIFETIME_SECONDS = 180
JWT_CLOCK_SKEW_SECONDS = 5
JWT_STANDARD_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


def _public_key(pem: str) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


def verify_jwt_assertion(assertion: str, config: SandboxConfig, audiences) -> dict[str, Any]:
    """Check a JWT bearer assertion the way Salesforce does; return its claims.

    RS256 signature against ``config.salesforce_jwt_public_key_pem``; ``iss`` = the app's
    client id; ``aud`` one of ``audiences``; ``exp`` in the future and at most three
    minutes ahead (``exp`` may be a numeric string, as simple-salesforce sends it).

    Raises:
        OAuthError: invalid_grant (``invalid assertion``, ``audience is invalid``,
            ``expired authorization code``) or invalid_client_id.
    """
    import jwt

    pem = config.salesforce_jwt_public_key_pem
    if not pem or not assertion:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        claims = jwt.decode(
            assertion,
            _public_key(pem),
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    if claims.get("iss") != config.salesforce_client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    aud = claims.get("aud")
    wanted = {a.rstrip("/") for a in (*audiences, *JWT_STANDARD_AUDIENCES)}
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a.rstrip("/") in wanted for a in given):
        raise OAuthError("invalid_grant", "audience is invalid")
    try:
        exp = float(claims["exp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    now = config.now().timestamp()
    if exp <= now:
        raise OAuthError("invalid_grant", "expired authorization code")
    if exp > now + JWT_MAX_LIFETIME_SECONDS + JWT_CLOCK_SKEW_SECONDS:
        raise OAuthError("invalid_grant", "invalid assertion")
    return claims


def salesforce_signature(client_secret: str, identity_url: str, issued_at: str) -> str:
    """Return Salesforce's token ``signature``: base64 HMAC-SHA256(id + issued_at)."""
    digest = hmac.new(client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def ms(value: float) -> str:
    """Return epoch seconds as a millisecond string."""
    return str(int(value * 1000))


__all__ = [
    "JWT_BEARER",
    "AccessToken",
    "OAuthError",
    "TokenStore",
    "ms",
    "salesforce_signature",
    "verify_jwt_assertion",
]
