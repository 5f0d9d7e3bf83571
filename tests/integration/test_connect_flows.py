"""Connect flows end to end against the sandbox: browser OAuth (scripted) and JWT bearer."""

from __future__ import annotations

import pytest

from connectors.http import retrying_session
from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import load_settings
from integration.connect import connect_salesforce_jwt, connect_salesforce_oauth
from integration.connections import build_connector, decrypt_tokens, get_connection
from integration.errors import AuthError
from integration.store import Store
from integration.sync import sync_object
from tests.sandbox.sf_helpers import rsa_keypair


@pytest.fixture
def setup(world, tmp_path):
    key, cert = rsa_keypair()
    config = SandboxConfig(salesforce_jwt_public_key_pem=cert)
    sandbox = SandboxCRM.from_seed(world.seed, config=config)
    settings = load_settings(
        home=tmp_path / "home", salesforce_client_id=config.salesforce_client_id
    )
    store = Store(settings.store_url)
    store.upgrade()
    key_file = tmp_path / "server.key"
    key_file.write_text(key)
    with SandboxServer(sandbox) as server:
        yield sandbox, server, settings, store, key_file
    store.dispose()


def _browser(server):
    session = retrying_session(verify=server.ca_file)
    return lambda url: session.get(url, allow_redirects=True)


def test_jwt_bearer_connects_without_a_browser_and_renews_itself(setup) -> None:
    sandbox, server, settings, store, key_file = setup
    username = sandbox.salesforce.get("User", sandbox.salesforce.id_for("User", 0))["Username"]
    result = connect_salesforce_jwt(
        store, settings, username, key_file, "jwt", login_url=server.url, ca_file=server.ca_file
    )
    assert result["org_id"].startswith("00D")
    connection = get_connection(store, "jwt")
    assert decrypt_tokens(settings, connection.tokens).get("refresh_token") is None

    sandbox.expire_access_tokens("salesforce")  # no refresh token: a new assertion is signed
    connector = build_connector(store, settings, connection)
    assert sync_object(store, settings, connection.id, connector, "User").pulled > 0


def test_browser_oauth_stores_a_connection_that_syncs(setup) -> None:
    sandbox, server, settings, store, _ = setup
    config = sandbox.config
    result = connect_salesforce_oauth(
        store, settings, "web", login_url=server.url, ca_file=server.ca_file,
        open_browser=_browser(server), announce=lambda _url: None,
        client=(config.salesforce_client_id, config.salesforce_client_secret),
    )  # fmt: skip
    assert result["org"]
    tokens = decrypt_tokens(settings, get_connection(store, "web").tokens)
    assert tokens["refresh_token"] and tokens["user_id"].startswith("005")


def test_an_abandoned_browser_sign_in_stores_nothing(setup) -> None:
    sandbox, server, settings, store, _ = setup
    with pytest.raises(AuthError, match="no OAuth callback"):
        connect_salesforce_oauth(
            store, settings, "web", login_url=server.url, ca_file=server.ca_file,
            open_browser=lambda url: None, announce=lambda _url: None,
            client=(sandbox.config.salesforce_client_id, sandbox.config.salesforce_client_secret),
            timeout=0.5,
        )  # fmt: skip
    with pytest.raises(Exception, match="no connection named"):
        get_connection(store, "web")
