"""Alembic environment: runs against the engine leadlift hands it."""

from __future__ import annotations

from alembic import context

from integration.store.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Migrations name plain SQL types, never leadlift's Python-side decorators."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


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
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("leadlift migrations run online only (leadlift db upgrade)")
run_migrations_online()
