"""Vectorised timestamp formatting and parsing in each CRM's wire format.

Timestamps are stored as naive ``datetime64[ns]`` values meaning UTC.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

NAT = np.datetime64("NaT", "ns")


def to_naive_utc(values: pd.Series) -> np.ndarray:
    """Return a ``datetime64[ns]`` array (UTC, naive) from a seed column."""
    series = pd.to_datetime(values, utc=True)
    return series.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def to_datetime64(value: dt.datetime) -> np.datetime64:
    """Return a naive-UTC ``datetime64[ns]`` for a (tz-aware or naive UTC) datetime."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return np.datetime64(value, "ns")


def _iso_ms(values: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(np.asarray(values).astype("datetime64[ms]"), unit="ms")


def sf_datetimes(values: np.ndarray) -> list[str | None]:
    """Format as Salesforce REST datetimes: ``2026-01-31T10:00:00.000+0000``."""
    text = _iso_ms(values)
    return [None if s == "NaT" else s + "+0000" for s in text.tolist()]


def sf_dates(values: np.ndarray) -> list[str | None]:
    """Format as Salesforce dates: ``2026-01-31``."""
    text = np.datetime_as_string(np.asarray(values).astype("datetime64[D]"), unit="D")
    return [None if s == "NaT" else s for s in text.tolist()]


def hs_datetimes(values: np.ndarray) -> list[str | None]:
    """Format as HubSpot v3 datetimes: ``2026-06-01T12:34:56.789Z``."""
    text = _iso_ms(values)
    return [None if s == "NaT" else s + "Z" for s in text.tolist()]


def sf_datetime(value: np.datetime64 | dt.datetime) -> str:
    """Format one timestamp the Salesforce way."""
    if isinstance(value, dt.datetime):
        value = to_datetime64(value)
    return sf_datetimes(np.array([value], dtype="datetime64[ns]"))[0] or ""


def hs_datetime(value: np.datetime64 | dt.datetime) -> str:
    """Format one timestamp the HubSpot way."""
    if isinstance(value, dt.datetime):
        value = to_datetime64(value)
    return hs_datetimes(np.array([value], dtype="datetime64[ns]"))[0] or ""


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_iso(text: str, *, require_tz: bool = False) -> np.datetime64 | None:
    """Parse an ISO-8601 date or datetime into naive-UTC ``datetime64[ns]``.

    Accepts ``Z``, ``+00:00`` and ``+0000`` offsets and 1-9 fraction digits.
    Returns None when the text is not ISO-8601 (or lacks a zone when one is required).
    """
    match = _ISO_RE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if hour is not None and zone is None and require_tz:
        return None
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        value = value - sign * offset
    return np.datetime64(value, "ns")


def parse_hs_time(text: str) -> np.datetime64 | None:
    """Parse a HubSpot filter/property time: epoch milliseconds or ISO-8601."""
    text = str(text).strip()
    if re.fullmatch(r"-?\d{9,}", text):
        return np.datetime64(int(text), "ms").astype("datetime64[ns]")
    return parse_iso(text)


def epoch_ms(value: dt.datetime) -> int:
    """Return milliseconds since the epoch for a tz-aware datetime."""
    return int(value.timestamp() * 1000)
