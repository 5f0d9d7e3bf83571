"""A thin layer over simple-salesforce: token refresh, error translation, paging.

simple-salesforce raises its own exceptions, which do not survive pickling
into Celery; every call here goes through ``_call`` so only leadlift's
error tree escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.http import CountingSession
from connectors.salesforce.auth import (
    SalesforceCredentials,
    credentials_from_token,
    refresh_access_token,
)

API_VERSION = "62.0"
MAX_QUERY_PAGE = 2000
# A daily-limit error means the org is out of calls for hours, not seconds.
LIMIT_RETRY_SECONDS = 3600.0

T = TypeVar("T")


class SalesforceClient:
    """One org's REST API, refreshed on 401 and translated into leadlift errors."""

    def __init__(
        self,
        credentials: SalesforceCredentials,
        session: CountingSession,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        version: str = API_VERSION,
    ) -> None:
        self.credentials = credentials
        self.session = session
        self.version = version
        self._on_tokens = on_tokens
        self._sf = self._connect()

    def _connect(self) -> Salesforce:
        return Salesforce(
            instance_url=self.credentials.instance_url,
            session_id=self.credentials.access_token,
            version=self.version,
            session=self.session,
        )

    @property
    def sf(self) -> Salesforce:
        return self._sf

    @property
    def calls(self) -> int:
        return self.session.calls

    def api_usage(self) -> tuple[int | None, int | None]:
        usage = self._sf.api_usage.get("api-usage")
        return (usage.used, usage.total) if usage else (None, None)

    def refresh(self) -> None:
        token = refresh_access_token(self.session, self.credentials)
        self.credentials = credentials_from_token(token, self.credentials)
        if self._on_tokens:
            self._on_tokens(
                {
                    "access_token": self.credentials.access_token,
                    "refresh_token": self.credentials.refresh_token,
                    "instance_url": self.credentials.instance_url,
                }
            )
        self._sf = self._connect()

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn(sf)``; refresh once on an expired session; translate errors."""
        try:
            try:
                return fn(self._sf)
            except SalesforceExpiredSession:
                self.refresh()
                return fn(self._sf)
        except SalesforceError as exc:
            raise translate(exc) from None
        except requests.RequestException as exc:
            raise TransientError(f"Salesforce unreachable: {type(exc).__name__}") from None

    def query_pages(
        self, soql: str, include_deleted: bool = False, first: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a SOQL query, following nextRecordsUrl.

        ``first`` is an already fetched first page, so a caller that peeked at
        ``totalSize`` does not pay for the page twice.
        """
        page = first or self.call(lambda sf: sf.query(soql, include_deleted=include_deleted))
        while True:
            yield from page.get("records", ())
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.call(lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True))

    def restful(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return self.call(lambda sf: sf.restful(path, method=method, **kwargs))

    def tooling(
        self, action: str, method: str = "GET", data: dict | None = None, **kwargs: Any
    ) -> Any:
        return self.call(lambda sf: sf.toolingexecute(action, method=method, data=data, **kwargs))


def _error_detail(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", ""


def translate(exc: SalesforceError) -> Exception:
    """Map a simple-salesforce error to leadlift's tree, by HTTP status and errorCode."""
    code, message = _error_detail(exc)
    where = f"Salesforce {exc.resource_name or 'API'}"
    text = f"{where}: HTTP {exc.status} {code} {message}".strip()
    if exc.status == 401:
        return AuthError(
            f"{where}: session invalid after refresh ({code or 'HTTP 401'}): reconnect"
        )
    if exc.status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return TransientError(text, retry_after=LIMIT_RETRY_SECONDS, status=403)
    if exc.status == 429 or exc.status >= 500:
        return TransientError(text, status=exc.status)
    if exc.status == 403:
        return AuthError(f"{text} (the integration user lacks a permission)")
    return PermanentError(text, status=exc.status, code=code or None)
