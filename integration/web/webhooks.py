"""Webhook endpoints: verify, store, acknowledge, dispatch. No CRM call is made here.

``POST /webhooks/hubspot``
    HubSpot's v3 signature (``X-HubSpot-Signature-v3``, ``X-HubSpot-Request-Timestamp``)
    over the full URL this app was called on. 401 on a missing, stale or wrong
    signature (a stale timestamp is an authentication failure: the signature no
    longer proves the request is fresh; HubSpot does not retry 4xx answers),
    400 with a reason on a malformed body, 409 when every event was stored
    before (a replay), else 200 with counts. Events name the portal; a portal's
    connection is the one whose ``external_id`` is the portal (hub) id.

``POST /webhooks/salesforce?secret=<LEADLIFT_SALESFORCE_WEBHOOK_SECRET>``
    A Salesforce Outbound Message (SOAP). 401 on a wrong secret, 403 when the
    OrganizationId is not a connected org (15- or 18-character form), 400 on bad
    XML; otherwise the SOAP ``<Ack>true</Ack>`` envelope (also for a replay, since
    Salesforce resends until it is acknowledged).

``POST /webhooks/events``
    For Flow/Apex callouts: ``Authorization: Bearer <LEADLIFT_WEBHOOK_TOKEN>`` and
    ``{"connection": "<name>" (optional when one connection exists),
    "events": [{"id": "<unique id>", "object": "Lead", "record_id": "00Q...",
    "kind": "record_changed" (optional)}]}``. 401 on a bad token, 400 on a
    malformed body, 409 on a full replay, else 200 with counts.

After storing (and committing) the events, the leads they name are handed to the
installed dispatch (Celery's, installed by ``tasks.webhooks``). Without one and
without a broker (the embedded mode) they are processed in this process after
storing; with a broker but no dispatch installed they wait for the sweeper.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from flask import Blueprint, Response, jsonify, request

from integration.config import secret_value
from integration.errors import LeadliftError, NotFoundError
from integration.lead_refresh import refresh_leads
from integration.store.models import Connection
from integration.webhook_events import (
    SOAP_ACK,
    ParsedEvent,
    StoreResult,
    WebhookRejected,
    check_bearer,
    check_shared_secret,
    hubspot_secrets,
    installed_dispatch,
    org_connections,
    parse_hubspot,
    parse_json_events,
    parse_outbound,
    portal_connections,
    store_events,
    verify_hubspot,
)

from .context import app_settings, app_store

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


@bp.errorhandler(WebhookRejected)
def _rejected(exc: WebhookRejected):
    log.info("webhook rejected (%s): %s", exc.status, exc.reason)
    return jsonify(error=exc.reason), exc.status


def _dispatch(pairs: Sequence[tuple[int, str]]) -> None:
    """Hand newly stored leads to processing; never fails the request (the events are
    stored and the sweeper retries them)."""
    if not pairs:
        return
    settings = app_settings()
    dispatch = installed_dispatch()
    try:
        if dispatch is not None:
            dispatch(settings, pairs)
        elif settings.broker_url is None:
            by_connection: dict[int, list[str]] = defaultdict(list)
            for connection_id, lead in pairs:
                by_connection[connection_id].append(lead)
            for connection_id, leads in by_connection.items():
                refresh_leads(app_store(), settings, connection_id, leads)
        else:
            log.warning("no webhook dispatch installed: events wait for the sweeper")
    except LeadliftError as exc:
        log.warning("webhook processing deferred: %s", exc.message)
    except Exception:
        # The events are committed: failing the request now would only make the CRM
        # resend what is stored (a replay); the sweeper processes them instead.
        log.exception("webhook processing deferred")


def _answer(result: StoreResult, started: float):
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    body = result.as_dict() | {"latency_ms": latency_ms}
    if result.received and result.duplicates == result.received:
        return jsonify(body | {"error": "replay: every event was received before"}), 409
    return jsonify(body), 200


def _store_and_dispatch(events: list[ParsedEvent]) -> StoreResult:
    result = store_events(app_store(), events)
    _dispatch(result.leads)
    return result


@bp.post("/hubspot")
def hubspot():
    started = time.perf_counter()
    settings, store = app_settings(), app_store()
    body = request.get_data(cache=False)  # the raw bytes are what was signed
    verify_hubspot(
        hubspot_secrets(store, settings),
        request.method,
        request.url,
        body,
        request.headers.get("X-HubSpot-Signature-v3"),
        request.headers.get("X-HubSpot-Request-Timestamp"),
        settings.webhook_max_age_seconds,
    )
    events = parse_hubspot(body, portal_connections(store), settings.hubspot_property_prefix)
    return _answer(_store_and_dispatch(events), started)


@bp.post("/salesforce")
def salesforce():
    settings, store = app_settings(), app_store()
    check_shared_secret(
        secret_value(settings.salesforce_webhook_secret), request.args.get("secret")
    )
    _, events = parse_outbound(request.get_data(cache=False), org_connections(store))
    _store_and_dispatch(events)
    return Response(SOAP_ACK, status=200, content_type="text/xml; charset=utf-8")


@bp.post("/events")
def events():
    started = time.perf_counter()
    settings, store = app_settings(), app_store()
    check_bearer(secret_value(settings.webhook_token), request.headers.get("Authorization"))

    def resolve(name: str | None) -> tuple[int, str]:
        from integration.connections import get_connection

        try:
            connection: Connection = get_connection(store, name)
        except NotFoundError as exc:
            raise WebhookRejected(400, exc.message) from None
        return connection.id, connection.crm

    parsed = parse_json_events(request.get_data(cache=False), resolve)
    return _answer(_store_and_dispatch(parsed), started)
