"""Time inside the generator: int64 epoch seconds, converted to pandas only at the end.

Seconds (not floats) keep every comparison exact ("after the meeting",
"not later than now") and match the whole-second timestamps CRMs expose.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

DAY = 86_400
HOUR = 3_600
NEVER = np.iinfo(np.int64).max  # an event that did not happen; later than every real time


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds of a tz-aware datetime."""
    return int(moment.timestamp())


def days(x: np.ndarray | float) -> np.ndarray:
    """Day offsets as whole seconds."""
    return np.rint(np.asarray(x, dtype=float) * DAY).astype(np.int64)


def floor_day(seconds: np.ndarray) -> np.ndarray:
    """Midnight UTC of each time (NEVER stays NEVER)."""
    return np.where(seconds == NEVER, NEVER, seconds - seconds % DAY)


def to_utc(seconds: np.ndarray) -> pd.Series:
    """Series of ``datetime64[ns, UTC]`` from epoch seconds; NEVER becomes NaT."""
    seconds = np.asarray(seconds, dtype=np.int64)
    missing = seconds == NEVER
    nat = np.iinfo(np.int64).min  # datetime64's NaT
    ns = np.where(missing, nat, np.where(missing, 0, seconds) * 1_000_000_000)
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")
