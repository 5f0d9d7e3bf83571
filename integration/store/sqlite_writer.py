"""Rows appended to one SQLite table through ADBC, in a process of its own.

`integration.store.bulk` runs this file as a script (never imports it), for the reason
`integration.store.sqlite_reader` gives: ADBC's SQLite driver carries its own copy of
SQLite, and two copies in one process corrupt each other's view of a WAL database. In a
process of its own it is one more writer of the file, as another leadlift process is,
and binds each value in C while the parent goes on with the next rows.

Protocol: stdin holds an Arrow IPC stream whose schema metadata carries ``uri`` and
``table``; every batch is appended as it arrives, all of them in one transaction,
committed once the stream ends. On failure nothing is committed, the exit status is 1
and stderr holds the driver's message.
"""

from __future__ import annotations

import sys

BUSY_MS = 30_000  # the engine's own ``timeout`` (see `integration.store.db`)


def main() -> int:
    import adbc_driver_sqlite.dbapi
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(sys.stdin.buffer)
        meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        with adbc_driver_sqlite.dbapi.connect(meta["uri"]) as connection:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
                for batch in reader:
                    cursor.adbc_ingest(meta["table"], batch, mode="append")
            connection.commit()
    except Exception as exc:  # the parent reads the message and raises it
        sys.stderr.write(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
