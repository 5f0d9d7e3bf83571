"""Webhook latency: signed HubSpot webhook → stored → debounced re-pull, rescore and
write-back, measured until the score field is in the sandbox portal.

    python -m bench.webhooks --rate 50 --seconds 60 [--leads 8000] [--debounce 1.0]

Everything is the real thing on loopback: the web app under gunicorn
(``tasks.webhooks:web_app()``, Celery dispatch installed), Celery workers
(``celery -A tasks.app worker``) on Redis (``--redis-db``), the store on
PostgreSQL (a private schema in the ``test`` database, dropped afterwards; SQLite
in a temp dir when PostgreSQL is not reachable or ``--sqlite``), and the sandbox
CRM over HTTPS. The subprocesses are configured only through ``LEADLIFT_*``
environment variables.

Setup runs one full cycle (sync, train, score, write back). Then, at ``--rate``
requests per second, the bench disqualifies a lead in the sandbox portal (as a rep
would: ``hs_lead_status=UNQUALIFIED``, which moves its score to the lowest
bucket), and sends HubSpot's signed ``contact.propertyChange`` webhook for it. A
poller watches the portal for the lead's score fields to change; the latency is
from just before the webhook is sent to the poll that sees the new values (poll
interval 50 ms). Each webhook names a different lead.

Last line: one JSON object with ``sent``, ``stored`` (events in the store),
``written`` (leads whose fields changed in the portal), ``lost`` (sent but not
written when the bench stopped waiting), ``p50_ms``, ``p95_ms``, ``max_ms`` of
webhook-to-field-written, and the acknowledgement latency of the web app
(``ack_p50_ms``, ``ack_p95_ms``), the passes the workers ran, and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import load_settings
from integration.connect import connect_hubspot_token
from integration.connections import get_connection
from integration.pipeline import run_cycle
from integration.scoring import latest_scores
from integration.store import Store
from integration.store.models import PipelineRun, WebhookEvent
from integration.web.server import free_port
from integration.webhook_events import lead_disqualified_event, signed_headers
from integration.world import generate_world

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
UNLIMITED = {"per_10_seconds": None, "search_per_second": None}
WATCHED = ("leadlift_lead_score_bucket", "leadlift_scored_at")
POLL_SECONDS = 0.05
ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


class Database:
    """A private PostgreSQL schema (dropped at the end), or a SQLite file."""

    def __init__(self, home: Path, sqlite: bool) -> None:
        self.schema: str | None = None
        self.url = f"sqlite:///{home / 'leadlift.db'}"
        self.kind = "sqlite"
        if sqlite:
            return
        try:
            admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            schema = f"bench_webhooks_{uuid.uuid4().hex[:10]}"
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
        except Exception as exc:  # the bench still runs, on SQLite, and says so
            say(f"PostgreSQL not reachable ({type(exc).__name__}): using SQLite")
            return
        self.schema, self.kind = schema, "postgresql"
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        self.url = url.render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.schema is None:
            return
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        admin.dispose()


class Watch:
    """Leads waiting for their fields to change in the portal, polled in one thread: one
    read of the watched properties of every waiting lead per poll."""

    def __init__(self, sandbox: SandboxCRM) -> None:
        self.portal = sandbox.hubspot
        self.pending: dict[str, tuple[float, tuple, int]] = {}
        self.latencies: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _read(self, positions: list[int]) -> list[tuple]:
        with self.portal.lock:
            rows = self.portal.render("contacts", np.array(positions), list(WATCHED))
        return [tuple(row["properties"].get(name) for name in WATCHED) for row in rows]

    def values(self, lead: str) -> tuple:
        return self._read([self.portal.position("contacts", lead)])[0]

    def add(self, lead: str, before: tuple, sent_at: float) -> None:
        position = self.portal.position("contacts", lead)
        with self.lock:
            self.pending[lead] = (sent_at, before, position)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                items = list(self.pending.items())
            if items:
                now = time.perf_counter()
                current = self._read([position for _, (_, _, position) in items])
                with self.lock:
                    for (lead, (sent_at, before, _)), values in zip(items, current, strict=True):
                        if values != before:
                            self.pending.pop(lead, None)
                            self.latencies[lead] = (now - sent_at) * 1000
            time.sleep(POLL_SECONDS)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, name: str) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop in 20 s: killing it")
        process.kill()
        process.wait()


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"web app exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"web app not healthy at {url} after {seconds} s")


def wait_worker(redis_url: str, env: dict[str, str], seconds: float = 60) -> None:
    """Until a worker answers a ping through the broker."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tasks.app", "inspect", "ping", "-t", "2"],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode == 0 and "pong" in result.stdout:
            return
        time.sleep(1)
    raise RuntimeError(f"no Celery worker answered on {redis_url} in {seconds} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    database = Database(home, args.sqlite)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    secret_key = Fernet.generate_key().decode()
    config = SandboxConfig()
    env_settings = {
        "LEADLIFT_HOME": str(home),
        "LEADLIFT_DATABASE_URL": database.url,
        "LEADLIFT_SECRET_KEY": secret_key,
        "LEADLIFT_BROKER_URL": redis_url,
        "LEADLIFT_WEBHOOK_DEBOUNCE_SECONDS": str(args.debounce),
        "LEADLIFT_LOG_LEVEL": "WARNING",
        # The HubSpot app's client secret: what signs its webhooks.
        "LEADLIFT_HUBSPOT_CLIENT_ID": config.hubspot_client_id,
        "LEADLIFT_HUBSPOT_CLIENT_SECRET": config.hubspot_client_secret,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLIFT_")} | env_settings
    settings = load_settings(
        home=home, database_url=database.url, secret_key=secret_key, broker_url=redis_url,
        webhook_debounce_seconds=args.debounce, hubspot_client_id=config.hubspot_client_id,
        hubspot_client_secret=config.hubspot_client_secret,
    )  # fmt: skip
    store = Store(settings.store_url)
    processes: list[tuple[subprocess.Popen, str]] = []
    try:
        store.upgrade()
        say(f"store: {database.kind}; world of {args.leads:,} leads")
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        world = generate_world(n_leads=args.leads, seed=args.seed, now=now)
        sandbox = SandboxCRM.from_seed(world.seed, config=config)
        with SandboxServer(sandbox) as server:
            token = sandbox.issue_tokens("hubspot")
            connect_hubspot_token(
                store, settings, token["access_token"], token.get("refresh_token"),
                name="bench", api_base=server.url, ca_file=server.ca_file, rate_limits=UNLIMITED,
            )  # fmt: skip
            t0 = time.perf_counter()
            report = run_cycle(store, settings, "bench", now=now)
            say(
                f"cycle: {report.synced['contacts']['pulled']:,} contacts, trained "
                f"{bool(report.trained)}, wrote {report.writeback['succeeded']:,} scores "
                f"in {time.perf_counter() - t0:.1f} s"
            )
            connection = get_connection(store, "bench")
            candidates = [
                s.lead_crm_id
                for s in sorted(latest_scores(store, connection.id), key=lambda s: s.lead_crm_id)
                if s.bucket != "Very Low"
            ]
            wanted = int(args.rate * args.seconds)
            if len(candidates) < wanted:
                raise SystemExit(
                    f"only {len(candidates)} leads can move to 'Very Low': raise --leads "
                    f"(need {wanted} webhooks)"
                )
            secret = sandbox.config.hubspot_client_secret
            portal = sandbox.config.hubspot_hub_id

            logs = home / "logs"
            logs.mkdir()
            worker = start(
                [sys.executable, "-m", "celery", "-A", "tasks.app", "worker",
                 f"--concurrency={args.workers}", "--loglevel=INFO", "-n",
                 f"bench-{uuid.uuid4().hex[:6]}@%h"],
                env, logs / "worker.log",
            )  # fmt: skip
            processes.append((worker, "worker"))
            port = free_port()
            web = start(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                 "--workers", str(args.web_workers), "--threads", "4",
                 "tasks.webhooks:web_app()"],
                env, logs / "web.log",
            )  # fmt: skip
            processes.append((web, "web"))
            base = f"http://127.0.0.1:{port}"
            wait_healthy(f"{base}/healthz", web)
            wait_worker(redis_url, env)
            say(
                f"web on {base} ({args.web_workers} gunicorn workers), {args.workers} Celery "
                f"worker processes; sending {args.rate}/s for {args.seconds} s"
            )

            watch = Watch(sandbox)
            watch.thread.start()
            acks: list[float] = []
            statuses: dict[int, int] = {}
            ack_lock = threading.Lock()
            session = requests.Session()
            url = f"{base}/webhooks/hubspot"

            def send(n: int, lead: str) -> None:
                before = watch.values(lead)
                sandbox.hubspot.update_one("contacts", lead, {"hs_lead_status": "UNQUALIFIED"})
                event = lead_disqualified_event(
                    10_000_000 + n, portal, sandbox.config.hubspot_app_id, lead
                )
                body = json.dumps([event]).encode()
                headers = signed_headers(secret, url, body)
                sent_at = time.perf_counter()
                watch.add(lead, before, sent_at)
                try:
                    response = session.post(url, data=body, headers=headers, timeout=30)
                    code = response.status_code
                except requests.RequestException:
                    code = 0
                with ack_lock:
                    acks.append((time.perf_counter() - sent_at) * 1000)
                    statuses[code] = statuses.get(code, 0) + 1

            started = time.perf_counter()
            last_report = started
            with ThreadPoolExecutor(max_workers=16) as pool:
                for n in range(wanted):
                    due = started + n / args.rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(send, n, candidates[n])
                    if time.perf_counter() - last_report >= 5:
                        last_report = time.perf_counter()
                        say(
                            f"sent {n + 1:,}/{wanted:,}, written {len(watch.latencies):,}, "
                            f"waiting {len(watch.pending):,}"
                        )
            send_seconds = time.perf_counter() - started
            say(f"sent {wanted:,} in {send_seconds:.1f} s; HTTP statuses {statuses}")
            deadline = time.perf_counter() + args.wait
            while watch.pending and time.perf_counter() < deadline:
                time.sleep(1)
                say(f"written {len(watch.latencies):,}, waiting {len(watch.pending):,}")
            watch.stop.set()
            watch.thread.join()
            with store.session() as db:
                stored = db.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.source == "hubspot")
                )
                processed = db.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.processed_at.is_not(None))
                )
                passes = db.scalar(
                    select(func.count())
                    .select_from(PipelineRun)
                    .where(PipelineRun.step == "webhook_refresh")
                )
                outcomes = dict(
                    Counter(
                        (outcome or {}).get("status", "pending")
                        for outcome in db.scalars(select(WebhookEvent.outcome))
                    )
                )
    finally:
        for process, name in reversed(processes):
            stop(process, name)
        store.dispose()
        database.drop()
        redis.Redis.from_url(redis_url).flushdb()
    latencies = sorted(watch.latencies.values())
    if len(latencies) == wanted:
        shutil.rmtree(home, ignore_errors=True)
    else:
        say(f"kept {home} (worker and web logs under logs/)")
    return {
        "sent": wanted,
        "accepted": statuses.get(200, 0),
        "stored": stored,
        "processed": processed,
        "written": len(latencies),
        "lost": wanted - len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "ack_p50_ms": percentile(acks, 50),
        "ack_p95_ms": percentile(acks, 95),
        "passes": passes,
        "outcomes": outcomes,
        "rate": args.rate,
        "seconds": args.seconds,
        "send_seconds": round(send_seconds, 1),
        "debounce_s": args.debounce,
        "store": database.kind,
        "celery_workers": args.workers,
        "leads": args.leads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--leads", type=int, default=8000, help="world size (one lead each)")
    parser.add_argument("--debounce", type=float, default=1.0, help="debounce window, seconds")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for writes")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sqlite", action="store_true", help="store on SQLite, not PostgreSQL")
    args = parser.parse_args()
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
