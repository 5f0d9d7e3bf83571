"""The demo's tour of the service side, over real HTTP on loopback: the web app
(admin login, its pages, a Salesforce connect through the browser flow and a
disconnect, a signed HubSpot webhook that rescoring writes back, a forged one
refused, /metrics), and a rescoring pass cut into chunks as workers share it."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rich.console import Console

from connectors.sandbox import SandboxCRM, SandboxServer
from integration.config import Settings
from integration.connections import get_connection
from integration.score_pass import finish_pass, plan_pass, pushed_arms, stage_chunk
from integration.scoring import latest_scores, score_leads
from integration.store import Store
from integration.store.models import utcnow
from integration.web import create_app
from integration.web.server import free_port, serving_in_thread
from integration.webhook_events import lead_disqualified_event, signed_headers

ADMIN_PAGES = ("/", "/queues", "/models", "/experiments", "/events", "/connect")
_event_ids = itertools.count(int(time.time()))


@dataclass
class WebResult:
    pages_ok: int = 0
    pages: int = 0
    connected: bool = False
    revoked: bool = False
    webhook_ms: float | None = None
    webhook_score: tuple[int, int] | None = None
    forged_status: int | None = None
    metric_families: int = 0
    chunks: int = 0
    chunk_leads: int = 0
    chunk_rows_written: int = 0
    single_pass_rewrites: int | None = None
    notes: list[str] = field(default_factory=list)


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def web_settings(settings: Settings, sandbox: SandboxCRM, port: int) -> Settings:
    """The demo's settings plus what the web app needs: an admin password and the
    sandbox's OAuth apps, their callbacks on ``port``."""
    base = f"http://127.0.0.1:{port}"
    return settings.model_copy(
        update={
            "admin_password": SecretStr("demo-admin"),
            "salesforce_client_id": sandbox.config.salesforce_client_id,
            "salesforce_client_secret": SecretStr(sandbox.config.salesforce_client_secret),
            "salesforce_redirect_uri": f"{base}/oauth/salesforce/callback",
            "hubspot_client_id": sandbox.config.hubspot_client_id,
            "hubspot_client_secret": SecretStr(sandbox.config.hubspot_client_secret),
            "hubspot_redirect_uri": f"{base}/oauth/hubspot/callback",
        }
    )


def _connect_through_browser(
    web: requests.Session, base: str, server: SandboxServer, result: WebResult
) -> None:
    """Salesforce's web-server flow as a browser walks it: our app → the CRM's
    authorize page (it approves at once in the sandbox) → our callback."""
    page = web.get(f"{base}/connect").text
    form = {"csrf_token": _csrf(page), "name": "salesforce-web", "login_url": server.url,
            "ca_file": server.ca_file}  # fmt: skip
    to_crm = web.post(f"{base}/connect/salesforce", data=form, allow_redirects=False)
    back = requests.get(to_crm.headers["Location"], allow_redirects=False, verify=server.ca_file)
    done = web.get(back.headers["Location"], allow_redirects=False)
    result.connected = done.status_code == 302
    page = web.get(f"{base}/connect").text
    gone = web.post(f"{base}/connections/salesforce-web/disconnect",
                    data={"csrf_token": _csrf(page)}, allow_redirects=True)  # fmt: skip
    result.revoked = "revoked" in gone.text


def _webhook(
    base: str, store: Store, settings: Settings, sandbox: SandboxCRM, name: str,
    result: WebResult,
) -> None:  # fmt: skip
    """A contact is disqualified in the portal; HubSpot's signed webhook says so; the
    contact is re-pulled, rescored and its score written back before the answer."""
    connection = get_connection(store, name)
    scored = max(
        (s for s in latest_scores(store, connection.id) if s.bucket not in ("Very Low", None)),
        key=lambda s: s.propensity,
    )
    lead = scored.lead_crm_id
    before = sandbox.hubspot.get("contacts", lead)
    sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
    config = sandbox.config
    event = lead_disqualified_event(
        next(_event_ids), config.hubspot_hub_id, config.hubspot_app_id, lead
    )
    body = json.dumps([event]).encode()
    url = f"{base}/webhooks/hubspot"

    def post(secret: str) -> requests.Response:
        return requests.post(url, data=body, headers=signed_headers(secret, url, body))

    result.forged_status = post("not-the-app-secret").status_code
    started = time.perf_counter()
    answer = post(settings.hubspot_client_secret.get_secret_value())
    field = f"{settings.hubspot_property_prefix}lead_score"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        after = sandbox.hubspot.get("contacts", lead)
        if after.get(field) != before.get(field):
            result.webhook_ms = (time.perf_counter() - started) * 1000
            result.webhook_score = (int(float(before[field])), int(float(after[field])))
            return
        time.sleep(0.05)
    result.notes.append(f"webhook answered {answer.status_code}; score field did not change")


def _chunked_pass(
    store: Store, settings: Settings, name: str, leads: int, result: WebResult
) -> None:
    """The pass workers share (chunks of whole people and accounts, then one finish),
    run here in one process, then checked against a single-process pass."""
    connection = get_connection(store, name)
    later = utcnow() + timedelta(hours=1)
    plan = plan_pass(store, connection.id, max(1000, leads // 4))
    result.chunks = len(plan.chunks)
    result.chunk_leads = sum(
        stage_chunk(store, connection.id, plan.pass_id, n, ids, later)
        for n, ids in enumerate(plan.chunks)
    )
    arms = pushed_arms(store, connection.id, settings.fields.experiment_arm)
    stats = finish_pass(store, connection.id, plan.pass_id, later, arms=arms)
    result.chunk_rows_written = stats.written
    again = score_leads(store, connection.id, later, arms=arms)
    result.single_pass_rewrites = again.written


def web_tour(
    store: Store,
    settings: Settings,
    sandbox: SandboxCRM,
    server: SandboxServer,
    connections: dict[str, str],
    leads: int,
    console: Console,
) -> WebResult:
    """``connections``: the demo's connection name per CRM."""
    result = WebResult()
    port = free_port()
    settings = web_settings(settings, sandbox, port)
    with serving_in_thread(create_app(settings, store), port) as base:
        console.print(f"web app serving at {base} (admin UI, OAuth, webhooks, /metrics)")
        web = requests.Session()
        login = web.get(f"{base}/login").text
        web.post(f"{base}/login", data={"csrf_token": _csrf(login), "password": "demo-admin"})
        paths = [*ADMIN_PAGES, *(f"/readiness/{n}" for n in connections.values())]
        result.pages = len(paths)
        result.pages_ok = sum(web.get(f"{base}{p}").status_code == 200 for p in paths)
        if "salesforce" in connections:
            _connect_through_browser(web, base, server, result)
        if "hubspot" in connections:
            _webhook(base, store, settings, sandbox, connections["hubspot"], result)
        metrics = requests.get(f"{base}/metrics").text
        result.metric_families = sum(1 for _ in text_string_to_metric_families(metrics))
    _chunked_pass(store, settings, next(iter(connections.values())), leads, result)
    for line in tour_lines(result):
        console.print(line, highlight=False)
    return result


def tour_lines(result: WebResult) -> list[str]:
    lines = [f"admin UI: {result.pages_ok}/{result.pages} pages rendered after login"]
    if result.connected or result.revoked:
        lines.append(
            f"web OAuth connect (Salesforce, PKCE + state): "
            f"{'connected' if result.connected else 'failed'}, then disconnected "
            f"({'token revoked at the CRM' if result.revoked else 'revoke failed'})"
        )
    if result.webhook_score:
        old, new = result.webhook_score
        lines.append(
            f"signed HubSpot webhook → contact re-pulled, rescored ({old} → {new}) and written "
            f"back in {result.webhook_ms:.0f} ms; a forged signature got {result.forged_status}"
        )
    lines.append(f"/metrics: {result.metric_families} Prometheus metric families")
    lines.append(
        f"rescoring pass in {result.chunks} chunks (as workers share it): "
        f"{result.chunk_leads:,} leads, {result.chunk_rows_written:,} rows appended; a "
        f"single-process pass then had {result.single_pass_rewrites} rows left to change"
    )
    return lines


def summary_rows(result: WebResult) -> dict[str, Any]:
    return {
        "admin_pages_ok": f"{result.pages_ok}/{result.pages}",
        "web_oauth_connect": result.connected,
        "webhook_to_field_ms": round(result.webhook_ms) if result.webhook_ms else None,
        "metric_families": result.metric_families,
        "chunked_pass_chunks": result.chunks,
        "single_pass_rewrites": result.single_pass_rewrites,
    }
