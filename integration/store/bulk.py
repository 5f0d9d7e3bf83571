"""Appending many rows at once: PostgreSQL's COPY, which is several times faster than
any INSERT for the million-row appends of a scoring pass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table

from integration.store.db import Store


def copy_rows(
    store: Store, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` the rows, in one transaction (PostgreSQL).

    Values go through psycopg's own adaptation: datetimes must be timezone-aware,
    JSON columns take their serialised text."""
    if store.dialect != "postgresql":
        raise ValueError("COPY is PostgreSQL's; use an executemany elsewhere")
    names = ", ".join(f'"{c}"' for c in columns)
    raw = store.engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(row)
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
