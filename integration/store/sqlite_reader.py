"""One SQLite query read through ADBC into Arrow, in a process of its own.

`integration.store.columnar` runs this file as a script (never imports it): ADBC's SQLite
driver carries its own copy of SQLite, and two copies of SQLite in one process corrupt
each other's view of a WAL database. POSIX file locks belong to the process, so each
copy takes the other's locks for its own: the ADBC connection, closing, deletes the
``-wal`` and ``-shm`` files under the engine's open connections (commits written after
that are lost), and opening, may reset the shared WAL index they are reading. In a
process of its own it is one more reader of the file, as the web process is.

Protocol: stdin holds an Arrow IPC stream of one row, the parameters, whose schema
metadata carries ``uri``, ``sql``, ``batch_rows`` and ``times`` (the positions of the
columns holding times); stdout gets the result as an Arrow IPC stream. On failure, the
exit status is 1 and stderr holds the driver's message. Only pyarrow and the driver are
imported: a start costs a fraction of a second.

The result leaves in the form the parent keeps: text as ``large_string`` (pandas' own),
SQLite's text times (``YYYY-MM-DD HH:MM:SS[.ffffff]``) parsed to naive timestamps. A time
Arrow does not parse (another ISO 8601 form: a zone, more digits) stays text, for pandas.
The parent's frame holds on to the message its text columns arrived in, so what does not
stay in the frame (times as text) had better not travel.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

BUSY_MS = 30_000  # the engine's own ``timeout`` (see `integration.store.db`)


def main() -> int:
    import adbc_driver_manager
    import adbc_driver_sqlite
    import pyarrow as pa

    request = pa.ipc.open_stream(sys.stdin.buffer).read_all()
    meta = {k.decode(): v.decode() for k, v in (request.schema.metadata or {}).items()}
    try:
        with (
            adbc_driver_sqlite.connect(meta["uri"]) as database,
            adbc_driver_manager.AdbcConnection(database) as connection,
        ):
            with adbc_driver_manager.AdbcStatement(connection) as pragma:
                pragma.set_sql_query(f"PRAGMA busy_timeout = {BUSY_MS}")
                pa.RecordBatchReader.from_stream(pragma.execute_query()[0]).read_all()
            with adbc_driver_manager.AdbcStatement(connection) as statement:
                statement.set_options(**{"adbc.sqlite.query.batch_rows": meta["batch_rows"]})
                statement.set_sql_query(meta["sql"])
                if request.num_columns:
                    batch = request.to_batches()[0]
                    schema, array = batch.__arrow_c_array__()
                    statement.bind(array, schema)
                reader = pa.RecordBatchReader.from_stream(statement.execute_query()[0])
                table = _final(reader.read_all(), {int(i) for i in meta["times"].split()})
                with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as out:
                    out.write_table(table)
    except Exception as exc:  # the parent reads the message and decides
        sys.stderr.write(str(exc))
        return 1
    return 0


def _final(table: Any, times: set[int]) -> Any:
    import pyarrow as pa

    columns = []
    for j, column in enumerate(table.columns):
        if pa.types.is_string(column.type):
            if j in times:
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    column = column.cast(pa.timestamp("us"))
            if pa.types.is_string(column.type):
                column = column.cast(pa.large_string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


if __name__ == "__main__":
    sys.exit(main())
