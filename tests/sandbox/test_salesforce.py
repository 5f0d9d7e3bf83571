"""Salesforce REST subset through simple-salesforce over real HTTPS."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from urllib3.util.retry import Retry

from connectors.sandbox import SandboxCRM, SandboxServer
from connectors.sandbox.ids import checksum_suffix, decode_sf_serial, mint_sf_id, mint_sf_ids

from .conftest import N_LEADS, sf_client
from .fake_seed import make_seed
from .sf_helpers import grant_fields

QUERY_PATH = "GET /services/data/v<version>/query/"
MORE_PATH = "GET /services/data/v<version>/query/<locator>"


def test_ids_are_real_looking(sandbox: SandboxCRM) -> None:
    lead_id = sandbox.salesforce.id_for("Lead", 5)
    assert len(lead_id) == 18 and lead_id.startswith("00Q")
    assert lead_id[15:] == checksum_suffix(lead_id[:15])
    # A known real-world pair: 15-char id and its 18-char form.
    assert checksum_suffix("a0D30000001n7Pi") == "EAI"
    assert mint_sf_ids("00Q", 0, 3).tolist() == [mint_sf_id("00Q", i) for i in (1, 2, 3)]
    assert decode_sf_serial(mint_sf_id("00Q", 12345), "00Q") == 12345


def test_query_all_iter_pages_in_order(sf: Salesforce, sandbox: SandboxCRM) -> None:
    sandbox.reset_stats()
    soql = "SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id"
    rows = list(sf.query_all_iter(soql, headers={"Sforce-Query-Options": "batchSize=500"}))
    assert len(rows) == N_LEADS
    assert len({r["Id"] for r in rows}) == N_LEADS
    keys = [(r["SystemModstamp"], r["Id"]) for r in rows]
    assert keys == sorted(keys)
    by_endpoint = sandbox.stats()["salesforce"]["by_endpoint"]
    assert by_endpoint[QUERY_PATH] == 1
    assert by_endpoint[MORE_PATH] == N_LEADS // 500 - 1


def test_query_more_with_url(sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Task ORDER BY Id")
    assert not first["done"] and len(first["records"]) == 2000
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v62.0/query/01g") and url.endswith("-2000")
    second = sf.query_more(url, identifier_is_url=True)
    assert second["records"][0]["Id"] > first["records"][-1]["Id"]
    assert second["totalSize"] == first["totalSize"]
    assert first["records"][0]["attributes"] == {
        "type": "Task",
        "url": f"/services/data/v62.0/sobjects/Task/{first['records'][0]['Id']}",
    }


def test_unknown_locator_is_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.query_more("/services/data/v62.0/query/01gXXXXXXXXXXXXXXX-2000", identifier_is_url=True)
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_locators_are_evicted(server: SandboxServer, sandbox: SandboxCRM, sf: Salesforce) -> None:
    oldest = sf.query("SELECT Id FROM Task")["nextRecordsUrl"]
    for _ in range(sandbox.config.max_query_locators):
        sf.query("SELECT Id FROM Task")
    with pytest.raises(SalesforceResourceNotFound):
        sf.query_more(oldest, identifier_is_url=True)


def test_where_modstamp_and_compound(sf: Salesforce, sandbox: SandboxCRM) -> None:
    frame = sandbox.salesforce.frame("Lead")
    cut = frame["SystemModstamp"].sort_values().iloc[N_LEADS // 2]
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp >= {stamp}")["records"]
    assert len(rows) == int((frame["SystemModstamp"] >= cut).sum())
    compound = (
        f"SELECT Id, Status, IsConverted FROM Lead WHERE (SystemModstamp >= {stamp} AND "
        "Status = 'Working - Contacted') OR IsConverted = true"
    )
    got = sf.query_all(compound)["records"]
    expected = frame[
        ((frame["SystemModstamp"] >= cut) & (frame["Status"] == "Working - Contacted"))
        | frame["IsConverted"]
    ]
    assert {r["Id"] for r in got} == set(expected["Id"])
    assert sf.query("SELECT Id FROM Lead LIMIT 7")["totalSize"] == 7
    offset = sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 3 OFFSET 2")["records"]
    assert [r["Id"] for r in offset] == sorted(frame["Id"])[2:5]
    count = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = true")
    assert count["totalSize"] == int(frame["IsConverted"].sum()) and count["records"] == []


def test_query_all_includes_deleted(sf: Salesforce, sandbox: SandboxCRM) -> None:
    victim = sandbox.salesforce.id_for("Lead", 5 + 3 * 17)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    assert sf.Lead.delete(victim) == 204
    soql = f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{victim}'"
    assert sf.query(soql)["totalSize"] == 0
    deleted = sf.query_all(soql, include_deleted=True)["records"]
    assert deleted == [{"attributes": deleted[0]["attributes"], "Id": victim, "IsDeleted": True}]
    window = sf.Lead.deleted(before, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert victim in [r["id"] for r in window["deletedRecords"]]


def test_malformed_and_invalid_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id, Bogus__c FROM Lead")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Lead WHERE")
    assert err.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Widget__c")
    assert err.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_describe(sf: Salesforce) -> None:
    describe = sf.Lead.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["keyPrefix"] == "00Q"
    assert fields["Status"]["type"] == "picklist"
    assert "Meeting Booked" in [p["value"] for p in fields["Status"]["picklistValues"]]
    assert fields["Experiment_Arm__c"]["custom"] and fields["Experiment_Arm__c"]["length"] == 80
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"]
    assert not fields["IsConverted"]["updateable"]
    names = {s["name"] for s in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Task", "Event", "LeadHistory", "QueueSobject"} <= names


def _lead_records(sandbox: SandboxCRM, n: int, start: int = 1000) -> list[dict]:
    return [
        {
            "attributes": {"type": "Lead"},
            "id": sandbox.salesforce.id_for("Lead", 5 + 3 * k),
            "Title": f"Title {k}",
        }
        for k in range(start, start + n)
    ]


def test_collections_limits_and_partial_errors(sf: Salesforce, sandbox: SandboxCRM) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"allOrNone": False, "records": _lead_records(sandbox, 201)},
        )
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    records = _lead_records(sandbox, 200)
    records[7]["id"] = "00Q8d0000zzzzzzAAA"
    before = sandbox.salesforce.get("Lead", records[0]["id"])["SystemModstamp"]
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"allOrNone": False, "records": records},
        headers={"Sforce-Auto-Assign": "FALSE"},
    )
    assert len(results) == 200
    assert results[7]["success"] is False
    assert results[7]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert all(r["success"] for i, r in enumerate(results) if i != 7)
    after = sandbox.salesforce.get("Lead", records[0]["id"])
    assert after["Title"] == "Title 1000" and after["SystemModstamp"] > before


def test_collections_field_errors_and_all_or_none(sf: Salesforce, sandbox: SandboxCRM) -> None:
    ids = [sandbox.salesforce.id_for("Lead", 5 + 3 * k) for k in range(1300, 1305)]
    records = [
        {"attributes": {"type": "Lead"}, "id": ids[0], "Nope__c": 1},
        {"attributes": {"type": "Lead"}, "id": ids[1], "NumberOfEmployees": "lots"},
        {"attributes": {"type": "Lead"}, "id": ids[2], "IsConverted": True},
        {"attributes": {"type": "Lead"}, "id": ids[3], "Title": "ok"},
    ]
    results = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records}
    )
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == [
        "INVALID_FIELD",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert sandbox.salesforce.get("Lead", ids[3])["Title"] != "ok"
    queue = sandbox.salesforce.id_for("Group", 0)
    ok = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [{"attributes": {"type": "Lead"}, "id": ids[4], "OwnerId": queue}]},
    )
    assert ok == [{"id": ids[4], "success": True, "errors": []}]
    assert sandbox.salesforce.get("Lead", ids[4])["OwnerId"] == queue


def test_record_faults(sf: Salesforce, sandbox: SandboxCRM) -> None:
    records = _lead_records(sandbox, 3, start=1400)
    sandbox.faults.fail_records(
        "salesforce",
        [records[1]["id"]],
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
        times=1,
    )
    first = sf.restful("composite/sobjects", method="PATCH", json={"records": records})
    assert [r["success"] for r in first] == [True, False, True]
    assert first[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    second = sf.restful("composite/sobjects", method="PATCH", json={"records": records})
    assert all(r["success"] for r in second)


def test_single_record_get_and_patch(sf: Salesforce, sandbox: SandboxCRM) -> None:
    lead_id = sandbox.salesforce.id_for("Lead", 5 + 3 * 1500)
    assert sf.Lead.update(lead_id, {"FirstName": "Ada"}) == 204
    record = sf.Lead.get(lead_id)
    assert record["FirstName"] == "Ada" and record["Name"].startswith("Ada ")
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(lead_id, {"Status": "Not a status"})
    retrieved = sf.restful(f"composite/sobjects/Lead?ids={lead_id}&fields=Id,FirstName")
    assert retrieved[0]["FirstName"] == "Ada"


def test_tooling_custom_field(sf: Salesforce, sandbox: SandboxCRM) -> None:
    payload = {
        "FullName": "Lead.Leadlift_Score__c",
        "Metadata": {
            "label": "Leadlift Score",
            "type": "Number",
            "precision": 5,
            "scale": 1,
            "description": "propensity",
        },
    }
    created = sf.toolingexecute("sobjects/CustomField", method="POST", data=payload)
    assert created["success"] and created["id"].startswith("00N")
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.toolingexecute("sobjects/CustomField", method="POST", data=payload)
    assert err.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    listed = sf.toolingexecute(
        "query/?q=SELECT+Id,+DeveloperName,+TableEnumOrId+FROM+CustomField+WHERE+"
        "TableEnumOrId+=+'Lead'"
    )
    names = {r["DeveloperName"] for r in listed["records"]}
    assert {"Leadlift_Score", "Account", "Experiment_Arm"} <= names
    # Field-level security: the new field stays invisible until a permission set grants it.
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Leadlift_Score__c FROM Lead LIMIT 1")
    user_id = sandbox.salesforce.integration_user_id
    grant_fields(sf, user_id, ["Lead.Leadlift_Score__c"], name="Tooling_Test_Access")
    lead_id = sandbox.salesforce.id_for("Lead", 5)
    assert (
        sf.query(f"SELECT Leadlift_Score__c FROM Lead WHERE Id = '{lead_id}'")["records"][0][
            "Leadlift_Score__c"
        ]
        is None
    )
    result = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [{"attributes": {"type": "Lead"}, "id": lead_id, "Leadlift_Score__c": 87.25}]
        },
    )
    assert result[0]["success"]
    got = sf.query("SELECT Leadlift_Score__c FROM Lead WHERE Leadlift_Score__c > 80")
    assert [r["Leadlift_Score__c"] for r in got["records"]] == [87.2]
    field = next(f for f in sf.Lead.describe()["fields"] if f["name"] == "Leadlift_Score__c")
    assert field["type"] == "double" and field["custom"] and field["scale"] == 1
    sf.toolingexecute(f"sobjects/CustomField/{created['id']}", method="DELETE")
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Leadlift_Score__c FROM Lead")


def test_api_usage_header_and_limits(sf: Salesforce, sandbox: SandboxCRM) -> None:
    sf.query("SELECT Id FROM User")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 100_000 and usage.used == sandbox.salesforce.api_usage
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000


def test_expired_session(server: SandboxServer, sandbox: SandboxCRM) -> None:
    token = sandbox.issue_tokens("salesforce")["access_token"]
    client = sf_client(server, token)
    client.query("SELECT Id FROM Organization")
    sandbox.expire_access_tokens("salesforce")
    with pytest.raises(SalesforceExpiredSession) as err:
        client.query("SELECT Id FROM Organization")
    assert err.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_injected_429_and_retry(server: SandboxServer, sandbox: SandboxCRM, sf: Salesforce) -> None:
    sandbox.faults.inject(crm="salesforce", status=429, count=1, path_contains="/query")
    with pytest.raises(Exception) as err:
        sf.query("SELECT Id FROM User")
    assert "REQUEST_LIMIT_EXCEEDED" in str(err.value)

    session = server.session()
    retry = Retry(
        total=3,
        status_forcelist=(429,),
        allowed_methods=None,
        respect_retry_after_header=True,
        backoff_factor=0,
    )
    session.mount("https://", HTTPAdapter(max_retries=retry))
    client = sf_client(server, sandbox.issue_tokens("salesforce")["access_token"], session)
    sandbox.reset_stats()
    sandbox.faults.inject(
        crm="salesforce", status=429, count=1, path_contains="/query", retry_after=0
    )
    assert client.query("SELECT Id FROM User")["totalSize"] > 0
    assert sandbox.stats()["salesforce"]["by_endpoint"][QUERY_PATH] == 2


def test_daily_limit_exceeded(sandbox: SandboxCRM, sf: Salesforce) -> None:
    org = sandbox.salesforce
    saved = org.api_usage
    org.api_usage = sandbox.config.salesforce_daily_api_limit
    try:
        with pytest.raises(Exception) as err:
            sf.query("SELECT Id FROM User")
        assert "REQUEST_LIMIT_EXCEEDED" in str(err.value)
    finally:
        org.api_usage = saved


def test_rendering_of_seed(sandbox: SandboxCRM, seed) -> None:
    org = sandbox.salesforce
    converted = seed.leads[seed.leads["status"] == "converted"].iloc[0]
    lead = org.get("Lead", org.id_for("Lead", int(converted["lead_key"])))
    assert lead["IsConverted"] and lead["Status"] == "Closed - Converted"
    contact = org.get("Contact", lead["ConvertedContactId"])
    assert contact["Email"] == lead["Email"]
    assert lead["ConvertedOpportunityId"].startswith("006")
    touch = seed.touches[seed.touches["kind"] == "call"].iloc[0]
    task = org.get("Task", org.id_for("Task", int(touch["touch_key"])))
    assert (task["TaskSubtype"], task["Type"], task["CallType"]) == ("Call", "Call", "Outbound")
    engagement = seed.engagements[seed.engagements["kind"] == "form_fill"].iloc[0]
    mkt = org.get(
        "Task", org.id_for("Task", int(engagement["engagement_key"]), source="engagements")
    )
    assert mkt["Type"] == "Marketing"
    assert mkt["Subject"] == f"Filled out form: {engagement['detail']}"
    history = org.query(
        f"SELECT Field, OldValue, NewValue FROM LeadHistory WHERE LeadId = '{lead['Id']}'"
    )["records"]
    assert history and history[-1]["NewValue"] == "Closed - Converted"


def test_versions_resource_is_public(server: SandboxServer) -> None:
    session = server.session()
    versions = session.get(server.url + "/services/data/").json()
    assert {"label", "url", "version"} <= set(versions[-1])
    unauthenticated = session.get(server.url + "/services/data/v62.0/limits/")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert isinstance(requests.Session, type)


def test_get_updated(sf: Salesforce, sandbox: SandboxCRM) -> None:
    lead_id = sandbox.salesforce.id_for("Lead", 5 + 3 * 1600)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    sf.Lead.update(lead_id, {"Title": "Updated"})
    window = sf.Lead.updated(start, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert lead_id in window["ids"] and window["latestDateCovered"].endswith("+0000")


def test_a_large_org_serves_a_full_first_page() -> None:
    sandbox = SandboxCRM.from_seed(make_seed(20_000))
    org = sandbox.salesforce
    soql = (
        "SELECT Id, Name, Email, Status, OwnerId, SystemModstamp, CreatedDate, Company, "
        "Title, NumberOfEmployees, IsConverted FROM Lead ORDER BY SystemModstamp, Id"
    )
    page = org.query(soql)
    assert len(page["records"]) == 2000 and page["totalSize"] == 20_000
    stamps = [r["SystemModstamp"] for r in page["records"]]
    assert stamps == sorted(stamps)
