"""Alembic environment: runs against the engine leadlift hands it."""

from __future__ import annotations

from alembic import context

from integration.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from integration.config import load_settings
        from integration.store.db import make_engine

        engine = make_engine(load_settings().store_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("leadlift migrations run online only (leadlift db upgrade)")
run_migrations_online()
