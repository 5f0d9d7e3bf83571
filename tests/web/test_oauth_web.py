"""OAuth connect through the web app against the sandbox CRM over real HTTPS.

The Flask test client plays the admin's browser towards leadlift; ``requests`` plays
it towards the CRM (the sandbox's authorize page approves at once and redirects back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask.testing import FlaskClient

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer
from integration.config import Settings, load_settings
from integration.connections import (
    build_connector,
    decrypt_tokens,
    get_connection,
    list_connections,
)
from integration.errors import ConfigError
from integration.store import Store
from integration.sync import sync_object
from integration.web import create_app
from integration.world import World, generate_world

PASSWORD = "admin-pw"
CALLBACK = {"salesforce": "/oauth/salesforce/callback", "hubspot": "/oauth/hubspot/callback"}
SYNCED = {"salesforce": "User", "hubspot": "owners"}


@pytest.fixture(scope="module")
def world() -> World:
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return generate_world(n_leads=200, seed=5, now=now)


@dataclass
class Web:
    settings: Settings
    store: Store
    sandbox: SandboxCRM
    server: SandboxServer
    client: FlaskClient

    def csrf(self) -> str:
        page = self.client.get("/connect").get_data(as_text=True)
        return page.split('name="csrf_token" value="')[1].split('"')[0]

    def login(self) -> None:
        page = self.client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        answer = self.client.post("/login", data={"password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 302

    def start(self, crm: str, name: str | None = None) -> str:
        """Post the connect form; returns the CRM authorize URL leadlift redirects to."""
        base_field = "login_url" if crm == "salesforce" else "api_base"
        form = {"csrf_token": self.csrf(), "name": name or crm, base_field: self.server.url,
                "ca_file": self.server.ca_file}  # fmt: skip
        answer = self.client.post(f"/connect/{crm}", data=form)
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return answer.headers["Location"]

    def authorize(self, url: str) -> str:
        """The browser at the CRM: returns the callback path+query the CRM redirects to."""
        answer = requests.get(url, allow_redirects=False, verify=self.server.ca_file, timeout=10)
        assert answer.status_code == 302, answer.text
        back = urlsplit(answer.headers["Location"])
        return f"{back.path}?{back.query}"

    def connect(self, crm: str, name: str | None = None):
        return self.client.get(self.authorize(self.start(crm, name)))


@pytest.fixture
def make_web(world: World, tmp_path):
    def make(**sandbox_config) -> Web:
        settings = load_settings(home=tmp_path / "home", admin_password=PASSWORD)
        config = SandboxConfig(
            salesforce_redirect_uris=(settings.salesforce_redirect_uri,),
            hubspot_redirect_uris=(settings.hubspot_redirect_uri,),
            salesforce_require_pkce=True,
            **sandbox_config,
        )
        settings = load_settings(
            home=tmp_path / "home",
            admin_password=PASSWORD,
            salesforce_client_id=config.salesforce_client_id,
            salesforce_client_secret=config.salesforce_client_secret,
            hubspot_client_id=config.hubspot_client_id,
            hubspot_client_secret=config.hubspot_client_secret,
        )
        store = Store(settings.store_url)
        store.upgrade()
        sandbox = SandboxCRM.from_seed(world.seed, config=config)
        server = SandboxServer(sandbox).start()
        made.append((server, store))
        client = create_app(settings, store).test_client()
        return Web(settings, store, sandbox, server, client)

    made: list[tuple[SandboxServer, Store]] = []
    yield make
    for server, store in made:
        server.stop()
        store.dispose()


@pytest.fixture
def web(make_web) -> Iterator[Web]:
    made = make_web()
    made.login()
    return made


def _tokens(web: Web, name: str) -> tuple[str, dict]:
    raw = get_connection(web.store, name).tokens
    return raw, decrypt_tokens(web.settings, raw)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_connect_stores_encrypted_tokens_and_a_later_sync_refreshes_them(web, crm) -> None:
    done = web.connect(crm, name=f"acme-{crm}")
    assert done.status_code == 302 and done.headers["Location"] == "/connect"
    page = web.client.get("/connect").get_data(as_text=True)
    assert f"as acme-{crm}" in page  # the flash message

    connection = get_connection(web.store, f"acme-{crm}")
    assert connection.crm == crm and connection.status == "active"
    expected_id = web.sandbox.salesforce.org_id if crm == "salesforce" else "24681357"
    assert connection.external_id == expected_id
    raw, tokens = _tokens(web, f"acme-{crm}")
    assert tokens["access_token"] not in raw and tokens["refresh_token"] not in raw
    assert web.sandbox.tokens.check(crm, tokens["access_token"]) is not None

    assert web.sandbox.expire_access_tokens(crm) >= 1
    connector = build_connector(web.store, web.settings, connection)
    assert sync_object(web.store, web.settings, connection.id, connector, SYNCED[crm]).pulled > 0

    raw_after, after = _tokens(web, f"acme-{crm}")
    assert after["access_token"] != tokens["access_token"]
    assert after["access_token"] not in raw_after
    assert web.sandbox.tokens.check(crm, after["access_token"]) is not None
    if crm == "hubspot":
        assert after["expires_at"] > tokens["expires_at"]


def test_hubspot_tokens_are_refreshed_before_they_expire(make_web) -> None:
    # A lifetime inside the connector's refresh margin: any refresh is ahead of expiry,
    # since the old token still works when it happens.
    web = make_web(hubspot_token_seconds=120)
    web.login()
    web.connect("hubspot")
    connection = get_connection(web.store, "hubspot")
    _, before = _tokens(web, "hubspot")
    connector = build_connector(web.store, web.settings, connection)
    sync_object(web.store, web.settings, connection.id, connector, "owners")
    _, after = _tokens(web, "hubspot")
    assert after["access_token"] != before["access_token"]
    assert web.sandbox.tokens.check("hubspot", before["access_token"]) is not None


def test_the_authorize_request_carries_pkce_and_the_configured_redirect(web) -> None:
    query = parse_qs(urlsplit(web.start("salesforce")).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"] == [web.settings.salesforce_redirect_uri]
    assert len(query["state"][0]) >= 32


def test_a_forged_or_missing_state_stores_nothing(web) -> None:
    callback = web.authorize(web.start("salesforce"))
    forged = callback.replace("state=", "state=x")
    answer = web.client.get(forged)
    assert answer.status_code == 400 and "state" in answer.get_data(as_text=True)
    # The flow ended with that callback: the genuine one is now refused too.
    assert web.client.get(callback).status_code == 400

    callback = web.authorize(web.start("hubspot"))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    without = CALLBACK["hubspot"] + "?" + urlencode({"code": code})
    assert web.client.get(without).status_code == 400
    assert list_connections(web.store) == []


def test_a_reused_state_is_refused(web) -> None:
    callback = web.authorize(web.start("hubspot"))
    assert web.client.get(callback).status_code == 302
    raw, _ = _tokens(web, "hubspot")
    again = web.client.get(callback)
    assert again.status_code == 400
    assert "already completed" in again.get_data(as_text=True)
    assert _tokens(web, "hubspot")[0] == raw


def test_an_expired_flow_is_refused(web, monkeypatch) -> None:
    from integration.web import oauth

    callback = web.authorize(web.start("salesforce"))
    monkeypatch.setattr(oauth, "PENDING_SECONDS", -1)
    assert web.client.get(callback).status_code == 400
    assert list_connections(web.store) == []


def test_the_crms_error_redirect_stores_nothing(web) -> None:
    state = parse_qs(urlsplit(web.start("salesforce")).query)["state"][0]
    denied = {"error": "access_denied", "error_description": "end-user denied authorization",
              "state": state}  # fmt: skip
    answer = web.client.get(CALLBACK["salesforce"] + "?" + urlencode(denied))
    assert answer.status_code == 403
    assert "end-user denied authorization" in answer.get_data(as_text=True)
    assert list_connections(web.store) == []


def test_a_code_the_crm_refuses_stores_nothing(web) -> None:
    callback = web.authorize(web.start("salesforce"))
    answer = web.client.get(callback.replace("code=", "code=bad"))
    assert answer.status_code == 400 and "refused" in answer.get_data(as_text=True)
    assert list_connections(web.store) == []


def test_non_admins_cannot_connect(make_web) -> None:
    web = make_web()
    token = web.client.get("/login").get_data(as_text=True)
    token = token.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": token, "name": "x", "login_url": web.server.url}
    as_script = web.client.post(
        "/connect/salesforce", data=form, headers={"Accept": "application/json"}
    )
    assert as_script.status_code == 401
    as_browser = web.client.post("/connect/salesforce", data=form)
    assert as_browser.status_code == 302 and "/login" in as_browser.headers["Location"]
    assert web.client.get("/connect").status_code == 302
    callback = web.client.get(CALLBACK["hubspot"] + "?code=c&state=s")
    assert callback.status_code == 302 and "/login" in callback.headers["Location"]
    assert list_connections(web.store) == []


def test_posts_without_the_csrf_token_are_refused(web) -> None:
    form = {"name": "x", "login_url": web.server.url}
    answer = web.client.post("/connect/salesforce", data=form)
    assert answer.status_code == 400 and "Location" not in answer.headers
    web.connect("salesforce")
    assert web.client.post("/connections/salesforce/disconnect").status_code == 400
    assert get_connection(web.store, "salesforce").status == "active"


def test_form_values_are_checked(web) -> None:
    plain = {"csrf_token": web.csrf(), "name": "x", "login_url": "http://login.example"}
    assert web.client.post("/connect/salesforce", data=plain).status_code == 400
    bad_name = {"csrf_token": web.csrf(), "name": "../x"}
    assert web.client.post("/connect/hubspot", data=bad_name).status_code == 400
    no_ca = {"csrf_token": web.csrf(), "ca_file": "/nonexistent/ca.pem"}
    assert web.client.post("/connect/hubspot", data=no_ca).status_code == 400
    web.connect("salesforce", name="crm")
    taken = web.client.post("/connect/hubspot", data={"csrf_token": web.csrf(), "name": "crm"})
    assert taken.status_code == 400 and "already a Salesforce" in taken.get_data(as_text=True)
    assert [c.crm for c in list_connections(web.store)] == ["salesforce"]


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_disconnect_revokes_at_the_crm_and_wipes_the_tokens(web, crm) -> None:
    web.connect(crm)
    _, tokens = _tokens(web, crm)
    answer = web.client.post(f"/connections/{crm}/disconnect", data={"csrf_token": web.csrf()})
    assert answer.status_code == 302
    assert "access revoked at the CRM" in web.client.get("/connect").get_data(as_text=True)

    connection = get_connection(web.store, crm)
    assert connection.status == "disconnected" and connection.tokens is None
    assert tokens["refresh_token"] not in web.sandbox.tokens.refresh
    assert web.sandbox.tokens.check(crm, tokens["access_token"]) is None
    with pytest.raises(ConfigError, match="reconnect"):
        build_connector(web.store, web.settings, connection)

    # Connecting again under the same name brings the connection back.
    assert web.connect(crm).status_code == 302
    assert get_connection(web.store, crm).status == "active"


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_failed_revoke_is_reported_and_the_tokens_still_wiped(web, crm) -> None:
    web.connect(crm)
    _, tokens = _tokens(web, crm)
    web.sandbox.tokens.revoke(tokens["refresh_token"])  # the CRM no longer knows it
    web.client.post(f"/connections/{crm}/disconnect", data={"csrf_token": web.csrf()})
    page = web.client.get("/connect").get_data(as_text=True)
    assert "revoking failed" in page and "refused to revoke" in page
    connection = get_connection(web.store, crm)
    assert connection.status == "disconnected" and connection.tokens is None


def test_disconnecting_an_unknown_connection_is_404(web) -> None:
    answer = web.client.post("/connections/nope/disconnect", data={"csrf_token": web.csrf()})
    assert answer.status_code == 404
