"""The store: SQLAlchemy models, sessions, idempotent upserts, Alembic migrations."""

from integration.store.db import Store, make_engine

__all__ = ["Store", "make_engine"]
