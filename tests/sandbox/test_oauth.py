"""OAuth flows of both CRMs with plain requests, plus the control endpoints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer

from .fake_seed import make_seed

REDIRECT = "https://app.leadlift.example/oauth/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def sf_authorize(
    server: SandboxServer,
    session: requests.Session,
    challenge: str,
    client_id: str = "sandbox-sf-client",
) -> requests.Response:
    return session.get(
        server.url + "/services/oauth2/authorize",
        allow_redirects=False,
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "api refresh_token",
        },
    )


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


@pytest.fixture(scope="module")
def rotating() -> SandboxServer:
    sandbox = SandboxCRM.from_seed(make_seed(30), SandboxConfig(rotate_refresh_tokens=True))
    with SandboxServer(sandbox) as server:
        yield server


def token_form(code: str, verifier: str | None) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "sandbox-sf-client",
        "client_secret": "sandbox-sf-secret",
        "redirect_uri": REDIRECT,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


def test_salesforce_code_pkce_and_rotation(rotating: SandboxServer) -> None:
    session = rotating.session()
    verifier, challenge = pkce_pair()
    code = code_from(sf_authorize(rotating, session, challenge))
    response = session.post(
        rotating.url + "/services/oauth2/token", data=token_form(code, verifier)
    )
    assert response.status_code == 200
    token = response.json()
    assert set(token) == {
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert token["instance_url"] == rotating.url and token["token_type"] == "Bearer"
    org_id, user_id = token["id"].rsplit("/", 2)[-2:]
    assert org_id.startswith("00D") and user_id.startswith("005")
    expected = base64.b64encode(
        hmac.new(
            b"sandbox-sf-secret", (token["id"] + token["issued_at"]).encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert token["signature"] == expected
    api = session.get(
        rotating.url + "/services/data/v62.0/limits/",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert api.status_code == 200

    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": "sandbox-sf-client",
        "client_secret": "sandbox-sf-secret",
    }
    first = session.post(rotating.url + "/services/oauth2/token", data=refresh).json()
    assert first["refresh_token"] != token["refresh_token"]
    old = session.post(rotating.url + "/services/oauth2/token", data=refresh)
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    refresh["refresh_token"] = first["refresh_token"]
    assert session.post(rotating.url + "/services/oauth2/token", data=refresh).ok


def test_salesforce_pkce_errors_and_no_rotation(server: SandboxServer) -> None:
    session = server.session()
    verifier, challenge = pkce_pair()
    missing = session.post(
        server.url + "/services/oauth2/token",
        data=token_form(code_from(sf_authorize(server, session, challenge)), None),
    )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    wrong = session.post(
        server.url + "/services/oauth2/token",
        data=token_form(code_from(sf_authorize(server, session, challenge)), verifier + "x"),
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_request"
    code = code_from(sf_authorize(server, session, challenge))
    bad_secret = {**token_form(code, verifier), "client_secret": "nope"}
    assert (
        session.post(server.url + "/services/oauth2/token", data=bad_secret).json()["error"]
        == "invalid_client"
    )
    bad_client = sf_authorize(server, session, challenge, client_id="unknown")
    assert bad_client.status_code == 400 and bad_client.json()["error"] == "invalid_client_id"

    token = session.post(
        server.url + "/services/oauth2/token",
        data=token_form(code_from(sf_authorize(server, session, challenge)), verifier),
    ).json()
    refreshed = session.post(
        server.url + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": "sandbox-sf-client",
            "client_secret": "sandbox-sf-secret",
        },
    ).json()
    assert "refresh_token" not in refreshed and "expires_in" not in refreshed
    revoke = session.post(
        server.url + "/services/oauth2/revoke", data={"token": refreshed["access_token"]}
    )
    assert revoke.status_code == 200
    after = session.get(
        server.url + "/services/data/v62.0/limits/",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert after.status_code == 401


def test_hubspot_code_flow_and_token_info(server: SandboxServer, sandbox: SandboxCRM) -> None:
    session = server.session()
    response = session.get(
        server.url + "/oauth/authorize",
        allow_redirects=False,
        params={
            "client_id": "sandbox-hs-client",
            "redirect_uri": REDIRECT,
            "scope": "oauth crm.objects.contacts.read",
            "state": "xyz",
        },
    )
    code = code_from(response)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "sandbox-hs-client",
        "client_secret": "sandbox-hs-secret",
    }
    token = session.post(server.url + "/oauth/v1/token", data=form).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 1800
    info = session.get(server.url + f"/oauth/v1/access-tokens/{token['access_token']}").json()
    assert info["hub_id"] == sandbox.config.hubspot_hub_id
    assert info["scopes"] == ["oauth", "crm.objects.contacts.read"]
    assert 0 < info["expires_in"] <= 1800
    reused = session.post(server.url + "/oauth/v1/token", data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    bad = session.post(
        server.url + "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "client_id": "sandbox-hs-client",
            "client_secret": "sandbox-hs-secret",
        },
    )
    assert bad.status_code == 400
    assert bad.json()["status"] == "BAD_REFRESH_TOKEN" and bad.json()["error"] == "invalid_grant"
    refreshed = session.post(
        server.url + "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": "sandbox-hs-client",
            "client_secret": "sandbox-hs-secret",
        },
    ).json()
    assert refreshed["access_token"] != token["access_token"]


def test_hubspot_tokens_really_expire() -> None:
    now = [1_800_000_000.0]

    def clock():
        import datetime as dt

        return dt.datetime.fromtimestamp(now[0], dt.UTC)

    sandbox = SandboxCRM.from_seed(
        make_seed(20), SandboxConfig(hubspot_token_seconds=60, clock=clock)
    )
    with SandboxServer(sandbox) as server:
        session = server.session()
        token = sandbox.issue_tokens("hubspot")["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert session.get(server.url + "/crm/v3/objects/contacts", headers=headers).ok
        now[0] += 61
        expired = session.get(server.url + "/crm/v3/objects/contacts", headers=headers)
        assert expired.status_code == 401
        assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
        assert "expired 1 second(s) ago" in expired.json()["message"]


def test_control_endpoints(server: SandboxServer, sandbox: SandboxCRM) -> None:
    session = server.session()
    assert session.get(server.url + "/_sandbox/health").json() == {"status": "ok"}
    token = session.post(server.url + "/_sandbox/tokens/salesforce").json()["access_token"]
    assert session.post(server.url + "/_sandbox/stats/reset").ok
    fault = session.post(
        server.url + "/_sandbox/faults",
        json={"crm": "salesforce", "status": 503, "count": 1, "path_contains": "/limits"},
    )
    assert fault.status_code == 201
    headers = {"Authorization": f"Bearer {token}"}
    failed = session.get(server.url + "/services/data/v62.0/limits/", headers=headers)
    assert failed.status_code == 503 and failed.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    ok = session.get(server.url + "/services/data/v62.0/limits/", headers=headers)
    assert ok.status_code == 200 and ok.headers["Sforce-Limit-Info"].startswith("api-usage=")
    stats = session.get(server.url + "/_sandbox/stats").json()
    assert stats["salesforce"]["by_endpoint"] == {"GET /services/data/v<version>/limits/": 2}
    assert stats["oauth"]["total"] == 0 and stats["hubspot"]["total"] == 0
    session.post(server.url + "/services/oauth2/token", data={"grant_type": "password"})
    assert sandbox.stats()["oauth"]["by_endpoint"] == {"POST /services/oauth2/token": 1}
    expired = session.post(server.url + "/_sandbox/expire-tokens", json={"crm": "salesforce"})
    assert expired.json()["expired"] >= 1
    assert (
        session.get(server.url + "/services/data/v62.0/limits/", headers=headers).status_code == 401
    )
