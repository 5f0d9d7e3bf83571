"""Bulk API 2.0 query and ingest jobs through simple-salesforce's ``sf.bulk2`` over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer

from .conftest import sf_client
from .fake_seed import make_seed
from .sf_helpers import parse_csv

N = 600
JOBS = "/services/data/v62.0/jobs"


@pytest.fixture(scope="module")
def bulk_sandbox() -> SandboxCRM:
    return SandboxCRM.from_seed(make_seed(N), SandboxConfig())


@pytest.fixture(scope="module")
def bulk_server(bulk_sandbox: SandboxCRM) -> Iterator[SandboxServer]:
    with SandboxServer(bulk_sandbox) as srv:
        yield srv


@pytest.fixture
def bsf(bulk_server: SandboxServer, bulk_sandbox: SandboxCRM) -> Salesforce:
    return sf_client(bulk_server, bulk_sandbox.issue_tokens("salesforce")["access_token"])


@pytest.fixture
def raw(bulk_server: SandboxServer, bulk_sandbox: SandboxCRM):
    """A requests session with a bearer token, plus the server URL."""
    session = bulk_server.session()
    token = bulk_sandbox.issue_tokens("salesforce")["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session, bulk_server.url + JOBS


def lead_id(sandbox: SandboxCRM, k: int) -> str:
    return sandbox.salesforce.id_for("Lead", 5 + 3 * k)


def test_query_pages_typing_and_escaping(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    org = bulk_sandbox.salesforce
    tricky = 'He said "hi", then\nleft, twice'
    org.update("Lead", lead_id(bulk_sandbox, 3), {"Title": tricky})
    bulk_sandbox.reset_stats()
    soql = (
        "SELECT Id, Title, IsConverted, CreatedDate, ConvertedDate, NumberOfEmployees, "
        "Phone FROM Lead ORDER BY CreatedDate DESC, Id"
    )
    pages = list(bsf.bulk2.Lead.query(soql, max_records=250, wait=0))
    assert len(pages) == 3
    rows = [row for page in pages for row in parse_csv(page)]
    assert len(rows) == N and len({r["Id"] for r in rows}) == N
    assert pages[0].startswith('"Id","Title","IsConverted","CreatedDate","ConvertedDate",')
    frame = org.frame("Lead").set_index("Id")
    stamps = [r["CreatedDate"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    for row in rows:
        expected = frame.loc[row["Id"]]
        assert row["IsConverted"] == ("true" if expected["IsConverted"] else "false")
        assert row["CreatedDate"] == expected["CreatedDate"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if expected["IsConverted"]:
            assert row["ConvertedDate"] == expected["ConvertedDate"].strftime("%Y-%m-%d")
        else:
            assert row["ConvertedDate"] == ""
        employees = expected["NumberOfEmployees"]
        assert row["NumberOfEmployees"] == ("" if employees != employees else str(int(employees)))
        assert row["Phone"] == ("" if pd.isna(expected["Phone"]) else expected["Phone"])
    by_id = {r["Id"]: r for r in rows}
    assert by_id[lead_id(bulk_sandbox, 3)]["Title"] == tricky
    endpoints = bulk_sandbox.stats()["salesforce"]["by_endpoint"]
    assert endpoints["POST /services/data/v<version>/jobs/query"] == 1
    assert endpoints["GET /services/data/v<version>/jobs/query/<job_id>/results"] == 3
    assert endpoints["GET /services/data/v<version>/jobs/query/<job_id>"] == 2  # InProgress, done


def test_query_all_includes_deleted(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    victim = lead_id(bulk_sandbox, 11)
    bsf.Lead.delete(victim)
    soql = f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{victim}'"
    assert parse_csv(next(bsf.bulk2.Lead.query(soql, wait=0))) == []
    rows = parse_csv(next(bsf.bulk2.Lead.query_all(soql, wait=0)))
    assert rows == [{"Id": victim, "IsDeleted": "true"}]


def test_invalid_soql_is_rejected_like_rest(bsf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        next(bsf.bulk2.Lead.query("SELECT Id, Bogus__c FROM Lead", wait=0))
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Bogus__c' on entity 'Lead'" in err.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        next(bsf.bulk2.Lead.query("SELECT Id FROM Lead WHERE", wait=0))
    assert err.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_query_job_lifecycle_and_locators(raw, bulk_sandbox: SandboxCRM) -> None:
    session, jobs = raw
    frame = bulk_sandbox.salesforce.frame("Lead")
    live = sorted(frame.loc[~frame["IsDeleted"], "Id"])
    body = {
        "operation": "query",
        "query": "SELECT Id, Name FROM Lead ORDER BY Id",
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    created = session.post(f"{jobs}/query", json=body).json()
    assert created["id"].startswith("750") and created["state"] == "UploadComplete"
    assert created["object"] == "Lead" and created["apiVersion"] == 62.0
    assert created["createdById"] == bulk_sandbox.salesforce.integration_user_id
    job = f"{jobs}/query/{created['id']}"
    early = session.get(f"{job}/results")
    assert early.status_code == 412 and early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    assert session.get(job).json()["state"] == "InProgress"
    done = session.get(job).json()
    assert done["state"] == "JobComplete" and done["numberRecordsProcessed"] == len(live)
    first = session.get(f"{job}/results", params={"maxRecords": 400})
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "400"
    locator = first.headers["Sforce-Locator"]
    second = session.get(f"{job}/results", params={"maxRecords": 400, "locator": locator})
    assert second.headers["Sforce-Locator"] == "null"
    assert second.headers["Sforce-NumberOfRecords"] == str(len(live) - 400)
    again = session.get(f"{job}/results", params={"maxRecords": 400, "locator": locator})
    assert again.text == second.text  # locators are stable while the job exists
    ids = [r["Id"] for r in parse_csv(first.text) + parse_csv(second.text)]
    assert ids == live
    default = session.get(f"{job}/results")
    assert default.headers["Sforce-NumberOfRecords"] == str(len(live))  # page size 50,000
    assert created["id"] in [j["id"] for j in session.get(f"{jobs}/query").json()["records"]]
    assert session.delete(job).status_code == 204
    assert session.get(job).status_code == 404

    aborted = session.post(f"{jobs}/query", json=body).json()
    job = f"{jobs}/query/{aborted['id']}"
    assert session.patch(job, json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert session.get(job).json()["state"] == "Aborted"
    again = session.patch(job, json={"state": "Aborted"})
    assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_polls_to_complete_zero_completes_at_once() -> None:
    sandbox = SandboxCRM.from_seed(make_seed(40), SandboxConfig(bulk_polls_to_complete=0))
    with SandboxServer(sandbox) as server:
        sf = sf_client(server, sandbox.issue_tokens("salesforce")["access_token"])
        sandbox.reset_stats()
        rows = parse_csv(next(sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0)))
        assert len(rows) == 40
        assert (
            sandbox.stats()["salesforce"]["by_endpoint"][
                "GET /services/data/v<version>/jobs/query/<job_id>"
            ]
            == 1
        )


def test_daily_query_job_limit(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    org = bulk_sandbox.salesforce
    saved = org.bulk_query_jobs_used
    org.bulk_query_jobs_used = bulk_sandbox.config.bulk_daily_query_jobs - 1
    try:
        next(bsf.bulk2.Lead.query("SELECT Id FROM Lead LIMIT 1", wait=0))
        assert bsf.limits()["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 0}
        with pytest.raises(SalesforceMalformedRequest) as err:
            next(bsf.bulk2.Lead.query("SELECT Id FROM Lead LIMIT 1", wait=0))
        assert err.value.content == [
            {
                "message": "Max bulk v2 query jobs (10000) per 24 hrs has been reached",
                "errorCode": "LIMIT_EXCEEDED",
            }
        ]
    finally:
        org.bulk_query_jobs_used = saved


def test_bulk_update_semantics_and_failures(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    org = bulk_sandbox.salesforce
    ids = [lead_id(bulk_sandbox, k) for k in range(100, 108)]
    before = {i: org.get("Lead", i) for i in ids}
    lead_queue = org.id_for("Group", 0)
    no_lead_queue = org.add_queue("Contacts Only", "Contacts_Only", sobject_types=("Case",))
    inactive = org.id_for("User", 3)
    org.update("User", inactive, {"IsActive": False})
    active = org.id_for("User", 1)
    bulk_sandbox.faults.fail_records(
        "salesforce", [ids[2]], "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"
    )
    records = [
        {"Id": ids[0], "Title": "Bulk Title", "Phone": "#N/A"},  # Email absent: unchanged
        {"Id": "00Q8d0000zzzzzzAAA", "Title": "nobody"},
        {"Id": ids[2], "Title": "locked"},
        {"Id": ids[3], "OwnerId": no_lead_queue},
        {"Id": ids[4], "OwnerId": lead_queue},
        {"Id": ids[5], "OwnerId": inactive},
        {"Id": ids[6], "OwnerId": active, "NumberOfEmployees": "12"},
        {"Id": ids[7], "NumberOfEmployees": "lots", "IsConverted": "true"},
    ]
    try:
        result = bsf.bulk2.Lead.update(records=records, wait=0)
    finally:
        org.update("User", inactive, {"IsActive": True})
    assert len(result) == 1
    assert result[0]["numberRecordsProcessed"] == 8 and result[0]["numberRecordsFailed"] == 5
    job_id = result[0]["job_id"]
    failed = {r["Id"]: r for r in parse_csv(bsf.bulk2.Lead.get_failed_records(job_id))}
    assert failed["00Q8d0000zzzzzzAAA"]["sf__Error"] == (
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
    )
    assert failed["00Q8d0000zzzzzzAAA"]["sf__Id"] == ""
    assert failed[ids[2]]["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:")
    assert failed[ids[2]]["sf__Id"] == ids[2]
    assert failed[ids[3]]["sf__Error"] == (
        "INVALID_CROSS_REFERENCE_KEY:queue not associated with this SObject type:OwnerId --"
    )
    assert failed[ids[5]]["sf__Error"].startswith("INACTIVE_OWNER_OR_USER:")
    # simple-salesforce orders CSV columns from a set: either field's error may come first
    assert failed[ids[7]]["sf__Error"].split(":")[0] in (
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    )
    ok = {r["sf__Id"]: r for r in parse_csv(bsf.bulk2.Lead.get_successful_records(job_id))}
    assert set(ok) == {ids[0], ids[4], ids[6]}
    assert ok[ids[0]]["sf__Created"] == "false" and ok[ids[0]]["Phone"] == "#N/A"
    first = org.get("Lead", ids[0])
    assert first["Title"] == "Bulk Title" and first["Phone"] is None
    assert first["Email"] == before[ids[0]]["Email"]  # empty cell: unchanged
    assert first["SystemModstamp"] > before[ids[0]]["SystemModstamp"]
    assert org.get("Lead", ids[4])["OwnerId"] == lead_queue
    assert org.get("Lead", ids[6])["NumberOfEmployees"] == 12
    for k in (2, 3, 5, 7):
        assert org.get("Lead", ids[k]) == before[ids[k]]
    assert parse_csv(bsf.bulk2.Lead.get_unprocessed_records(job_id)) == []


def test_bulk_insert_and_delete(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    org = bulk_sandbox.salesforce
    result = bsf.bulk2.Lead.insert(
        records=[
            {"LastName": "Lovelace", "FirstName": "Ada", "Company": "Engines Ltd"},
            {"LastName": "Nocompany"},
        ],
        wait=0,
    )
    job_id = result[0]["job_id"]
    created = parse_csv(bsf.bulk2.Lead.get_successful_records(job_id))
    assert [r["sf__Created"] for r in created] == ["true"]
    new_id = created[0]["sf__Id"]
    lead = org.get("Lead", new_id)
    assert lead["Name"] == "Ada Lovelace" and lead["Status"] == "Open - Not Contacted"
    assert lead["OwnerId"] == org.integration_user_id
    failed = parse_csv(bsf.bulk2.Lead.get_failed_records(job_id))
    assert failed[0]["sf__Error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Company]:Company --"
    )
    rest = bsf.query(f"SELECT Id, Name FROM Lead WHERE Id = '{new_id}'")["records"]
    assert rest[0]["Name"] == "Ada Lovelace"
    deleted = bsf.bulk2.Lead.delete(records=[{"Id": new_id}], wait=0)
    assert deleted[0]["numberRecordsFailed"] == 0
    rows = parse_csv(
        next(
            bsf.bulk2.Lead.query_all(
                f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{new_id}'", wait=0
            )
        )
    )
    assert rows == [{"Id": new_id, "IsDeleted": "true"}]
    again = bsf.bulk2.Lead.delete(records=[{"Id": new_id}], wait=0)
    failed = parse_csv(bsf.bulk2.Lead.get_failed_records(again[0]["job_id"]))
    assert failed[0]["sf__Error"] == "ENTITY_IS_DELETED:entity is deleted:--"


def test_ingest_job_raw_protocol(raw, bulk_sandbox: SandboxCRM) -> None:
    session, jobs = raw
    target = lead_id(bulk_sandbox, 200)
    body = {"object": "Lead", "operation": "update", "contentType": "CSV", "lineEnding": "LF"}
    created = session.post(f"{jobs}/ingest", json=body).json()
    assert created["state"] == "Open"
    assert created["contentUrl"] == f"services/data/v62.0/jobs/ingest/{created['id']}/batches"
    job = f"{jobs}/ingest/{created['id']}"
    csv_headers = {"Content-Type": "text/csv"}
    upload = session.put(f"{job}/batches", data=f"Id,Title\n{target},Raw\n", headers=csv_headers)
    assert upload.status_code == 201 and upload.text == ""
    early = session.get(f"{job}/failedResults/")
    assert early.status_code == 412
    closed = session.patch(job, json={"state": "UploadComplete"}).json()
    assert closed["state"] == "UploadComplete"
    late = session.put(f"{job}/batches", data=f"Id,Title\n{target},x\n", headers=csv_headers)
    assert late.status_code == 400 and late.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    assert session.get(job).json()["state"] == "InProgress"
    done = session.get(job).json()
    assert done["state"] == "JobComplete"
    assert (done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (1, 0)
    assert bulk_sandbox.salesforce.get("Lead", target)["Title"] == "Raw"
    results = session.get(f"{job}/successfulResults/").text
    assert results == f'"sf__Id","sf__Created","Id","Title"\n"{target}","false","{target}","Raw"\n'
    assert session.delete(job).status_code == 204

    aborted = session.post(f"{jobs}/ingest", json=body).json()
    job = f"{jobs}/ingest/{aborted['id']}"
    session.put(f"{job}/batches", data=f"Id,Title\n{target},Never\n", headers=csv_headers)
    assert session.patch(job, json={"state": "Aborted"}).json()["state"] == "Aborted"
    unprocessed = parse_csv(session.get(f"{job}/unprocessedrecords/").text)
    assert unprocessed == [{"Id": target, "Title": "Never"}]
    assert bulk_sandbox.salesforce.get("Lead", target)["Title"] == "Raw"
    bad = session.post(f"{jobs}/ingest", json={"object": "Widget__c", "operation": "update"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDJOB"


def test_faults_target_bulk_paths(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    bulk_sandbox.faults.inject("salesforce", 503, count=1, path_contains="/jobs/query")
    with pytest.raises(SalesforceGeneralError) as err:
        next(bsf.bulk2.Lead.query("SELECT Id FROM Lead LIMIT 1", wait=0))
    assert err.value.status == 503
    assert parse_csv(next(bsf.bulk2.Lead.query("SELECT Id FROM Lead LIMIT 2", wait=0)))


def test_rest_create_lead(bsf: Salesforce, bulk_sandbox: SandboxCRM) -> None:
    created = bsf.Lead.create({"LastName": "Hopper", "Company": "Navy", "Title": "RADM"})
    assert created["success"] and created["id"].startswith("00Q")
    lead = bulk_sandbox.salesforce.get("Lead", created["id"])
    assert (lead["Name"], lead["Status"]) == ("Hopper", "Open - Not Contacted")
    with pytest.raises(SalesforceMalformedRequest) as err:
        bsf.Lead.create({"LastName": "NoCompany"})
    assert err.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as err:
        bsf.Organization.create({"Name": "x"})
    assert err.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
