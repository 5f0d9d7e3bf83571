"""The whole pipeline against the sandbox CRM over real HTTPS, through the real connectors."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connectors.errors import TransientError
from integration.connections import build_connector, decrypt_tokens, get_connection
from integration.demo import run_demo
from integration.pipeline import run_cycle
from integration.scoring import latest_scores
from integration.status import status
from integration.store.models import Lead, Score, SyncCursor, Touch
from integration.sync import sync_object
from integration.world import generate_world

from .conftest import NOW, make_rig


def _scores(rig, name: str) -> dict[str, int]:
    connection = get_connection(rig.store, name)
    return {
        s.lead_crm_id: round(s.propensity * 100) for s in latest_scores(rig.store, connection.id)
    }


def test_a_salesforce_cycle_writes_every_open_lead_score_into_the_org(rig, open_leads) -> None:
    name = rig.connect("salesforce")
    report = run_cycle(rig.store, rig.settings, name, now=NOW)

    assert report.trained is not None and 0.5 < report.trained["auc"] < 1.0
    assert report.synced["Lead"]["pulled"] == 3000
    assert report.writeback["succeeded"] == open_leads and report.writeback["failed"] == 0
    expected = _scores(rig, name)
    landed = {i: rig.sandbox.salesforce.get("Lead", i)["Lead_Score__c"] for i in expected}
    assert landed == expected

    data = status(rig.store)["connections"][0]
    assert data["rows"]["leads"] == 3000
    assert {s["object"] for s in data["sync"]} >= {"Lead", "Task", "Event", "Opportunity"}
    assert data["active_model"]["version"] == 1
    assert data["last_writeback"]["succeeded"] == open_leads


def test_a_hubspot_cycle_writes_every_contact_score_into_the_portal(rig) -> None:
    name = rig.connect("hubspot")
    report = run_cycle(rig.store, rig.settings, name, now=NOW)

    assert report.synced["contacts"]["pulled"] == 3000
    assert report.fields["created"] == [
        f"contacts.leadlift_{field}"
        for field in ("lead_score", "lead_score_bucket", "uplift_best_action", "uplift_score",
                      "uplift_segment", "score_reasons", "experiment_arm", "score_model_version",
                      "scored_at")
    ]  # fmt: skip
    expected = _scores(rig, name)
    landed = {
        i: int(float(rig.sandbox.hubspot.get("contacts", i)["leadlift_lead_score"]))
        for i in expected
    }
    assert landed == expected


def test_a_second_cycle_with_nothing_new_writes_nothing(rig) -> None:
    name = rig.connect("salesforce")
    run_cycle(rig.store, rig.settings, name, now=NOW)
    with rig.store.session() as session:
        scores_before = session.scalar(select(func.count()).select_from(Score))
    rig.sandbox.reset_stats()

    again = run_cycle(rig.store, rig.settings, name, now=NOW)

    assert again.trained is None  # the model is fresh: training is not due
    assert again.writeback["planned"] == 0 and again.writeback["api_calls"] == 0
    with rig.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Score)) == scores_before
    calls = rig.sandbox.stats()["salesforce"]["by_endpoint"]
    assert not any(key.startswith("PATCH") or key.startswith("POST") for key in calls)


def test_a_crashed_sync_resumes_from_its_committed_cursor(rig) -> None:
    name = rig.connect("salesforce")
    connection = get_connection(rig.store, name)
    connector = build_connector(rig.store, rig.settings, connection)
    pull = connector.pull

    def failing_pull(obj, since):
        for n, record in enumerate(pull(obj, since)):
            if n == 5000:  # the org goes down mid-sync, for longer than transport retries last
                rig.sandbox.faults.inject("salesforce", status=503, count=50)
            yield record

    connector.pull = failing_pull
    with pytest.raises(TransientError):
        sync_object(rig.store, rig.settings, connection.id, connector, "Task")
    with rig.store.session() as session:
        cursor = session.scalar(select(SyncCursor).where(SyncCursor.object == "Task"))
        stored = session.scalar(select(func.count()).select_from(Touch))
    assert cursor.last_status == "error" and cursor.watermark is not None
    assert stored > 0

    rig.sandbox.faults.clear()
    connector.pull = pull
    resumed = sync_object(rig.store, rig.settings, connection.id, connector, "Task")
    total = len(rig.sandbox.salesforce.frame("Task"))
    assert 0 < resumed.pulled < total  # picked up from the cursor, not from scratch
    everything = sync_object(rig.store, rig.settings, connection.id, connector, "Task")
    assert everything.written == 0  # and nothing was lost or left behind
    fresh = build_connector(rig.store, rig.settings, connection)
    assert sum(1 for _ in fresh.pull("Task", None)) == total


def test_an_expired_session_is_refreshed_and_the_new_token_persisted(rig) -> None:
    name = rig.connect("salesforce")
    connection = get_connection(rig.store, name)
    before = decrypt_tokens(rig.settings, connection.tokens)["access_token"]
    rig.sandbox.expire_access_tokens("salesforce")

    connector = build_connector(rig.store, rig.settings, connection)
    sync_object(rig.store, rig.settings, connection.id, connector, "User")

    after = decrypt_tokens(rig.settings, get_connection(rig.store, name).tokens)
    assert after["access_token"] != before
    with rig.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0  # only User synced


def test_too_little_history_falls_back_to_rules_and_says_so_in_every_score(tmp_path) -> None:
    thin = generate_world(n_leads=150, seed=5, now=NOW)
    with make_rig(thin, tmp_path) as rig:
        name = rig.connect("salesforce")
        report = run_cycle(rig.store, rig.settings, name, now=NOW)
        scores = latest_scores(rig.store, get_connection(rig.store, name).id)
        landed = rig.sandbox.salesforce.get("Lead", scores[0].lead_crm_id)
    assert report.trained["mode"] == "rules" and report.trained["estimator"] == "rules"
    assert "not_measured" not in report.trained or "auc" not in report.trained
    # Too thin for a per-lead uplift model: the shrunk segment estimates stand in.
    assert report.trained["uplift"]["estimator"] == "segments"
    assert report.writeback["succeeded"] == len(scores) > 0
    assert all(s.reasons["items"][0]["code"] == "mode.rules" for s in scores)
    assert landed["Score_Reasons__c"].startswith("= fit score from rules: below the data-readiness")


def test_the_demo_reads_its_written_fields_back_from_the_sandbox(settings, open_leads) -> None:
    summary = run_demo(settings, leads=3000, seed=11, crms="both")

    for crm in ("salesforce", "hubspot"):
        result = summary["crms"][crm]
        assert result["fields_written"] == (open_leads if crm == "salesforce" else 3000)
        assert result["read_back_sample"] == 200
        assert result["fields_read_back"] == 200
        assert 0.5 < result["auc"] < 1.0
        assert result["truth_spearman"] > 0.3  # the model learns the world's known propensity
        # Routing moved owners to queues, and the CRM shows them.
        assert result["owners_moved"] > 1000
        assert result["owners_sampled"] == result["owners_read_back"] == 200
        assert result["spilled"] > 0 and result["queues"]["Senior AE – Now"] == 150
        assert set(result["experiment_units"]) == {"call_first", "control", "email_sequence"}
        # The past experiments' intervals, against the world's true uplift.
        assert result["readout_actions"] == 4 and result["readout_covered"] >= 3
        # Salesforce: 8 fields on Lead and Contact (Experiment_Arm__c exists on Lead already),
        # their 17 field permissions, the permission set and its assignment, 2 layouts, 1 list
        # view. HubSpot: the group and 9 properties.
        assert result["components_installed"] == {"salesforce": 40, "hubspot": 10}[crm]
    assert summary["fields_read_back"] == 400
    assert summary["api_calls"] > 0 and summary["leads_synced"] == 6000
    # The service tour: admin pages, a web OAuth connect, a webhook that lands, a
    # chunked pass that writes what one process would.
    service = summary["service"]
    assert service["admin_pages_ok"] == "8/8" and service["web_oauth_connect"] is True
    assert service["webhook_to_field_ms"] is not None and service["metric_families"] > 5
    assert service["chunked_pass_chunks"] >= 2 and service["single_pass_rewrites"] == 0
