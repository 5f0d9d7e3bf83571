"""Fixtures: one shared sandbox over real HTTPS, SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import hubspot
import pytest
import requests
from simple_salesforce import Salesforce

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from connectors.sandbox.seed import CrmSeed

from .fake_seed import make_seed

N_LEADS = 2500


@pytest.fixture(scope="session")
def seed() -> CrmSeed:
    return make_seed(N_LEADS)


@pytest.fixture(scope="session")
def sandbox(seed: CrmSeed) -> SandboxCRM:
    return SandboxCRM.from_seed(seed, SandboxConfig())


@pytest.fixture(scope="session")
def server(sandbox: SandboxCRM) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_faults(sandbox: SandboxCRM) -> Iterator[None]:
    yield
    sandbox.faults.clear()


def sf_client(
    server: SandboxServer, token: str, session: requests.Session | None = None
) -> Salesforce:
    """simple-salesforce built from a token, as leadlift's connector builds it."""
    return Salesforce(
        instance_url=server.url,
        session_id=token,
        version="62.0",
        session=session or server.session(),
    )


@pytest.fixture
def sf(server: SandboxServer, sandbox: SandboxCRM) -> Salesforce:
    token = sandbox.issue_tokens("salesforce")
    assert token["instance_url"] == server.url
    return sf_client(server, token["access_token"])


def hs_client(server: SandboxServer, token: str, retry=None) -> hubspot.Client:
    return hubspot.Client.create(
        access_token=token, host=server.url, ssl_ca_cert=server.ca_file, retry=retry
    )


@pytest.fixture
def hs(server: SandboxServer, sandbox: SandboxCRM) -> hubspot.Client:
    return hs_client(server, sandbox.issue_tokens("hubspot")["access_token"])
