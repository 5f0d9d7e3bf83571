"""Salesforce auth, cursor, Bulk 2.0, install and budget behaviour at the HTTP layer."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from responses import matchers
from sqlalchemy import select

from connectors.base import FieldSpec, FieldUpdate
from connectors.budget import ApiBudget
from connectors.errors import AuthError, BudgetExhaustedError
from connectors.http import retrying_session
from connectors.salesforce import SalesforceConnector, SalesforceCredentials
from connectors.salesforce import auth as sf_auth
from integration.connections import save_connection
from integration.store.models import Lead
from integration.sync import sync_object

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v62.0"
LOGIN = "https://login.salesforce.com"
SCORE = FieldSpec("Lead_Score", "Lead Score", "number", precision=3)


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def connector(**kwargs) -> SalesforceConnector:
    creds = SalesforceCredentials(
        INSTANCE, "00Dxx!Token", refresh_token="5Aep", client_id="cid", client_secret="secret",
        login_url=LOGIN, user_id="005xx000001Sv6mAAC",
    )  # fmt: skip
    return SalesforceConnector(creds, **kwargs)


def lead_row(n: int, stamp: str, deleted: bool = False) -> dict:
    return {
        "attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/00Q{n:015d}"},
        "Id": f"00Q{n:015d}", "CreatedDate": "2026-05-01T09:00:00.000+0000",
        "SystemModstamp": stamp, "IsDeleted": deleted, "FirstName": "A", "LastName": f"L{n}",
        "Email": f"l{n}@acme.com", "Title": None, "Company": "Acme", "LeadSource": None,
        "Status": "Open - Not Contacted", "OwnerId": "005xx000001Sv6mAAC",
        "EmailBouncedDate": None,
    }  # fmt: skip


# -- auth -----------------------------------------------------------------------------------


def test_authorize_url_carries_pkce_challenge_and_state() -> None:
    pkce = sf_auth.PkcePair.new()
    url = sf_auth.authorize_url(
        LOGIN, "cid", "http://localhost:8723/callback", "s1", pkce.challenge
    )
    query = parse_qs(urlparse(url).query)
    assert query["response_type"] == ["code"] and query["state"] == ["s1"]
    assert query["code_challenge_method"] == ["S256"]
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).rstrip(b"=").decode()]


@responses.activate
def test_code_exchange_sends_the_verifier_and_checks_the_signature() -> None:
    token = fixture("token_refresh.json")
    digest = hmac.new(b"secret", f"{token['id']}{token['issued_at']}".encode(), hashlib.sha256)
    token["signature"] = base64.b64encode(digest.digest()).decode()
    exchange = responses.post(f"{LOGIN}/services/oauth2/token", json=token)
    session = retrying_session()
    result = sf_auth.exchange_code(session, LOGIN, "cid", "secret", "http://cb", "code1", "ver1")
    form = parse_qs(exchange.calls[0].request.body)
    assert form["grant_type"] == ["authorization_code"] and form["code_verifier"] == ["ver1"]
    assert result["instance_url"] == INSTANCE
    assert sf_auth.user_id_from_identity(result["id"]) == "005xx000001Sv6mAAC"

    token["signature"] = base64.b64encode(b"forged").decode()
    responses.post(f"{LOGIN}/services/oauth2/token", json=token)
    with pytest.raises(AuthError, match="signature"):
        sf_auth.exchange_code(session, LOGIN, "cid", "secret", "http://cb", "code2", "ver2")


@responses.activate
def test_jwt_bearer_signs_a_short_lived_assertion_for_the_user() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    token = {k: v for k, v in fixture("token_refresh.json").items() if k != "refresh_token"}
    call = responses.post(f"{LOGIN}/services/oauth2/token", json=token)
    result = sf_auth.jwt_bearer_token(retrying_session(), LOGIN, "cid", "bot@acme.com", pem)

    form = parse_qs(call.calls[0].request.body)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0], key.public_key(), algorithms=["RS256"], audience=LOGIN
    )
    assert claims["iss"] == "cid" and claims["sub"] == "bot@acme.com"
    assert 0 < claims["exp"] - datetime.now(UTC).timestamp() <= 180
    assert "refresh_token" not in result


# -- incremental sync ------------------------------------------------------------------------


@responses.activate
def test_ties_on_the_cursor_timestamp_lose_no_record(tmp_path, settings) -> None:
    """Rows sharing the boundary SystemModstamp, written after the first read, still arrive."""
    from integration.store import Store

    store = Store(settings.store_url)
    store.upgrade()
    cid = save_connection(store, settings, "sf", "salesforce", {"access_token": "x"}, INSTANCE)
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=fixture("describe_lead.json"))
    t1, t2 = "2026-05-02T10:00:00.000+0000", "2026-05-02T10:00:05.000+0000"
    first = responses.get(
        f"{DATA}/queryAll/",
        json={"totalSize": 2, "done": True, "records": [lead_row(1, t1), lead_row(2, t2)]},
    )
    sf = connector()
    sync_object(store, settings, cid, sf, "Lead")

    # Another transaction commits row 3 with the very same stamp as the cursor.
    second = responses.get(
        f"{DATA}/queryAll/",
        json={"totalSize": 2, "done": True, "records": [lead_row(2, t2), lead_row(3, t2)]},
    )
    stats = sync_object(store, settings, cid, sf, "Lead")

    soql = parse_qs(urlparse(second.calls[0].request.url).query)["q"][0]
    lookback = datetime(2026, 5, 2, 10, 0, 5, tzinfo=UTC) - timedelta(
        seconds=settings.sync_lookback_seconds
    )
    assert f"SystemModstamp >= {lookback:%Y-%m-%dT%H:%M:%SZ}" in soql
    assert "WHERE" not in parse_qs(urlparse(first.calls[0].request.url).query)["q"][0]
    assert stats.written == 1  # row 2 unchanged: not rewritten; row 3 new
    with store.session() as session:
        ids = sorted(session.scalars(select(Lead.crm_id)))
    assert ids == [f"00Q{n:015d}" for n in (1, 2, 3)]


@responses.activate
def test_deleted_rows_arrive_through_query_all_and_are_marked(tmp_path, settings) -> None:
    from integration.store import Store

    store = Store(settings.store_url)
    store.upgrade()
    cid = save_connection(store, settings, "sf", "salesforce", {"access_token": "x"}, INSTANCE)
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=fixture("describe_lead.json"))
    responses.get(f"{DATA}/queryAll/", json=fixture("query_leads_page1.json"))
    responses.get(f"{DATA}/queryAll/01gxx0000000001-2000", json=fixture("query_leads_page2.json"))
    stats = sync_object(store, settings, cid, connector(), "Lead")
    assert stats.pulled == 3 and stats.deleted == 1
    with store.session() as session:
        assert session.scalar(select(Lead.deleted).where(Lead.crm_id.like("%3AAA"))) is True


# -- Bulk API 2.0 ----------------------------------------------------------------------------

CSV_PAGE_1 = (
    "Id,CreatedDate,SystemModstamp,IsDeleted,FirstName,LastName,Email,Company,Title\n"
    "00Qxx0000000001AAA,2026-05-01T09:00:00.000Z,2026-05-02T10:00:00.000Z,false,Ada,"
    '"Lovelace, Countess",ada@acme.com,Acme,\n'
)
CSV_PAGE_2 = (
    "Id,CreatedDate,SystemModstamp,IsDeleted,FirstName,LastName,Email,Company,Title\n"
    "00Qxx0000000002AAA,2026-05-01T09:30:00.000Z,2026-05-02T11:00:00.000Z,true,Grace,Hopper,"
    ',Navy,"Rear ""Amazing"" Admiral"\n'
)


@responses.activate
def test_a_large_window_switches_to_a_bulk_job_read_over_two_locator_pages() -> None:
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=fixture("describe_lead.json"))
    responses.get(
        f"{DATA}/queryAll/",
        json={"totalSize": 60_000, "done": False, "nextRecordsUrl": "/x",
              "records": [lead_row(9, "2026-05-02T10:00:00.000+0000")]},
    )  # fmt: skip
    job = {"id": "750xx0000000001", "operation": "queryAll", "object": "Lead",
           "state": "UploadComplete", "contentType": "CSV", "apiVersion": 62.0}  # fmt: skip
    create = responses.post(f"{DATA}/jobs/query", json=job)
    responses.get(f"{DATA}/jobs/query/750xx0000000001", json={**job, "state": "JobComplete"})
    responses.get(
        f"{DATA}/jobs/query/750xx0000000001/results",
        body=CSV_PAGE_1,
        headers={"Sforce-Locator": "MTAwMDA", "Sforce-NumberOfRecords": "1"},
        match=[matchers.query_param_matcher({"maxRecords": "50000"})],
    )
    responses.get(
        f"{DATA}/jobs/query/750xx0000000001/results",
        body=CSV_PAGE_2,
        headers={"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"},
        match=[matchers.query_param_matcher({"maxRecords": "50000", "locator": "MTAwMDA"})],
    )
    sf = connector(bulk_threshold=50_000, bulk_wait=0)
    records = []
    for record in sf.pull("Lead", None):
        assert not sf.cursor_ordered("Lead", None)  # bulk rows come in no promised order
        records.append(record)

    body = json.loads(create.calls[0].request.body)
    assert body["operation"] == "queryAll" and body["query"].startswith("SELECT Id,")
    assert [r.crm_id for r in records] == ["00Qxx0000000001AAA", "00Qxx0000000002AAA"]
    first, second = (r.fields for r in records)
    assert first["IsDeleted"] is False and second["IsDeleted"] is True and records[1].deleted
    assert first["LastName"] == "Lovelace, Countess" and first["Title"] is None
    assert second["Title"] == 'Rear "Amazing" Admiral' and second["Email"] is None
    assert sf.cursor_ordered("Lead", None)


@responses.activate
def test_a_large_write_back_goes_through_one_bulk_ingest_job() -> None:
    job = {"id": "750xx0000000002", "state": "Open", "object": "Lead", "operation": "update",
           "contentUrl": "services/data/v62.0/jobs/ingest/750xx0000000002/batches"}  # fmt: skip
    create = responses.post(f"{DATA}/jobs/ingest", json=job)
    upload = responses.put(f"{DATA}/jobs/ingest/750xx0000000002/batches", status=201)
    responses.patch(f"{DATA}/jobs/ingest/750xx0000000002", json={**job, "state": "UploadComplete"})
    done = {**job, "state": "JobComplete", "numberRecordsProcessed": 3, "numberRecordsFailed": 1}
    responses.get(f"{DATA}/jobs/ingest/750xx0000000002", json=done)
    responses.get(
        f"{DATA}/jobs/ingest/750xx0000000002/failedResults",
        body='"sf__Id","sf__Error",Id,Lead_Score__c\n'
        '"","ENTITY_IS_DELETED:entity is deleted:--",00Q000000000000002,#N/A\n',
    )
    updates = [
        FieldUpdate("Lead", f"00Q{n:015d}", {"Lead_Score": None if n == 2 else n})
        for n in (1, 2, 3)
    ]
    report = connector(bulk_ingest_threshold=2, bulk_wait=0).push(updates)

    assert json.loads(create.calls[0].request.body)["operation"] == "update"
    sent = list(csv.DictReader(io.StringIO(upload.calls[0].request.body.decode())))
    # null is #N/A in ingest CSV; an empty cell would mean "leave unchanged"
    assert {r["Id"]: r["Lead_Score__c"] for r in sent} == {
        "00Q000000000000001": "1", "00Q000000000000002": "#N/A", "00Q000000000000003": "3",
    }  # fmt: skip
    assert report.succeeded == 2
    assert [(e.crm_id, e.code) for e in report.errors] == [
        ("00Q000000000000002", "ENTITY_IS_DELETED")
    ]


# -- install ---------------------------------------------------------------------------------


def _describe(with_score: bool) -> dict:
    fields = [{"name": "Id", "type": "id"}, {"name": "Email", "type": "email"}]
    if with_score:
        fields.append({"name": "Lead_Score__c", "type": "double", "custom": True})
    return {"fields": fields}


@responses.activate
def test_field_install_creates_grants_and_is_idempotent_on_the_second_run() -> None:
    def query(soql_start: str, records: list[dict]):
        responses.get(
            f"{DATA}/query/",
            json={"totalSize": len(records), "done": True, "records": records},
            match=[_soql_starts(soql_start)],
        )

    # First run: nothing exists.
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=_describe(False))
    responses.get(f"{DATA}/tooling/query/", json={"records": []})
    created = responses.post(
        f"{DATA}/tooling/sobjects/CustomField",
        json={"id": "00Nxx01", "success": True, "errors": []},
    )
    query("SELECT Id FROM PermissionSet", [])
    permset = responses.post(
        f"{DATA}/sobjects/PermissionSet/", json={"id": "0PSxx01", "success": True}
    )
    query("SELECT Id, Field FROM FieldPermissions", [])
    fls = responses.post(
        f"{DATA}/sobjects/FieldPermissions/", json={"id": "01kxx01", "success": True}
    )
    query("SELECT Id FROM PermissionSetAssignment", [])
    assign = responses.post(
        f"{DATA}/sobjects/PermissionSetAssignment/", json={"id": "0Paxx01", "success": True}
    )
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=_describe(True))
    sf = connector(field_objects=("Lead",))
    first = sf.ensure_fields([SCORE])

    assert first.created == ("Lead.Lead_Score__c",)
    assert json.loads(created.calls[0].request.body)["Metadata"]["type"] == "Number"
    assert json.loads(fls.calls[0].request.body) == {
        "ParentId": "0PSxx01", "SobjectType": "Lead", "Field": "Lead.Lead_Score__c",
        "PermissionsRead": True, "PermissionsEdit": True,
    }  # fmt: skip
    assert json.loads(assign.calls[0].request.body)["AssigneeId"] == "005xx000001Sv6mAAC"
    assert [c.kind for c in first.components] == [
        "custom_field", "permission_set", "field_permission", "permission_set_assignment",
    ]  # fmt: skip
    assert permset.call_count == 1

    # Second run: everything is there; nothing is created.
    responses.reset()
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=_describe(True))
    responses.get(
        f"{DATA}/tooling/query/",
        json={"records": [{"Id": "00Nxx01", "DeveloperName": "Lead_Score"}]},
    )
    query("SELECT Id FROM PermissionSet", [{"Id": "0PSxx01"}])
    query(
        "SELECT Id, Field FROM FieldPermissions", [{"Id": "01kxx01", "Field": "Lead.Lead_Score__c"}]
    )
    query("SELECT Id FROM PermissionSetAssignment", [{"Id": "0Paxx01"}])
    second = sf.ensure_fields([SCORE])
    assert second.created == () and second.components == ()
    assert second.existing == ("Lead.Lead_Score__c",)
    assert not [c for c in responses.calls if c.request.method == "POST"]


def _soql_starts(prefix: str):
    def match(request):
        q = parse_qs(urlparse(request.url).query).get("q", [""])[0]
        return (q.startswith(prefix), f"query does not start with {prefix!r}")

    return match


@responses.activate
def test_a_type_clash_is_reported_and_nothing_is_created() -> None:
    responses.get(
        f"{DATA}/sobjects/Lead/describe/",
        json={"fields": [{"name": "Lead_Score__c", "type": "string", "custom": True}]},
    )
    responses.get(f"{DATA}/tooling/query/", json={"records": []})
    report = connector(field_objects=("Lead",)).ensure_fields([SCORE])
    assert report.clashes == ("Lead.Lead_Score__c (is string, leadlift needs number)",)
    assert not [c for c in responses.calls if c.request.method == "POST"]


# -- budget ----------------------------------------------------------------------------------


@responses.activate
def test_the_budget_slows_then_stops_before_leadlifts_share_is_spent() -> None:
    pauses: list[float] = []
    budget = ApiBudget(share=0.5, used_before=37, slow_at=0.8, sleep=pauses.append)
    responses.get(
        f"{DATA}/sobjects/Lead/describe/",
        json=_describe(False),
        headers={"Sforce-Limit-Info": "api-usage=500/100"},  # an org of 100 calls a day
    )
    sf = connector(budget=budget)
    sf.describe_fields("Lead")  # first call: the limit becomes known
    assert budget.cap == 50 and budget.used == 38 and pauses == []
    for _ in range(2):
        sf._describes.clear()
        with pytest.raises(BudgetExhaustedError, match="org has used 500 of its 100"):
            sf.describe_fields("Lead")
    assert len(responses.calls) == 1  # stopped before sending, not after

    quiet = ApiBudget(share=0.5, used_before=40, slow_at=0.8, sleep=pauses.append)
    quiet.observe(10, 100)
    quiet.before_call()
    assert pauses == [0.5]  # 40 of 50: past 80%, slow down
    quiet.after_call(10)
    with pytest.raises(BudgetExhaustedError, match="leadlift used 50 of its 50"):
        quiet.before_call()
