"""The admin UI: small, server-rendered pages over the store."""

from __future__ import annotations

from flask import Blueprint, render_template

from integration.status import status as build_status

from .auth import admin_required

bp = Blueprint("admin", __name__)


@bp.get("/")
@admin_required
def index():
    from . import app_store

    return render_template("index.html", status=build_status(app_store()))
