"""Client-side rate limiting for HubSpot: a rolling window per limit, checked before a call.

HubSpot limits requests per ten seconds per portal (shared by every app in it)
and, separately, search requests per second. Waiting here is cheaper than a
429 and its retry.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RollingWindow:
    """At most ``limit`` events in any ``seconds``-long window."""

    limit: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _events: deque[float] = field(default_factory=deque)

    def acquire(self) -> float:
        """Wait until one more event fits; returns the seconds waited."""
        waited = 0.0
        while True:
            now = self.clock()
            while self._events and now - self._events[0] >= self.seconds:
                self._events.popleft()
            if len(self._events) < self.limit:
                self._events.append(now)
                return waited
            pause = self.seconds - (now - self._events[0])
            self.sleep(pause)
            waited += pause


@dataclass
class HubSpotLimits:
    """Defaults are HubSpot's lowest published tier, so they are safe on any portal."""

    per_10_seconds: int | None = 100
    search_per_second: int | None = 4
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._general = (
            RollingWindow(self.per_10_seconds, 10.0, self.clock, self.sleep)
            if self.per_10_seconds
            else None
        )
        self._search = (
            RollingWindow(self.search_per_second, 1.0, self.clock, self.sleep)
            if self.search_per_second
            else None
        )

    def before(self, search: bool) -> None:
        if search and self._search is not None:
            self._search.acquire()
        if self._general is not None:
            self._general.acquire()
