"""The store on SQLite and PostgreSQL: migrations, idempotent upserts, UTC, scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from connectors.base import LeadRecord, OutcomeRecord, TouchRecord
from integration.store.models import Base, Connection, Lead, Outcome, Touch
from integration.store.upserts import upsert_rows
from integration.sync import write_records

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _connection(store, name: str = "acme") -> int:
    with store.session() as session:
        row = Connection(name=name, crm="salesforce")
        session.add(row)
        session.flush()
        return row.id


def _lead(cid: int, crm_id: str, modified: datetime, **extra) -> dict:
    return {
        "connection_id": cid, "crm_object": "Lead", "crm_id": crm_id,
        "crm_modified_at": modified, "deleted": False, "email": f"{crm_id}@x.com", "raw": {},
    } | extra  # fmt: skip


def test_migrations_build_exactly_the_models(store) -> None:
    assert store.is_current()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upsert_is_idempotent_and_rewrites_only_changed_rows(store) -> None:
    cid = _connection(store)
    rows = [_lead(cid, f"00Q{i}", T0) for i in range(3)]
    with store.session() as session:
        assert upsert_rows(session, Lead.__table__, rows) == 3
    with store.session() as session:
        first_sync = dict(session.execute(select(Lead.crm_id, Lead.synced_at)).all())

    with store.session() as session:
        assert upsert_rows(session, Lead.__table__, rows) == 0
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 3
        assert dict(session.execute(select(Lead.crm_id, Lead.synced_at)).all()) == first_sync

    changed = [*rows[:2], _lead(cid, "00Q2", T0 + timedelta(minutes=5), email="new@x.com")]
    with store.session() as session:
        assert upsert_rows(session, Lead.__table__, changed) == 1
    with store.session() as session:
        assert session.scalar(select(Lead.email).where(Lead.crm_id == "00Q2")) == "new@x.com"
        assert session.scalar(select(func.count()).select_from(Lead)) == 3


def test_a_deletion_counts_as_a_change(store) -> None:
    cid = _connection(store)
    with store.session() as session:
        upsert_rows(session, Lead.__table__, [_lead(cid, "00Q1", T0)])
        assert upsert_rows(session, Lead.__table__, [_lead(cid, "00Q1", T0, deleted=True)]) == 1
        assert session.scalar(select(Lead.deleted)) is True


def test_rows_are_scoped_by_connection(store) -> None:
    a, b = _connection(store, "a"), _connection(store, "b")
    with store.session() as session:
        upsert_rows(session, Lead.__table__, [_lead(a, "00Q1", T0), _lead(b, "00Q1", T0)])
        counts = dict(
            session.execute(
                select(Lead.connection_id, func.count()).group_by(Lead.connection_id)
            ).all()
        )
    assert counts == {a: 1, b: 1}


def test_one_batch_with_a_repeated_key_keeps_the_last_row(store) -> None:
    cid = _connection(store)
    rows = [_lead(cid, "00Q1", T0, email="old@x.com"), _lead(cid, "00Q1", T0, email="new@x.com")]
    with store.session() as session:
        assert upsert_rows(session, Lead.__table__, rows) == 1
        assert session.scalar(select(Lead.email)) == "new@x.com"


def test_large_batches_are_chunked_under_parameter_limits(store) -> None:
    cid = _connection(store)
    rows = [_lead(cid, f"00Q{i:06d}", T0) for i in range(6000)]
    with store.session() as session:
        assert upsert_rows(session, Lead.__table__, rows) == 6000
        assert upsert_rows(session, Lead.__table__, rows) == 0


def test_datetimes_round_trip_as_aware_utc(store) -> None:
    cid = _connection(store)
    local = datetime(2026, 5, 1, 14, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    with store.session() as session:
        upsert_rows(session, Lead.__table__, [_lead(cid, "00Q1", local)])
    with store.session() as session:
        value = session.scalar(select(Lead.crm_modified_at))
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert value == local


def test_naive_datetimes_are_refused(store) -> None:
    cid = _connection(store)
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        upsert_rows(session, Lead.__table__, [_lead(cid, "00Q1", datetime(2026, 5, 1))])


def test_domain_records_land_in_their_tables_idempotently(store) -> None:
    cid = _connection(store)
    records = [
        LeadRecord("Lead", "00Q1", None, "a@acme.com", "A", "B", "CTO", "Acme", None, "Web",
                   "Open", "005A", T0, T0),
        TouchRecord("Task", "00T1", "00Q1", "call", "phone", "Call", "completed", "005A", T0, T0),
        OutcomeRecord("Event", "00U1:meeting_booked", "00Q1", "meeting_booked", T0, T0),
    ]  # fmt: skip
    with store.session() as session:
        assert write_records(session, cid, records) == 3
    with store.session() as session:
        assert write_records(session, cid, records) == 0
        assert session.scalar(select(Lead.email_domain)) == "acme.com"
        assert session.scalar(select(Touch.type)) == "call"
        assert session.scalar(select(Outcome.kind)) == "meeting_booked"
