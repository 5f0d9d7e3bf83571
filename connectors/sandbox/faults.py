"""Fault injection: whole-request HTTP errors and per-record write failures."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

CRMS = ("salesforce", "hubspot", "oauth")


@dataclass
class RequestFault:
    """The next ``remaining`` matching requests get ``status``."""

    crm: str
    status: int
    remaining: int
    path_contains: str | None = None
    method: str | None = None
    retry_after: float | None = None

    def matches(self, crm: str, path: str, method: str) -> bool:
        return (
            self.remaining > 0
            and self.crm == crm
            and (self.path_contains is None or self.path_contains in path)
            and (self.method is None or self.method.upper() == method.upper())
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "status": self.status,
            "remaining": self.remaining,
            "path_contains": self.path_contains,
            "method": self.method,
            "retry_after": self.retry_after,
        }


@dataclass
class Faults:
    """Registry of injected faults, consulted by every API request."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RequestFault] = field(default_factory=list)
    records: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def inject(
        self,
        crm: str,
        status: int,
        count: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> RequestFault:
        """Make the next ``count`` matching requests to ``crm`` fail with ``status``.

        Args:
            crm: "salesforce", "hubspot" or "oauth".
            status: HTTP status (429, 500, 502, 503, 403, ...); the body is the CRM's own.
            count: how many requests to fail.
            path_contains: only requests whose path contains this substring.
            method: only this HTTP method.
            retry_after: value of the ``Retry-After`` header (seconds); HubSpot 429s get
                ``1`` when omitted.
        """
        if crm not in CRMS:
            raise ValueError(f"crm must be one of {CRMS}")
        fault = RequestFault(crm, int(status), int(count), path_contains, method, retry_after)
        with self.lock:
            self.requests.append(fault)
        return fault

    def fail_records(
        self, crm: str, ids: list[str], code: str, message: str, times: int = 1
    ) -> None:
        """Make writes to these record ids fail ``times`` times with ``code``/``message``."""
        if crm not in CRMS:
            raise ValueError(f"crm must be one of {CRMS}")
        with self.lock:
            for record_id in ids:
                self.records[(crm, str(record_id))] = [code, message, int(times)]

    def take_request_fault(self, crm: str, path: str, method: str) -> RequestFault | None:
        """Consume and return the first fault matching this request, if any."""
        with self.lock:
            for fault in self.requests:
                if fault.matches(crm, path, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.requests.remove(fault)
                    return fault
        return None

    def record_fault(self, crm: str, record_id: str) -> tuple[str, str] | None:
        """Consume one failure for ``record_id``; return (code, message) or None."""
        key = (crm, str(record_id))
        with self.lock:
            entry = self.records.get(key)
            if not entry:
                return None
            entry[2] -= 1
            if entry[2] <= 0:
                del self.records[key]
            return entry[0], entry[1]

    def clear(self) -> None:
        """Remove every pending fault."""
        with self.lock:
            self.requests.clear()
            self.records.clear()

    def pending(self) -> dict[str, Any]:
        """Describe pending faults (for ``GET /_sandbox/faults``)."""
        with self.lock:
            return {
                "requests": [f.as_dict() for f in self.requests],
                "records": [
                    {"crm": crm, "id": rid, "code": e[0], "message": e[1], "times": e[2]}
                    for (crm, rid), e in self.records.items()
                ],
            }
