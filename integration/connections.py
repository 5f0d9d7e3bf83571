"""Connections: one row per connected org/portal, tokens encrypted at rest.

This module is the only place that turns a stored connection into a live
connector, and the only place that writes tokens (including the rotated
refresh tokens a connector hands back mid-sync, persisted at once).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select

from connectors.base import CRMConnector
from connectors.budget import ApiBudget
from connectors.hubspot import HubSpotConnector, HubSpotCredentials, HubSpotOptions
from connectors.hubspot.limiter import HubSpotLimits
from connectors.salesforce import SalesforceConnector, SalesforceCredentials, SalesforceOptions
from integration.config import Settings
from integration.errors import ConfigError, NotFoundError
from integration.store import Store
from integration.store.models import Connection, utcnow
from integration.usage import calls_last_day

CRMS = ("salesforce", "hubspot")


def encrypt_tokens(settings: Settings, tokens: dict[str, Any]) -> str:
    return settings.fernet.encrypt(json.dumps(tokens).encode()).decode()


def decrypt_tokens(settings: Settings, blob: str | None) -> dict[str, Any]:
    if not blob:
        return {}
    try:
        return json.loads(settings.fernet.decrypt(blob.encode()))
    except InvalidToken:
        raise ConfigError(
            "LEADLIFT_SECRET_KEY: cannot decrypt stored tokens (was the key changed?)"
        ) from None


def save_connection(
    store: Store,
    settings: Settings,
    name: str,
    crm: str,
    tokens: dict[str, Any],
    instance_url: str | None = None,
    external_id: str | None = None,
    options: dict[str, Any] | None = None,
) -> int:
    """Create or replace a connection by name; returns its id."""
    if crm not in CRMS:
        raise ConfigError(f"unknown CRM {crm!r}: expected one of {', '.join(CRMS)}")
    with store.session() as session:
        row = session.scalar(select(Connection).where(Connection.name == name))
        if row is None:
            row = Connection(name=name, crm=crm)
            session.add(row)
        elif row.crm != crm:
            raise ConfigError(f"connection {name!r} is a {row.crm} connection, not {crm}")
        row.instance_url = instance_url
        row.external_id = external_id
        row.tokens = encrypt_tokens(settings, tokens)
        row.settings = options or {}
        row.status = "active"
        session.flush()
        return row.id


def get_connection(store: Store, name: str | None = None) -> Connection:
    """The named connection, or the only one when no name is given."""
    with store.session() as session:
        rows = list(session.scalars(select(Connection).order_by(Connection.id)))
    if name is not None:
        for row in rows:
            if row.name == name:
                return row
        raise NotFoundError(f"no connection named {name!r} (have: {_names(rows)})")
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise NotFoundError("no CRM connected yet: run `leadlift connect salesforce|hubspot`")
    raise NotFoundError(f"several connections: pass --connection ({_names(rows)})")


def list_connections(store: Store) -> list[Connection]:
    with store.session() as session:
        return list(session.scalars(select(Connection).order_by(Connection.id)))


def _names(rows: list[Connection]) -> str:
    return ", ".join(r.name for r in rows) or "none"


def _token_saver(store: Store, settings: Settings, connection_id: int):
    def save(new_tokens: dict[str, Any]) -> None:
        # Its own transaction: a rotated refresh token must survive a failed sync.
        with store.session() as session:
            row = session.get(Connection, connection_id)
            # A refresh racing a disconnect must not bring the wiped tokens back.
            if row is None or not row.tokens:
                return
            merged = {**decrypt_tokens(settings, row.tokens), **new_tokens}
            row.tokens = encrypt_tokens(settings, merged)
            row.updated_at = utcnow()

    return save


def wipe_tokens(store: Store, connection_id: int, status: str = "disconnected") -> None:
    """Forget a connection's tokens (the row and its synced data stay) and mark it."""
    with store.session() as session:
        row = session.get(Connection, connection_id)
        if row is None:
            return
        row.tokens = None
        row.status = status
        row.updated_at = utcnow()


def build_connector(store: Store, settings: Settings, connection: Connection) -> CRMConnector:
    """A live connector for a stored connection, wired to persist refreshed tokens."""
    if not connection.tokens:
        raise ConfigError(
            f"connection {connection.name!r} has no tokens ({connection.status}): reconnect it"
        )
    tokens = decrypt_tokens(settings, connection.tokens)
    options = connection.settings or {}
    verify: bool | str = options.get("verify", True)
    saver = _token_saver(store, settings, connection.id)
    if connection.crm == "salesforce":
        secret = settings.salesforce_client_secret
        credentials = SalesforceCredentials(
            instance_url=connection.instance_url or tokens.get("instance_url", ""),
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token"),
            client_id=tokens.get("client_id") or settings.salesforce_client_id,
            client_secret=tokens.get("client_secret")
            or (secret.get_secret_value() if secret else None),
            login_url=options.get("login_url") or settings.salesforce_login_url,
            user_id=tokens.get("user_id"),
            username=tokens.get("username"),
            private_key=tokens.get("private_key"),
        )
        budget = ApiBudget(
            share=settings.salesforce_api_share,
            used_before=calls_last_day(store, connection.id),
            slow_at=settings.api_slow_at,
        )
        options_kw: dict[str, Any] = {"extra_fields": dict(settings.salesforce_extra_fields)}
        if settings.salesforce_stage_outcomes is not None:
            options_kw["stage_outcomes"] = dict(settings.salesforce_stage_outcomes)
        return SalesforceConnector(
            credentials,
            options=SalesforceOptions(**options_kw),
            verify=verify,
            on_tokens=saver,
            batch_size=settings.writeback_batch_size,
            field_objects=settings.salesforce_field_objects,
            bulk_threshold=settings.salesforce_bulk_threshold,
            bulk_ingest_threshold=settings.salesforce_bulk_ingest_threshold,
            budget=budget,
        )
    if connection.crm == "hubspot":
        secret = settings.hubspot_client_secret
        credentials = HubSpotCredentials(
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token"),
            expires_at=tokens.get("expires_at"),
            client_id=tokens.get("client_id") or settings.hubspot_client_id,
            client_secret=tokens.get("client_secret")
            or (secret.get_secret_value() if secret else None),
            api_base=connection.instance_url or settings.hubspot_api_base,
        )
        hubspot_options: dict[str, Any] = {
            "extra_properties": dict(settings.hubspot_extra_properties)
        }
        if settings.hubspot_deal_stages is not None:
            hubspot_options["deal_stages"] = dict(settings.hubspot_deal_stages)
        # A connection may carry its own limits (a sandbox has none; a portal on a
        # higher tier allows more); otherwise the configured, conservative ones apply.
        limits = options.get("rate_limits", {})
        return HubSpotConnector(
            credentials,
            options=HubSpotOptions(**hubspot_options),
            verify=verify,
            on_tokens=saver,
            property_prefix=settings.hubspot_property_prefix,
            lag_seconds=settings.sync_lag_seconds,
            limits=HubSpotLimits(
                per_10_seconds=limits.get("per_10_seconds", settings.hubspot_requests_per_10s),
                search_per_second=limits.get(
                    "search_per_second", settings.hubspot_search_per_second
                ),
            ),
        )
    raise ConfigError(f"connection {connection.name!r} has unknown CRM {connection.crm!r}")
