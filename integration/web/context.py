"""What a request handler reads from the app serving it: its settings and its store."""

from __future__ import annotations

from flask import current_app

from integration.config import Settings
from integration.store import Store


def app_store() -> Store:
    """The store of the app serving the current request."""
    return current_app.extensions["leadlift_store"]


def app_settings() -> Settings:
    return current_app.config["LEADLIFT_SETTINGS"]
