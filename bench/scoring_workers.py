"""The rescoring pass of `bench.scoring` run through real Celery workers on Redis.

``measure_workers`` starts ``workers`` worker processes (``celery -A tasks.app
worker --concurrency=1`` each, as N machines would run them) against the
measured PostgreSQL store and the Redis broker, sends ``leadlift.score`` (the
pass planned into chunks, staged by the workers as a group, finished by a chord)
and times it from the send to the pass's recorded finish. ``peak_rss_mb`` is the
largest peak (VmHWM) of any worker process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select

from bench.scoring import peak_rss_mb
from integration.config import load_settings
from integration.store import Store
from integration.store.models import PipelineRun

READY_SECONDS = 120
PASS_SECONDS = 3600


def say(message: str) -> None:
    print(message, flush=True)


def _family(pid: int) -> list[int]:
    """A worker's process and its pool children (where the tasks run)."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        out.extend(_family(int(child)))
    return out


def _score_runs(store: Store) -> list[PipelineRun]:
    with store.session() as session:
        return list(session.scalars(select(PipelineRun).where(PipelineRun.step == "score")))


def measure_workers(
    url: str, connection: str, now: datetime, workers: int, broker: str, chunk_leads: int,
    home: Path,
) -> dict[str, Any]:  # fmt: skip
    import redis

    client = redis.Redis.from_url(broker)
    client.flushdb()
    env = {
        **os.environ,
        "LEADLIFT_DATABASE_URL": url,
        "LEADLIFT_BROKER_URL": broker,
        "LEADLIFT_SECRET_KEY": Fernet.generate_key().decode(),
        "LEADLIFT_HOME": str(home),
    }
    celery = str(Path(sys.executable).with_name("celery"))
    procs = [
        subprocess.Popen(
            [
                celery,
                "-A",
                "tasks.app",
                "worker",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"bench{n}@%h",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(home / f"worker{n}.log").open("w"),
        )
        for n in range(workers)
    ]
    store = Store(url)
    try:
        settings = load_settings(database_url=url, broker_url=broker, home=home,
                                 secret_key=env["LEADLIFT_SECRET_KEY"])  # fmt: skip
        from tasks.app import make_celery

        app = make_celery(settings)
        deadline = time.monotonic() + READY_SECONDS
        while len(app.control.ping(timeout=1.0)) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{workers} workers did not come up; see {home}/worker*.log")
        say(f"{workers} worker process(es) up; sending leadlift.score")
        before = {r.id for r in _score_runs(store)}
        started = time.perf_counter()
        app.send_task(
            "leadlift.score", args=[connection],
            kwargs={"chunk_leads": chunk_leads, "writeback": False, "now": now.isoformat()},
        )  # fmt: skip
        peaks: dict[int, float] = {}
        last_report = started
        while True:
            runs = [r for r in _score_runs(store) if r.id not in before]
            for pid in (p for proc in procs for p in _family(proc.pid)):
                peaks[pid] = max(peaks.get(pid, 0.0), peak_rss_mb(pid))
            if runs and runs[0].status != "running":
                break
            if any(proc.poll() is not None for proc in procs):
                raise SystemExit(f"a worker exited; see {home}/worker*.log")
            if time.perf_counter() - started > PASS_SECONDS:
                raise SystemExit("the pass did not finish in time")
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                say(f"  pass running, {last_report - started:6.1f} s")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        for n in range(workers):
            for line in (home / f"worker{n}.log").read_text().splitlines():
                if "staged;" in line or "finished:" in line:
                    say(f"  worker {n}: {line.split(': ', 1)[-1]}")
        run = runs[0]
        if run.status != "ok":
            raise SystemExit(f"the pass failed: {run.error}")
        return {
            "leads": run.stats["scored"],
            "seconds": elapsed,
            "rows_written": run.stats["written"],
            "chunks": run.stats["chunks"],
            "peak_rss_mb": max(peaks.values(), default=0.0),
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        store.dispose()
        client.flushdb()
