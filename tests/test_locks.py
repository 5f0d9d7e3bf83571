"""One job per connection at a time: a Redis lock with an expiry, or a thread lock."""

from __future__ import annotations

import time

import pytest
import redis

from integration.config import load_settings
from tasks.locks import exclusive

REDIS_URL = "redis://127.0.0.1:6379/11"


def _redis_settings(tmp_path):
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379 ({type(exc).__name__})")
    client.flushdb()
    return load_settings(home=tmp_path, broker_url=REDIS_URL)


@pytest.mark.redis
def test_a_second_holder_is_turned_away_until_the_first_lets_go(tmp_path) -> None:
    settings = _redis_settings(tmp_path)
    with exclusive(settings, "sync:1", 60) as first:
        assert first
        with exclusive(settings, "sync:1", 60) as second:
            assert not second
        with exclusive(settings, "sync:2", 60) as other:
            assert other  # another connection's sync is not held up
    with exclusive(settings, "sync:1", 60) as again:
        assert again


@pytest.mark.redis
def test_a_lock_whose_holder_died_expires(tmp_path) -> None:
    settings = _redis_settings(tmp_path)
    client = redis.Redis.from_url(REDIS_URL)
    # What a killed worker leaves behind: the key, with its expiry.
    client.set("leadlift:lock:sync:7", "dead-worker", px=300)
    with exclusive(settings, "sync:7", 60) as held:
        assert not held
    time.sleep(0.4)
    with exclusive(settings, "sync:7", 60) as held:
        assert held


def test_without_a_broker_the_lock_is_in_process(tmp_path) -> None:
    settings = load_settings(home=tmp_path)
    with exclusive(settings, "sync:1", 60) as first, exclusive(settings, "sync:1", 60) as second:
        assert first and not second
