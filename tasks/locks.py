"""Locks that keep one job per connection running at a time, across workers.

With a Redis broker the lock is a Redis key with an expiry (a worker that dies
holding it frees it when the key expires); in-process (no broker) it is a
thread lock, which is all the embedded mode needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache

import redis

from integration.config import Settings

_local: dict[str, threading.Lock] = {}
_guard = threading.Lock()


@lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client(settings: Settings) -> redis.Redis | None:
    """The broker's Redis, when the broker is Redis (locks and debounce keys live there)."""
    url = settings.broker_url
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _redis_for(url)


@contextmanager
def exclusive(
    settings: Settings, name: str, seconds: int, local_wait: float = 0.0
) -> Iterator[bool]:
    """Yield True holding the lock ``name`` (at most ``seconds``), False if another
    holder has it. Across workers it never waits (the holder's work covers the
    caller's); in-process (no broker) it waits up to ``local_wait`` seconds, as there
    is no other worker to leave the work to."""
    client = redis_client(settings)
    if client is None:
        with _guard:
            lock = _local.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=local_wait if local_wait > 0 else -1, blocking=local_wait > 0):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
        return
    held = client.lock(f"leadlift:lock:{name}", timeout=seconds, blocking=False)
    if not held.acquire():
        yield False
        return
    try:
        yield True
    finally:
        # Expired while held: the next holder's key is not ours to delete.
        with suppress(redis.exceptions.LockError):
            held.release()
