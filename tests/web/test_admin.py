"""The admin pages over a store filled by a real cycle against the sandbox CRM."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from integration.admin_views import queue_volumes
from integration.connections import get_connection
from integration.experiments.registry import create, start
from integration.experiments.spec import parse_spec
from integration.modeling.readiness import assess_store
from integration.pipeline import CycleReport, run_cycle
from integration.scoring import latest_scores
from integration.store.models import PipelineRun, TriggerEvent, WebhookEvent
from integration.usage import calls_last_day
from integration.web import create_app
from integration.world import generate_world
from tests.integration.conftest import NOW, Rig, make_rig

PASSWORD = "s3cret"
LEADS = 800  # enough meetings in the test period for a measured card with plots; quick
EXPERIMENT = {
    "key": "call_vs_email",
    "name": "Call first against an email sequence",
    "actions": {"call_first": "call within 1 business day v1", "email_sequence": "4 emails v1"},
    "holdout_share": 0.2,
    "unit": "account",
    "strata": ["tier"],
}
PAGES = (
    "/",
    "/fields/salesforce",
    "/readiness/salesforce",
    "/models",
    "/models/salesforce/propensity/1",
    "/models/salesforce/propensity/1/card.html",
    "/experiments",
    "/experiments/salesforce/readout?key=call_vs_email",
    "/experiments/salesforce/readout.html?key=call_vs_email",
    "/queues",
    "/events",
)


@dataclass
class Cycled:
    rig: Rig
    report: CycleReport
    refused: str  # the lead whose write-back the org refused

    def client(self) -> FlaskClient:
        return create_app(self.rig.settings, self.rig.store).test_client()


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def login(client: FlaskClient) -> FlaskClient:
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    return client


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.fixture(scope="module")
def cycled(tmp_path_factory) -> Iterator[Cycled]:
    """One Salesforce cycle on a small world, with an experiment, one record the org
    refuses, and the webhook, trigger and failed-run rows other processes would write."""
    home = tmp_path_factory.mktemp("admin")
    world = generate_world(n_leads=LEADS, seed=11, now=NOW)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)  # settings read no .env or leadlift.yaml of the developer's
        with make_rig(world, home, admin_password=PASSWORD) as rig:
            name = rig.connect("salesforce")
            connection = get_connection(rig.store, name)
            create(rig.store, connection.id, parse_spec(EXPERIMENT, "test"))
            start(rig.store, connection.id, EXPERIMENT["key"])
            refused = rig.sandbox.salesforce.id_for("Lead", 3)
            rig.sandbox.faults.fail_records(
                "salesforce", [refused], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "score locked"
            )
            report = run_cycle(rig.store, rig.settings, name, now=NOW)
            with rig.store.session() as session:
                received = NOW - timedelta(minutes=5)
                session.add_all([
                    WebhookEvent(connection_id=connection.id, source="salesforce-cdc",
                                 event_id="evt-1", kind="LeadChangeEvent", crm_object="Lead",
                                 lead_crm_id=refused, received_at=received,
                                 processed_at=received + timedelta(seconds=4),
                                 outcome={"rescored": 1}),
                    WebhookEvent(connection_id=connection.id, source="salesforce-cdc",
                                 event_id="evt-2", kind="LeadChangeEvent", crm_object="Lead",
                                 lead_crm_id="00Qnotsynced", received_at=received,
                                 error="PermanentError: record not found"),
                    TriggerEvent(connection_id=connection.id, job="recalibrate", fired=True,
                                 reason="held-out AUC fell from 0.78 to 0.69"),
                    TriggerEvent(connection_id=connection.id, job="rescore", fired=False,
                                 reason="no webhook since the last pass"),
                    PipelineRun(connection_id=connection.id, step="sync", status="error",
                                started_at=NOW, finished_at=NOW,
                                error="TransientError: 503 from the org"),
                ])  # fmt: skip
            yield Cycled(rig, report, refused)


def test_every_page_sends_a_browser_without_a_login_to_the_login_page(cycled) -> None:
    client = cycled.client()
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url
    assert client.post("/fields/salesforce").status_code == 400  # no CSRF token: refused first


def test_connections_page_shows_sync_lag_api_usage_and_recent_runs(cycled) -> None:
    store, connection = cycled.rig.store, get_connection(cycled.rig.store, "salesforce")
    page = _text(login(cycled.client()).get("/"))

    assert "<h2>salesforce <small>salesforce · active" in page
    assert f"leads <b>{LEADS}</b>" in page
    for obj in cycled.report.synced:
        assert f"<td>{obj}</td>" in page
    # Just synced: every object's lag is seconds (or minutes on a slow machine), not "never".
    lags = re.findall(r"<td>(never|\d+s|\d+m \d+s)</td>", page)
    assert len(lags) == len(cycled.report.synced) and "never" not in lags
    calls = calls_last_day(store, connection.id)
    assert calls > 0 and f'<td class="num">{calls:,}</td>' in page
    assert "100,000" in page  # the org's daily limit, as the sandbox reports it
    assert "TransientError: 503 from the org" in page  # the failed run, with its error
    assert "<td>install_fields</td>" in page and "<td>writeback</td>" in page
    assert f"{cycled.report.writeback['failed']} failed" in page


def test_readiness_page_shows_every_check_and_the_mode(cycled) -> None:
    connection = get_connection(cycled.rig.store, "salesforce")
    expected = assess_store(cycled.rig.store, connection.id)
    page = _text(login(cycled.client()).get("/readiness/salesforce"))

    for check in expected.checks:
        assert f"<td>{check.name}</td>" in page
    assert ("ML model" if expected.mode == "ml" else "rules/fit score") in page
    assert "duplicate leads collapsed" in page


def test_model_pages_list_versions_and_serve_the_card_with_plots(cycled) -> None:
    client = login(cycled.client())
    listing = _text(client.get("/models"))
    assert 'href="/models/salesforce/propensity/1">v1</a>' in listing
    assert 'href="/models/salesforce/uplift/1">v1</a>' in listing
    auc = cycled.report.trained["auc"]
    assert f"auc {auc:.3f}" in listing

    page = _text(client.get("/models/salesforce/propensity/1"))
    assert '<iframe class="embedded" src="/models/salesforce/propensity/1/card.html"' in page
    card = _text(client.get("/models/salesforce/propensity/1/card.html"))
    assert card.startswith("<!doctype html>") and "propensity model v1" in card
    assert '<img alt="calibration" src="data:image/png;base64,' in card
    assert client.get("/models/salesforce/propensity/9").status_code == 404
    assert client.get("/models/nowhere/propensity/1").status_code == 404


def test_experiment_pages_list_experiments_and_embed_their_readouts(cycled) -> None:
    client = login(cycled.client())
    listing = _text(client.get("/experiments"))
    assert "<td>call_vs_email</td>" in listing and "<td>running</td>" in listing
    assert "call_first, email_sequence" in listing and "20%" in listing

    page = _text(client.get("/experiments/salesforce/readout?key=call_vs_email"))
    assert "Call first against an email sequence" in page
    assert "call within 1 business day v1" in page
    readout = _text(client.get("/experiments/salesforce/readout.html?key=call_vs_email"))
    assert "<h1>Experiment readout</h1>" in readout and "call_vs_email" in readout
    past = _text(client.get("/experiments/salesforce/readout.html"))
    assert '<img alt="forest_plot"' in past  # the sandbox's past experiments, read out
    assert client.get("/experiments/salesforce/readout?key=nope").status_code == 404


def test_queue_volumes_count_each_leads_current_score(cycled) -> None:
    connection = get_connection(cycled.rig.store, "salesforce")
    current = latest_scores(cycled.rig.store, connection.id)
    expected = Counter((s.queue, s.bucket) for s in current)
    volumes = queue_volumes(cycled.rig.store, connection.id)

    assert volumes.total == len(current) == cycled.report.scored["scored"]
    got = {(row["queue"], b): n for row in volumes.rows for b, n in row["counts"].items()}
    assert got == dict(expected)
    page = _text(login(cycled.client()).get("/queues"))
    assert f"{len(current):,} scored leads" in page
    for row in volumes.rows:
        assert f'<td class="num"><b>{row["total"]}</b></td>' in page
    assert "Senior AE" in page


def test_events_page_shows_webhooks_writeback_errors_and_triggers(cycled) -> None:
    page = _text(login(cycled.client()).get("/events"))

    assert page.count("LeadChangeEvent") == 2
    assert "rescored: 1" in page
    assert "PermanentError: record not found" in page
    assert f"Lead {cycled.refused}" in page  # the record the org refused at write-back
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in page
    assert "held-out AUC fell from 0.78 to 0.69" in page and "fired" in page
    assert "no webhook since the last pass" in page and "skipped" in page


def test_fields_are_previewed_then_installed_into_the_portal(world_small, tmp_path) -> None:
    with make_rig(world_small, tmp_path, admin_password=PASSWORD) as rig:
        rig.connect("hubspot")
        portal = rig.sandbox.hubspot
        client = login(create_app(rig.settings, rig.store).test_client())

        preview = _text(client.get("/fields/hubspot"))
        assert 'contacts.leadlift_lead_score</td><td class="warn">would create' in preview
        assert "Preview: showing this page changes nothing" in preview
        assert "leadlift_lead_score" not in _property_names(portal)

        applied = _text(client.post("/fields/hubspot", data={"csrf_token": _csrf(preview)}))
        assert "Install finished: 9 created, 0 already there, 0 clashes." in applied
        assert portal.get_property("contacts", "leadlift_lead_score")["type"] == "number"
        assert portal.get_property("contacts", "leadlift_scored_at")["type"] == "datetime"
        assert "leadlift_uplift_segment" in _property_names(portal)

        again = _text(client.get("/fields/hubspot"))
        assert again.count('class="ok">exists') == 9
        assert "Every field leadlift writes is installed." in again


def _property_names(portal) -> set[str]:
    return {p["name"] for p in portal.list_properties("contacts")["results"]}


@pytest.fixture(scope="module")
def world_small():
    return generate_world(n_leads=200, seed=3, now=NOW)
