"""Webhooks end to end: signed requests into the web app, events stored, the lead
re-pulled from the sandbox CRM over HTTPS, rescored with the trained model and its
score written back into the sandbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import count

import pytest
import redis
from hubspot.utils.signature import Signature
from sqlalchemy import func, select, update

from integration.connections import get_connection
from integration.pipeline import run_cycle
from integration.scoring import latest_scores
from integration.store.models import Connection, PipelineRun, Score, WebhookEvent, utcnow
from integration.web import create_app
from integration.webhook_events import (
    SOAP_ACK,
    ParsedEvent,
    hubspot_signature,
    set_dispatch,
    signed_uri,
    store_events,
)
from integration.world import World, generate_world
from tests.integration.conftest import NOW, Rig, make_rig

HUBSPOT_URL = "http://localhost/webhooks/hubspot"
REDIS_URL = "redis://127.0.0.1:6379/14"
_event_ids = count(1000)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(n_leads=3000, seed=11, now=NOW)


@pytest.fixture(scope="module")
def hubspot_rig(world, tmp_path_factory) -> Iterator[Rig]:
    """A HubSpot portal synced, trained, scored and written back once, with the portal
    id recorded on the connection (what routes a webhook to it)."""
    with make_rig(world, tmp_path_factory.mktemp("hubspot"), webhook_debounce_seconds=0) as rig:
        name = rig.connect("hubspot")
        run_cycle(rig.store, rig.settings, name, now=NOW)
        with rig.store.session() as session:
            session.execute(
                update(Connection).values(external_id=str(rig.sandbox.config.hubspot_hub_id))
            )
        yield rig


@pytest.fixture(autouse=True)
def _no_dispatch() -> Iterator[None]:
    set_dispatch(None)
    yield
    set_dispatch(None)


def _client(rig: Rig):
    return create_app(rig.settings, rig.store).test_client()


def _event(rig: Rig, contact_id: str, prop: str = "hs_lead_status", **extra) -> dict:
    return {
        "eventId": next(_event_ids), "subscriptionId": 5421,
        "portalId": rig.sandbox.config.hubspot_hub_id, "appId": rig.sandbox.config.hubspot_app_id,
        "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": int(contact_id), "propertyName": prop,
        "propertyValue": "x", "changeSource": "CRM_UI",
    } | extra  # fmt: skip


def _signed_post(client, rig: Rig, body: bytes | str, secret: str | None = None, **headers):
    text = body if isinstance(body, str) else body.decode()
    timestamp = headers.pop("timestamp", str(int(time.time() * 1000)))
    signature = Signature.get_signature(
        secret or rig.sandbox.config.hubspot_client_secret, text, "v3",
        http_uri=HUBSPOT_URL, timestamp=timestamp,
    )  # fmt: skip
    sent = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}
    return client.post(
        "/webhooks/hubspot",
        data=text,
        content_type="application/json",
        headers={**sent, **headers},
    )


def _counts(rig: Rig) -> tuple[int, int, int]:
    with rig.store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(WebhookEvent)),
            session.scalar(select(func.count()).select_from(Score)),
            session.scalar(select(func.count()).select_from(PipelineRun)),
        )


def _events_of(rig: Rig, lead: str) -> list[WebhookEvent]:
    with rig.store.session() as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.lead_crm_id == lead)))


def _open_lead(rig: Rig, skip: int = 0) -> str:
    """A lead the model rates above 'Very Low', whose score is in the portal."""
    connection = get_connection(rig.store, "hubspot")
    ranked = sorted(
        (s for s in latest_scores(rig.store, connection.id) if s.bucket != "Very Low"),
        key=lambda s: -s.propensity,
    )
    return ranked[skip].lead_crm_id


def _contact_reads(rig: Rig) -> int:
    calls = rig.sandbox.stats()["hubspot"]["by_endpoint"]
    return sum(n for key, n in calls.items() if "objects" in key and key.endswith("batch/read"))


def test_signatures_follow_hubspots_v3_recipe() -> None:
    uri = "https://example.com/webhooks/hubspot?portal=1&next=%2Fa%3Ab%40c"
    mine = hubspot_signature("s3cret", "POST", uri, b'[{"eventId":1}]', "1719849600123")
    reference = Signature.get_signature(
        "s3cret", '[{"eventId":1}]', "v3", http_uri=signed_uri(uri), timestamp="1719849600123"
    )
    assert mine == reference
    assert signed_uri(uri) == "https://example.com/webhooks/hubspot?portal=1&next=/a:b@c"


def test_a_signed_hubspot_webhook_rewrites_the_leads_score_in_the_portal(hubspot_rig) -> None:
    rig = hubspot_rig
    lead = _open_lead(rig)
    before = rig.sandbox.hubspot.get("contacts", lead)
    assert before["leadlift_lead_score_bucket"] != "Very Low"
    # A rep disqualifies the lead in HubSpot; HubSpot tells us with a webhook.
    rig.sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
    body = json.dumps([_event(rig, lead, propertyValue="UNQUALIFIED")])

    response = _signed_post(_client(rig), rig, body)

    assert response.status_code == 200, response.json
    assert response.json["stored"] == 1
    after = rig.sandbox.hubspot.get("contacts", lead)
    assert after["leadlift_lead_score_bucket"] == "Very Low"
    assert int(float(after["leadlift_lead_score"])) < int(float(before["leadlift_lead_score"]))
    [event] = _events_of(rig, lead)
    assert event.processed_at is not None and event.processed_at >= event.received_at
    assert event.outcome["status"] == "written"
    assert "Lead_Score_Bucket" in event.outcome["fields"]
    assert event.outcome["properties"] == ["hs_lead_status"]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad signature", 401),
        ("wrong secret", 401),
        ("no signature", 401),
        ("stale timestamp", 401),
        ("not json", 400),
        ("not an array", 400),
        ("no event id", 400),
    ],
)
def test_rejected_hubspot_requests_change_nothing(hubspot_rig, case, status) -> None:
    rig = hubspot_rig
    client = _client(rig)
    event = _event(rig, _open_lead(rig, 1))
    body = json.dumps([event])
    before = _counts(rig)
    if case == "bad signature":
        response = _signed_post(client, rig, body, **{"X-HubSpot-Signature-v3": "AAAA"})
    elif case == "wrong secret":
        response = _signed_post(client, rig, body, secret="not-the-app-secret")
    elif case == "no signature":
        response = client.post("/webhooks/hubspot", data=body, content_type="application/json")
    elif case == "stale timestamp":
        stale = str(int((time.time() - rig.settings.webhook_max_age_seconds - 5) * 1000))
        response = _signed_post(client, rig, body, timestamp=stale)
    elif case == "not json":
        response = _signed_post(client, rig, "[{not json")
    elif case == "not an array":
        response = _signed_post(client, rig, json.dumps(event))
    else:
        del event["eventId"]
        response = _signed_post(client, rig, json.dumps([event]))
    assert response.status_code == status
    assert response.json["error"]
    assert _counts(rig) == before


def test_a_replayed_hubspot_request_is_rejected_and_changes_nothing(hubspot_rig) -> None:
    rig = hubspot_rig
    client = _client(rig)
    body = json.dumps([_event(rig, _open_lead(rig, 2))])
    assert _signed_post(client, rig, body).status_code == 200
    before = _counts(rig)

    replay = _signed_post(client, rig, body)

    assert replay.status_code == 409 and replay.json["duplicates"] == 1
    assert _counts(rig) == before


def test_a_burst_for_one_lead_is_one_repull_one_rescore_one_write(hubspot_rig) -> None:
    rig = hubspot_rig
    lead = _open_lead(rig, 3)
    rig.sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
    props = ["hs_lead_status", "jobtitle", "lifecyclestage", "phone", "company"] * 2
    body = json.dumps([_event(rig, lead, prop) for prop in props])
    rig.sandbox.reset_stats()
    _, _, runs_before = _counts(rig)

    response = _signed_post(_client(rig), rig, body)

    assert response.status_code == 200 and response.json["stored"] == len(props)
    assert _contact_reads(rig) == 1
    updates = rig.sandbox.stats()["hubspot"]["by_endpoint"]
    assert sum(n for k, n in updates.items() if k.endswith("batch/update")) == 1
    assert _counts(rig)[2] == runs_before + 1  # one webhook_refresh pipeline run
    events = _events_of(rig, lead)
    assert len(events) == len(props)
    assert {e.outcome["status"] for e in events} == {"written"}
    assert {e.outcome["events"] for e in events} == {len(props)}


def test_leadlifts_own_field_changes_are_stored_but_never_rescored(hubspot_rig) -> None:
    rig = hubspot_rig
    lead = _open_lead(rig, 4)
    rig.sandbox.reset_stats()
    body = json.dumps([_event(rig, lead, "leadlift_lead_score", changeSource="INTEGRATION")])

    response = _signed_post(_client(rig), rig, body)

    assert response.status_code == 200 and response.json["skipped"] == 1
    assert _contact_reads(rig) == 0
    [event] = _events_of(rig, lead)
    assert event.outcome == {"status": "skipped", "reason": "leadlift's own field"}


@pytest.mark.redis
def test_with_a_broker_a_burst_of_requests_enqueues_one_task_that_takes_every_event(
    hubspot_rig, monkeypatch
) -> None:
    client_redis = redis.Redis.from_url(REDIS_URL)
    try:
        client_redis.ping()
    except redis.ConnectionError:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    client_redis.flushdb()
    rig = hubspot_rig
    from tasks import webhooks as tasks_webhooks

    enqueued: list[tuple] = []
    monkeypatch.setattr(
        tasks_webhooks.process_lead_events,
        "apply_async",
        lambda args, countdown=None, **_: enqueued.append((args, countdown)),
    )
    settings = rig.settings.model_copy(
        update={"broker_url": REDIS_URL, "webhook_debounce_seconds": 2.0}
    )
    tasks_webhooks.install_dispatch()
    client = create_app(settings, rig.store).test_client()
    lead = _open_lead(rig, 5)
    rig.sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})

    for _ in range(6):
        assert _signed_post(client, rig, json.dumps([_event(rig, lead)])).status_code == 200

    connection = get_connection(rig.store, "hubspot")
    assert enqueued == [((connection.id, lead), 2.0)]
    assert all(e.processed_at is None for e in _events_of(rig, lead))  # acknowledged only

    # The worker's run of that one task (same store and broker, through the environment).
    monkeypatch.setenv("LEADLIFT_HOME", str(rig.settings.home))
    monkeypatch.setenv("LEADLIFT_BROKER_URL", REDIS_URL)
    monkeypatch.setenv("LEADLIFT_WEBHOOK_DEBOUNCE_SECONDS", "2")
    rig.sandbox.reset_stats()
    result = tasks_webhooks.process_lead_events.apply(args=enqueued[0][0]).get()

    assert result["leads"] == 1 and result["events"] == 6 and result["written"] == 1
    assert _contact_reads(rig) == 1
    assert {e.outcome["status"] for e in _events_of(rig, lead)} == {"written"}
    assert rig.sandbox.hubspot.get("contacts", lead)["leadlift_lead_score_bucket"] == "Very Low"
    # The task cleared the burst's key: the next event starts a new burst.
    assert _signed_post(client, rig, json.dumps([_event(rig, lead)])).status_code == 200
    assert len(enqueued) == 2
    client_redis.flushdb()


# ---- Salesforce Outbound Messages and the JSON endpoint --------------------------------


@pytest.fixture(scope="module")
def salesforce_rig(world, tmp_path_factory) -> Iterator[Rig]:
    with make_rig(
        world, tmp_path_factory.mktemp("salesforce"), webhook_debounce_seconds=0,
        salesforce_webhook_secret="sf-shared", webhook_token="flow-token",
    ) as rig:  # fmt: skip
        rig.connect("salesforce")
        with rig.store.session() as session:
            session.execute(update(Connection).values(external_id=rig.sandbox.salesforce.org_id))
        yield rig


def _outbound(org_id: str, notification_id: str, lead_id: str, dtd: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>{dtd}
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5g000000XyZaAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D</PartnerUrl>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{lead_id}</sf:Id>
     <sf:Status>Working - Contacted</sf:Status>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


def _first_lead(rig: Rig) -> str:
    rows = rig.sandbox.salesforce.query("SELECT Id FROM Lead LIMIT 1")
    return rows["records"][0]["Id"]


def test_an_outbound_message_is_acknowledged_stored_and_processed(salesforce_rig) -> None:
    rig = salesforce_rig
    lead = _first_lead(rig)
    org15 = rig.sandbox.salesforce.org_id[:15]  # the 15-character form names the same org
    client = _client(rig)

    response = client.post(
        "/webhooks/salesforce?secret=sf-shared",
        data=_outbound(org15, "04l5g00000AbCdEAAV", lead),
        content_type="text/xml",
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True) == SOAP_ACK
    assert "<Ack>true</Ack>" in SOAP_ACK
    [event] = _events_of(rig, lead)
    assert event.source == "salesforce" and event.crm_object == "Lead"
    # No model is trained on this connection: the lead is re-pulled and stored, not scored.
    assert event.outcome["status"] == "not_scored" and event.outcome["pulled"] is True
    # Salesforce resends until it gets an Ack: a replay is acknowledged and stores nothing.
    again = client.post(
        "/webhooks/salesforce?secret=sf-shared",
        data=_outbound(org15, "04l5g00000AbCdEAAV", lead),
        content_type="text/xml",
    )
    assert again.status_code == 200 and len(_events_of(rig, lead)) == 1


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong secret", 401),
        ("no secret", 401),
        ("wrong org", 403),
        ("not xml", 400),
        ("entities", 400),
    ],
)
def test_rejected_outbound_messages_change_nothing(salesforce_rig, case, status) -> None:
    rig = salesforce_rig
    lead = _first_lead(rig)
    org = rig.sandbox.salesforce.org_id
    url, body = "/webhooks/salesforce?secret=sf-shared", _outbound(org, f"04l{case}", lead)
    if case == "wrong secret":
        url = "/webhooks/salesforce?secret=guess"
    elif case == "no secret":
        url = "/webhooks/salesforce"
    elif case == "wrong org":
        body = _outbound("00D000000000001AAA", "04lx", lead)
    elif case == "not xml":
        body = "<soapenv:Envelope><unclosed>"
    else:
        dtd = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        body = _outbound(org, "04ly", lead, dtd)
    before = _counts(rig)

    response = _client(rig).post(url, data=body, content_type="text/xml")

    assert response.status_code == status and response.json["error"]
    assert _counts(rig) == before


def test_the_json_endpoint_needs_its_bearer_token(salesforce_rig) -> None:
    rig = salesforce_rig
    client = _client(rig)
    lead = _first_lead(rig)
    body = {"connection": "salesforce", "events": [{"id": "flow-1", "object": "Lead",
                                                      "record_id": lead}]}  # fmt: skip
    before = _counts(rig)
    assert client.post("/webhooks/events", json=body).status_code == 401
    wrong = client.post("/webhooks/events", json=body, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    malformed = client.post(
        "/webhooks/events", json={"events": "x"}, headers={"Authorization": "Bearer flow-token"}
    )
    assert malformed.status_code == 400
    assert _counts(rig) == before

    ok = client.post("/webhooks/events", json=body, headers={"Authorization": "Bearer flow-token"})

    assert ok.status_code == 200 and ok.json["stored"] == 1
    stored = [e for e in _events_of(rig, lead) if e.source == "json"]
    assert [e.event_id for e in stored] == [f"{get_connection(rig.store).id}:flow-1"]
    assert stored[0].processed_at is not None


def test_endpoints_are_off_until_their_secret_is_configured(hubspot_rig) -> None:
    client = _client(hubspot_rig)
    assert client.post("/webhooks/salesforce?secret=x", data="<a/>").status_code == 403
    assert client.post("/webhooks/events", json={}).status_code == 403


def test_a_body_naming_many_leads_is_one_pass_that_reads_each_once(hubspot_rig) -> None:
    rig = hubspot_rig
    leads = [_open_lead(rig, n) for n in range(10, 22)]
    for lead in leads:
        rig.sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
    rig.sandbox.reset_stats()
    _, _, runs_before = _counts(rig)

    response = _signed_post(_client(rig), rig, json.dumps([_event(rig, lead) for lead in leads]))

    assert response.status_code == 200 and response.json["leads"] == len(leads)
    assert _contact_reads(rig) == len(leads)  # read side by side, each lead once
    assert _counts(rig)[2] == runs_before + 1
    buckets = {
        rig.sandbox.hubspot.get("contacts", lead)["leadlift_lead_score_bucket"] for lead in leads
    }
    assert buckets == {"Very Low"}
    with rig.store.session() as session:
        run = session.scalars(
            select(PipelineRun)
            .where(PipelineRun.step == "webhook_refresh")
            .order_by(PipelineRun.id.desc())
        ).first()
    assert run.stats["written"] == len(leads) and run.stats["api_calls"] >= 2 * len(leads)


def test_the_sweeper_processes_events_a_lost_task_left_pending(hubspot_rig, monkeypatch) -> None:
    rig = hubspot_rig
    monkeypatch.setenv("LEADLIFT_HOME", str(rig.settings.home))
    monkeypatch.setenv("LEADLIFT_WEBHOOK_DEBOUNCE_SECONDS", "0")
    from tasks.app import make_celery
    from tasks.webhooks import sweep_pending_events

    assert make_celery().conf.task_always_eager
    lead = _open_lead(rig, 30)
    rig.sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
    connection = get_connection(rig.store, "hubspot")
    # Stored, acknowledged, and then the task that should have processed it was lost.
    stored = store_events(
        rig.store,
        [ParsedEvent("hubspot", "lost-1", connection.id, "contact.propertyChange", "contacts",
                     lead, {"propertyName": "hs_lead_status"})],
    )  # fmt: skip
    assert stored.stored == 1
    assert sweep_pending_events.apply().get() == {"connections": 0, "leads": 0}  # not yet due
    with rig.store.session() as session:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.event_id == "lost-1")
            .values(received_at=utcnow() - timedelta(minutes=5))
        )

    assert sweep_pending_events.apply().get() == {"connections": 1, "leads": 1}

    [event] = _events_of(rig, lead)
    assert event.outcome["status"] == "written"
    assert rig.sandbox.hubspot.get("contacts", lead)["leadlift_lead_score_bucket"] == "Very Low"


def test_a_failing_pass_keeps_events_pending_with_the_error_then_gives_up(
    hubspot_rig, monkeypatch
) -> None:
    import integration.lead_refresh as lead_refresh

    rig = hubspot_rig
    lead = _open_lead(rig, 40)

    def broken(*_args, **_kwargs):
        raise RuntimeError("scoring exploded")

    monkeypatch.setattr(lead_refresh, "score_leads", broken)
    response = _signed_post(_client(rig), rig, json.dumps([_event(rig, lead)]))

    assert response.status_code == 200  # stored and acknowledged; processing failed after
    [event] = _events_of(rig, lead)
    assert event.processed_at is None and event.error == "RuntimeError: scoring exploded"
    assert event.outcome == {"failures": 1}
    connection = get_connection(rig.store, "hubspot")
    for _ in range(lead_refresh.MAX_ATTEMPTS - 1):
        with pytest.raises(RuntimeError):
            lead_refresh.refresh_leads(rig.store, rig.settings, connection.id, [lead])
    [event] = _events_of(rig, lead)
    assert event.processed_at is not None
    assert event.outcome == {"status": "error", "failures": lead_refresh.MAX_ATTEMPTS}
    assert (connection.id, lead) not in lead_refresh.pending_leads(rig.store)
