"""Small, CRM-independent parsers for values CRMs send in many shapes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlparse

SIZE_BANDS = (
    (10, "1-10"),
    (50, "11-50"),
    (200, "51-200"),
    (1000, "201-1000"),
    (5000, "1001-5000"),
)

_REGION_BY_COUNTRY = {
    "NA": ("US", "CA", "MX"),
    "EMEA": ("GB", "DE", "FR", "NL", "SE", "ES", "IT", "IE", "CH", "AE", "ZA", "IL", "PL", "DK"),
    "APAC": ("AU", "JP", "SG", "IN", "NZ", "KR", "HK", "CN"),
    "LATAM": ("BR", "AR", "CL", "CO", "PE"),
}
_COUNTRY_NAMES = {
    "united states": "US", "usa": "US", "canada": "CA", "mexico": "MX",
    "united kingdom": "GB", "uk": "GB", "germany": "DE", "france": "FR",
    "netherlands": "NL", "sweden": "SE", "spain": "ES", "italy": "IT", "ireland": "IE",
    "switzerland": "CH", "united arab emirates": "AE", "south africa": "ZA", "israel": "IL",
    "poland": "PL", "denmark": "DK", "australia": "AU", "japan": "JP", "singapore": "SG",
    "india": "IN", "new zealand": "NZ", "south korea": "KR", "hong kong": "HK", "china": "CN",
    "brazil": "BR", "argentina": "AR", "chile": "CL", "colombia": "CO", "peru": "PE",
}  # fmt: skip
_REGION = {code: region for region, codes in _REGION_BY_COUNTRY.items() for code in codes}


def size_band(employees: Any) -> str | None:
    count = to_int(employees)
    if count is None or count <= 0:
        return None
    for upper, band in SIZE_BANDS:
        if count <= upper:
            return band
    return "5000+"


def region_for_country(value: str | None) -> str | None:
    """Region for an ISO alpha-2 code or an English country name; None when unknown."""
    if not value:
        return None
    text = value.strip()
    code = text.upper() if len(text) == 2 else _COUNTRY_NAMES.get(text.lower())
    return _REGION.get(code or "")


def domain_from_website(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().lower()
    host = urlparse(text if "://" in text else f"//{text}").hostname
    if not host:
        return None
    return host.removeprefix("www.")


def to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(number)


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_datetime(value: Any) -> datetime | None:
    """Parse Salesforce (``…000+0000``), ISO-8601 (``…Z``), dates and epoch-ms strings to UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if text.isdigit():  # HubSpot legacy and search filters use epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")
