"""Installing leadlift's fields into a CRM, and removing exactly what it installed.

What a connector creates comes back as components; they are recorded per
connection, so an uninstall (dry-run first) removes those and nothing an
admin made by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from connectors.base import Component, CRMConnector, FieldSpec, InstallReport
from integration.errors import LeadliftError
from integration.store import Store
from integration.store.models import Connection, InstalledComponent


def installed(store: Store, connection_id: int) -> list[Component]:
    with store.session() as session:
        rows = session.scalars(
            select(InstalledComponent)
            .where(InstalledComponent.connection_id == connection_id)
            .order_by(InstalledComponent.id)
        ).all()
    return [Component(r.kind, r.name, r.crm_id, dict(r.details or {})) for r in rows]


def ready_fields(connection: Connection) -> set[str]:
    """Field names already installed on this connection."""
    ready = (connection.settings or {}).get("fields_ready")
    return set(ready) if isinstance(ready, list) else set()


def install_fields(
    store: Store,
    connection: Connection,
    connector: CRMConnector,
    specs: Sequence[FieldSpec],
    dry_run: bool = False,
    layouts: Sequence[str] = (),
    list_view_field: str | None = None,
) -> InstallReport:
    """Create the fields (and their access) idempotently; record what was created.

    With ``layouts`` or ``list_view_field`` (Salesforce), the fields are also put on
    those page layouts and into a top-leads list view.
    """
    report = connector.ensure_fields(specs, dry_run=dry_run)
    views = getattr(connector, "install_views", None)
    if views and (layouts or list_view_field) and not report.clashes:
        shown = views(specs, layouts, list_view_field, dry_run=dry_run)
        report = InstallReport(
            created=(*report.created, *shown.created),
            existing=(*report.existing, *shown.existing),
            dry_run=dry_run,
            components=(*report.components, *shown.components),
        )
    if not dry_run:
        with store.session() as session:
            for component in report.components:
                session.add(
                    InstalledComponent(
                        connection_id=connection.id,
                        kind=component.kind,
                        name=component.name,
                        crm_id=component.crm_id,
                        details=dict(component.details),
                    )
                )
            if not report.clashes:
                row = session.get(Connection, connection.id)
                # The names installed: a later release that writes more fields installs again.
                ready = sorted({*ready_fields(row), *(spec.name for spec in specs)})
                row.settings = {**(row.settings or {}), "fields_ready": ready}
    return report


def uninstall(
    store: Store, connection: Connection, connector: CRMConnector, dry_run: bool = True
) -> InstallReport:
    """Remove every component leadlift recorded for this connection (dry-run by default)."""
    components = installed(store, connection.id)
    remover = getattr(connector, "uninstall", None)
    if remover is None:
        raise LeadliftError(f"the {connector.crm} connector cannot uninstall")
    report = remover(components, dry_run=dry_run)
    if not dry_run:
        with store.session() as session:
            session.execute(
                delete(InstalledComponent).where(InstalledComponent.connection_id == connection.id)
            )
            row = session.get(Connection, connection.id)
            settings: dict[str, Any] = dict(row.settings or {})
            settings.pop("fields_ready", None)
            row.settings = settings
    return report
