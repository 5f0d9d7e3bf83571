"""The admin UI: small, server-rendered pages over the store.

Queries live in `integration.admin_views` (and the modules the CLI uses); the views
pick a connection, call them and render. Every page needs the admin login.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, render_template, request

from integration import admin_views
from integration.connections import get_connection, list_connections
from integration.errors import LeadliftError, NotFoundError
from integration.experiment_readout import experiment_readout
from integration.experiments.registry import describe, list_experiments
from integration.experiments.registry import get as get_experiment
from integration.model_card import html_card
from integration.registry import get_version, versions
from integration.store.models import Connection, utcnow

from .auth import admin_required
from .context import app_settings, app_store

bp = Blueprint("admin", __name__)


@bp.app_template_filter("when")
def when(value: datetime | str | None) -> str:
    """A UTC timestamp to the second, for tables."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text[:19].replace("T", " ")


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """Seconds as the two largest units: ``3m 20s``, ``2h 5m``, ``4d 1h``."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3_600:
        return f"{s // 60}m {s % 60}s"
    if s < 86_400:
        return f"{s // 3_600}h {s % 3_600 // 60}m"
    return f"{s // 86_400}d {s % 86_400 // 3_600}h"


@bp.errorhandler(NotFoundError)
def not_found(error: NotFoundError):
    return render_template("not_found.html", message=error.message), 404


def _connection(name: str) -> Connection:
    return get_connection(app_store(), name)


def _per_connection(read) -> list[tuple[Connection, Any]]:
    return [(c, read(c)) for c in list_connections(app_store())]


@bp.get("/")
@admin_required
def index():
    health = admin_views.connection_health(app_store(), app_settings(), utcnow())
    return render_template("index.html", connections=health)


@bp.route("/fields/<connection>", methods=["GET", "POST"])
@admin_required
def fields(connection: str):
    """GET previews the install (nothing changes in the CRM); POST installs."""
    row = _connection(connection)
    apply = request.method == "POST"
    report, error = None, None
    try:
        report = admin_views.install_written_fields(
            app_store(), app_settings(), row, dry_run=not apply
        )
    except LeadliftError as exc:  # the CRM refused or is unreachable: say so on the page
        error = exc.message
    status = 502 if error else 200
    return render_template(
        "fields.html", connection=row, report=report, applied=apply, error=error
    ), status


@bp.get("/readiness/<connection>")
@admin_required
def readiness(connection: str):
    row = _connection(connection)
    report = admin_views.readiness_report(app_store(), row.id, utcnow())
    return render_template("readiness.html", connection=row, report=report)


@bp.get("/models")
@admin_required
def models():
    rows = _per_connection(lambda c: versions(app_store(), c.id))
    return render_template("models.html", connections=rows)


@bp.get("/models/<connection>/<kind>/<int:version>")
@admin_required
def model(connection: str, kind: str, version: int):
    row = _connection(connection)
    found = get_version(app_store(), row.id, kind, version)
    return render_template("model.html", connection=row, model=found)


@bp.get("/models/<connection>/<kind>/<int:version>/card.html")
@admin_required
def model_card(connection: str, kind: str, version: int):
    found = get_version(app_store(), _connection(connection).id, kind, version)
    return Response(html_card(found), content_type="text/html; charset=utf-8")


@bp.get("/experiments")
@admin_required
def experiments():
    rows = _per_connection(lambda c: [describe(e) for e in list_experiments(app_store(), c.id)])
    return render_template("experiments.html", connections=rows)


@bp.get("/experiments/<connection>/readout")
@admin_required
def readout(connection: str):
    """One experiment (``?key=``), or the past experiments without a key; the readout
    itself, with its plots, is the embedded ``readout.html``."""
    row = _connection(connection)
    key = request.args.get("key") or None
    experiment = describe(get_experiment(app_store(), row.id, key)) if key else None
    return render_template("readout.html", connection=row, key=key, experiment=experiment)


@bp.get("/experiments/<connection>/readout.html")
@admin_required
def readout_page(connection: str):
    key = request.args.get("key") or None
    result = experiment_readout(
        app_store(), _connection(connection).id, key, app_settings(), html=True
    )
    return Response(result["html"], content_type="text/html; charset=utf-8")


@bp.get("/queues")
@admin_required
def queues():
    rows = _per_connection(lambda c: admin_views.queue_volumes(app_store(), c.id))
    return render_template("queues.html", connections=rows)


@bp.get("/events")
@admin_required
def events():
    store = app_store()
    return render_template(
        "events.html",
        webhooks=admin_views.recent_webhook_events(store),
        writebacks=admin_views.writeback_failures(store),
        triggers=admin_views.recent_triggers(store),
    )
