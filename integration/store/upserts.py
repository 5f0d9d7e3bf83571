"""Idempotent bulk upserts keyed by (connection, CRM object, CRM id).

Re-applying rows the store already holds changes nothing: a conflicting row
is only rewritten when its CRM modification stamp or deleted flag differs,
so replaying an overlapping sync window costs reads, not writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from integration.store.models import utcnow

NATURAL_KEY = ("connection_id", "crm_object", "crm_id")
_CHUNK = 5000  # rows per execute call


def dialect_insert(session: Session, table: Table):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str] = NATURAL_KEY,
    changed_when: Sequence[str] = ("crm_modified_at", "deleted"),
) -> int:
    """Insert new rows and update changed ones; return how many rows were written.

    Args:
        table: a store table with a unique constraint on ``key``.
        rows: dicts with the same keys; each must include every column of ``key``.
        changed_when: columns whose difference makes an existing row worth rewriting;
            empty means always rewrite.
    """
    if not rows:
        return 0
    columns = list(rows[0].keys())
    if "synced_at" in table.c and "synced_at" not in columns:
        now = utcnow()
        rows = [{**row, "synced_at": now} for row in rows]
        columns.append("synced_at")
    statement = dialect_insert(session, table)
    excluded = statement.excluded
    update = {c: excluded[c] for c in columns if c not in key and c != "id"}
    where = (
        or_(*(table.c[c].is_distinct_from(excluded[c]) for c in changed_when))
        if changed_when
        else None
    )
    # One compiled statement, executed for many parameter sets: SQLAlchemy batches it
    # into multi-row INSERTs ("insertmanyvalues") without recompiling per batch.
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_=update, where=where
    ).returning(table.c[key[-1]])
    written = 0
    for start in range(0, len(rows), _CHUNK):
        batch = _dedupe(rows[start : start + _CHUNK], key)
        # RETURNING lists exactly the inserted and rewritten rows on both dialects.
        written += len(session.execute(statement, batch).all())
    return written


def _dedupe(rows: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping[str, Any]]:
    """Keep the last row per key: one statement may not touch the same row twice."""
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        latest[tuple(row[k] for k in key)] = row
    return list(latest.values())
