"""leadlift's share of a CRM's daily API allowance, checked before every call.

A CRM's daily limit belongs to the whole org; leadlift takes only a
configured share of it. Close to that share it slows down, at the share it
stops with a ``BudgetExhaustedError`` (a transient error: the next run, an
hour later, continues from the saved cursor), and it never pushes the org
itself past ``stop_org_at`` of its limit, whoever spent the calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from connectors.errors import BudgetExhaustedError

RETRY_AFTER_SECONDS = 3600.0


@dataclass
class ApiBudget:
    share: float = 0.5
    used_before: int = 0  # leadlift's calls in the trailing 24 hours before this run
    slow_at: float = 0.8  # of leadlift's cap: from here on every call first waits `pause`
    pause: float = 0.5
    stop_org_at: float = 0.95
    org_used: int | None = None
    org_limit: int | None = None
    calls: int = 0  # this run
    sleep: Callable[[float], None] = time.sleep

    @property
    def cap(self) -> int | None:
        """leadlift's calls allowed per 24 hours, once the CRM has told us its limit."""
        return None if self.org_limit is None else math.floor(self.share * self.org_limit)

    @property
    def used(self) -> int:
        return self.used_before + self.calls

    def observe(self, used: int, limit: int) -> None:
        """Record the org-wide usage a response reported (e.g. Sforce-Limit-Info)."""
        self.org_used, self.org_limit = used, limit

    def before_call(self) -> None:
        cap = self.cap
        if cap is None or self.org_limit is None:
            return  # nothing known yet: the first response will tell
        if self.used >= cap:
            raise BudgetExhaustedError(
                f"leadlift used {self.used} of its {cap} daily API calls "
                f"({self.share:.0%} of the org's {self.org_limit}); stopping until calls free up",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self.org_used is not None and self.org_used >= self.stop_org_at * self.org_limit:
            raise BudgetExhaustedError(
                f"the org has used {self.org_used} of its {self.org_limit} daily API calls; "
                f"leadlift stops at {self.stop_org_at:.0%} to leave room for everyone else",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self.used >= self.slow_at * cap:
            self.sleep(self.pause)

    def after_call(self, n: int = 1) -> None:
        self.calls += n
