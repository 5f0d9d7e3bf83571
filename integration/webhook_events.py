"""Webhook events: verifying what a CRM sent, parsing it, and storing it once.

Three sources, one table (``webhook_event``):

* ``hubspot``: HubSpot's v3 signature (HMAC-SHA256 over method, URI, body and
  timestamp, base64) within ``webhook_max_age_seconds``; a JSON array of events.
* ``salesforce``: an Outbound Message (SOAP); the org id must be a connected
  org's and the shared secret in the URL must match.
* ``json``: a bearer-token JSON body for Flow/Apex callouts.

An event is stored before anything else happens to it, keyed by
``(source, event_id)`` (the provider's id, prefixed with the portal, org or
connection it belongs to, since providers only promise uniqueness there): a
second delivery of a stored event inserts nothing, which is how replays are
told apart. Events that name no lead leadlift scores (a company changed, or
leadlift's own field was written) are stored already processed, with the reason
in ``outcome``, so they are audited but never re-pulled.

The functions here are pure where they can be; the web layer owns the HTTP
answers and the dispatch of stored leads to processing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import select

from integration.config import Settings
from integration.connections import decrypt_tokens
from integration.errors import ConfigError
from integration.store import Store
from integration.store.models import Connection, WebhookEvent, utcnow
from integration.store.upserts import dialect_insert

# CRM objects whose records are leads in the store (what a webhook re-pull rescores).
LEAD_OBJECTS = {"hubspot": ("contacts",), "salesforce": ("Lead", "Contact")}
# HubSpot's legacy subscription prefixes and generic objectTypeIds → API object names.
HUBSPOT_OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}
HUBSPOT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
MAX_EVENTS = 1000  # per request; HubSpot sends at most 100, Outbound Messages 100

# HubSpot decodes these percent-escapes in the URI before signing (v3 docs).
_URI_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_URI_ESCAPE = re.compile("|".join(_URI_DECODED), re.IGNORECASE)

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SOAP_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class WebhookRejected(Exception):
    """A request leadlift will not store; ``status`` is the HTTP answer it gets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ParsedEvent:
    """One event as stored: which connection and record it is about, and why it is
    already settled when nothing needs processing (``skip``)."""

    source: str
    event_id: str
    connection_id: int | None
    kind: str | None
    crm_object: str | None
    record_id: str | None
    payload: dict[str, Any]
    skip: str | None = None

    @property
    def lead_crm_id(self) -> str | None:
        """The record when it is a lead (kept on skipped events too, for the audit)."""
        is_lead = any(self.crm_object in objects for objects in LEAD_OBJECTS.values())
        return self.record_id if is_lead else None


@dataclass
class StoreResult:
    """What storing a request's events did; ``leads`` are (connection, lead) pairs with
    newly stored, unprocessed events: what the caller dispatches."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    leads: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "leads": len(self.leads),
        }


# ---- HubSpot -------------------------------------------------------------------------------


def signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the full URL with some percent-escapes decoded."""
    return _URI_ESCAPE.sub(lambda m: _URI_DECODED[m.group(0).upper()], uri)


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature: base64(HMAC-SHA256(secret, method + URI + body + timestamp)).
    The timestamp is the header's text as sent (a float rendering breaks it)."""
    message = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def lead_disqualified_event(
    event_id: int, portal_id: int, app_id: int, contact_id: str
) -> dict[str, Any]:
    """HubSpot's ``contact.propertyChange`` event for a lead status set to UNQUALIFIED,
    as its webhook sends it (the demo and the webhook bench send this one)."""
    return {
        "eventId": event_id, "subscriptionId": 1, "portalId": portal_id, "appId": app_id,
        "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": int(contact_id), "propertyName": "hs_lead_status",
        "propertyValue": "UNQUALIFIED", "changeSource": "CRM_UI",
    }  # fmt: skip


def signed_headers(secret: str, url: str, body: bytes) -> dict[str, str]:
    """The headers HubSpot sends with a webhook POST of ``body`` to ``url``, signed now."""
    stamp = str(int(time.time() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": hubspot_signature(secret, "POST", url, body, stamp),
    }


def check_timestamp(timestamp: str | None, max_age_seconds: int, now: float | None = None) -> None:
    """Reject a missing, unreadable, stale or far-future ``X-HubSpot-Request-Timestamp``."""
    if not timestamp:
        raise WebhookRejected(401, "missing X-HubSpot-Request-Timestamp")
    try:
        sent_ms = int(timestamp)
    except ValueError:
        raise WebhookRejected(401, "unreadable X-HubSpot-Request-Timestamp") from None
    age = (now if now is not None else time.time()) - sent_ms / 1000
    # A signed request is only proof of freshness inside the window, in both directions.
    if abs(age) > max_age_seconds:
        raise WebhookRejected(401, f"timestamp outside the {max_age_seconds} s window")


def verify_hubspot(
    secrets: Iterable[str],
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    max_age_seconds: int,
    now: float | None = None,
) -> None:
    """Raise ``WebhookRejected(401)`` unless the v3 signature is one of ``secrets``'."""
    check_timestamp(timestamp, max_age_seconds, now)
    if not signature:
        raise WebhookRejected(401, "missing X-HubSpot-Signature-v3")
    assert timestamp is not None
    given = signature.strip().encode()
    # Every candidate is compared, so timing does not tell which secret matched.
    matches = [
        hmac.compare_digest(hubspot_signature(s, method, uri, body, timestamp).encode(), given)
        for s in secrets
    ]
    if not any(matches):
        raise WebhookRejected(401, "bad signature")


def hubspot_secrets(store: Store, settings: Settings) -> list[str]:
    """The client secrets a HubSpot signature may be made with: the configured app's and
    those stored with HubSpot connections (a connection may carry its own app)."""
    found: list[str] = []
    if settings.hubspot_client_secret is not None:
        found.append(settings.hubspot_client_secret.get_secret_value())
    with store.session() as session:
        blobs = session.scalars(select(Connection.tokens).where(Connection.crm == "hubspot"))
        for blob in blobs:
            try:
                secret = decrypt_tokens(settings, blob).get("client_secret")
            except ConfigError:
                continue
            if secret:
                found.append(secret)
    return list(dict.fromkeys(s for s in found if s))


def _hubspot_object(event: dict[str, Any]) -> str | None:
    kind = str(event.get("subscriptionType") or "")
    prefix = kind.split(".", 1)[0]
    if prefix == "object":
        return HUBSPOT_TYPE_IDS.get(str(event.get("objectTypeId") or ""))
    return HUBSPOT_OBJECTS.get(prefix)


def parse_hubspot(
    body: bytes, connections: dict[str, int], property_prefix: str
) -> list[ParsedEvent]:
    """HubSpot's JSON array of events → stored events. ``connections``: portal id →
    connection id. Raises ``WebhookRejected(400)`` with the reason when malformed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise WebhookRejected(400, "body must be a non-empty JSON array of events")
    if len(data) > MAX_EVENTS:
        raise WebhookRejected(400, f"more than {MAX_EVENTS} events in one request")
    out = []
    for n, event in enumerate(data):
        if not isinstance(event, dict):
            raise WebhookRejected(400, f"event {n} is not an object")
        for key in ("eventId", "portalId", "objectId", "subscriptionType"):
            if event.get(key) in (None, ""):
                raise WebhookRejected(400, f"event {n} has no {key}")
        portal = str(event["portalId"])
        obj = _hubspot_object(event)
        skip = None
        connection_id = connections.get(portal)
        if connection_id is None:
            skip = f"no connection for portal {portal}"
        elif obj not in LEAD_OBJECTS["hubspot"]:
            skip = f"{event['subscriptionType']} is not about a lead; the next sync reads it"
        elif str(event.get("propertyName") or "").startswith(property_prefix):
            # leadlift's own write-back echoing back: rescoring on it would loop.
            skip = "leadlift's own field"
        out.append(
            ParsedEvent(
                "hubspot", f"{portal}:{event['eventId']}", connection_id,
                str(event["subscriptionType"])[:60], obj, str(event["objectId"]), event, skip,
            )
        )  # fmt: skip
    return out


def _active_by_external_id(store: Store, crm: str) -> list[tuple[str, int]]:
    """(org or portal id, connection id) of the active connections to ``crm``: a
    disconnected one receives no events."""
    with store.session() as session:
        rows = session.execute(
            select(Connection.external_id, Connection.id).where(
                Connection.crm == crm,
                Connection.external_id.is_not(None),
                Connection.status == "active",
            )
        ).all()
    return [(str(external), cid) for external, cid in rows]


def portal_connections(store: Store) -> dict[str, int]:
    return dict(_active_by_external_id(store, "hubspot"))


# ---- Salesforce Outbound Messages ------------------------------------------------------------


def org_key(org_id: str) -> str:
    """Salesforce ids come in a case-sensitive 15-char form and an 18-char form that
    adds a checksum; the first 15 characters identify the org either way."""
    return org_id.strip()[:15]


def check_shared_secret(configured: str | None, given: str | None) -> None:
    if not configured:
        raise WebhookRejected(403, "set LEADLIFT_SALESFORCE_WEBHOOK_SECRET to enable this endpoint")
    if given is None or not hmac.compare_digest(given.encode(), configured.encode()):
        raise WebhookRejected(401, "bad or missing secret")


def _safe_xml(body: bytes) -> ElementTree.Element:
    """Parse without DTDs: SOAP forbids them, and refusing them outright rules out
    entity expansion (billion laughs) and external entities."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise WebhookRejected(400, "XML with a DTD or entities is not accepted")
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise WebhookRejected(400, f"body is not XML: {exc}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip() or None
    return None


def parse_outbound(body: bytes, connections: dict[str, int]) -> tuple[str, list[ParsedEvent]]:
    """An Outbound Message → (org id, stored events). ``connections``: org key (15
    chars) → connection id; an org that is not connected is rejected (403)."""
    root = _safe_xml(body)
    notifications = next((e for e in root.iter() if _local(e.tag) == "notifications"), None)
    if notifications is None:
        raise WebhookRejected(400, "no notifications element in the SOAP body")
    org = _child_text(notifications, "OrganizationId")
    if not org:
        raise WebhookRejected(400, "no OrganizationId")
    connection_id = connections.get(org_key(org))
    if connection_id is None:
        raise WebhookRejected(403, "OrganizationId is not a connected org")
    action = _child_text(notifications, "ActionId")
    out = []
    items = [e for e in notifications if _local(e.tag) == "Notification"]
    if not items:
        raise WebhookRejected(400, "no Notification elements")
    if len(items) > MAX_EVENTS:
        raise WebhookRejected(400, f"more than {MAX_EVENTS} notifications in one request")
    for n, item in enumerate(items):
        event_id = _child_text(item, "Id")
        sobject = next((e for e in item if _local(e.tag) == "sObject"), None)
        if not event_id or sobject is None:
            raise WebhookRejected(400, f"notification {n} has no Id or sObject")
        obj = (sobject.get(f"{{{XSI_NS}}}type") or "").rsplit(":", 1)[-1] or None
        fields = {_local(c.tag): (c.text or "").strip() for c in sobject}
        record_id = fields.get("Id")
        if not record_id:
            raise WebhookRejected(400, f"notification {n} has an sObject without Id")
        skip = None if obj in LEAD_OBJECTS["salesforce"] else f"{obj} is not a lead object"
        payload = {"organization_id": org, "action_id": action, "object": obj, "fields": fields}
        out.append(
            ParsedEvent(
                "salesforce", f"{org_key(org)}:{event_id}", connection_id,
                "outbound_message", obj, record_id, payload, skip,
            )
        )  # fmt: skip
    return org, out


def org_connections(store: Store) -> dict[str, int]:
    return {org_key(external): cid for external, cid in _active_by_external_id(store, "salesforce")}


# ---- the token-authenticated JSON endpoint ------------------------------------------------


def check_bearer(configured: str | None, header: str | None) -> None:
    if not configured:
        raise WebhookRejected(403, "set LEADLIFT_WEBHOOK_TOKEN to enable this endpoint")
    header = header or ""
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), configured.encode()):
        raise WebhookRejected(401, "a valid bearer token is required")


def parse_json_events(
    body: bytes, resolve: Callable[[str | None], tuple[int, str]]
) -> list[ParsedEvent]:
    """``{"connection": name?, "events": [{"id", "object", "record_id"}...]}`` → stored
    events. ``resolve(name)`` → (connection id, crm) or raises ``WebhookRejected``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise WebhookRejected(400, 'body must be an object with an "events" array')
    events = data["events"]
    if not events or len(events) > MAX_EVENTS:
        raise WebhookRejected(400, f"between 1 and {MAX_EVENTS} events are expected")
    name = data.get("connection")
    if name is not None and not isinstance(name, str):
        raise WebhookRejected(400, '"connection" must be a connection name')
    connection_id, crm = resolve(name)
    out = []
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise WebhookRejected(400, f"event {n} is not an object")
        missing = [k for k in ("id", "object", "record_id") if event.get(k) in (None, "")]
        if missing:
            raise WebhookRejected(400, f"event {n} has no {', '.join(missing)}")
        obj = str(event["object"])
        skip = None if obj in LEAD_OBJECTS[crm] else f"{obj} is not a lead object in {crm}"
        out.append(
            ParsedEvent(
                "json", f"{connection_id}:{event['id']}", connection_id,
                str(event.get("kind") or "record_changed")[:60], obj, str(event["record_id"]),
                event, skip,
            )
        )  # fmt: skip
    return out


# ---- dispatch: the seam tasks/ fills in -------------------------------------------------------

Dispatch = Callable[[Settings, Sequence[tuple[int, str]]], None]
_dispatch: list[Dispatch] = []


def set_dispatch(dispatch: Dispatch | None) -> None:
    """Install how stored leads reach processing (tasks.webhooks installs a Celery one;
    integration never imports Celery). ``None`` removes it."""
    _dispatch.clear()
    if dispatch is not None:
        _dispatch.append(dispatch)


def installed_dispatch() -> Dispatch | None:
    return _dispatch[0] if _dispatch else None


# ---- storing ---------------------------------------------------------------------------------


def store_events(store: Store, events: Sequence[ParsedEvent]) -> StoreResult:
    """Insert the events not stored before, in one transaction; duplicates (by source and
    event id, also those repeated within the request) insert nothing."""
    result = StoreResult(received=len(events))
    now = utcnow()
    unique = list({(e.source, e.event_id): e for e in events}.values())
    rows = [
        {
            "connection_id": e.connection_id,
            "source": e.source,
            "event_id": e.event_id[:120],
            "kind": e.kind,
            "crm_object": e.crm_object,
            "lead_crm_id": e.lead_crm_id,
            "received_at": now,
            "payload": e.payload,
            "processed_at": now if e.skip else None,
            "outcome": {"status": "skipped", "reason": e.skip} if e.skip else {},
        }
        for e in unique
    ]
    with store.session() as session:
        statement = (
            dialect_insert(session, WebhookEvent.__table__)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(WebhookEvent.__table__.c.event_id)
        )
        inserted = set(session.execute(statement).scalars())
    result.stored = len(inserted)
    result.duplicates = len(events) - len(inserted)
    leads: dict[tuple[int, str], None] = {}
    for e in unique:
        if e.event_id[:120] not in inserted:
            continue
        if e.skip:
            result.skipped += 1
        elif e.connection_id is not None and e.lead_crm_id is not None:
            leads[(e.connection_id, e.lead_crm_id)] = None
    result.leads = list(leads)
    return result
