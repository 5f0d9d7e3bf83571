"""Connector behaviour that needs a live CRM: incremental pulls, caps, partial failures, retries.

Both connectors talk to the sandbox over real HTTPS (hubspot-api-client goes through
urllib3, which `responses` cannot see).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.base import Cursor, FieldSpec, FieldUpdate, LeadRecord, OutcomeRecord
from connectors.errors import TransientError
from connectors.http import retrying_session
from connectors.hubspot import HubSpotConnector, HubSpotCredentials
from connectors.salesforce import SalesforceConnector, SalesforceCredentials
from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import load_settings
from integration.connect import connect_hubspot_oauth
from integration.connections import build_connector, decrypt_tokens, get_connection, save_connection
from integration.store import Store
from integration.store.models import Lead
from integration.sync import sync_object
from integration.world import generate_world

from .conftest import NOW

SCORE = FieldSpec("Lead_Score", "Lead Score", "number", precision=3)


@pytest.fixture
def served(world):
    def start(**config):
        sandbox = SandboxCRM.from_seed(world.seed, config=SandboxConfig(**config))
        server = SandboxServer(sandbox).start()
        started.append(server)
        return sandbox, server

    started: list[SandboxServer] = []
    yield start
    for server in started:
        server.stop()


def hubspot(sandbox, server, saved=None, **kwargs) -> HubSpotConnector:
    token = sandbox.issue_tokens("hubspot")
    creds = HubSpotCredentials(
        token["access_token"],
        refresh_token=token["refresh_token"],
        client_id=sandbox.config.hubspot_client_id,
        client_secret=sandbox.config.hubspot_client_secret,
        api_base=server.url,
    )
    kwargs.setdefault("lag_seconds", 0)  # the tests change records and read them at once
    return HubSpotConnector(creds, verify=server.ca_file, on_tokens=saved, **kwargs)


def salesforce(sandbox, server) -> SalesforceConnector:
    token = sandbox.issue_tokens("salesforce")
    creds = SalesforceCredentials(server.url, token["access_token"])
    return SalesforceConnector(creds, verify=server.ca_file)


def test_hubspot_incremental_pull_finds_exactly_the_changed_contacts(served) -> None:
    sandbox, server = served()
    hs = hubspot(sandbox, server)
    first = list(hs.pull("contacts", None))
    assert len(first) == 3000 and not hs.cursor_ordered("contacts", None)

    changed = [first[5].crm_id, first[500].crm_id, first[2999].crm_id]
    mark = datetime.now(UTC) - timedelta(seconds=1)
    for i, crm_id in enumerate(changed):
        sandbox.hubspot.update_one(
            "contacts", crm_id, {"hs_lead_status": "UNQUALIFIED", "phone": str(i)}
        )

    again = list(hs.pull("contacts", Cursor(mark)))
    assert sorted(r.crm_id for r in again) == sorted(changed)
    assert [r.modified_at for r in again] == sorted(r.modified_at for r in again)
    disqualified = [
        d for r in again for d in hs.to_domain(r) if isinstance(d, OutcomeRecord)
    ]  # history fetched for search results, which carry none
    assert {d.lead_crm_id for d in disqualified} == set(changed)
    leads = [d for r in again for d in hs.to_domain(r) if isinstance(d, LeadRecord)]
    companies = {i: sandbox.hubspot.get("contacts", i).get("associatedcompanyid") for i in changed}
    assert {lead.crm_id: lead.account_crm_id for lead in leads} == companies


def test_hubspot_search_never_pages_past_its_cap(served) -> None:
    sandbox, server = served(hubspot_search_cap=400)
    hs = hubspot(sandbox, server, search_cap=400)
    since = Cursor(datetime(2000, 1, 1, tzinfo=UTC))
    pulled = list(hs.pull("contacts", since))
    ids = [r.crm_id for r in pulled]
    assert len(ids) == 3000 and len(set(ids)) == 3000
    assert [r.modified_at for r in pulled] == sorted(r.modified_at for r in pulled)


def test_hubspot_push_reports_207_failures_and_bisects_a_rejected_batch(served) -> None:
    sandbox, server = served()
    hs = hubspot(sandbox, server)
    assert hs.ensure_fields([SCORE]).created == ("contacts.leadlift_lead_score",)
    ids = [sandbox.hubspot.id_for("contacts", k) for k in range(250)]
    sandbox.faults.fail_records("hubspot", [ids[3]], "OBJECT_NOT_FOUND", "gone")
    updates = [FieldUpdate("contacts", i, {"Lead_Score": n % 100}) for n, i in enumerate(ids)]
    updates[180] = FieldUpdate("contacts", ids[180], {"Lead_Score": "not a number"})

    report = hs.push(updates)

    assert report.attempted == 250 and report.succeeded == 248
    assert {e.crm_id for e in report.errors} == {ids[3], ids[180]}
    assert sandbox.hubspot.get("contacts", ids[181])["leadlift_lead_score"] == "81"
    assert report.api_calls > 3  # the rejected batch of 100 was split to find one record


def test_hubspot_fields_are_idempotent_and_type_clashes_are_reported(served) -> None:
    sandbox, server = served()
    hs = hubspot(sandbox, server)
    assert hs.ensure_fields([SCORE], dry_run=True).created == ("contacts.leadlift_lead_score",)
    assert hs.ensure_fields([SCORE]).created == ("contacts.leadlift_lead_score",)
    again = hs.ensure_fields([SCORE])
    assert again.created == () and again.existing == ("contacts.leadlift_lead_score",)
    clash = hs.ensure_fields([FieldSpec("Lead_Score", "x", "text")])
    assert clash.clashes and "number" in clash.clashes[0]


def test_hubspot_search_429_is_retried_with_post_included(served) -> None:
    sandbox, server = served()
    hs = hubspot(sandbox, server)
    sandbox.faults.inject("hubspot", status=429, count=1, path_contains="/search", retry_after=0)
    pulled = list(hs.pull("meetings", Cursor(datetime(2000, 1, 1, tzinfo=UTC))))
    assert pulled
    search_calls = sum(
        n for key, n in sandbox.stats()["hubspot"]["by_endpoint"].items() if "search" in key
    )
    assert search_calls == 2  # one refused, one retried by the transport


def test_hubspot_expired_token_is_refreshed_and_handed_back(served) -> None:
    sandbox, server = served()
    saved: list[dict] = []
    hs = hubspot(sandbox, server, saved=saved.append)
    sandbox.expire_access_tokens("hubspot")
    assert list(hs.pull("owners", None))
    assert len(saved) == 1 and saved[0]["access_token"] != hs.client.credentials.refresh_token


def test_hubspot_persistent_rate_limiting_becomes_a_transient_error(served) -> None:
    sandbox, server = served()
    hs = hubspot(sandbox, server)
    sandbox.faults.inject("hubspot", status=429, count=20, retry_after=60)
    with pytest.raises(TransientError) as caught:
        list(hs.pull("owners", None))
    assert caught.value.retry_after == 60.0
    assert sandbox.stats()["hubspot"]["total"] == 1  # a long wait is not slept in the transport


def test_salesforce_fields_install_once_and_writes_land(served) -> None:
    sandbox, server = served()
    sf = salesforce(sandbox, server)
    both = ("Lead.Lead_Score__c", "Contact.Lead_Score__c")
    planned = sf.ensure_fields([SCORE], dry_run=True)
    assert planned.created == both
    assert "Lead_Score" not in sf.installer._custom_fields("Lead")  # a dry run creates nothing
    installed = sf.ensure_fields([SCORE])
    assert installed.created == both
    assert [c.kind for c in installed.components] == [
        "custom_field", "custom_field", "permission_set", "field_permission",
        "field_permission", "permission_set_assignment",
    ]  # fmt: skip
    again = sf.ensure_fields([SCORE])
    assert again.existing == both and again.components == ()

    ids = [sandbox.salesforce.id_for("Lead", k) for k in range(450)]
    sandbox.faults.fail_records("salesforce", [ids[7]], "UNABLE_TO_LOCK_ROW", "locked", times=1)
    report = sf.push([FieldUpdate("Lead", i, {"Lead_Score": 42}) for i in ids])
    assert report.succeeded == 450 and report.errors == ()  # the lock was retried alone
    assert report.api_calls == 4  # 200 + 200 + 50, plus one retry of the locked record
    assert sf.read_fields("Lead", ids[:3], ["Lead_Score"]) == {
        i: {"Lead_Score": 42} for i in ids[:3]
    }


def test_salesforce_views_and_uninstall_remove_exactly_what_was_created(served) -> None:
    sandbox, server = served()
    sf = salesforce(sandbox, server)
    before = sandbox.salesforce.layout("Lead-Lead Layout")
    fields = sf.ensure_fields([SCORE])
    views = sf.install_views([SCORE], ["Lead-Lead Layout"], "Lead_Score", 20)
    assert views.created == ("Lead-Lead Layout", "Lead.Leadlift_Top_Leads")
    assert sandbox.salesforce.layout("Lead-Lead Layout")["leadlift"] == ["Lead_Score__c"]
    view = sandbox.salesforce.list_views()["Lead.Leadlift_Top_Leads"]
    assert "Lead_Score__c" in str(view)
    assert sf.install_views([SCORE], ["Lead-Lead Layout"], "Lead_Score", 20).created == ()

    components = [*fields.components, *views.components]
    dry = sf.uninstall(components, dry_run=True)
    assert len(dry.removed) == len(components)
    assert "Lead.Leadlift_Top_Leads" in sandbox.salesforce.list_views()  # a dry run removes nothing
    sf.uninstall(components)
    assert sandbox.salesforce.layout("Lead-Lead Layout") == before
    assert "Lead.Leadlift_Top_Leads" not in sandbox.salesforce.list_views()
    assert "Lead_Score" not in sf.installer._custom_fields("Lead")
    assert not list(
        sf.client.query_pages("SELECT Id FROM PermissionSet WHERE Name = 'Leadlift_Fields'")
    )


def test_salesforce_incremental_pull_returns_changed_rows_in_cursor_order(served) -> None:
    sandbox, server = served()
    sf = salesforce(sandbox, server)
    mark = datetime.now(UTC) - timedelta(seconds=1)
    lead_ids = [sandbox.salesforce.id_for("Lead", k) for k in (10, 20, 30)]
    for crm_id in reversed(lead_ids):
        sandbox.salesforce.update("Lead", crm_id, {"Title": "Chief Revenue Officer"})
    pulled = list(sf.pull("Lead", Cursor(mark)))
    assert sorted(r.crm_id for r in pulled) == sorted(lead_ids)
    assert [r.cursor for r in pulled] == sorted(r.cursor for r in pulled)


def test_salesforce_daily_limit_is_a_transient_error_with_a_long_wait(served) -> None:
    sandbox, server = served(salesforce_daily_api_limit=3)
    sf = salesforce(sandbox, server)
    with pytest.raises(TransientError) as caught:
        for _ in range(5):
            sf.describe_fields("Lead")
            sf._describes.clear()
    assert caught.value.retry_after == 3600.0 and "REQUEST_LIMIT_EXCEEDED" in caught.value.message


def test_hubspot_more_than_ten_thousand_changes_arrive_through_search_windows(tmp_path) -> None:
    """A search pull of > 10,000 changed contacts: none lost, none twice, cap never hit."""
    big = generate_world(n_leads=10_500, seed=3, now=NOW)
    sandbox = SandboxCRM.from_seed(big.seed, config=SandboxConfig())
    with SandboxServer(sandbox) as server:
        hs = hubspot(sandbox, server)
        ids = [sandbox.hubspot.id_for("contacts", k) for k in range(10_500)]
        mark = datetime.now(UTC) - timedelta(seconds=1)
        for crm_id in ids:
            sandbox.hubspot.update_one("contacts", crm_id, {"jobtitle": "Head of Growth"})
        sandbox.reset_stats()
        pulled = list(hs.pull("contacts", Cursor(mark)))
        searches = sum(
            n for key, n in sandbox.stats()["hubspot"]["by_endpoint"].items() if "search" in key
        )
    assert sorted(r.crm_id for r in pulled) == sorted(ids)
    assert [r.modified_at for r in pulled] == sorted(r.modified_at for r in pulled)
    assert all(r.fields["jobtitle"] == "Head of Growth" for r in pulled)
    assert searches < 10_500 / 200 + 10  # pages of 200, plus the probes that split the window


def test_hubspot_archived_contacts_arrive_as_deletions(served, tmp_path) -> None:
    sandbox, server = served()
    settings = load_settings(home=tmp_path / "home")
    store = Store(settings.store_url)
    store.upgrade()
    cid = save_connection(store, settings, "hs", "hubspot", {"access_token": "x"}, server.url)
    hs = hubspot(sandbox, server)
    for obj in ("contacts", "contacts:archived"):
        sync_object(store, settings, cid, hs, obj)
    gone = [sandbox.hubspot.id_for("contacts", k) for k in (7, 8)]
    for crm_id in gone:
        sandbox.hubspot.archive("contacts", crm_id)

    stats = sync_object(store, settings, cid, hs, "contacts:archived")
    assert stats.pulled == 2 and stats.deleted == 2
    with store.session() as session:
        deleted = set(session.scalars(select(Lead.crm_id).where(Lead.deleted.is_(True))))
    assert deleted == set(gone)
    assert sync_object(store, settings, cid, hs, "contacts:archived").written == 0


def test_hubspot_code_exchange_refresh_and_persisted_tokens(served, tmp_path) -> None:
    sandbox, server = served()
    config = sandbox.config
    settings = load_settings(home=tmp_path / "home")
    store = Store(settings.store_url)
    store.upgrade()
    session = retrying_session(verify=server.ca_file)
    result = connect_hubspot_oauth(
        store, settings, "hs", api_base=server.url,
        authorize_base=f"{server.url}/oauth/authorize", ca_file=server.ca_file,
        open_browser=lambda url: session.get(url, allow_redirects=True),
        announce=lambda _url: None,
        client=(config.hubspot_client_id, config.hubspot_client_secret),
        rate_limits={"per_10_seconds": None, "search_per_second": None},
    )  # fmt: skip
    assert result["portal"] == str(config.hubspot_hub_id)
    connection = get_connection(store, "hs")
    first = decrypt_tokens(settings, connection.tokens)
    assert first["refresh_token"] and first["expires_at"] > time.time() + 1500

    sandbox.expire_access_tokens("hubspot")
    connector = build_connector(store, settings, connection)
    sync_object(store, settings, connection.id, connector, "owners")
    after = decrypt_tokens(settings, get_connection(store, "hs").tokens)
    assert after["access_token"] != first["access_token"]
    assert after["refresh_token"]  # whatever HubSpot returned is kept, rotated or not
