"""Appending many rows at once: PostgreSQL's COPY, which is several times faster than
any INSERT for the million-row appends of a scoring pass, and its SQLite counterpart
(`appending`)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Table, Text, bindparam, insert

from integration.store.db import Store
from integration.store.sqlite_writer import COMMITTED


def copy_rows(
    store: Store, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` the rows, in one transaction (PostgreSQL).

    Values go through psycopg's own adaptation: datetimes must be timezone-aware,
    JSON columns take their serialised text."""
    if store.dialect != "postgresql":
        raise ValueError("COPY is PostgreSQL's; use an executemany elsewhere")
    names = ", ".join(f'"{c}"' for c in columns)
    with (
        _raw_transaction(store) as raw,
        raw.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(row)


@contextmanager
def _raw_transaction(store: Store) -> Iterator[Any]:
    """The driver's own connection, committed when the block ends, rolled back when it
    raises, returned to the pool either way."""
    raw = store.engine.raw_connection()
    try:
        yield raw
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


COPY_BATCH = 200_000  # rows serialised and sent at a time
SQLITE_WRITER = Path(__file__).with_name("sqlite_writer.py")
Columns = Mapping[str, Any]


@contextmanager
def appending(
    store: Store,
    table: Table,
    constants: Mapping[str, Any],
    text_columns: Sequence[str] = (),
    rows: int | None = None,
) -> Iterator[Callable[[Columns], None]]:
    """A function appending rows given as whole columns (equal-length arrays: text or
    None as objects, numbers, bools), each with ``constants``; everything it appended is
    committed at once when the block ends, and nothing when it raises.

    ``text_columns`` hold serialised text for columns of another type (JSON), stored as
    given. The database takes each batch while the caller makes the next one:

    * PostgreSQL: one ``COPY … FROM STDIN (FORMAT csv)``, a batch of CSV at a time,
      written by Arrow (a null is an empty field, an empty text a quoted one: how the
      CSV format tells them apart), so a million rows cost no Python per row;
    * a SQLite file, from `FEW_ROWS` rows (``rows``, when known): `sqlite_writer` in a
      process of its own, fed an Arrow stream (ADBC binds the values in C; why not in this
      process: see there);
    * otherwise an executemany of plain tuples: the values SQLAlchemy would bind, the
      constants converted once by their columns' types.
    """
    if store.dialect == "postgresql":
        with _copying(store, table, constants) as write:
            yield write
    elif (
        store.dialect == "sqlite"
        and (rows is None or rows >= FEW_ROWS)
        and sys.executable
        and _sqlite_file(store) is not None
    ):
        with _ingesting(store, table, constants) as write:
            yield write
    else:
        with _inserting(store, table, constants, text_columns) as write:
            yield write


FEW_ROWS = 5_000  # fewer are inserted in this process: a writer process takes a while to start


@contextmanager
def _copying(
    store: Store, table: Table, constants: Mapping[str, Any]
) -> Iterator[Callable[[Columns], None]]:
    options = pa_csv.WriteOptions(include_header=False)
    with _raw_transaction(store) as raw, contextlib.ExitStack() as stack:
        cursor = stack.enter_context(raw.cursor())
        opened: list[tuple[tuple[str, ...], Any]] = []

        def write(columns: Columns) -> None:
            names = (*columns, *constants)
            if not opened:
                quoted = ", ".join(f'"{c}"' for c in names)
                statement = f'COPY "{table.name}" ({quoted}) FROM STDIN (FORMAT csv)'
                opened.append((names, stack.enter_context(cursor.copy(statement))))
            elif opened[0][0] != names:
                raise ValueError("every batch of one append needs the same columns")
            copy = opened[0][1]
            for start in range(0, _length(columns), COPY_BATCH):
                arrays = _arrays(columns, constants, slice(start, start + COPY_BATCH))
                buffer = io.BytesIO()
                frame = pa.Table.from_arrays(arrays, names=list(names))
                pa_csv.write_csv(frame, buffer, options)
                copy.write(buffer.getbuffer())

        yield write


def _sqlite_file(store: Store) -> str | None:
    database = store.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = os.path.abspath(database)
    return path if os.path.isfile(path) else None


@contextmanager
def _ingesting(
    store: Store, table: Table, constants: Mapping[str, Any]
) -> Iterator[Callable[[Columns], None]]:
    fixed = _processed(store, table, constants)
    process = subprocess.Popen(
        [sys.executable, "-P", str(SQLITE_WRITER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    streams: list[Any] = []
    failed = False
    try:

        def write(columns: Columns) -> None:
            if not _length(columns):
                return
            arrays = _arrays(columns, fixed, slice(None), sqlite=True)
            batch = pa.RecordBatch.from_arrays(arrays, names=[*columns, *fixed])
            if not streams:
                metadata = {"uri": _sqlite_file(store), "table": table.name}
                schema = batch.schema.with_metadata(metadata)
                streams.append(pa.ipc.new_stream(process.stdin, schema))
            try:
                streams[0].write_batch(batch)
            except (OSError, pa.ArrowInvalid):
                # The writer stopped early; its message, read below, says why.
                raise _WriterGone from None

        try:
            yield write
        except _WriterGone:
            failed = True
        except BaseException:
            process.kill()  # nothing committed: the writer commits only at the stream's end
            raise
        if not failed:
            with contextlib.suppress(OSError):
                if streams:
                    streams[0].close()
                process.stdin.close()
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
        # The writer says so once the rows are committed, then checkpoints on its own.
        committed = process.stdout.readline() == COMMITTED
        if committed:
            _checkpointing(process)
        else:
            process.stdout.close()
            error = process.stderr.read().decode(errors="replace")
            process.stderr.close()
            status = process.wait()
    if not committed:  # the writer gone early (``failed``) never commits
        raise RuntimeError(f"appending to {table.name} through ADBC failed: {error or status}")


_CHECKPOINTS: list[threading.Thread] = []


def _checkpointing(process: subprocess.Popen) -> None:
    """Reap a writer that committed and is checkpointing, in a thread the interpreter
    waits for at exit (so a command does not end while its database is half copied)."""

    def reap() -> None:
        process.stdout.close()
        process.stderr.read()  # a failed checkpoint leaves the WAL for the next one
        process.stderr.close()
        process.wait()

    thread = threading.Thread(target=reap, name="sqlite-checkpoint")
    thread.start()
    # A worker appends pass after pass: only the checkpoints still running are kept.
    _CHECKPOINTS[:] = [t for t in _CHECKPOINTS if t.is_alive()] + [thread]


def settle(timeout: float | None = None) -> None:
    """Wait for the checkpoints of earlier SQLite appends to end (before copying the
    database file without its WAL, say)."""
    while _CHECKPOINTS:
        _CHECKPOINTS.pop().join(timeout)


class _WriterGone(Exception):
    """The writer process closed its end of the pipe."""


@contextmanager
def _inserting(
    store: Store, table: Table, constants: Mapping[str, Any], text_columns: Sequence[str]
) -> Iterator[Callable[[Columns], None]]:
    dialect = store.engine.dialect
    with store.engine.begin() as connection:
        statements: dict[tuple[str, ...], tuple[str, Callable[..., tuple[Any, ...]]]] = {}

        def write(columns: Columns) -> None:
            names = (*constants, *columns)
            if names not in statements:
                values = {
                    n: bindparam(n, type_=Text()) if n in text_columns else bindparam(n)
                    for n in names
                }
                compiled = insert(table).values(values).compile(dialect=dialect)
                fixed = tuple(_processed(store, table, constants).values())
                pick = itemgetter(*[names.index(n) for n in compiled.positiontup])
                statements[names] = (str(compiled), lambda row, f=fixed, p=pick: p(f + row))
            sql, bind = statements[names]
            values = [
                v if getattr(v, "dtype", None) is np.dtype(object) else np.asarray(v).tolist()
                for v in columns.values()
            ]
            connection.exec_driver_sql(sql, [bind(row) for row in zip(*values, strict=True)])

        yield write


def _processed(store: Store, table: Table, constants: Mapping[str, Any]) -> dict[str, Any]:
    """The constants as the database stores them (each through its column's type)."""
    dialect = store.engine.dialect
    out = {}
    for name, value in constants.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out[name] = process(value) if process is not None and value is not None else value
    return out


def _length(columns: Columns) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _arrays(
    columns: Columns, constants: Mapping[str, Any], rows: slice, sqlite: bool = False
) -> list[pa.Array]:
    arrays = [_arrow(np.asarray(values)[rows], sqlite) for values in columns.values()]
    n = len(arrays[0]) if arrays else 0
    # Each constant converted once, then repeated (a datetime's text is not made per row).
    for value in constants.values():
        arrays.append(pa.repeat(_arrow(np.array([value], dtype=object), sqlite)[0], n))
    return arrays


def _arrow(values: np.ndarray, sqlite: bool = False) -> pa.Array:
    if values.dtype == object:
        # The first value that is there: a column read back through pandas marks a
        # missing text with NaN, a float, which says nothing of the column's type.
        sample = next((v for v in values if v is not None and v == v), None)
        if isinstance(sample, datetime):
            values = np.array([None if v is None else v.isoformat() for v in values], dtype=object)
        elif isinstance(sample, bool | np.bool_):
            # SQLite has no boolean: SQLAlchemy stores 0 and 1.
            kind = pa.int64() if sqlite else pa.bool_()
            return pa.array(values.astype(float) if sqlite else values, type=kind, from_pandas=True)
        elif isinstance(sample, int | np.integer):
            return pa.array(values, type=pa.int64(), from_pandas=True)
        elif isinstance(sample, float | np.floating):
            return pa.array(values, type=pa.float64(), from_pandas=True)
        return pa.array(values, type=pa.string(), from_pandas=True)
    if sqlite and values.dtype == bool:
        return pa.array(values.astype(np.int64))
    return pa.array(values, from_pandas=True)
