"""The Flask app: health, status, admin login and UI, OAuth connect flows, signed
webhooks and Prometheus metrics. ``create_app`` is the factory gunicorn calls."""

from __future__ import annotations

import hmac

from flask import Flask, abort, jsonify, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import text

from integration.config import Settings, load_settings
from integration.status import status as build_status
from integration.store import Store

from . import admin, auth, metrics, oauth, webhooks


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    """Application factory; gunicorn calls it as ``integration.web:create_app()``."""
    settings = settings or load_settings()
    store = store or Store(settings.store_url)
    app = Flask(__name__)
    app.config["LEADLIFT_SETTINGS"] = settings
    app.extensions["leadlift_store"] = store
    auth.configure(app, settings)
    csrf = CSRFProtect(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(webhooks.bp)
    # Blueprints called by machines, not browsers, carry their own authentication.
    for machine in (webhooks.bp,):
        csrf.exempt(machine)

    @app.get("/healthz")
    def healthz():
        try:
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            current = store.is_current()
        except Exception as exc:  # the probe reports, it does not crash
            return jsonify(status="error", database=type(exc).__name__), 503
        if not current:
            return jsonify(status="error", database="schema not current"), 503
        return jsonify(status="ok")

    @app.get("/status")
    def status():
        token = settings.admin_token
        if token is None:
            abort(403, "set LEADLIFT_ADMIN_TOKEN to enable the status endpoint")
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            abort(401, "a valid admin bearer token is required")
        return jsonify(build_status(store))

    return app
