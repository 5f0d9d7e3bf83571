"""Score rows appended by column (COPY on PostgreSQL, a writer process or a plain
executemany on SQLite) read back exactly as given, or not at all."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from unittest import mock

import numpy as np
import pytest
from sqlalchemy import func, select

from integration.scoring import JSON_COLUMNS
from integration.store import Store, bulk
from integration.store.bulk import appending
from integration.store.models import Connection, Score

AWKWARD = [
    "plain",
    "",  # empty text, not NULL
    'quote " and, comma',
    "new\nline and\ttab",
    "back\\slash \\N",
    "− unicode ✓",
]
NOW = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)


def _connection(store: Store) -> int:
    with store.session() as session:
        connection = Connection(name="c", crm="salesforce", status="active", settings={})
        session.add(connection)
        session.flush()
        return connection.id


def _columns(prefix: str = "L") -> dict[str, np.ndarray]:
    n = len(AWKWARD)
    reasons = [json.dumps({"items": [{"code": "x", "text": t, "weight": -0.0}]}) for t in AWKWARD]
    return {
        "lead_crm_id": np.array([f"{prefix}{i}" for i in range(n)], dtype=object),
        "crm_object": np.array(["Lead"] * n, dtype=object),
        "propensity": np.array([0.1, 1e-7, 0.3333333333333333, 0.0, 1.0, 0.25]),
        "bucket": np.array(AWKWARD, dtype=object),
        "action": np.array([None, "call_first", None, "", "offer", None], dtype=object),
        "segment": np.array(["persuadable", None, "", None, None, "lost_cause"], dtype=object),
        "queue": np.array([None] * n, dtype=object),
        "uplift": np.array(['{"by_action": {"a": -0.0123}}'] * n, dtype=object),
        "reasons": np.array(reasons, dtype=object),
    }


def _check(store: Store, cid: int, batches: int) -> None:
    columns = _columns()
    with store.session() as session:
        rows = session.scalars(select(Score).order_by(Score.id)).all()
        back = [
            (r.lead_crm_id, r.propensity, r.bucket, r.action, r.segment, r.queue, r.uplift,
             r.reasons, r.scored_at, r.shadow, r.connection_id, r.model_version_id)
            for r in rows
        ]  # fmt: skip
    assert len(back) == len(AWKWARD) * batches
    for k, row in enumerate(back):
        i = k % len(AWKWARD)
        assert row[0] == f"L{i}"
        assert row[1] == columns["propensity"][i]  # exactly: no float lost in the text
        assert row[2:6] == (AWKWARD[i], columns["action"][i], columns["segment"][i], None)
        assert row[6] == {"by_action": {"a": -0.0123}}
        assert row[7]["items"][0]["text"] == AWKWARD[i]
        assert row[8:] == (NOW, True, cid, None)


@pytest.mark.parametrize("writer", ["in process", "writer process"])
def test_score_rows_round_trip_in_batches(store, writer) -> None:
    cid = _connection(store)
    constants = {"connection_id": cid, "model_version_id": None, "scored_at": NOW, "shadow": True}
    few = 0 if writer == "writer process" else 10**9
    with (
        mock.patch.object(bulk, "FEW_ROWS", few),
        appending(store, Score.__table__, constants, JSON_COLUMNS) as write,
    ):
        write(_columns())
        write(_columns())
    _check(store, cid, batches=2)


def test_a_failed_append_leaves_nothing_behind(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    cid = _connection(store)
    constants = {"connection_id": cid, "model_version_id": None, "scored_at": NOW, "shadow": True}
    for few in (0, 10**9):
        with (
            mock.patch.object(bulk, "FEW_ROWS", few),
            pytest.raises(RuntimeError, match="boom"),
            appending(store, Score.__table__, constants, JSON_COLUMNS) as write,
        ):
            write(_columns())
            raise RuntimeError("boom")
    # A batch the database refuses (NULL in a NOT NULL column) fails the whole append.
    broken = _columns() | {"crm_object": np.array([None] * len(AWKWARD), dtype=object)}
    with (
        mock.patch.object(bulk, "FEW_ROWS", 0),
        pytest.raises(RuntimeError, match="ADBC"),
        appending(store, Score.__table__, constants, JSON_COLUMNS) as write,
    ):
        write(_columns())
        write(broken)
    with store.session() as session:
        assert session.scalar(select(func.count(Score.id))) == 0
    store.dispose()


@pytest.mark.parametrize("writer", ["in process", "writer process"])
def test_a_text_column_read_back_with_nan_for_missing_keeps_its_texts(store, writer) -> None:
    """A pass's staged rows come back through pandas, a missing segment as NaN: the
    column is still text, and NaN is stored as NULL."""
    cid = _connection(store)
    constants = {"connection_id": cid, "model_version_id": None, "scored_at": NOW, "shadow": False}
    columns = _columns()
    columns["segment"] = np.array(
        [np.nan, "lost_cause", None, np.nan, "", "persuadable"], dtype=object
    )
    few = 0 if writer == "writer process" else 10**9
    with (
        mock.patch.object(bulk, "FEW_ROWS", few),
        appending(store, Score.__table__, constants, JSON_COLUMNS) as write,
    ):
        write(columns)
    with store.session() as session:
        segments = session.scalars(select(Score.segment).order_by(Score.id)).all()
    assert segments == [None, "lost_cause", None, None, "", "persuadable"]


def test_the_writer_checkpoints_its_rows_into_the_database_file(tmp_path) -> None:
    """The append returns once the rows are committed (every reader sees them in the
    WAL); the writer then copies them into the database file itself, which `settle`
    waits for."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    cid = _connection(store)
    constants = {"connection_id": cid, "model_version_id": None, "scored_at": NOW, "shadow": True}
    with (
        mock.patch.object(bulk, "FEW_ROWS", 0),
        appending(store, Score.__table__, constants, JSON_COLUMNS) as write,
    ):
        write(_columns())
    _check(store, cid, batches=1)
    bulk.settle()
    # The database file without its WAL: what a checkpoint has copied, and nothing else.
    (tmp_path / "file-only.db").write_bytes((tmp_path / "store.db").read_bytes())
    with contextlib.closing(sqlite3.connect(tmp_path / "file-only.db")) as copy:
        assert copy.execute("SELECT count(*) FROM score").fetchone() == (len(AWKWARD),)
    store.dispose()
