"""Bulk API 2.0 through simple-salesforce: query jobs as typed rows, ingest jobs as errors.

Bulk results are CSV in which every value is a string and null is an empty
cell; rows are turned back into the JSON types the REST API returns, using
the object's describe, so the mapping code sees one shape whichever API
delivered the row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError

from connectors.base import RecordError
from connectors.errors import PermanentError, TransientError
from connectors.salesforce.client import SalesforceClient, translate

INTEGER_TYPES = frozenset({"int"})
FLOAT_TYPES = frozenset({"double", "currency", "percent"})
BOOLEAN_TYPES = frozenset({"boolean"})
NULL = "#N/A"  # in ingest CSV an empty cell means "leave unchanged"; this sets null
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"}
)


def typed(value: str, kind: str | None) -> Any:
    if value == "":
        return None
    if kind in BOOLEAN_TYPES:
        return value.lower() == "true"
    if kind in INTEGER_TYPES:
        return int(float(value))
    if kind in FLOAT_TYPES:
        return float(value)
    return value


def parse_csv(text: str, types: Mapping[str, str]) -> list[dict[str, Any]]:
    """CSV page → dicts with REST-like types (bool, int, float, str, None)."""
    reader = csv.DictReader(io.StringIO(text))
    kinds = {name: types.get(name) for name in reader.fieldnames or ()}
    return [{k: typed(v, kinds[k]) for k, v in row.items()} for row in reader]


def query_rows(
    client: SalesforceClient,
    obj: str,
    soql: str,
    types: Mapping[str, str],
    include_deleted: bool,
    page_rows: int,
    wait: float,
) -> Iterator[dict[str, Any]]:
    """Every row of a Bulk 2.0 query (queryAll when ``include_deleted``), page by page.

    A session that expires before the first page is refreshed and the job restarted;
    later, the error surfaces as transient and the next run resumes from its cursor.
    """
    started = False
    for attempt in (1, 2):
        handler = getattr(client.sf.bulk2, obj)
        run = handler.query_all if include_deleted else handler.query
        pages = run(soql, max_records=page_rows, wait=wait)
        try:
            for page in pages:
                started = True
                yield from parse_csv(page, types)
            return
        except SalesforceError as exc:
            if exc.status == 401 and not started and attempt == 1:
                client.refresh()
                continue
            raise translate(exc) from None
        except SalesforceOperationError as exc:
            raise TransientError(f"Salesforce bulk query job failed: {exc}"[:500]) from None


def ingest_update(
    client: SalesforceClient,
    obj: str,
    rows: Sequence[Mapping[str, Any]],
    wait: float,
) -> list[RecordError]:
    """Update records with one Bulk 2.0 ingest job; returns the failed rows as errors."""
    records = [{k: NULL if v is None else str(v) for k, v in row.items()} for row in rows]
    handler = getattr(client.sf.bulk2, obj)
    try:
        results = handler.update(records=records, wait=wait)
        errors: list[RecordError] = []
        for result in results:
            if not int(result.get("numberRecordsFailed", 0)):
                continue
            failed = handler.get_failed_records(result["job_id"])
            for row in csv.DictReader(io.StringIO(failed)):
                code, _, message = (row.get("sf__Error") or "UNKNOWN").partition(":")
                errors.append(
                    RecordError(
                        obj,
                        row.get("Id") or row.get("sf__Id") or "",
                        code,
                        message.rstrip(":-"),
                        retryable=code in RETRYABLE_CODES,
                    )
                )
        return errors
    except SalesforceError as exc:
        raise translate(exc) from None
    except SalesforceOperationError as exc:
        raise PermanentError(f"Salesforce bulk ingest job failed: {exc}"[:500]) from None
