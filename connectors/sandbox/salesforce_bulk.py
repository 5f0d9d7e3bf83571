"""Bulk API 2.0 query and ingest jobs of the sandbox org (``/services/data/vXX.X/jobs/``).

Jobs live in memory. A job answers ``InProgress`` to the first
``config.bulk_polls_to_complete`` state polls and ``JobComplete`` after that. Query jobs
select their rows when created and render CSV pages on demand (vectorised per column);
ingest jobs apply their rows through `salesforce_write.write_rows` when they complete.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .ids import BULK_JOB_PREFIX, random_sf_id
from .salesforce_schema import (
    CREATEABLE_OBJECTS,
    DELETABLE_OBJECTS,
    UPDATEABLE_OBJECTS,
    FieldDef,
)
from .salesforce_write import SKIP, RecordFault, WriteResult, error_text, write_rows
from .soql import SoqlError, parse
from .table import Table
from .timefmt import sf_datetime

if TYPE_CHECKING:
    from .salesforce_org import SalesforceOrg

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
RESULT_KINDS = {
    "successfulresults": "successfulResults",
    "failedresults": "failedResults",
    "unprocessedrecords": "unprocessedrecords",
}
TERMINAL = ("JobComplete", "Failed", "Aborted")
RECORDS_PER_BATCH = 10_000
MAX_JOBS = 500  # oldest finished jobs are forgotten beyond this (Salesforce keeps 7 days)


class BulkError(Exception):
    """A Bulk API 2.0 request error (JSON error array with ``status``)."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass
class BulkJob:
    """One Bulk API 2.0 job."""

    id: str
    kind: str  # "query" | "ingest"
    operation: str
    sobject: str
    user: str | None
    version: str
    created: str
    modstamp: str
    state: str
    line_ending: str = "LF"
    column_delimiter: str = "COMMA"
    polls_left: int = 0
    processing_ms: int = 0
    error_message: str | None = None
    # query jobs
    fields: list[FieldDef] = field(default_factory=list)
    positions: np.ndarray | None = None
    # ingest jobs
    external_id: str | None = None
    uploads: list[bytes] = field(default_factory=list)
    uploaded_bytes: int = 0
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    result: WriteResult | None = None
    record_fault: RecordFault | None = None

    @property
    def delimiter(self) -> str:
        return DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]


def encode_locator(offset: int) -> str:
    """Salesforce-style locator: base64 of the row offset (``MTAwMDA`` = 10000)."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


# ---- CSV rendering of query results (vectorised per column) -----------------------------------
def csv_column(fdef: FieldDef, values: np.ndarray) -> list[str]:
    """Render one column as Bulk API CSV cells: quoted values, empty for null."""
    if fdef.kind == "bool":
        return np.where(values, '"true"', '"false"').tolist()
    if fdef.kind == "datetime":
        unit = "D" if fdef.type == "date" else "ms"
        text = np.datetime_as_string(values.astype(f"datetime64[{unit}]"), unit=unit)
        cells = np.char.add(np.char.add('"', text), '"' if unit == "D" else 'Z"')
        nat = np.isnat(values)
        if nat.any():
            cells = np.where(nat, "", cells)
        return cells.tolist()
    if fdef.kind == "num":
        out = np.full(len(values), "", dtype=object)
        present = ~np.isnan(values)
        integral = present & (np.abs(values) < 1e15)
        integral[integral] = values[integral] == np.round(values[integral])
        if integral.any():
            digits = values[integral].astype(np.int64).astype(str)
            out[integral] = np.char.add(np.char.add('"', digits), '"').tolist()
        other = present & ~integral
        if other.any():
            out[other] = [f'"{v!r}"' for v in values[other].tolist()]
        return out.tolist()
    return [
        "" if v is None else '"' + (v if '"' not in v else v.replace('"', '""')) + '"'
        for v in values.tolist()
    ]


def csv_page(table: Table, fields: list[FieldDef], positions: np.ndarray, job: BulkJob) -> str:
    """Render a query-result page: header row plus one row per position."""
    sep, newline = job.delimiter, job.newline
    header = sep.join(f'"{f.name}"' for f in fields)
    if not len(positions):
        return header + newline
    columns = [csv_column(f, table.col(f.name)[positions]) for f in fields]
    body = newline.join(map(sep.join, zip(*columns, strict=True)))
    return header + newline + body + newline


def _csv_text(rows: list[list[Any]], newline: str, delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return buffer.getvalue()


class BulkJobs:
    """The org's Bulk API 2.0 jobs (every method runs under ``org.lock``)."""

    def __init__(self, org: SalesforceOrg):
        self.org = org
        self.jobs: OrderedDict[str, BulkJob] = OrderedDict()

    # ---- helpers -----------------------------------------------------------------------------
    def _add(self, job: BulkJob) -> None:
        self.jobs[job.id] = job
        if len(self.jobs) > MAX_JOBS:
            old = next((j for j in self.jobs.values() if j.state in TERMINAL), None)
            if old is not None:
                del self.jobs[old.id]

    def _now(self) -> str:
        return sf_datetime(self.org.now64())

    def _job(self, kind: str, job_id: str) -> BulkJob:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    @staticmethod
    def _format(body: dict[str, Any]) -> tuple[str, str]:
        content_type = body.get("contentType", "CSV")
        if content_type != "CSV":
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid contentType: {content_type}")
        delimiter = body.get("columnDelimiter") or "COMMA"
        if delimiter not in DELIMITERS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid columnDelimiter: {delimiter}")
        ending = body.get("lineEnding") or "LF"
        if ending not in LINE_ENDINGS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid lineEnding: {ending}")
        return delimiter, ending

    def info(self, job: BulkJob, full: bool = True) -> dict[str, Any]:
        """Return the job-info JSON (``full`` adds the counters a GET returns)."""
        body: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.sobject,
            "createdById": job.user or self.org.integration_user_id,
            "createdDate": job.created,
            "systemModstamp": job.modstamp,
            "state": job.state,
        }
        if job.external_id:
            body["externalIdFieldName"] = job.external_id
        body.update(
            {
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(job.version),
            }
        )
        if job.kind == "ingest":
            body["contentUrl"] = f"services/data/v{job.version}/jobs/ingest/{job.id}/batches"
        body.update({"lineEnding": job.line_ending, "columnDelimiter": job.column_delimiter})
        if not full:
            return body
        if job.kind == "query":
            body["jobType"] = "V2Query"
            done = job.state == "JobComplete" and job.positions is not None
            body["numberRecordsProcessed"] = len(job.positions) if done else 0
            body["retries"] = 0
            body["totalProcessingTime"] = job.processing_ms
            body["isPkChunkingSupported"] = True
        else:
            body["jobType"] = "V2Ingest"
            processed = failed = 0
            if job.result is not None:
                processed = len(job.result.errors)
                failed = int(job.result.failed.sum())
            body["numberRecordsProcessed"] = processed
            body["numberRecordsFailed"] = failed
            body["retries"] = 0
            body["totalProcessingTime"] = job.processing_ms
            body["apiActiveProcessingTime"] = job.processing_ms
            body["apexProcessingTime"] = 0
        if job.error_message:
            body["errorMessage"] = job.error_message
        return body

    def _advance(self, job: BulkJob) -> None:
        if job.state not in ("UploadComplete", "InProgress"):
            return
        if job.polls_left > 0:
            job.polls_left -= 1
            job.state = "InProgress"
            job.modstamp = self._now()
            return
        self._complete(job)

    def _complete(self, job: BulkJob) -> None:
        started = time.perf_counter()
        if job.kind == "ingest":
            self._process(job)
        if job.state != "Failed":
            job.state = "JobComplete"
        job.processing_ms += int((time.perf_counter() - started) * 1000)
        job.modstamp = self._now()

    # ---- query jobs --------------------------------------------------------------------------
    def create_query(self, body: Any, user: str | None, version: str) -> dict[str, Any]:
        """Create a query job (``POST jobs/query``).

        Raises:
            BulkError: bad job options or the daily job limit.
            SoqlError: the query does not parse or names unknown fields.
        """
        if not isinstance(body, dict):
            raise BulkError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise BulkError(400, "INVALIDJOB", "InvalidJob : query is required")
        delimiter, ending = self._format(body)
        org = self.org
        limit = org.config.bulk_daily_query_jobs
        if org.bulk_query_jobs_used >= limit:
            raise BulkError(
                400,
                "LIMIT_EXCEEDED",
                f"Max bulk v2 query jobs ({limit}) per 24 hrs has been reached",
            )
        query = parse(soql)
        if query.count or query.count_field is not None:
            raise BulkError(
                400, "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0 query jobs"
            )
        if query.offset:
            raise BulkError(400, "API_ERROR", "OFFSET is not supported by Bulk API 2.0 query jobs")
        schema, fields, positions = org.select(
            query, include_deleted=operation == "queryAll", user=user
        )
        org.bulk_query_jobs_used += 1
        now = self._now()
        job = BulkJob(
            id=random_sf_id(BULK_JOB_PREFIX),
            kind="query",
            operation=operation,
            sobject=schema.name,
            user=user,
            version=version,
            created=now,
            modstamp=now,
            state="UploadComplete",
            line_ending=ending,
            column_delimiter=delimiter,
            polls_left=max(int(org.config.bulk_polls_to_complete), 0),
            fields=fields,
            positions=positions,
        )
        self._add(job)
        response = self.info(job, full=False)
        if job.polls_left == 0:
            self._complete(job)
        return response

    def query_results(
        self, job_id: str, locator: str | None, max_records: str | None
    ) -> tuple[str, str, int]:
        """Return (CSV page, next locator or ``"null"``, rows in the page)."""
        job = self._job("query", job_id)
        if job.state != "JobComplete":
            status = {
                "UploadComplete": "UPLOAD_COMPLETE",
                "InProgress": "IN_PROGRESS",
                "Aborted": "ABORTED",
                "Failed": "FAILED",
            }.get(job.state, job.state.upper())
            raise BulkError(
                412,
                "JOB_NOT_COMPLETE",
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {status}",
            )
        assert job.positions is not None
        offset = 0
        if locator:
            decoded = decode_locator(locator)
            if decoded is None or decoded > len(job.positions):
                raise BulkError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}")
            offset = decoded
        size = self.org.config.bulk_default_page_rows
        if max_records not in (None, ""):
            if not str(max_records).isdigit() or int(str(max_records)) < 1:
                raise BulkError(
                    400, "INVALIDREQUEST", f"maxRecords must be a positive integer: {max_records}"
                )
            size = int(str(max_records))
        page = job.positions[offset : offset + size]
        end = offset + len(page)
        text = csv_page(self.org.tables[job.sobject], job.fields, page, job)
        next_locator = encode_locator(end) if end < len(job.positions) else "null"
        return text, next_locator, len(page)

    # ---- ingest jobs -------------------------------------------------------------------------
    def create_ingest(
        self,
        body: Any,
        user: str | None,
        version: str,
        record_fault: RecordFault | None = None,
    ) -> dict[str, Any]:
        """Create an ingest job (``POST jobs/ingest``) in state Open.

        Args:
            body: the job request.
            user: the API user (field-level security, ``createdById``).
            version: API version of the request.
            record_fault: per-record fault hook applied when the job's rows are written.
        """
        if not isinstance(body, dict):
            raise BulkError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise BulkError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if operation == "hardDelete":
            raise BulkError(
                400,
                "FEATURENOTENABLED",
                "hardDelete needs the Bulk API Hard Delete permission, which the API user lacks",
            )
        sobject = self.org.object_name(str(body.get("object") or ""))
        allowed = {
            "insert": CREATEABLE_OBJECTS,
            "update": UPDATEABLE_OBJECTS,
            "upsert": CREATEABLE_OBJECTS & UPDATEABLE_OBJECTS,
            "delete": DELETABLE_OBJECTS,
        }[operation]
        if sobject is None or sobject not in allowed:
            raise BulkError(
                400,
                "INVALIDJOB",
                f"InvalidJob : Entity '{body.get('object')}' is not supported by the Bulk API "
                f"for {operation}.",
            )
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external:
                raise BulkError(400, "INVALIDJOB", "InvalidJob : External ID was blank for upsert")
            if str(external).lower() != "id":
                raise BulkError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {external} is not an External ID or "
                    f"indexed field for {sobject}",
                )
            external = "Id"
        delimiter, ending = self._format(body)
        if self.org.bulk_batches_used >= self.org.config.bulk_daily_batches:
            raise BulkError(
                400,
                "LIMIT_EXCEEDED",
                "Exceeded max number of Bulk API batches allowed in a 24 hour period",
            )
        now = self._now()
        job = BulkJob(
            id=random_sf_id(BULK_JOB_PREFIX),
            kind="ingest",
            operation=operation,
            sobject=sobject,
            user=user,
            version=version,
            created=now,
            modstamp=now,
            state="Open",
            line_ending=ending,
            column_delimiter=delimiter,
            external_id=external if operation == "upsert" else None,
            record_fault=record_fault,
        )
        self._add(job)
        return self.info(job, full=False)

    def upload(self, job_id: str, data: bytes) -> None:
        """Append CSV data to an Open ingest job (``PUT jobs/ingest/{id}/batches``)."""
        job = self._job("ingest", job_id)
        if job.state != "Open":
            raise BulkError(
                409 if job.state in TERMINAL else 400,
                "INVALIDJOBSTATE",
                f"Job {job.id} is not open for data upload (state {job.state})",
            )
        if not data:
            raise BulkError(400, "INVALIDREQUEST", "No CSV data in the request body")
        limit = self.org.config.bulk_max_upload_bytes
        if job.uploaded_bytes + len(data) > limit:
            raise BulkError(
                400,
                "INVALIDREQUEST",
                f"Job data exceeds the maximum of {limit // (1024 * 1024)} MB for one job",
            )
        job.uploads.append(data)
        job.uploaded_bytes += len(data)

    def _parse(self, job: BulkJob) -> str | None:
        """Parse the uploads into header and rows; return an error message or None."""
        if job.header or not job.uploads:
            return None if job.header else "InvalidBatch : No data found in the job"
        header: list[str] | None = None
        rows: list[list[str]] = []
        for data in job.uploads:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                return "InvalidBatch : The CSV data is not valid UTF-8"
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=job.delimiter)
            chunk_header = next(reader, None)
            if not chunk_header:
                continue
            if header is None:
                header = chunk_header
            elif chunk_header != header:
                return "InvalidBatch : All uploads of a job must have the same header row"
            rows.extend(reader)
        if header is None:
            return "InvalidBatch : No data found in the job"
        names = [h.strip() for h in header]
        if any(not n for n in names):
            return "InvalidBatch : Field name is empty in the header row"
        lowered = [n.lower() for n in names]
        dup = next((n for n in names if lowered.count(n.lower()) > 1), None)
        if dup:
            return f"InvalidBatch : Duplicate field name: {dup}"
        rows = [r for r in rows if r]
        bad = next((i for i, r in enumerate(rows, start=2) if len(r) != len(names)), None)
        job.header, job.rows = names, rows
        if bad is not None:
            return f"InvalidBatch : Wrong number of columns in row {bad}"
        return None

    def _process(self, job: BulkJob) -> None:
        error = self._parse(job)
        if error:
            job.state = "Failed"
            job.error_message = error
            return
        org = self.org
        n = len(job.rows)
        columns = []
        for k in range(len(job.header)):
            column = np.empty(n, dtype=object)
            column[:] = [row[k] for row in job.rows]
            if job.operation in ("update", "upsert"):
                column[column == ""] = SKIP
            else:
                column[column == ""] = None
            column[column == "#N/A"] = None
            columns.append(column)
        if job.operation in ("update", "upsert"):
            # an empty Id cell is a missing id, not "leave unchanged"
            for name, column in zip(job.header, columns, strict=True):
                if name.lower() == "id":
                    column[np.array([v is SKIP for v in column.tolist()], dtype=bool)] = None
        job.result = write_rows(
            org, job.sobject, job.operation, job.header, columns, job.user, job.record_fault
        )
        org.bulk_batches_used += max(1, math.ceil(n / RECORDS_PER_BATCH))

    def ingest_results(self, job_id: str, kind: str) -> str:
        """Return successfulResults / failedResults / unprocessedrecords CSV."""
        job = self._job("ingest", job_id)
        which = RESULT_KINDS.get(kind.lower())
        if which is None:
            raise BulkError(404, "NOT_FOUND", "The requested resource does not exist")
        newline, sep = job.newline, job.delimiter
        if which == "unprocessedrecords":
            if job.state == "Open":
                raise BulkError(
                    400,
                    "INVALIDJOBSTATE",
                    "Unprocessed records are available once the job is closed",
                )
            if job.result is not None:
                return _csv_text([job.header], newline, sep)
            self._parse(job)
            return _csv_text([job.header, *job.rows], newline, sep) if job.header else ""
        if job.state not in TERMINAL:
            status = job.state.upper()
            raise BulkError(
                412,
                "JOB_NOT_COMPLETE",
                f"Results are available once the job is complete. Current status: {status}",
            )
        result = job.result
        if which == "successfulResults":
            out: list[list[Any]] = [["sf__Id", "sf__Created", *job.header]]
            if result is not None:
                for i in np.flatnonzero(~result.failed).tolist():
                    created = "true" if result.created[i] else "false"
                    out.append([result.ids[i] or "", created, *job.rows[i]])
            return _csv_text(out, newline, sep)
        out = [["sf__Id", "sf__Error", *job.header]]
        if result is not None:
            for i in np.flatnonzero(result.failed).tolist():
                out.append([result.ids[i] or "", error_text(result.errors[i]), *job.rows[i]])
        return _csv_text(out, newline, sep)

    # ---- common ------------------------------------------------------------------------------
    def get(self, kind: str, job_id: str) -> dict[str, Any]:
        """Job info; each poll moves a processing job one step towards JobComplete."""
        job = self._job(kind, job_id)
        self._advance(job)
        return self.info(job)

    def set_state(self, kind: str, job_id: str, body: Any) -> dict[str, Any]:
        """``PATCH`` a job: ``UploadComplete`` (ingest) or ``Aborted``."""
        job = self._job(kind, job_id)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            if job.state in TERMINAL:
                raise BulkError(
                    400,
                    "INVALIDJOBSTATE",
                    f"Aborting already {'Completed' if job.state == 'JobComplete' else job.state} "
                    "Job not allowed",
                )
            job.state = "Aborted"
            job.modstamp = self._now()
            return self.info(job, full=False)
        if state == "UploadComplete" and kind == "ingest":
            if job.state != "Open":
                raise BulkError(
                    400, "INVALIDJOBSTATE", f"Job {job.id} is not Open (state {job.state})"
                )
            job.state = "UploadComplete"
            job.modstamp = self._now()
            job.polls_left = max(int(self.org.config.bulk_polls_to_complete), 0)
            response = self.info(job, full=False)
            if job.polls_left == 0:
                self._complete(job)
            return response
        raise BulkError(400, "INVALIDJOBSTATE", f"Invalid state transition requested: {state}")

    def delete(self, kind: str, job_id: str) -> None:
        job = self._job(kind, job_id)
        allowed = TERMINAL if kind == "query" else (*TERMINAL, "UploadComplete")
        if job.state not in allowed:
            raise BulkError(
                400, "INVALIDJOBSTATE", f"Deleting a job in state {job.state} is not allowed"
            )
        del self.jobs[job_id]

    def list(self, kind: str) -> dict[str, Any]:
        return {
            "done": True,
            "records": [self.info(j, full=False) for j in self.jobs.values() if j.kind == kind],
            "nextRecordsUrl": None,
        }


__all__ = ["BulkError", "BulkJob", "BulkJobs", "SoqlError", "csv_column", "csv_page"]
