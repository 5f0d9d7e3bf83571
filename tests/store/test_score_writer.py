"""Score rows written by column (COPY on PostgreSQL, plain executemany on SQLite) read back
exactly as given."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select

from integration.scoring import _writer
from integration.store.models import Connection, Score

AWKWARD = [
    "plain",
    "",  # empty text, not NULL
    'quote " and, comma',
    "new\nline and\ttab",
    "back\\slash \\N",
    "− unicode ✓",
]


def test_score_rows_round_trip_through_the_writer(store) -> None:
    with store.session() as session:
        connection = Connection(name="c", crm="salesforce", status="active", settings={})
        session.add(connection)
        session.flush()
        cid = connection.id
    now = datetime(2026, 11, 1, 2, 30, tzinfo=UTC)
    n = len(AWKWARD)
    reasons = [json.dumps({"items": [{"code": "x", "text": t, "weight": -0.0}]}) for t in AWKWARD]
    columns = {
        "lead_crm_id": np.array([f"L{i}" for i in range(n)], dtype=object),
        "crm_object": np.array(["Lead"] * n, dtype=object),
        "propensity": np.array([0.1, 1e-7, 0.3333333333333333, 0.0, 1.0, 0.25]),
        "bucket": np.array(AWKWARD, dtype=object),
        "action": np.array([None, "call_first", None, "", "offer", None], dtype=object),
        "segment": np.array(["persuadable", None, "", None, None, "lost_cause"], dtype=object),
        "queue": np.array([None] * n, dtype=object),
        "uplift": np.array(['{"by_action": {"a": -0.0123}}'] * n, dtype=object),
        "reasons": np.array(reasons, dtype=object),
    }
    write = _writer(
        store, {"connection_id": cid, "model_version_id": None, "scored_at": now, "shadow": True}
    )
    write(columns)
    with store.session() as session:
        rows = session.scalars(select(Score).order_by(Score.lead_crm_id)).all()
        back = [
            (r.lead_crm_id, r.propensity, r.bucket, r.action, r.segment, r.queue, r.uplift,
             r.reasons, r.scored_at, r.shadow, r.connection_id)
            for r in rows
        ]  # fmt: skip
    assert len(back) == n
    for i, row in enumerate(back):
        assert row[0] == f"L{i}"
        assert row[1] == pytest.approx(columns["propensity"][i], rel=0, abs=0)
        assert row[2:6] == (AWKWARD[i], columns["action"][i], columns["segment"][i], None)
        assert row[6] == {"by_action": {"a": -0.0123}}
        assert row[7]["items"][0]["text"] == AWKWARD[i]
        assert row[8] == now and row[9] is True and row[10] == cid
