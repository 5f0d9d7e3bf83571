"""SalesforceConnector at the HTTP layer (responses), with shapes from Salesforce's docs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.base import Cursor, FieldUpdate, LeadRecord, OutcomeRecord
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.salesforce import SalesforceConnector, SalesforceCredentials

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v62.0"
LOGIN = "https://login.salesforce.com"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def connector(on_tokens=None, refresh: bool = True) -> SalesforceConnector:
    creds = SalesforceCredentials(
        INSTANCE,
        "00Dxx!OldAccessToken",
        refresh_token="5AepOldRefresh" if refresh else None,
        client_id="client",
        client_secret="secret",
        login_url=LOGIN,
    )
    return SalesforceConnector(creds, on_tokens=on_tokens)


@responses.activate
def test_pull_queries_all_rows_since_the_cursor_in_order_and_follows_next_page() -> None:
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=fixture("describe_lead.json"))
    page1 = responses.get(
        f"{DATA}/queryAll/",
        json=fixture("query_leads_page1.json"),
        headers={"Sforce-Limit-Info": "api-usage=18/15000"},
    )
    responses.get(f"{DATA}/queryAll/01gxx0000000001-2000", json=fixture("query_leads_page2.json"))
    sf = connector()
    since = Cursor(datetime(2026, 5, 2, 9, 59, 59, 750000, tzinfo=UTC))
    records = list(sf.pull("Lead", since))

    soql = parse_qs(urlparse(page1.calls[0].request.url).query)["q"][0]
    assert "FROM Lead WHERE SystemModstamp >= 2026-05-02T09:59:59Z" in soql
    assert soql.endswith("ORDER BY SystemModstamp ASC, Id ASC")
    assert "Account__c" not in soql  # not in this org's describe: left out, not an error
    assert [r.crm_id for r in records] == [
        "00Qxx0000000001AAA", "00Qxx0000000002AAA", "00Qxx0000000003AAA",
    ]  # fmt: skip
    assert [r.deleted for r in records] == [False, False, True]
    assert sf.usage().used == 18 and sf.usage().limit == 15000

    mapped = sf.to_domain(records[1])
    lead = next(r for r in mapped if isinstance(r, LeadRecord))
    bounce = next(r for r in mapped if isinstance(r, OutcomeRecord))
    assert lead.email_domain == "navy.mil" and lead.title is None
    assert bounce.kind == "bounced" and bounce.occurred_at == datetime(2026, 5, 3, 8, tzinfo=UTC)


@responses.activate
def test_an_expired_session_is_refreshed_once_and_the_rotated_token_is_persisted() -> None:
    saved: list[dict] = []
    responses.get(
        f"{DATA}/sobjects/Lead/describe/",
        status=401,
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    token = responses.post(f"{LOGIN}/services/oauth2/token", json=fixture("token_refresh.json"))
    responses.get(f"{DATA}/sobjects/Lead/describe/", json=fixture("describe_lead.json"))
    sf = connector(on_tokens=saved.append)

    assert "Email" in sf.describe_fields("Lead")
    form = parse_qs(token.calls[0].request.body)
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["5AepOldRefresh"]
    assert saved == [
        {
            "access_token": "00Dxx0000000001!AQ8AQNewAccessToken",
            "refresh_token": "5Aep861RotatedRefreshToken",
            "instance_url": INSTANCE,
        }
    ]
    retried = responses.calls[-1].request
    assert retried.headers["Authorization"] == "Bearer 00Dxx0000000001!AQ8AQNewAccessToken"


@responses.activate
def test_without_a_refresh_token_an_expired_session_asks_for_reconnect() -> None:
    responses.get(
        f"{DATA}/sobjects/Lead/describe/",
        status=401,
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    with pytest.raises(AuthError, match="reconnect"):
        connector(refresh=False).describe_fields("Lead")


@pytest.mark.parametrize(
    ("status", "body", "error", "retry_after"),
    [
        (403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
         TransientError, 3600.0),
        (403, [{"message": "no access", "errorCode": "INSUFFICIENT_ACCESS"}], AuthError, None),
        (400, [{"message": "unexpected token", "errorCode": "MALFORMED_QUERY"}],
         PermanentError, None),
        (404, [{"message": "not found", "errorCode": "NOT_FOUND"}], PermanentError, None),
        (503, [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}], TransientError, None),
    ],
)  # fmt: skip
@responses.activate
def test_errors_are_translated_by_status_and_error_code(status, body, error, retry_after) -> None:
    responses.get(f"{DATA}/sobjects/Lead/describe/", status=status, json=body)
    sf = connector()
    sf.session.adapters["https://"].max_retries.total = 0
    with pytest.raises(error) as caught:
        sf.describe_fields("Lead")
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert "OldAccessToken" not in str(caught.value)
    assert caught.value.__reduce__()  # picklable for Celery


@responses.activate
def test_push_sends_collections_patch_and_retries_only_lock_errors() -> None:
    ids = ["00Qxx0000000001AAA", "00Qxx0000000002AAA", "00Qxx0000000003AAA"]
    first = responses.patch(f"{DATA}/composite/sobjects", json=fixture("collections_partial.json"))
    responses.patch(
        f"{DATA}/composite/sobjects", json=[{"id": ids[1], "success": True, "errors": []}]
    )
    scores = (87, 42, 150)
    updates = [FieldUpdate("Lead", i, {"Lead_Score": s}) for i, s in zip(ids, scores, strict=True)]
    report = connector().push(updates)

    body = json.loads(first.calls[0].request.body)
    assert body["allOrNone"] is False
    assert body["records"][0] == {"attributes": {"type": "Lead"}, "id": ids[0], "Lead_Score__c": 87}
    assert first.calls[0].request.headers["Sforce-Auto-Assign"] == "FALSE"
    retry = json.loads(responses.calls[1].request.body)
    assert [r["id"] for r in retry["records"]] == [ids[1]]  # the locked one, alone
    assert report.attempted == 3 and report.succeeded == 2 and report.api_calls == 2
    assert [(e.crm_id, e.code) for e in report.errors] == [
        (ids[2], "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    ]
