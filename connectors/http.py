"""The one place transport retries are configured, for both SDKs.

Short retries only (seconds, a few tries): longer waits belong to the task
layer, which receives a ``TransientError`` with the CRM's ``retry_after``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from connectors.budget import ApiBudget

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A CRM asking us to wait longer than this is not retried in the transport: the
# caller gets the response (a TransientError with retry_after) and the task
# layer schedules the retry instead of blocking a worker.
MAX_TRANSPORT_WAIT = 10.0
# Idempotent methods only by default: PATCH of the same values is idempotent,
# POST (create) is not unless the caller says so.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BoundedRetry(Retry):
    """A Retry that gives up at once when Retry-After asks for more than MAX_TRANSPORT_WAIT."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):  # fmt: skip
        if response is not None:
            wait = self.get_retry_after(response)
            if wait is not None and wait > MAX_TRANSPORT_WAIT:
                raise MaxRetryError(_pool, url, f"Retry-After {wait:.0f}s exceeds transport wait")
        return super().increment(method, url, response, error, _pool, _stacktrace)


def transport_retry(
    total: int = 3,
    methods: Collection[str] | None = IDEMPOTENT,
    backoff_factor: float = 0.5,
    statuses: Collection[int] = RETRY_STATUSES,
) -> Retry:
    """A urllib3 Retry that honours Retry-After and, unlike its default, can retry POST.

    Args:
        methods: methods to retry; None retries every method (HubSpot's search and
            batch endpoints are POSTs that read, so they are safe to repeat).
    """
    return BoundedRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        status_forcelist=tuple(statuses),
        allowed_methods=None if methods is None else frozenset(m.upper() for m in methods),
        respect_retry_after_header=True,
        backoff_factor=backoff_factor,
        backoff_max=30,
        raise_on_status=False,
    )


class CountingSession(requests.Session):
    """A requests.Session that counts the HTTP requests it sends (retries included) and,
    given an ApiBudget, checks it before each request and feeds it what the CRM reports."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.budget: ApiBudget | None = None
        # Reads (used, limit) from a response's headers, for CRMs that report usage.
        self.usage_header: Callable[[requests.Response], tuple[int, int] | None] | None = None
        self.hooks["response"].append(self._count)

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if self.budget is not None:
            self.budget.before_call()
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[override]
        # requests lets REQUESTS_CA_BUNDLE override a CA bundle set on the session
        # (psf/requests#3829); an explicit session setting must win.
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings

    def _count(self, response: requests.Response, *args, **kwargs) -> None:
        retries = getattr(response.raw, "retries", None)
        history = retries.history if retries is not None else ()
        self.calls += 1 + len(history)
        if self.budget is not None:
            self.budget.after_call(1 + len(history))
            usage = self.usage_header(response) if self.usage_header else None
            if usage is not None:
                self.budget.observe(*usage)


def retrying_session(
    retry: Retry | None = None, verify: bool | str = True, timeout: float = 30.0
) -> CountingSession:
    """A counting session with ``retry`` mounted for http and https."""
    session = CountingSession()
    adapter = _TimeoutAdapter(max_retries=retry or transport_retry(), timeout=timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = verify
    return session


class _TimeoutAdapter(HTTPAdapter):
    """Applies a default timeout: simple-salesforce sends none, and a hung socket hangs a worker."""

    def __init__(self, *args, timeout: float, **kwargs) -> None:
        self._timeout = timeout
        super().__init__(*args, **kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)
