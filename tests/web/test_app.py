from __future__ import annotations

from integration.config import load_settings
from integration.store import Store
from integration.web import create_app


def _client(tmp_path, upgrade: bool = True, **overrides):
    settings = load_settings(home=tmp_path, **overrides)
    store = Store(settings.store_url)
    if upgrade:
        store.upgrade()
    return create_app(settings, store).test_client()


def test_healthz_is_ok_on_a_current_schema(tmp_path) -> None:
    response = _client(tmp_path).get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_healthz_reports_an_unmigrated_database(tmp_path) -> None:
    response = _client(tmp_path, upgrade=False).get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "schema not current"


def test_status_needs_the_admin_token(tmp_path) -> None:
    client = _client(tmp_path, admin_token="let-me-in")
    assert client.get("/status").status_code == 401
    bad = client.get("/status", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    ok = client.get("/status", headers={"Authorization": "Bearer let-me-in"})
    assert ok.status_code == 200 and ok.json["connections"] == []


def test_status_is_disabled_without_a_configured_token(tmp_path) -> None:
    assert _client(tmp_path).get("/status").status_code == 403
