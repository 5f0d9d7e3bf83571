"""Request counters per CRM and per endpoint, and HubSpot's rate-limit windows."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Counts API requests as ``"<METHOD> <url rule>"`` per CRM (faulted ones too)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counters: dict[str, Counter] = field(default_factory=dict)

    def count(self, crm: str, endpoint: str) -> None:
        with self.lock:
            self.counters.setdefault(crm, Counter())[endpoint] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return ``{crm: {"total": n, "by_endpoint": {...}}}`` for every CRM seen."""
        with self.lock:
            out = {
                crm: {"total": sum(c.values()), "by_endpoint": dict(c)}
                for crm, c in self.counters.items()
            }
        for crm in ("salesforce", "hubspot", "oauth"):
            out.setdefault(crm, {"total": 0, "by_endpoint": {}})
        return out

    def reset(self) -> None:
        with self.lock:
            self.counters.clear()


@dataclass
class RollingWindow:
    """A sliding-window limiter: at most ``limit`` events per ``seconds``."""

    seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: deque = field(default_factory=deque)

    def _trim(self, now: float) -> None:
        while self.events and self.events[0] <= now - self.seconds:
            self.events.popleft()

    def acquire(self, limit: int | None) -> tuple[bool, int, float]:
        """Record an event unless over ``limit``.

        Returns:
            (allowed, remaining after this event, seconds until a slot frees).
        """
        now = time.monotonic()
        with self.lock:
            self._trim(now)
            if limit is not None and len(self.events) >= limit:
                wait = self.events[0] + self.seconds - now
                return False, 0, max(wait, 0.0)
            self.events.append(now)
            remaining = (limit if limit is not None else 0) - len(self.events)
            return True, max(remaining, 0), 0.0


def retry_after_seconds(wait: float) -> str:
    """Format a Retry-After header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))
