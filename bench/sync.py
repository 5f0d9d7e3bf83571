"""Sync and write-back cost against the sandbox CRM: API calls, floors, throughput.

    python -m bench.sync --crm salesforce|hubspot [--leads 100000] [--engagement-scale 0.06]

Seeds a synthetic world (by default 100k leads; in Salesforce about 300k Task
rows, in HubSpot about 220k engagement objects), syncs every object through
the real connector into a fresh SQLite store, then writes back one changed
score per lead and runs the write-back again with nothing changed. API calls
are counted by the sandbox, which sees every request (auth, describe,
associations, retries included).

The scores written are deterministic per lead (not a trained model): this
measures the sync and write-back machinery, not modelling.

Last line: one JSON object with ``crm``, ``rows_synced``, ``rows_by_object``,
``sync_calls``, ``sync_floor`` (the sum over objects of ceil(rows / page), the page
being Salesforce's 2,000-row REST page or HubSpot's 100-record list page),
``writeback_changed``, ``writeback_calls``, ``writeback_floor`` (ceil(changed /
batch), 200 for Salesforce Collections, 100 for HubSpot batch update),
``rewrite_calls`` (must be 0), ``rows_per_s``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import load_settings
from integration.connect import connect_hubspot_token, connect_salesforce_token
from integration.connections import build_connector, get_connection
from integration.fields import written_fields
from integration.install import install_fields
from integration.store import Store
from integration.store.models import Lead, Score
from integration.sync import sync_object
from integration.world import generate_world
from integration.writeback import push_plan
from integration.writeback_plan import plan_writeback

# Per CRM: the page size of a plain read, the batch size of a write, the lead object.
LIMITS = {"salesforce": (2000, 200, "Lead"), "hubspot": (100, 100, "contacts")}
UNLIMITED = {"per_10_seconds": None, "search_per_second": None}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def calls(sandbox: SandboxCRM, crm: str) -> int:
    stats = sandbox.stats()
    return stats.get(crm, {}).get("total", 0) + stats.get("oauth", {}).get("total", 0)


def fake_scores(store: Store, connection_id: int, lead_object: str) -> int:
    """One deterministic, lead-specific score per live lead."""
    now = datetime.now(UTC)
    with store.session() as session:
        leads = session.execute(
            Lead.__table__.select()
            .with_only_columns(Lead.crm_id, Lead.crm_object)
            .where(Lead.connection_id == connection_id, Lead.crm_object == lead_object)
        ).all()
        rows = [
            {
                "connection_id": connection_id,
                "lead_crm_id": crm_id,
                "crm_object": obj,
                "propensity": int(hashlib.sha1(crm_id.encode()).hexdigest()[:6], 16) / 0xFFFFFF,
                "scored_at": now,
                "uplift": {},
                "reasons": {},
            }
            for crm_id, obj in leads
        ]
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Score), rows[start : start + 20_000])
    return len(rows)


def run(crm: str, leads: int, seed: int, engagement_scale: float) -> dict:
    page, batch, lead_object = LIMITS[crm]
    say(f"generating a world of {leads:,} leads (engagement scale {engagement_scale})")
    world = generate_world(
        n_leads=leads,
        seed=seed,
        now=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        engagement_scale=engagement_scale,
    )
    say(
        f"world: {len(world.seed.touches):,} touches, {len(world.seed.engagements):,} "
        "engagements; building the sandbox"
    )
    sandbox = SandboxCRM.from_seed(world.seed, config=SandboxConfig())
    home = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    settings = load_settings(home=home)
    store = Store(settings.store_url)
    store.upgrade()
    with SandboxServer(sandbox) as server:
        token = sandbox.issue_tokens(crm)
        if crm == "salesforce":
            connect_salesforce_token(
                store, settings, server.url, token["access_token"], token.get("refresh_token"),
                name="bench", login_url=server.url, ca_file=server.ca_file,
            )  # fmt: skip
        else:
            connect_hubspot_token(
                store, settings, token["access_token"], token.get("refresh_token"),
                name="bench", api_base=server.url, ca_file=server.ca_file,
                rate_limits=UNLIMITED,
            )  # fmt: skip
        connection = get_connection(store, "bench")
        connector = build_connector(store, settings, connection)
        sandbox.reset_stats()
        rows_by_object: dict[str, int] = {}
        started = time.perf_counter()
        for obj in connector.sync_objects():
            t0 = time.perf_counter()
            stats = sync_object(store, settings, connection.id, connector, obj)
            rows_by_object[obj] = stats.pulled
            say(f"synced {obj:<18} {stats.pulled:>9,} rows in {time.perf_counter() - t0:6.1f} s")
        sync_seconds = time.perf_counter() - started
        sync_calls = calls(sandbox, crm)
        rows_synced = sum(rows_by_object.values())
        sync_floor = sum(math.ceil(n / page) for n in rows_by_object.values())
        say(f"sync: {rows_synced:,} rows, {sync_calls} API calls (floor {sync_floor})")

        install_fields(store, connection, connector, written_fields(settings))
        changed = fake_scores(store, connection.id, lead_object)
        updates = plan_writeback(store, settings, connection.id, connector)
        sandbox.reset_stats()
        t0 = time.perf_counter()
        report = push_plan(store, connection.id, connector, updates)
        writeback_calls = calls(sandbox, crm)
        say(
            f"write-back: {report.succeeded:,}/{len(updates):,} records, {writeback_calls} "
            f"API calls in {time.perf_counter() - t0:.1f} s ({len(report.errors)} errors)"
        )
        sandbox.reset_stats()
        again = plan_writeback(store, settings, connection.id, connector)
        push_plan(store, connection.id, connector, again)
        rewrite_calls = calls(sandbox, crm)
        say(f"write-back again with nothing changed: {len(again)} planned, {rewrite_calls} calls")
    store.dispose()
    return {
        "crm": crm,
        "rows_synced": rows_synced,
        "rows_by_object": rows_by_object,
        "sync_calls": sync_calls,
        "sync_floor": sync_floor,
        "writeback_changed": changed,
        "writeback_calls": writeback_calls,
        "writeback_floor": math.ceil(changed / batch),
        "rewrite_calls": rewrite_calls,
        "rows_per_s": round(rows_synced / sync_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crm", choices=sorted(LIMITS), default="salesforce")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--engagement-scale", type=float, default=0.06, help="about 3 Task rows per lead"
    )
    args = parser.parse_args()
    print(json.dumps(run(args.crm, args.leads, args.seed, args.engagement_scale)), flush=True)


if __name__ == "__main__":
    main()
