"""A real Celery worker on the real Redis broker and the PostgreSQL store runs the
pipeline's tasks against the sandbox CRM: sync → train → score (chunks as a
group, finished by a chord) → write-back in batches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import select

from integration.connections import get_connection
from integration.scoring import latest_scores
from integration.store.models import ModelVersion, PipelineRun

from .conftest import make_rig

REDIS_URL = "redis://127.0.0.1:6379/13"


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379 ({type(exc).__name__})")
    return client


def _wait(check: Callable[[], bool], what: str, seconds: float, worker) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if worker.poll() is not None:
            raise AssertionError(f"worker exited ({worker.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(store, step: str) -> list[PipelineRun]:
    with store.session() as session:
        return list(session.scalars(select(PipelineRun).where(PipelineRun.step == step)))


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_on_redis_syncs_scores_and_writes_back(world, postgres_url, tmp_path) -> None:
    client = _redis_or_skip()
    client.flushdb()
    overrides = {
        "database_url": postgres_url,
        "secret_key": Fernet.generate_key().decode(),
        "broker_url": REDIS_URL,
    }
    with make_rig(world, tmp_path, **overrides) as rig:
        name = rig.connect("salesforce")
        env = {**os.environ, "LEADLIFT_HOME": str(rig.settings.home),
               "LEADLIFT_DATABASE_URL": postgres_url, "LEADLIFT_BROKER_URL": REDIS_URL,
               "LEADLIFT_SECRET_KEY": overrides["secret_key"]}  # fmt: skip
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "tasks.app", "worker",
             "--concurrency=2", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "-n", "leadlift-test@%h"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        try:
            from tasks.app import make_celery

            app = make_celery(rig.settings)
            app.send_task("leadlift.sync", args=[name])
            _wait(lambda: any(r.status == "ok" for r in _runs(rig.store, "sync")),
                  "the sync", 120, worker)  # fmt: skip
            app.send_task("leadlift.train", args=[name])
            _wait(lambda: any(r.status == "ok" for r in _runs(rig.store, "train")),
                  "training", 180, worker)  # fmt: skip
            connection = get_connection(rig.store, name)
            with rig.store.session() as session:
                assert session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
            app.send_task("leadlift.score", args=[name], kwargs={"chunk_leads": 800})
            _wait(lambda: any(r.status == "ok" for r in _runs(rig.store, "score")),
                  "the scoring pass", 180, worker)  # fmt: skip
            scores = {s.lead_crm_id: round(s.propensity * 100)
                      for s in latest_scores(rig.store, connection.id)}  # fmt: skip
            score_run = _runs(rig.store, "score")[0]
            assert score_run.stats["chunks"] >= 3 and score_run.stats["scored"] == len(scores)

            def written() -> int:
                return sum(r.stats.get("succeeded", 0) for r in _runs(rig.store, "writeback"))

            _wait(lambda: written() >= len(scores), "the write-back batches", 180, worker)
            landed = {i: rig.sandbox.salesforce.get("Lead", i)["Lead_Score__c"] for i in scores}
            assert landed == scores
            assert not [r for r in _runs(rig.store, "writeback") if r.status != "ok"]
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            log.close()
            client.flushdb()
