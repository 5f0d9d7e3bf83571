"""Experiments tests, and `Crm`: small hand-made CRM rows written into a real store.

The rows go through the same upserts a sync uses, so `load_frames` cleans and
reads them exactly as it would a synced CRM's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from integration.experiments import registry
from integration.experiments.spec import ExperimentSpec
from integration.store import Store
from integration.store.models import (
    Account,
    Assignment,
    Connection,
    Engagement,
    Lead,
    Outcome,
    Touch,
)
from integration.store.upserts import upsert_rows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def sqlite_store(tmp_path) -> Store:
    """An upgraded, empty SQLite store (the experiments' logic is dialect-free; the
    store suite checks the schema on PostgreSQL too)."""
    store = Store(f"sqlite:///{tmp_path / 'experiments.db'}")
    store.upgrade()
    return store


class Crm:
    """One connection's CRM rows, added with plain calls and written by `save`."""

    def __init__(self, store: Store, name: str = "acme") -> None:
        self.store = store
        with store.session() as session:
            row = Connection(name=name, crm="salesforce")
            session.add(row)
            session.flush()
            self.connection_id = row.id
        self._rows: dict[Any, list[dict[str, Any]]] = {}
        self._n = 0

    def _add(self, table: Any, crm_object: str, crm_id: str, **values: Any) -> str:
        self._rows.setdefault(table, []).append(
            {
                "connection_id": self.connection_id, "crm_object": crm_object,
                "crm_id": crm_id, "crm_modified_at": T0, "deleted": False, **values,
            }
        )  # fmt: skip
        return crm_id

    def account(
        self, crm_id: str, tier: str = "B", region: str = "NA", size_band: str = "smb"
    ) -> str:
        return self._add(
            Account.__table__, "Account", crm_id, name=crm_id, tier=tier, region=region,
            size_band=size_band, employees=50, raw={},
        )  # fmt: skip

    def lead(
        self,
        crm_id: str,
        account: str | None = None,
        created: datetime = T0 - DAY,
        source: str = "web",
        status: str = "Open - Not Contacted",
        raw: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        return self._add(
            Lead.__table__, "Lead", crm_id, account_crm_id=account,
            email=f"{crm_id.lower()}@{(account or crm_id).lower()}.example.com", source=source,
            status=status, created_at=created, raw=raw or {}, **extra,
        )  # fmt: skip

    def touch(self, lead: str, at: datetime, kind: str = "call") -> None:
        self._n += 1
        self._add(
            Touch.__table__, "Task", f"T{self._n}", lead_crm_id=lead, type=kind,
            channel=kind, occurred_at=at, raw={},
        )  # fmt: skip

    def engagement(self, lead: str, kind: str, at: datetime) -> None:
        self._n += 1
        self._add(
            Engagement.__table__, "Engagement", f"E{self._n}", lead_crm_id=lead, kind=kind,
            occurred_at=at,
        )  # fmt: skip

    def outcome(
        self,
        lead: str,
        kind: str,
        at: datetime,
        value: float | None = None,
        deal: str | None = None,
    ) -> None:
        """An outcome; with ``deal`` keyed like the connectors' ``<deal>:<lead>:<kind>``."""
        self._n += 1
        crm_id = f"{deal}:{lead}:{kind}" if deal else f"O{self._n}"
        self._add(
            Outcome.__table__, "Opportunity" if deal else "Event", crm_id, lead_crm_id=lead,
            kind=kind, occurred_at=at, value=value, raw={},
        )  # fmt: skip

    def save(self) -> Crm:
        with self.store.session() as session:
            for table, rows in self._rows.items():
                # One statement for all rows: each row needs every column any row sets.
                columns = dict.fromkeys(key for row in rows for key in row)
                upsert_rows(session, table, [dict.fromkeys(columns) | row for row in rows])
        self._rows = {}
        return self

    def experiment(self, start: bool = True, **spec: Any) -> ExperimentSpec:
        """Create (and by default start) an experiment from spec fields."""
        fields = {"key": "exp1", "name": "Experiment 1", "actions": {"email": "email v1"}}
        made = ExperimentSpec(**(fields | spec))
        registry.create(self.store, self.connection_id, made)
        if start:
            registry.start(self.store, self.connection_id, made.key, now=T0)
        return made

    def arms(self, key: str = "exp1") -> dict[str, str]:
        """unit id -> arm, as stored."""
        experiment = registry.get(self.store, self.connection_id, key)
        with self.store.session() as session:
            rows = session.execute(
                select(Assignment.unit_id, Assignment.arm).where(
                    Assignment.experiment_id == experiment.id
                )
            ).all()
        return dict(rows)
