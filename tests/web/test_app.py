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


def test_admin_pages_need_a_login_and_a_csrf_token(tmp_path) -> None:
    client = _client(tmp_path, admin_password="s3cret")
    first = client.get("/")
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    # A form post without the CSRF token is refused before the password is even read.
    assert client.post("/login", data={"password": "s3cret"}).status_code == 400
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    wrong = client.post("/login", data={"password": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    ok = client.post("/login", data={"password": "s3cret", "csrf_token": token, "next": "/"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_never_redirects_off_site(tmp_path) -> None:
    client = _client(tmp_path, admin_password="s3cret")
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    data = {"password": "s3cret", "csrf_token": token, "next": "//evil.example/x"}
    assert client.post("/login", data=data).headers["Location"] == "/"


def test_admin_ui_is_off_without_a_configured_secret(tmp_path) -> None:
    assert _client(tmp_path).get("/").status_code == 403


def test_scripts_use_the_admin_token_as_a_bearer(tmp_path) -> None:
    client = _client(tmp_path, admin_token="tok")
    assert client.get("/", headers={"Authorization": "Bearer bad"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer tok"}).status_code == 200
