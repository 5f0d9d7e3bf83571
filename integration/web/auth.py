"""Admin login: a password (or the admin token) from config, a signed session cookie,
and a bearer-token path for scripts. With neither configured the admin UI is off."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from integration.config import Settings

from .context import app_settings

bp = Blueprint("auth", __name__)

SESSION_HOURS = 12


def session_secret(settings: Settings) -> bytes:
    """The cookie-signing key, derived from the token-encryption key so every web worker
    (and a restarted one) signs alike without a second secret to manage."""
    return hmac.new(settings.fernet_key, b"leadlift-web-session", hashlib.sha256).digest()


def configure(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=session_secret(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


def _secrets(settings: Settings) -> list[bytes]:
    return [
        s.get_secret_value().encode()
        for s in (settings.admin_password, settings.admin_token)
        if s is not None and s.get_secret_value()
    ]


def check_secret(given: str) -> bool:
    """True when ``given`` is the admin password or token (constant-time)."""
    # Every configured secret is compared, so timing does not tell which one matched.
    matches = [hmac.compare_digest(given.encode(), secret) for secret in _secrets(app_settings())]
    return any(matches)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


def is_admin() -> bool:
    if session.get("admin") is True:
        return True
    token = _bearer()
    return token is not None and check_secret(token)


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Browsers without a session go to the login page; scripts send the bearer token."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not _secrets(app_settings()):
            abort(403, "set LEADLIFT_ADMIN_PASSWORD or LEADLIFT_ADMIN_TOKEN to enable the admin UI")
        if is_admin():
            return view(*args, **kwargs)
        if _bearer() is not None or request.accept_mimetypes.best == "application/json":
            abort(401, "a valid admin bearer token is required")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    return wrapped


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would be a phishing aid."""
    if not target:
        return url_for("admin.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("admin.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not _secrets(app_settings()):
        abort(403, "set LEADLIFT_ADMIN_PASSWORD or LEADLIFT_ADMIN_TOKEN to enable the admin UI")
    error = None
    if request.method == "POST":
        if check_secret(request.form.get("password", "")):
            session.clear()
            session.permanent = True
            session["admin"] = True
            return redirect(_safe_next(request.form.get("next")))
        error = "Wrong password."
    status = 401 if error else 200
    return render_template("login.html", error=error, next=request.args.get("next", "")), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
