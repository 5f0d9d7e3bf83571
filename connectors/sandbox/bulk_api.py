"""Flask routes of Bulk API 2.0 (``/services/data/vXX.X/jobs/query`` and ``/jobs/ingest``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from .salesforce_api import DATA, _version, current_user, record_fault_hook
from .salesforce_bulk import BulkError, BulkJobs
from .wire import SF_JSON, json_body, json_response, sf_error

JOBS = f"{DATA}/v<version>/jobs"
CSV = "text/csv"

bp = Blueprint("salesforce_bulk", __name__)


def _jobs() -> BulkJobs:
    return current_app.config["SANDBOX"].salesforce.bulk


def _ok(body: Any, status: int = 200) -> Response:
    return json_response(body, status, content_type=SF_JSON)


def _body() -> Any:
    try:
        return json_body()
    except ValueError as exc:
        raise BulkError(400, "JSON_PARSER_ERROR", f"Unexpected body: {exc}") from exc


def _locked(call, *args: Any) -> Any:
    org = current_app.config["SANDBOX"].salesforce
    with org.lock:
        return call(*args)


# ---- query jobs -------------------------------------------------------------------------------
@bp.post(f"{JOBS}/query")
def create_query_job(version: str) -> Response:
    version = _version(version)
    return _ok(_locked(_jobs().create_query, _body(), current_user(), version))


@bp.get(f"{JOBS}/query")
def list_query_jobs(version: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().list, "query"))


@bp.get(f"{JOBS}/query/<job_id>")
def get_query_job(version: str, job_id: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().get, "query", job_id))


@bp.patch(f"{JOBS}/query/<job_id>")
def patch_query_job(version: str, job_id: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().set_state, "query", job_id, _body()))


@bp.delete(f"{JOBS}/query/<job_id>")
def delete_query_job(version: str, job_id: str) -> Response:
    _version(version)
    _locked(_jobs().delete, "query", job_id)
    return Response(status=204)


@bp.get(f"{JOBS}/query/<job_id>/results")
def query_job_results(version: str, job_id: str) -> Response:
    _version(version)
    text, locator, count = _locked(
        _jobs().query_results, job_id, request.args.get("locator"), request.args.get("maxRecords")
    )
    return Response(
        text,
        status=200,
        content_type=CSV,
        headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)},
    )


# ---- ingest jobs ------------------------------------------------------------------------------
@bp.post(f"{JOBS}/ingest")
def create_ingest_job(version: str) -> Response:
    version = _version(version)
    return _ok(
        _locked(_jobs().create_ingest, _body(), current_user(), version, record_fault_hook())
    )


@bp.get(f"{JOBS}/ingest")
def list_ingest_jobs(version: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().list, "ingest"))


@bp.get(f"{JOBS}/ingest/<job_id>")
def get_ingest_job(version: str, job_id: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().get, "ingest", job_id))


@bp.patch(f"{JOBS}/ingest/<job_id>")
def patch_ingest_job(version: str, job_id: str) -> Response:
    _version(version)
    return _ok(_locked(_jobs().set_state, "ingest", job_id, _body()))


@bp.delete(f"{JOBS}/ingest/<job_id>")
def delete_ingest_job(version: str, job_id: str) -> Response:
    _version(version)
    _locked(_jobs().delete, "ingest", job_id)
    return Response(status=204)


@bp.put(f"{JOBS}/ingest/<job_id>/batches")
def upload_ingest_data(version: str, job_id: str) -> Response:
    _version(version)
    _locked(_jobs().upload, job_id, request.get_data(cache=False))
    return Response(status=201)


@bp.get(f"{JOBS}/ingest/<job_id>/<kind>")
def ingest_job_results(version: str, job_id: str, kind: str) -> Response:
    _version(version)
    return Response(_locked(_jobs().ingest_results, job_id, kind), content_type=CSV)


@bp.errorhandler(BulkError)
def _bulk_error(exc: BulkError) -> Response:
    return sf_error(exc.status, exc.error_code, exc.message)
