"""The Metadata API SOAP endpoint (``POST /services/Soap/m/{version}``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .salesforce_api import current_user
from .salesforce_metadata import SoapFault, fault_envelope

SOAP_PATH = "/services/Soap/m/<version>"
XML = "text/xml; charset=utf-8"

bp = Blueprint("salesforce_metadata", __name__)


def soap_fault(code: str, message: str, status: int = 500) -> Response:
    """A SOAP fault response (Salesforce answers faults with HTTP 500)."""
    return Response(fault_envelope(code, message), status=status, content_type=XML)


@bp.post(SOAP_PATH)
def metadata_call(version: str) -> Response:
    org = current_app.config["SANDBOX"].salesforce
    try:
        body = org.metadata.handle(request.get_data(cache=True), current_user())
    except SoapFault as exc:
        return soap_fault(exc.code, exc.message, exc.status)
    return Response(body, status=200, content_type=XML)
