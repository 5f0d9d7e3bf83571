"""A small synthetic world served by a fresh sandbox per test, and a store connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import Settings, load_settings
from integration.connections import save_connection
from integration.store import Store
from integration.world import World, generate_world

NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="session")
def world() -> World:
    return generate_world(n_leads=3000, seed=11, now=NOW)


@pytest.fixture(scope="session")
def open_leads(world: World) -> int:
    """Leads a Salesforce cycle scores: converted leads are closed (and read-only there)."""
    return int((world.seed.leads["status"] != "converted").sum())


@dataclass
class Rig:
    settings: Settings
    store: Store
    sandbox: SandboxCRM
    server: SandboxServer

    def connect(self, crm: str) -> str:
        """Store a connection to the sandbox with freshly issued tokens."""
        config = self.sandbox.config
        tokens = self.sandbox.issue_tokens(crm)
        if crm == "salesforce":
            stored = {
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "client_id": config.salesforce_client_id,
                "client_secret": config.salesforce_client_secret,
            }
            options = {"verify": self.server.ca_file, "login_url": self.server.url}
        else:
            stored = {
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "client_id": config.hubspot_client_id,
                "client_secret": config.hubspot_client_secret,
            }
            options = {
                "verify": self.server.ca_file,
                "rate_limits": {"per_10_seconds": None, "search_per_second": None},
            }
        save_connection(self.store, self.settings, crm, crm, stored, self.server.url, None, options)
        return crm


@contextmanager
def make_rig(world: World, tmp_path, **settings_overrides) -> Iterator[Rig]:
    settings = load_settings(home=tmp_path / "home", **settings_overrides)
    store = Store(settings.store_url)
    store.upgrade()
    sandbox = SandboxCRM.from_seed(world.seed, config=SandboxConfig())
    with SandboxServer(sandbox) as server:
        yield Rig(settings, store, sandbox, server)
    store.dispose()


@pytest.fixture
def rig(world: World, tmp_path) -> Iterator[Rig]:
    with make_rig(world, tmp_path) as made:
        yield made
