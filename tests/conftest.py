"""Shared fixtures: stores on SQLite and (when reachable) PostgreSQL, settings in a temp home."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integration.config import Settings, load_settings
from integration.store import Store

POSTGRES_URL = os.environ.get(
    "LEADLIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test reads the developer's LEADLIFT_* variables, .env or leadlift.yaml."""
    for key in list(os.environ):
        if key.startswith("LEADLIFT_") and key != "LEADLIFT_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return load_settings(home=tmp_path / "home")


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return (
            f"PostgreSQL not reachable at {make_url(POSTGRES_URL).host}:5432 ({type(exc).__name__})"
        )
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in the `test` database, dropped afterwards."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    schema = f"leadlift_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[Store]:
    """An upgraded, empty store on each backend."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        store = Store(url)
        with store.engine.begin() as connection:
            # Each test starts from an empty schema inside the session's private one.
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
            for table in reversed(_tables()):
                connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    store.upgrade()
    yield store
    store.dispose()


def _tables() -> list[str]:
    from integration.store.models import Base

    return [t.name for t in Base.metadata.sorted_tables]
