"""HubSpot pieces that involve no SDK HTTP: OAuth over requests, the limiter, error mapping."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.http import retrying_session
from connectors.hubspot import auth
from connectors.hubspot.client import translate
from connectors.hubspot.limiter import HubSpotLimits, RollingWindow

BASE = "https://api.hubapi.com"


def test_authorize_url_asks_for_the_scopes_and_carries_state() -> None:
    url = auth.authorize_url("cid", "http://localhost:8723/callback", "st8")
    query = parse_qs(urlparse(url).query)
    assert url.startswith("https://app.hubspot.com/oauth/authorize?")
    assert query["state"] == ["st8"] and query["client_id"] == ["cid"]
    assert set(query["scope"][0].split()) >= {
        "crm.objects.contacts.write",
        "crm.objects.owners.read",
    }


@responses.activate
def test_code_exchange_and_refresh_post_the_documented_forms() -> None:
    token = {
        "token_type": "bearer",
        "refresh_token": "r2",
        "access_token": "a2",
        "expires_in": 1800,
    }
    call = responses.post(f"{BASE}/oauth/v1/token", json=token)
    session = retrying_session()
    got = auth.exchange_code(session, BASE, "cid", "sec", "http://cb", "code9")
    assert parse_qs(call.calls[0].request.body) == {
        "grant_type": ["authorization_code"], "client_id": ["cid"], "client_secret": ["sec"],
        "redirect_uri": ["http://cb"], "code": ["code9"],
    }  # fmt: skip
    previous = auth.HubSpotCredentials("a1", "r1", client_id="cid", client_secret="sec")
    now = time.time()
    refreshed = auth.credentials_from_token(
        auth.refresh_access_token(session, previous), previous, now
    )
    assert parse_qs(call.calls[1].request.body)["grant_type"] == ["refresh_token"]
    assert refreshed.refresh_token == "r2" and refreshed.access_token == "a2"
    assert refreshed.expires_at == pytest.approx(now + 1800)
    assert not refreshed.expiring(now) and refreshed.expiring(now + 1800 - 200)
    assert got["access_token"] == "a2"


@responses.activate
def test_a_dead_refresh_token_asks_for_reconnect() -> None:
    responses.post(
        f"{BASE}/oauth/v1/token",
        status=400,
        json={"error": "invalid_grant", "status": "BAD_REFRESH_TOKEN",
              "message": "refresh token is invalid, expired or revoked"},
    )  # fmt: skip
    creds = auth.HubSpotCredentials("a1", "dead", client_id="cid", client_secret="sec")
    with pytest.raises(AuthError, match="BAD_REFRESH_TOKEN"):
        auth.refresh_access_token(retrying_session(), creds)


def test_rolling_window_waits_exactly_until_a_slot_frees() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    window = RollingWindow(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for at in (0.0, 1.0, 2.0):
        now[0] = at
        assert window.acquire() == 0.0
    now[0] = 4.0
    assert window.acquire() == pytest.approx(6.0)  # the call at t=0 leaves the window at t=10
    assert slept == [pytest.approx(6.0)]


def test_search_calls_pass_both_limits_and_others_only_the_general_one() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limits = HubSpotLimits(per_10_seconds=100, search_per_second=4, clock=lambda: now[0],
                           sleep=sleep)  # fmt: skip
    for _ in range(10):
        limits.before(search=False)
    assert slept == []  # 10 plain calls fit in 100 per 10 s
    for _ in range(4):
        limits.before(search=True)
    assert slept == []
    limits.before(search=True)  # the fifth search in one second waits for the next second
    assert slept == [pytest.approx(1.0)]


class _FakeApiException(Exception):
    def __init__(self, status: int, body: dict | None = None, headers: dict | None = None):
        self.status, self.reason = status, "x"
        self.body = json.dumps(body or {}).encode()
        self.headers = headers or {}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (429, {"category": "RATE_LIMITS", "policyName": "TEN_SECONDLY_ROLLING"},
         {"Retry-After": "3"}, TransientError, 3.0),
        (429, {"errorType": "RATE_LIMIT"}, {}, TransientError, 10.0),
        (502, {}, {}, TransientError, None),
        (401, {"category": "EXPIRED_AUTHENTICATION"}, {}, AuthError, None),
        (403, {"category": "MISSING_SCOPES"}, {}, AuthError, None),
        (400, {"category": "VALIDATION_ERROR", "message": "bad"}, {}, PermanentError, None),
        (404, {"category": "OBJECT_NOT_FOUND"}, {}, PermanentError, None),
    ],
)  # fmt: skip
def test_errors_are_translated_by_status_and_category(status, body, headers, error, retry_after):
    translated = translate(_FakeApiException(status, body, headers))
    assert isinstance(translated, error)
    assert getattr(translated, "retry_after", None) == retry_after
