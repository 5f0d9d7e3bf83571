"""Experiments in the store and their life cycle: draft → running ⇄ paused → stopped.

A spec is frozen once created: changing the holdout share or the actions of a
running experiment would mix two experiments in one readout, so a changed
experiment is a new key. Only the status moves, and only along the arrows
above; ``stopped`` is final (a stopped experiment's assignments stay, for the
readout and for uplift training).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integration.errors import ConfigError, NotFoundError
from integration.experiments.spec import ExperimentSpec
from integration.store import Store
from integration.store.models import Experiment, utcnow

DRAFT, RUNNING, PAUSED, STOPPED = "draft", "running", "paused", "stopped"
STATUSES = (DRAFT, RUNNING, PAUSED, STOPPED)


class ExperimentStateError(ConfigError):
    """An experiment cannot make the asked transition from its current status."""


def find(session: Session, connection_id: int, key: str) -> Experiment:
    """The experiment ``key`` of a connection, within an open session."""
    row = session.scalar(
        select(Experiment).where(Experiment.connection_id == connection_id, Experiment.key == key)
    )
    if row is None:
        raise NotFoundError(f"no experiment {key!r} on connection {connection_id}")
    return row


def create(store: Store, connection_id: int, spec: ExperimentSpec) -> Experiment:
    """Store a new experiment as a draft (nothing is assigned until it is started).

    Raises:
        ConfigError: an experiment with this key already exists on the connection.
    """
    with store.session() as session:
        exists = session.scalar(
            select(Experiment.id).where(
                Experiment.connection_id == connection_id, Experiment.key == spec.key
            )
        )
        if exists is not None:
            raise ConfigError(
                f"experiment {spec.key!r} already exists; a changed experiment needs a new key"
            )
        row = Experiment(connection_id=connection_id, status=DRAFT, **spec.to_columns())
        session.add(row)
        session.flush()
        return row


def get(store: Store, connection_id: int, key: str) -> Experiment:
    """The experiment with this key (NotFoundError when there is none)."""
    with store.session() as session:
        return find(session, connection_id, key)


def list_experiments(
    store: Store, connection_id: int, status: str | None = None
) -> list[Experiment]:
    """The connection's experiments, oldest first, optionally of one status."""
    statement = select(Experiment).where(Experiment.connection_id == connection_id)
    if status is not None:
        statement = statement.where(Experiment.status == status)
    with store.session() as session:
        return list(session.scalars(statement.order_by(Experiment.id)))


def _move(
    store: Store,
    connection_id: int,
    key: str,
    verb: str,
    allowed_from: tuple[str, ...],
    to: str,
    now: datetime | None,
) -> Experiment:
    now = now or utcnow()
    with store.session() as session:
        row = find(session, connection_id, key)
        if row.status not in allowed_from:
            final = " (stopped is final)" if row.status == STOPPED else ""
            raise ExperimentStateError(
                f"cannot {verb} experiment {key!r}: it is {row.status}{final}; "
                f"{verb} needs {' or '.join(allowed_from)}"
            )
        if to == RUNNING and row.started_at is None:
            row.started_at = now
        if to == STOPPED:
            row.stopped_at = now
        row.status = to
        session.flush()
        return row


def start(store: Store, connection_id: int, key: str, now: datetime | None = None) -> Experiment:
    """draft → running: from now on `assign` gives eligible units an arm."""
    return _move(store, connection_id, key, "start", (DRAFT,), RUNNING, now)


def pause(store: Store, connection_id: int, key: str, now: datetime | None = None) -> Experiment:
    """running → paused: no new units are assigned; existing arms stay."""
    return _move(store, connection_id, key, "pause", (RUNNING,), PAUSED, now)


def resume(store: Store, connection_id: int, key: str, now: datetime | None = None) -> Experiment:
    """paused → running."""
    return _move(store, connection_id, key, "resume", (PAUSED,), RUNNING, now)


def stop(store: Store, connection_id: int, key: str, now: datetime | None = None) -> Experiment:
    """draft, running or paused → stopped, for good."""
    return _move(store, connection_id, key, "stop", (DRAFT, RUNNING, PAUSED), STOPPED, now)


def describe(row: Experiment) -> dict[str, Any]:
    """A JSON-ready summary of an experiment row (for ``--json`` and the admin UI)."""
    return {
        "key": row.key,
        "name": row.name,
        "status": row.status,
        "actions": dict(row.arms),
        "holdout_share": row.holdout_share,
        "unit": row.unit,
        "strata": list((row.strata or {}).get("fields", [])),
        "outcome": row.outcome,
        "window_days": row.window_days,
        "paused_arms": sorted((row.guardrails or {}).get("paused_arms", {})),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "stopped_at": row.stopped_at.isoformat() if row.stopped_at else None,
    }
