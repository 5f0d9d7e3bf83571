"""Rows appended to one SQLite table through ADBC, in a process of its own.

`integration.store.bulk` runs this file as a script (and imports only its protocol
constant: nothing at this module's top loads a driver), for the reason
`integration.store.sqlite_reader` gives: ADBC's SQLite driver carries its own copy of
SQLite, and two copies in one process corrupt each other's view of a WAL database. In a
process of its own it is one more writer of the file, as another leadlift process is,
and binds each value in C while the parent goes on with the next rows.

Protocol: stdin holds an Arrow IPC stream whose schema metadata carries ``uri`` and
``table``; every batch is appended as it arrives, all of them in one transaction,
committed once the stream ends. Then stdout gets the line ``committed`` and the writer
checkpoints the WAL: the appended pages, so far only in the ``-wal`` file (where every
reader already sees them), are copied into the database file. Copying a scoring pass's
700 MB takes seconds of I/O, and the parent need not wait for it: the rows are committed
before it starts. The commit itself leaves the checkpoint out (``wal_autocheckpoint``
off on this connection only), and a checkpoint another connection starts meanwhile
finds this one running and returns at once. On failure before the commit nothing is
committed, the exit status is 1 and stderr holds the driver's message.
"""

from __future__ import annotations

import sys

BUSY_MS = 30_000  # the engine's own ``timeout`` (see `integration.store.db`)
# The engine's own durability (`integration.store.db`), and no checkpoint in the commit.
PRAGMAS = (f"busy_timeout = {BUSY_MS}", "synchronous = NORMAL", "wal_autocheckpoint = 0")
COMMITTED = b"committed\n"  # on stdout once the rows are in


def main() -> int:
    import adbc_driver_sqlite.dbapi
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(sys.stdin.buffer)
        meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        # Opened in autocommit mode: a pragma of the safety level is refused inside the
        # transaction the DB-API mode opens at once.
        with adbc_driver_sqlite.dbapi.connect(meta["uri"], autocommit=True) as connection:
            raw = connection.adbc_connection
            with connection.cursor() as cursor:
                for pragma in PRAGMAS:
                    cursor.execute(f"PRAGMA {pragma}")
                raw.set_autocommit(False)  # one transaction for the whole stream
                for batch in reader:
                    cursor.adbc_ingest(meta["table"], batch, mode="append")
                raw.commit()
                raw.set_autocommit(True)
                sys.stdout.buffer.write(COMMITTED)
                sys.stdout.buffer.flush()
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
    except Exception as exc:  # the parent reads the message and raises it
        sys.stderr.write(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
