"""HubSpot CRM subset through hubspot-api-client over real HTTPS."""

from __future__ import annotations

import json

import hubspot
import pytest
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from hubspot.crm.properties import PropertyCreate
from urllib3.util.retry import Retry

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer

from .conftest import N_LEADS, hs_client
from .fake_seed import make_seed

SEARCH_PATH = "POST /crm/v3/objects/<object_type>/search"


def test_get_page_covers_all_contacts_once(hs: hubspot.Client) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = hs.crm.contacts.basic_api.get_page(
            limit=100, after=after, properties=["email", "hs_lead_status"]
        )
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == N_LEADS == len(set(seen))
    assert seen == sorted(seen, key=int)
    assert page.results[-1].properties["hs_lead_status"] in {
        "NEW",
        "IN_PROGRESS",
        "CONNECTED",
        "OPEN_DEAL",
        "UNQUALIFIED",
    }


def test_get_by_id_history_and_associations(hs: hubspot.Client, sandbox: SandboxCRM, seed) -> None:
    lead = seed.leads[seed.leads["status"] == "converted"].dropna(subset=["account_key"]).iloc[0]
    contact_id = sandbox.hubspot.id_for("contacts", int(lead["lead_key"]))
    obj = hs.crm.contacts.basic_api.get_by_id(
        contact_id,
        properties=["lifecyclestage", "associatedcompanyid"],
        properties_with_history=["hs_lead_status"],
        associations=["companies"],
    )
    assert obj.properties["lifecyclestage"] in ("opportunity", "customer")
    history = obj.properties_with_history["hs_lead_status"]
    assert history[0].value == "OPEN_DEAL"
    assert [h.timestamp for h in history] == sorted((h.timestamp for h in history), reverse=True)
    company_id = sandbox.hubspot.id_for("companies", int(lead["account_key"]))
    assert obj.properties["associatedcompanyid"] == company_id
    assert company_id in [a.id for a in obj.associations["companies"].results]
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.get_by_id("1")
    assert err.value.status == 404 and json.loads(err.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_batch_update_limits_and_partial(hs: hubspot.Client, sandbox: SandboxCRM) -> None:
    ids = [sandbox.hubspot.id_for("contacts", 5 + 3 * k) for k in range(101)]
    too_many = BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": i, "properties": {"jobtitle": "x"}} for i in ids]
    )
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.batch_api.update(too_many)
    assert err.value.status == 400

    bad_value = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            {"id": ids[0], "properties": {"jobtitle": "ok"}},
            {"id": ids[1], "properties": {"hs_lead_status": "NOT_A_STATUS"}},
        ]
    )
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.batch_api.update(bad_value)
    body = json.loads(err.value.body)
    assert err.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["context"]["propertyName"] == ["hs_lead_status"]
    assert sandbox.hubspot.get("contacts", ids[0])["jobtitle"] != "ok"

    before = sandbox.hubspot.get("contacts", ids[2])["lastmodifieddate"]
    partial = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            {"id": ids[2], "properties": {"jobtitle": "Head of Ops", "hs_lead_status": "OPEN"}},
            {"id": "999", "properties": {"jobtitle": "ghost"}},
        ]
    )
    result = hs.crm.contacts.batch_api.update(partial)
    # The SDK returns the 207 body as a model (no exception).
    assert type(result).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert result.num_errors == 1 and result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"ids": ["999"]}
    assert [r.id for r in result.results] == [ids[2]]
    after = sandbox.hubspot.get("contacts", ids[2])
    assert after["jobtitle"] == "Head of Ops" and after["lastmodifieddate"] > before
    history = hs.crm.contacts.basic_api.get_by_id(
        ids[2], properties_with_history=["hs_lead_status"]
    ).properties_with_history
    assert history["hs_lead_status"][0].value == "OPEN"


def test_batch_record_fault(hs: hubspot.Client, sandbox: SandboxCRM) -> None:
    ids = [sandbox.hubspot.id_for("contacts", 5 + 3 * k) for k in (300, 301)]
    sandbox.faults.fail_records("hubspot", [ids[1]], "CONFLICT", "record is locked")
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": i, "properties": {"jobtitle": "CFO"}} for i in ids]
    )
    result = hs.crm.contacts.batch_api.update(batch)
    assert result.num_errors == 1 and result.errors[0].context == {"ids": [ids[1]]}
    again = hs.crm.contacts.batch_api.update(batch)
    assert type(again).__name__ == "BatchResponseSimplePublicObject"


def test_batch_read_by_email(hs: hubspot.Client, sandbox: SandboxCRM) -> None:
    request = BatchReadInputSimplePublicObjectId(
        id_property="email",
        properties=["firstname"],
        inputs=[{"id": "lead3@mail3.example"}, {"id": "LEAD4@mail4.example"}],
    )
    result = hs.crm.contacts.batch_api.read(request)
    assert sorted(r.properties["firstname"] for r in result.results) == ["First3", "First4"]


def test_search_total_paging_and_sorting(hs: hubspot.Client, sandbox: SandboxCRM) -> None:
    frame = sandbox.hubspot.frame("contacts")
    expected = int((frame["hs_lead_status"] == "NEW").sum())
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "hs_lead_status", "operator": "EQ", "value": "NEW"}]}
        ],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["hs_lead_status", "lastmodifieddate"],
        limit=200,
    )
    first = hs.crm.contacts.search_api.do_search(request)
    assert first.total == expected and len(first.results) == 200
    request.after = first.paging.next.after
    second = hs.crm.contacts.search_api.do_search(request)
    stamps = [r.properties["lastmodifieddate"] for r in first.results + second.results]
    assert stamps == sorted(stamps)
    assert not {r.id for r in first.results} & {r.id for r in second.results}
    # epoch-ms filters, BETWEEN and IN
    cut = frame["lastmodifieddate"].sort_values().iloc[N_LEADS // 2]
    cut_ms = str(int(cut.value // 1_000_000))
    newer = hs.crm.contacts.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": cut_ms}
                    ]
                }
            ],
            limit=1,
        )
    )
    assert newer.total == int((frame["lastmodifieddate"] >= cut).sum())
    either = hs.crm.contacts.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {
                            "propertyName": "hs_lead_status",
                            "operator": "IN",
                            "values": ["NEW", "OPEN_DEAL"],
                        }
                    ]
                }
            ],
            limit=1,
        )
    )
    assert either.total == int(frame["hs_lead_status"].isin(["NEW", "OPEN_DEAL"]).sum())


def test_search_validation(hs: hubspot.Client) -> None:
    too_many_groups = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
    )
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.search_api.do_search(too_many_groups)
    assert err.value.status == 400


@pytest.fixture(scope="module")
def capped() -> SandboxServer:
    sandbox = SandboxCRM.from_seed(make_seed(400), SandboxConfig(hubspot_search_cap=300))
    with SandboxServer(sandbox) as server:
        yield server


def test_search_cap(capped: SandboxServer) -> None:
    assert SandboxConfig().hubspot_search_cap == 10_000
    client = hs_client(capped, capped.sandbox.issue_tokens("hubspot")["access_token"])
    request = PublicObjectSearchRequest(limit=100, after="200")
    page = client.crm.contacts.search_api.do_search(request)
    assert page.total == 400 and page.paging.next.after == "300"
    request.after = "300"
    with pytest.raises(ApiException) as err:
        client.crm.contacts.search_api.do_search(request)
    assert err.value.status == 400
    assert json.loads(err.value.body)["category"] == "VALIDATION_ERROR"


def test_properties_create_and_conflict(hs: hubspot.Client, sandbox: SandboxCRM) -> None:
    prop = PropertyCreate(
        name="leadlift_score",
        label="Leadlift score",
        type="number",
        field_type="number",
        group_name="contactinformation",
    )
    created = hs.crm.properties.core_api.create("contacts", prop)
    assert created.name == "leadlift_score" and not created.hubspot_defined
    with pytest.raises(Exception) as err:
        hs.crm.properties.core_api.create("contacts", prop)
    assert err.value.status == 409
    assert json.loads(err.value.body)["category"] == "OBJECT_ALREADY_EXISTS"
    contact_id = sandbox.hubspot.id_for("contacts", 5)
    hs.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": contact_id, "properties": {"leadlift_score": "87.5"}}]
        )
    )
    got = hs.crm.contacts.basic_api.get_by_id(contact_id, properties=["leadlift_score"])
    assert got.properties["leadlift_score"] == "87.5"
    assert hs.crm.properties.core_api.get_by_name("contacts", "leadlift_score").type == "number"
    with pytest.raises(Exception) as err:
        hs.crm.properties.core_api.get_by_name("contacts", "nope_nope")
    assert err.value.status == 404
    bad = PropertyCreate(
        name="Bad-Name",
        label="x",
        type="string",
        field_type="text",
        group_name="contactinformation",
    )
    with pytest.raises(Exception) as err:
        hs.crm.properties.core_api.create("contacts", bad)
    assert err.value.status == 400
    names = [p.name for p in hs.crm.properties.core_api.get_all("contacts").results]
    assert {"email", "hs_lead_status", "lastmodifieddate", "leadlift_score"} <= set(names)


def test_owners(hs: hubspot.Client, seed) -> None:
    page = hs.crm.owners.owners_api.get_page(limit=100)
    people = [o for o in page.results if o.type == "PERSON"]
    queues = [o for o in page.results if o.type == "QUEUE"]
    assert len(people) == int(seed.users["active"].sum()) and len(queues) == len(seed.queues)
    assert people[0].email and people[0].user_id


def test_v4_association_batch_read(hs: hubspot.Client, sandbox: SandboxCRM, seed) -> None:
    touch = seed.touches[seed.touches["kind"] == "call"].iloc[0]
    call_id = sandbox.hubspot.id_for("calls", int(touch["touch_key"]))
    contact_id = sandbox.hubspot.id_for("contacts", int(touch["lead_key"]))
    request = BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": call_id}])
    result = hs.crm.associations.v4.batch_api.get_page("calls", "contacts", request)
    assert result.results[0]._from.id == call_id
    target = result.results[0].to[0]
    assert str(target.to_object_id) == contact_id
    assert target.association_types[0].type_id == 194
    back = hs.crm.associations.v4.batch_api.get_page(
        "contacts",
        "calls",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": contact_id}]),
    )
    assert call_id in [str(t.to_object_id) for t in back.results[0].to]


def test_429_on_post_needs_allowed_methods(server: SandboxServer, sandbox: SandboxCRM) -> None:
    token = sandbox.issue_tokens("hubspot")["access_token"]
    request = PublicObjectSearchRequest(limit=1)
    default_retry = hs_client(server, token, Retry(total=3, status_forcelist=(429,)))
    sandbox.faults.inject(
        crm="hubspot", status=429, count=1, path_contains="/search", method="POST", retry_after=0
    )
    with pytest.raises(ApiException) as err:
        default_retry.crm.contacts.search_api.do_search(request)
    assert err.value.status == 429
    assert json.loads(err.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"

    good_retry = hs_client(
        server,
        token,
        Retry(
            total=3, status_forcelist=(429,), allowed_methods=None, respect_retry_after_header=True
        ),
    )
    sandbox.reset_stats()
    sandbox.faults.inject(
        crm="hubspot", status=429, count=1, path_contains="/search", method="POST", retry_after=0
    )
    assert good_retry.crm.contacts.search_api.do_search(request).total == N_LEADS
    assert sandbox.stats()["hubspot"]["by_endpoint"][SEARCH_PATH] == 2


def test_expired_token(server: SandboxServer, sandbox: SandboxCRM) -> None:
    client = hs_client(server, sandbox.issue_tokens("hubspot")["access_token"])
    client.crm.contacts.basic_api.get_page(limit=1)
    sandbox.expire_access_tokens("hubspot")
    with pytest.raises(ApiException) as err:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert err.value.status == 401
    assert json.loads(err.value.body)["category"] == "EXPIRED_AUTHENTICATION"


def test_rate_limits_when_enabled() -> None:
    config = SandboxConfig(hubspot_requests_per_10s=5, hubspot_search_per_second=2)
    sandbox = SandboxCRM.from_seed(make_seed(50), config)
    with SandboxServer(sandbox) as server:
        session = server.session()
        headers = {"Authorization": "Bearer " + sandbox.issue_tokens("hubspot")["access_token"]}
        url = server.url + "/crm/v3/objects/contacts"
        statuses = [session.get(url, headers=headers) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200] * 5 + [429]
        assert statuses[0].headers["X-HubSpot-RateLimit-Max"] == "5"
        assert statuses[4].headers["X-HubSpot-RateLimit-Remaining"] == "0"
        limited = statuses[5]
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["errorType"] == "RATE_LIMIT"
        search = [session.post(url + "/search", json={}, headers=headers) for _ in range(3)]
        assert [r.status_code for r in search] == [200, 200, 429]
        assert "X-HubSpot-RateLimit-Max" not in search[0].headers


def test_archive_hides_from_search_and_lists_as_archived() -> None:
    sandbox = SandboxCRM.from_seed(make_seed(40))
    with SandboxServer(sandbox) as server:
        client = hs_client(server, sandbox.issue_tokens("hubspot")["access_token"])
        victim = sandbox.hubspot.id_for("contacts", 8)
        before = sandbox.hubspot.get("contacts", victim)["lastmodifieddate"]
        client.crm.contacts.basic_api.archive(victim)
        assert client.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).total == 39
        archived = client.crm.contacts.basic_api.get_page(archived=True)
        assert [r.id for r in archived.results] == [victim] and archived.results[0].archived
        # Archiving does not bump the modified date (as in HubSpot).
        assert sandbox.hubspot.get("contacts", victim)["lastmodifieddate"] == before
        result = client.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": victim, "properties": {"jobtitle": "x"}}]
            )
        )
        assert result.errors[0].category == "OBJECT_NOT_FOUND"
