"""A select's rows read as columns: ADBC into Arrow, then pandas, no Python object per value.

`read_frame` returns the DataFrame `integration.features.read_frame` builds from the
driver's row tuples (same column names, dtypes, values and row order) several times
faster, in less memory, and from threads that run at once (`concurrently`):

- PostgreSQL (``adbc-driver-postgresql``): the statement runs, with its parameters bound,
  in a cursor fetched in batches of binary rows, the way the engine streams results;
- SQLite files (``adbc-driver-sqlite``): in a process of its own (see
  `integration.store.sqlite_reader`: the driver carries a second copy of SQLite, which
  must not share a process with the engine's), which also parses the text times.

The statement is compiled for the dialect with bound parameters and read over a
connection of its own, opened from the store's URL. It returns None, and the caller
reads the rows through the engine, where that connection would not see what the engine
sees, or a value would not come back as the driver gives it:

- in-memory SQLite (``sqlite://``): the database lives inside the engine's connection; a
  second connection would open another, empty one;
- SQLite URLs with query options (``?mode=ro&uri=true``, ...), which SQLAlchemy's pysqlite
  and ADBC's ``uri`` read differently; a file that does not exist (ADBC would create it);
- PostgreSQL URLs with options libpq does not know (SQLAlchemy's or psycopg's own), several
  hosts, or a driver other than psycopg's and psycopg2's;
- other dialects (no ADBC driver here);
- statements with IN lists expanded at execution (pass lists as one parameter, see
  `integration.features.among`), parameters of no plain Arrow type (NULL, JSON, bytes,
  Decimal), repeated column names, or result columns of no plain type (numeric, bytea,
  arrays, JSON): the driver gives those as Python objects that Arrow would change;
- SQLite results whose column holds values of different storage classes past the
  first `SQLITE_INFER_ROWS` rows (the ADBC driver types each column from those rows).

One case reads differently from the driver's tuples: a SQLite column mixing integers and
text within those rows (possible in SQLite, never in the store's typed columns) comes
back as text, where the tuples hold both kinds.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.sql import Select, visitors
from sqlalchemy.sql.elements import BindParameter

from integration.store.db import Store

# ADBC's SQLite driver types each column from its first batch (a column without a value
# there becomes int64 and fails on the first text): one batch this size types columns
# from all the rows a load reads. Its buffers are reserved, not touched, up front.
SQLITE_INFER_ROWS = 1 << 24
SQLITE_READER = Path(__file__).with_name("sqlite_reader.py")
# Fewer ids than this in a statement's id list (`integration.features.among`): its rows
# are few, and the engine returns them before a columnar read has started (ADBC's
# connection costs ~0.1 s, SQLite's reader process ~0.4 s).
FEW_IDS = 5_000
PG_CURSOR = "leadlift_columnar"
PG_FETCH_ROWS = 100_000

# libpq's connection parameters: anything else in a URL's query is SQLAlchemy's or the
# driver's, which a libpq URI would refuse or read otherwise.
LIBPQ_PARAMS = frozenset(
    {"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding",
     "connect_timeout", "client_encoding", "options", "application_name",
     "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
     "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
     "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
     "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
     "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
     "gssdelegation", "service", "target_session_attrs", "load_balance_hosts"}
)  # fmt: skip
PG_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})

K = TypeVar("K")
T = TypeVar("T")


def adbc_target(store: Store) -> tuple[str, str] | None:
    """``(backend, uri)`` ADBC opens the store's database with, or None (see the module)."""
    return _target(store.engine.url)


def _target(url: URL) -> tuple[str, str] | None:
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:") or url.query:
            return None
        path = os.path.abspath(database)
        return ("sqlite", path) if os.path.isfile(path) else None
    if backend != "postgresql" or url.get_driver_name() not in PG_DRIVERS:
        return None
    query: dict[str, str] = {}
    for key, value in url.query.items():
        if key not in LIBPQ_PARAMS or not isinstance(value, str):
            return None
        query[key] = value
    host = url.host or ""
    if "," in host:
        return None  # several hosts: libpq's URI form differs from SQLAlchemy's
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    auth = ""
    if url.username is not None:
        auth = quote(url.username, safe="")
        if url.password is not None:
            auth += ":" + quote(str(url.password), safe="")
        auth += "@"
    port = f":{url.port}" if url.port else ""
    database = quote(url.database or "", safe="")
    tail = "?" + urlencode(query, quote_via=quote) if query else ""
    return "postgresql", f"postgresql://{auth}{host}{port}/{database}{tail}"


@cache
def _pg_dialect() -> Dialect:
    # psycopg's compiler casts every parameter (``$1::INTEGER``), so ADBC's parameter
    # types never decide a comparison; ``$n`` is the placeholder libpq takes.
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg(paramstyle="numeric_dollar")


def picks_few(statement: Select) -> bool:
    """Whether the statement picks its rows by a list of fewer than `FEW_IDS` ids (one
    bound list: an array on PostgreSQL, JSON text for SQLite's ``json_each``)."""
    for element in visitors.iterate(statement):
        if not isinstance(element, BindParameter):
            continue
        value = element.effective_value
        if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, list) and len(value) < FEW_IDS:
            return True
    return False


def compile_statement(store: Store, statement: Select) -> tuple[str, pa.RecordBatch] | None:
    """The statement's SQL for ADBC and its parameters (one row), or None when a
    parameter has no plain Arrow type or is an IN list expanded at execution."""
    dialect = _pg_dialect() if store.dialect == "postgresql" else store.engine.dialect
    compiled = statement.compile(dialect=dialect)
    sql = compiled.string
    if "__[POSTCOMPILE_" in sql:
        return None
    values = compiled.construct_params()
    arrays = []
    for name in compiled.positiontup or ():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        value = values[name]
        array = _parameter(processor(value) if processor else value)
        if array is None:
            return None
        arrays.append(array)
    names = [f"p{i}" for i in range(len(arrays))]
    return sql, pa.RecordBatch.from_arrays(arrays, names=names)


def _parameter(value: Any) -> pa.Array | None:
    """One parameter as a one-value Arrow array of the type it binds as, or None."""
    if isinstance(value, bool):
        return pa.array([value], pa.bool_())
    if isinstance(value, int):
        return pa.array([value], pa.int64())
    if isinstance(value, float):
        return pa.array([value], pa.float64())
    if isinstance(value, str):
        return pa.array([value], pa.string())
    if isinstance(value, datetime) and value.tzinfo is not None:
        return pa.array([value.astimezone(UTC)], pa.timestamp("us", tz="UTC"))
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return pa.array([list(value)], pa.list_(pa.string()))
    # None (an untyped NULL), naive times, JSON, bytes, Decimal: not bound as the
    # engine's driver would bind them.
    return None


def read_table(store: Store, statement: Select) -> pa.Table | None:
    """The statement's result as an Arrow table (columns as the database types them),
    or None when ADBC cannot read it as the engine would (see the module)."""
    target = adbc_target(store)
    compiled = compile_statement(store, statement) if target else None
    if target is None or compiled is None:
        return None
    backend, uri = target
    sql, parameters = compiled
    if backend == "sqlite":
        names = [c.key for c in statement.selected_columns]
        times = [j for j, name in enumerate(names) if _is_time(name)]
        return _read_sqlite(uri, sql, parameters, times)
    import adbc_driver_postgresql.dbapi

    with adbc_driver_postgresql.dbapi.connect(uri) as connection:
        return _read_postgresql(connection, sql, parameters)


def _read_postgresql(connection: Any, sql: str, parameters: pa.RecordBatch) -> pa.Table:
    """Through a cursor, a batch of rows at a time, as the engine streams results.

    ADBC streams a result through ``COPY (query) TO STDOUT``, which takes no parameters;
    with parameters it holds the whole result in memory at once (for 8M rows, a GB).
    A cursor declared with the parameters and fetched in batches streams them, and
    is what the engine reads through (SQLAlchemy's ``stream_results``), planned the same.
    """
    with connection.cursor() as cursor:
        # The DB-API connection is in a transaction already, which a cursor needs.
        cursor.execute(f"DECLARE {PG_CURSOR} CURSOR FOR {sql}", _bound(parameters))
        cursor.fetchall()
        # A FETCH cannot go through COPY: read its rows from the result itself.
        cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        batches: list[pa.Table] = []
        while True:
            cursor.execute(f"FETCH FORWARD {PG_FETCH_ROWS} FROM {PG_CURSOR}")
            batch = cursor.fetch_arrow_table()
            if batch.num_rows == 0:
                break
            batches.append(batch)
        connection.rollback()  # only read: nothing to keep, and closes the cursor
        return pa.concat_tables(batches) if batches else batch


def _read_sqlite(
    uri: str, sql: str, parameters: pa.RecordBatch, times: Sequence[int]
) -> pa.Table | None:
    """Through `integration.store.sqlite_reader`, in a process of its own (why: see
    there), which parses the text of the ``times`` columns; None when a column's values
    change storage class after the typed rows."""
    metadata = {
        "uri": uri,
        "sql": sql,
        "batch_rows": str(SQLITE_INFER_ROWS),
        "times": " ".join(map(str, times)),
    }
    request = parameters.replace_schema_metadata(metadata)
    if not sys.executable:
        return None  # an embedded interpreter: no Python to run the reader with
    process = subprocess.Popen(
        [sys.executable, "-P", str(SQLITE_READER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    table = None
    try:
        # A child that failed early closed its end: its message tells why, below.
        with (
            contextlib.suppress(OSError),
            process.stdin,
            pa.ipc.new_stream(process.stdin, request.schema) as stream,
        ):
            stream.write_batch(request)
        with contextlib.suppress(pa.ArrowInvalid):  # no stream: the child failed
            table = pa.ipc.open_stream(process.stdout).read_all()
        error = process.stderr.read().decode(errors="replace")
    finally:
        process.stdout.close()
        process.stderr.close()
        status = process.wait()
    if status == 0 and table is not None:
        return table
    if "Type mismatch" in error:
        return None
    raise RuntimeError(f"reading SQLite through ADBC failed: {error or status}")


def _bound(parameters: pa.RecordBatch) -> pa.RecordBatch | None:
    return parameters if parameters.num_columns else None


def read_frame(store: Store, statement: Select) -> pd.DataFrame | None:
    """The statement's rows as `integration.features.read_frame` gives them, read in
    columns; None when only the engine can read them (see the module)."""
    names = [c.key for c in statement.selected_columns]
    if len(set(names)) < len(names):
        return None
    table = read_table(store, statement)
    if table is None:
        return None
    if table.num_columns != len(names):
        raise RuntimeError("the result's columns are not the statement's")
    if table.num_rows == 0:
        return _empty(names)
    columns: dict[Any, Any] = {}
    for j, name in enumerate(names):
        column = table.column(j)
        converted = _times(column) if _is_time(name) else _values(column)
        if converted is None:
            return None
        columns[name] = converted
    # The Arrow buffers are now the frame's (strings) or copied: drop the table's hold.
    del table, column
    return pd.DataFrame(columns, copy=False)


def _is_time(name: Any) -> bool:
    return isinstance(name, str) and name.endswith("_at")


def _empty(names: Sequence[Any]) -> pd.DataFrame:
    """What the row reader builds for no rows: object columns, times as UTC datetimes."""
    frame = pd.DataFrame([], columns=names)
    for name in names:
        if _is_time(name):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _values(column: pa.ChunkedArray) -> Any:
    """A column as pandas infers it from the driver's values: text as ``str``, integers
    as int64 (float64 with NaN when one is missing), floats as float64, booleans as bool
    (object with None when one is missing); None for types the driver gives otherwise."""
    kind = column.type
    if pa.types.is_null(kind) or column.null_count == len(column):
        return pd.Series(np.full(len(column), None, dtype=object))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.to_pandas()
    if pa.types.is_integer(kind):
        return column.cast(pa.int64()).to_pandas()
    if pa.types.is_floating(kind):
        return column.cast(pa.float64()).to_pandas()
    if pa.types.is_boolean(kind):
        return column.to_pandas()
    return None


def _times(column: pa.ChunkedArray) -> pd.Series | None:
    """A ``*_at`` column as UTC datetime64[us]: timestamps as they are (naive ones taken
    as UTC), text (what SQLite's reader could not parse) through pandas; None for other
    types."""
    kind = column.type
    if pa.types.is_null(kind) or column.null_count == len(column):
        return pd.to_datetime(pd.Series([None] * len(column), dtype=object), utc=True)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _times_from_text(column)
    if not pa.types.is_timestamp(kind):
        return None
    # Arrow keeps UTC instants whatever the zone; a naive one is read as UTC, as
    # pandas' ``to_datetime(..., utc=True)`` reads it.
    micros = pc.cast(column.cast(pa.timestamp("us", tz=kind.tz)), pa.int64())
    # A copy of its own: a view would hold the whole message the column arrived in.
    stamps = np.array(micros.fill_null(np.iinfo(np.int64).min), dtype=np.int64)
    return pd.Series(stamps.view("datetime64[us]")).dt.tz_localize("UTC")


def _times_from_text(column: pa.ChunkedArray) -> pd.Series:
    """Text times Arrow does not parse, through pandas' ISO 8601 parser, as the row
    reader parses every stored time."""
    values = column.to_numpy(zero_copy_only=False)
    missing = pd.isna(values)
    stamps = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    parsed = pd.to_datetime(values[~missing], utc=True, format="ISO8601")
    stamps[~missing] = parsed.tz_convert(None).as_unit("us").asi8
    return pd.Series(stamps.view("datetime64[us]")).dt.tz_localize("UTC")


def concurrently(store: Store, reads: Mapping[K, Callable[[], T]]) -> dict[K, T]:
    """Each read's result, the reads run at once in threads of their own where ADBC reads
    the store (each on a connection or, for SQLite, in a process of its own; the driver
    and Arrow release the GIL), one after another otherwise: reads through the engine
    hold the GIL, and an in-memory SQLite engine gives each thread a connection, hence a
    database, of its own."""
    if len(reads) < 2 or adbc_target(store) is None:
        return {name: read() for name, read in reads.items()}
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="columnar") as pool:
        futures = {name: pool.submit(read) for name, read in reads.items()}
        return {name: future.result() for name, future in futures.items()}
