"""The model registry: every trained model is a ``model_version`` row, one is active per kind.

A retrained model replaces the active one only when it wins a champion/challenger
backtest on the same held-out rows; otherwise it stays a *shadow*: it scores,
its scores are stored for comparison, but they are never written to the CRM.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from integration.errors import ModelError, NotFoundError
from integration.store import Store
from integration.store.models import ModelVersion, utcnow

ACTIVE, SHADOW, RETIRED = "active", "shadow", "retired"


@dataclass(frozen=True)
class Registered:
    id: int
    version: int
    status: str


def register(
    store: Store,
    connection_id: int,
    kind: str,
    model: Any,
    *,
    status: str,
    cutoff: datetime,
    train_start: datetime | None,
    train_end: datetime | None,
    metrics: dict[str, Any],
    readiness: dict[str, Any],
    features: dict[str, Any],
    params: dict[str, Any],
    library_versions: dict[str, str],
) -> Registered:
    """Store a trained model; when ``status`` is active, the previous active one retires."""
    with store.session() as session:
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.connection_id == connection_id, ModelVersion.kind == kind
            )
        )
        if status == ACTIVE:
            _retire_active(session, connection_id, kind)
        row = ModelVersion(
            connection_id=connection_id, kind=kind, version=(latest or 0) + 1, status=status,
            trained_at=utcnow(), cutoff=cutoff, train_start=train_start, train_end=train_end,
            readiness=readiness, metrics=metrics, features=features, params=params,
            library_versions=library_versions, artifact=pickle.dumps(model),
        )  # fmt: skip
        session.add(row)
        session.flush()
        return Registered(row.id, row.version, row.status)


def _retire_active(session, connection_id: int, kind: str) -> None:
    session.execute(
        update(ModelVersion)
        .where(
            ModelVersion.connection_id == connection_id,
            ModelVersion.kind == kind,
            ModelVersion.status == ACTIVE,
        )
        .values(status=RETIRED)
    )


def versions(store: Store, connection_id: int, kind: str | None = None) -> list[ModelVersion]:
    with store.session() as session:
        query = select(ModelVersion).where(ModelVersion.connection_id == connection_id)
        if kind:
            query = query.where(ModelVersion.kind == kind)
        return list(session.scalars(query.order_by(ModelVersion.kind, ModelVersion.version)))


def get_version(store: Store, connection_id: int, kind: str, version: int) -> ModelVersion:
    with store.session() as session:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == kind,
                ModelVersion.version == version,
            )
        )
    if row is None:
        raise NotFoundError(f"no {kind} model version {version}")
    return row


def active(store: Store, connection_id: int, kind: str = "propensity") -> ModelVersion | None:
    with store.session() as session:
        return session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == kind,
                ModelVersion.status == ACTIVE,
            )
            .order_by(ModelVersion.version.desc())
        )


def newest_shadow(store: Store, connection_id: int, kind: str) -> ModelVersion | None:
    """The latest challenger of ``kind`` that lost its backtest (one row read: every
    version carries its artifact)."""
    with store.session() as session:
        return session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.connection_id == connection_id,
                ModelVersion.kind == kind,
                ModelVersion.status == SHADOW,
            )
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )


def activate(store: Store, connection_id: int, kind: str, version: int) -> ModelVersion:
    """Make a version the active one by hand (the admin overrides the backtest)."""
    target = get_version(store, connection_id, kind, version)
    if target.artifact is None:
        raise ModelError(f"{kind} model version {version} has no artifact to score with")
    with store.session() as session:
        _retire_active(session, connection_id, kind)
        row = session.get(ModelVersion, target.id)
        row.status = ACTIVE
    return get_version(store, connection_id, kind, version)


def load(row: ModelVersion) -> Any:
    if not row.artifact:
        raise ModelError(f"{row.kind} model version {row.version} has no stored artifact")
    return pickle.loads(row.artifact)
