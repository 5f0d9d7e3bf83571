"""A thin layer over hubspot-api-client: refresh, error translation, raw JSON.

Every generated SDK module has its own ``ApiException`` class, so errors are
translated here once, on HTTP status and HubSpot's ``category``. Calls pass
``_preload_content=False`` and parse the JSON themselves: the generated model
classes are slow on large pages and leadlift needs only plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import reduce
from typing import Any

import hubspot
import requests

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.http import retrying_session, transport_retry
from connectors.hubspot.auth import (
    HubSpotCredentials,
    credentials_from_token,
    refresh_access_token,
)
from connectors.hubspot.limiter import HubSpotLimits

DEFAULT_RATE_LIMIT_WAIT = 10.0


class HubSpotClient:
    def __init__(
        self,
        credentials: HubSpotCredentials,
        verify: bool | str = True,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        limits: HubSpotLimits | None = None,
    ) -> None:
        self.credentials = credentials
        self.verify = verify
        self.timeout = timeout
        self.limits = limits
        self.calls = 0
        self.daily: tuple[int, int] | None = None  # (used, limit) when HubSpot reports it
        self._on_tokens = on_tokens
        self.session = session or retrying_session(transport_retry(), verify=verify)
        self._apis: dict[str, Any] = {}
        self._client = self._build()

    def _build(self) -> hubspot.Client:
        config: dict[str, Any] = {
            "access_token": self.credentials.access_token,
            "host": self.credentials.api_base,
            # POST search/batch reads are safe to repeat: retry them too on 429/5xx.
            "retry": transport_retry(methods=None),
        }
        if isinstance(self.verify, str):
            config["ssl_ca_cert"] = self.verify
        elif self.verify is False:
            config["verify_ssl"] = False
        self._apis.clear()
        return hubspot.Client.create(**config)

    def api(self, path: str) -> Any:
        """A cached SDK API object, e.g. ``api("objects.calls.search_api")``."""
        if path not in self._apis:
            self._apis[path] = reduce(getattr, path.split("."), self._client.crm)
        return self._apis[path]

    def refresh(self) -> None:
        token = refresh_access_token(self.session, self.credentials)
        self.credentials = credentials_from_token(token, self.credentials)
        if self._on_tokens:
            self._on_tokens(
                {
                    "access_token": self.credentials.access_token,
                    "refresh_token": self.credentials.refresh_token,
                    "expires_at": self.credentials.expires_at,
                }
            )
        self._client = self._build()

    def call(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Invoke an SDK method and return the parsed JSON body (None when empty)."""
        if self.credentials.expiring() and self.credentials.can_refresh:
            self.refresh()
        try:
            return self._invoke(path, method, *args, **kwargs)
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status == 401 and self.credentials.can_refresh:
                self.refresh()
                try:
                    return self._invoke(path, method, *args, **kwargs)
                except Exception as again:
                    raise translate(again) from None
            raise translate(exc) from None

    def _invoke(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.limits is not None:
            self.limits.before(search="search_api" in path)
        self.calls += 1
        fn = getattr(self.api(path), method)
        response = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        self._note_daily(response.headers)
        data = response.data
        if not data:
            return None
        body = json.loads(data)
        if isinstance(body, dict):
            body["_status"] = response.status
        return body

    def _note_daily(self, headers: Any) -> None:
        limit = headers.get("X-HubSpot-RateLimit-Daily") if headers else None
        remaining = headers.get("X-HubSpot-RateLimit-Daily-Remaining") if headers else None
        if limit and remaining:
            self.daily = (int(limit) - int(remaining), int(limit))


def _body(exc: Exception) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def translate(exc: Exception) -> Exception:
    """Map any SDK exception to leadlift's tree by HTTP status and HubSpot category."""
    status = getattr(exc, "status", None)
    if status is None or not hasattr(exc, "reason"):
        return exc  # not an API error: a bug, let it surface as is
    body = _body(exc)
    category = body.get("category") or body.get("errorType") or ""
    message = str(body.get("message", ""))[:300]
    codes = sorted({str(e.get("code")) for e in body.get("errors") or [] if e.get("code")})
    if codes:
        message += f" [{', '.join(codes)}]"
    text = f"HubSpot HTTP {status} {category}: {message}".strip()
    if status == 0:
        return TransientError(f"HubSpot unreachable: {exc.reason}".splitlines()[0])
    if status == 429:
        headers = dict(getattr(exc, "headers", None) or {})
        wait = headers.get("Retry-After") or headers.get("retry-after")
        retry_after = float(wait) if wait else DEFAULT_RATE_LIMIT_WAIT
        return TransientError(text, retry_after=retry_after, status=429)
    if status >= 500:
        return TransientError(text, status=status)
    if status in (401, 403):
        return AuthError(f"{text} (reconnect, or grant the missing scope)")
    return PermanentError(text, status=status, code=category or None)
