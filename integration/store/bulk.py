"""Appending many rows at once: PostgreSQL's COPY, which is several times faster than
any INSERT for the million-row appends of a scoring pass."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
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


COPY_BATCH = 200_000  # rows serialised and sent at a time


def copy_columns(
    store: Store, table: Table, columns: Mapping[str, Any], constants: Mapping[str, Any]
) -> int:
    """``COPY table FROM STDIN (FORMAT csv)`` of whole columns, in one transaction.

    ``columns`` are equal-length arrays (object arrays of text or None, numbers, bools);
    ``constants`` hold one value for every row. Arrow writes the CSV a batch at a time
    (a null is an empty field, an empty text a quoted one, which is how PostgreSQL's
    CSV format tells them apart), so a million score rows cost no Python per row.
    Returns the rows copied."""
    if store.dialect != "postgresql":
        raise ValueError("COPY is PostgreSQL's; use an executemany elsewhere")
    if not columns:
        raise ValueError("copy_columns needs at least one column of values")
    n = len(next(iter(columns.values())))
    names = [*columns, *constants]
    quoted = ", ".join(f'"{c}"' for c in names)
    options = pa_csv.WriteOptions(include_header=False)
    raw = store.engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN (FORMAT csv)') as copy,
        ):
            for start in range(0, n, COPY_BATCH):
                stop = min(start + COPY_BATCH, n)
                arrays = [_arrow(values[start:stop]) for values in columns.values()]
                arrays += [_arrow(np.full(stop - start, value, dtype=object)) for value in
                           constants.values()]  # fmt: skip
                buffer = io.BytesIO()
                pa_csv.write_csv(pa.Table.from_arrays(arrays, names=names), buffer, options)
                copy.write(buffer.getbuffer())
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return n


def _arrow(values: Any) -> pa.Array:
    array = np.asarray(values)
    if array.dtype == object:
        sample = next((v for v in array if v is not None), None)
        if isinstance(sample, datetime):
            array = np.array([None if v is None else v.isoformat() for v in array], dtype=object)
        elif isinstance(sample, bool | np.bool_):
            return pa.array(array, type=pa.bool_(), from_pandas=True)
        elif isinstance(sample, int | np.integer):
            return pa.array(array, type=pa.int64(), from_pandas=True)
        elif isinstance(sample, float | np.floating):
            return pa.array(array, type=pa.float64(), from_pandas=True)
        return pa.array(array, type=pa.string(), from_pandas=True)
    return pa.array(array, from_pandas=True)
