"""Columnar reads (ADBC → Arrow → pandas) give exactly the frames the row reader gives."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from integration import features
from integration.connections import build_connector, get_connection
from integration.features import among, load_frames
from integration.modeling.hygiene import HygieneConfig
from integration.pipeline import run_sync
from integration.progress import NullReporter
from integration.store import Store, columnar
from integration.store.models import (
    Account,
    Connection,
    Engagement,
    Lead,
    Outcome,
    Score,
    Touch,
)
from integration.world import generate_world
from tests.integration.conftest import NOW, make_rig

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
FILLERS = 1_200  # more leads than ADBC's SQLite driver types a column from by default
FRAMES = ("leads", "accounts", "touches", "engagements", "outcomes")


@contextmanager
def rows_only():
    """The reference: every read through the engine's row tuples."""
    with mock.patch.object(columnar, "read_frame", return_value=None):
        yield


@contextmanager
def counted_columnar_reads():
    """Counts the reads the columnar path answered, so a test knows it compared it."""
    answered = []
    real = columnar.read_frame

    def spy(store, statement):
        frame = real(store, statement)
        answered.append(frame is not None)
        return frame

    with mock.patch.object(columnar, "read_frame", spy):
        yield answered


def _rows_read(store: Store, statement, shared=()) -> pd.DataFrame:
    with rows_only():
        return features._read(store, statement, shared)


def _assert_same_frames(a, b) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    if a.aliases is None:
        assert b.aliases is None
    else:
        pd.testing.assert_series_equal(a.aliases, b.aliases, check_exact=True)


def _fill(store: Store) -> int:
    """A connection whose rows hold what the readers must agree on: NULLs in every
    nullable column, a JSON field set on some leads, times with and without fractions
    of a second, deleted rows, another connection's rows, and (past the first
    thousand leads) the first values of columns that were NULL until then."""
    with store.session() as session:
        mine, other = Connection(name="mine", crm="hubspot"), Connection(name="other", crm="x")
        session.add_all([mine, other])
        session.flush()
        cid, oid = mine.id, other.id
        base = {"crm_object": "Lead", "crm_modified_at": T0, "deleted": False}
        leads = [
            Lead(connection_id=cid, crm_id="L1", account_crm_id="A1", email="ann@acme.io",
                 email_domain="acme.io", first_name="Ann", last_name="Lee", company="Acme",
                 title="VP Sales", phone="+1 555", source="Web", status="new",
                 raw={"lifecyclestage": "marketingqualifiedlead", "n": 3},
                 created_at=T0, **base),
            Lead(connection_id=cid, crm_id="L2", raw={}, created_at=None, **base),
            Lead(connection_id=cid, crm_id="L3", account_crm_id="A2", email="bo@beta.io",
                 raw={"lifecyclestage": None}, created_at=T0.replace(microsecond=0), **base),
            Lead(connection_id=cid, crm_id="L4", raw={"lifecyclestage": "lead"},
                 created_at=T0, **base | {"deleted": True}),
            Lead(connection_id=oid, crm_id="L1", raw={"lifecyclestage": "customer"},
                 created_at=T0, **base),
        ]  # fmt: skip
        for i in range(FILLERS):
            late = i >= FILLERS - 3
            leads.append(
                Lead(connection_id=cid, crm_id=f"F{i:05d}", account_crm_id="A1", raw={},
                     email=f"f{i}@acme.io", created_at=T0 + timedelta(minutes=i),
                     converted_at=T0 + timedelta(days=2, seconds=i) if late else None,
                     converted_contact_crm_id=f"C{i}" if late else None, **base)
            )  # fmt: skip
        session.add_all(leads)
        account = {"crm_object": "Account", "crm_modified_at": T0, "deleted": False, "raw": {}}
        session.add_all(
            [
                Account(connection_id=cid, crm_id="A1", domain="acme.io", industry="Software",
                        employees=120, size_band="51-200", region="NA", tier="A", **account),
                Account(connection_id=cid, crm_id="A2", **account),
                Account(connection_id=cid, crm_id="A3", employees=7, **account),
                Account(connection_id=oid, crm_id="A1", employees=9, **account),
            ]
        )  # fmt: skip
        event = {"crm_modified_at": T0, "deleted": False}
        session.add_all(
            [
                Touch(connection_id=cid, crm_object="Task", crm_id=f"T{i}", lead_crm_id=lead,
                      type="email", channel="email", status=status, raw={},
                      occurred_at=T0 + timedelta(hours=i, microseconds=i), **event)
                for i, (lead, status) in enumerate(
                    [("L1", "sent"), ("L1", None), ("L2", "bounced"), ("F00001", None)]
                )
            ]
            + [
                Engagement(connection_id=cid, crm_object="Event", crm_id=f"E{i}",
                           lead_crm_id=lead, kind=kind, occurred_at=T0 - timedelta(days=i),
                           **event)
                for i, (lead, kind) in enumerate(
                    [("L1", "web_visit"), ("L1", "form_fill"), ("L3", "web_visit"),
                     ("nobody", "email_click"), ("F00002", "pricing_page_visit")]
                )
            ]
            + [
                Engagement(connection_id=oid, crm_object="Event", crm_id="E0",
                           lead_crm_id="L1", kind="web_visit", occurred_at=T0, **event),
                Outcome(connection_id=cid, crm_object="Opportunity", crm_id="O1",
                        lead_crm_id="L1", kind="meeting_booked", occurred_at=T0, value=None,
                        raw={}, **event),
                Outcome(connection_id=cid, crm_object="Opportunity", crm_id="O2",
                        lead_crm_id="L3", kind="closed_won", value=1250.5, raw={},
                        occurred_at=T0 + timedelta(days=3), **event | {"deleted": True}),
            ]
        )  # fmt: skip
    return cid


def _statements(store: Store, cid: int) -> dict[str, object]:
    return {
        "empty": select(Lead.crm_id, Lead.created_at, Lead.id)
        .where(Lead.connection_id == cid + 100),
        "all missing": select(Lead.converted_contact_crm_id, Lead.phone, Lead.converted_at)
        .where(Lead.crm_id.in_(select(Lead.crm_id).where(Lead.crm_id.like("L%")))),
        "json field": select(Lead.crm_id, Lead.raw["lifecyclestage"].as_string().label("lc"))
        .where(Lead.connection_id == cid).order_by(Lead.crm_id),
        "ints, floats, booleans": select(
            Lead.id, Lead.deleted, Account.employees, Outcome.value, Outcome.kind
        ).join(Account, Account.crm_id == Lead.account_crm_id)
        .join(Outcome, Outcome.lead_crm_id == Lead.crm_id).order_by(Lead.id, Account.id),
        "ints without a gap": select(Account.employees)
        .where(Account.employees.is_not(None)).order_by(Account.id),
        "aggregates": select(Touch.lead_crm_id, func.min(Touch.occurred_at).label("first_at"),
                             func.count().label("n"))
        .group_by(Touch.lead_crm_id).order_by(Touch.lead_crm_id),
        "scalar": select(func.max(Engagement.occurred_at).label("last_at")),
        "among": select(Lead.crm_id, Lead.created_at)
        .where(among(store, Lead.crm_id, ["L1", "L3"]), Lead.deleted.is_(False)),
    }  # fmt: skip


@pytest.fixture
def filled(store) -> tuple[Store, int]:
    return store, _fill(store)


def test_load_frames_reads_in_columns_what_it_reads_in_rows(filled) -> None:
    store, cid = filled
    with rows_only():
        expected = load_frames(store, cid)
    # As a connection of 5,000 leads and more reads.
    with counted_columnar_reads() as answered, mock.patch.object(columnar, "FEW_IDS", 0):
        got = load_frames(store, cid)
    assert answered == [True] * 5
    _assert_same_frames(got, expected)
    leads = got.leads.set_index("crm_id")
    assert leads.loc["L1", "lifecycle"] != leads.loc["L2", "lifecycle"]  # set / not set
    assert leads["converted_at"].notna().sum() == 3  # typed although NULL for 1,000+ rows
    assert str(leads["created_at"].dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    "lead_ids", [["L1", "F00002", "nobody"], ["L3"], []], ids=["some", "one", "none"]
)
def test_a_chunk_of_leads_reads_the_same(filled, lead_ids) -> None:
    store, cid = filled
    with rows_only():
        expected = load_frames(store, cid, HygieneConfig(), lead_ids=lead_ids)
    # A chunk as long as a pass's (100,000 leads), which reads in columns.
    with counted_columnar_reads() as answered, mock.patch.object(columnar, "FEW_IDS", 0):
        got = load_frames(store, cid, HygieneConfig(), lead_ids=lead_ids)
    assert answered == [True] * 5
    _assert_same_frames(got, expected)
    assert set(got.leads["crm_id"]) == set(lead_ids) - {"nobody"}


def test_a_few_leads_read_as_rows(filled) -> None:
    """A webhook's few leads: the engine answers before a columnar read has started."""
    store, cid = filled
    few = among(store, Lead.crm_id, ["L1", "L3"])
    many = among(store, Lead.crm_id, [f"F{i:05d}" for i in range(columnar.FEW_IDS)])
    assert columnar.picks_few(select(Lead.crm_id).where(Lead.connection_id == cid, few))
    assert columnar.picks_few(select(Account.crm_id).where(Account.crm_id.in_(
        select(Lead.account_crm_id).where(few))))  # fmt: skip
    assert not columnar.picks_few(select(Lead.crm_id).where(many))
    assert not columnar.picks_few(select(Lead.crm_id).where(Lead.connection_id == cid))
    with counted_columnar_reads() as answered:
        got = load_frames(store, cid, HygieneConfig(), lead_ids=["L1", "L3"])
    assert answered == []
    assert sorted(got.leads["crm_id"]) == ["L1", "L3"]


@pytest.mark.parametrize(
    "case",
    ["empty", "all missing", "json field", "ints, floats, booleans", "ints without a gap",
     "aggregates", "scalar", "among"],
)  # fmt: skip
def test_a_statement_reads_the_same(filled, case) -> None:
    store, cid = filled
    statement = _statements(store, cid)[case]
    expected = _rows_read(store, statement)
    got = columnar.read_frame(store, statement)
    assert got is not None
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.equals(features._read(store, statement))


def test_sqlite_text_times_of_any_iso_form_parse_as_the_rows_do(tmp_path) -> None:
    """Times stored by other writers: without fractions, with a 'T', with a zone (which
    Arrow does not parse: pandas does, for that column only)."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    cid = _fill(store)
    with store.engine.begin() as connection:
        connection.execute(
            update(Engagement)
            .where(Engagement.crm_id == "E1")
            .values(occurred_at=text("'2025-02-01 08:00:00'"))
        )
        connection.execute(
            update(Engagement)
            .where(Engagement.crm_id == "E2")
            .values(occurred_at=text("'2025-02-01T08:00:00.5'"))
        )
        connection.execute(
            update(Touch)
            .where(Touch.crm_id == "T1")
            .values(occurred_at=text("'2025-02-01 08:00:00+02:00'"))
        )
    with rows_only():
        expected = load_frames(store, cid, HygieneConfig())
    with counted_columnar_reads() as answered, mock.patch.object(columnar, "FEW_IDS", 0):
        got = load_frames(store, cid, HygieneConfig())
    assert answered == [True] * 5
    _assert_same_frames(got, expected)
    stamps = set(got.engagements["occurred_at"]) | set(got.touches["occurred_at"])
    assert {pd.Timestamp("2025-02-01 08:00:00.5", tz="UTC"),
            pd.Timestamp("2025-02-01 06:00:00", tz="UTC")} <= stamps  # fmt: skip
    store.dispose()


def test_a_sqlite_column_typed_before_its_first_value_falls_back_to_rows(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    cid = _fill(store)
    statement = select(Lead.crm_id, Lead.converted_contact_crm_id).where(Lead.connection_id == cid)
    with mock.patch.object(columnar, "SQLITE_INFER_ROWS", 16):
        assert columnar.read_table(store, statement) is None
        got = features._read(store, statement)
    assert columnar.read_frame(store, statement) is not None
    pd.testing.assert_frame_equal(got, _rows_read(store, statement), check_exact=True)
    store.dispose()


def test_stores_adbc_cannot_open_as_the_engine_does_fall_back_to_rows(tmp_path) -> None:
    memory = Store("sqlite://")
    memory.upgrade()
    assert columnar.adbc_target(memory) is None
    cid = _fill(memory)
    statement = select(Lead.crm_id, Lead.created_at).where(Lead.connection_id == cid)
    assert columnar.read_frame(memory, statement) is None
    with rows_only():
        expected = load_frames(memory, cid, HygieneConfig())
    # In memory, every read goes through the engine, one after another: a thread of its
    # own would open another, empty, database.
    _assert_same_frames(load_frames(memory, cid, HygieneConfig()), expected)
    assert len(expected.leads) > FILLERS
    memory.dispose()

    existing = tmp_path / "x.db"
    existing.touch()
    for url in (
        f"sqlite:///{tmp_path / 'missing.db'}",
        f"sqlite:///{existing}?timeout=3",
        f"sqlite:///file:{existing}?mode=ro&uri=true",
        "sqlite:///:memory:",
        "postgresql+asyncpg://h/db",
        "postgresql+psycopg://h/db?prepare_threshold=5",
        "postgresql+psycopg://h1,h2/db",
        "mysql+pymysql://h/db",
    ):
        assert columnar._target(make_url(url)) is None, url
    assert columnar._target(make_url(f"sqlite:///{existing}")) == ("sqlite", str(existing))


def test_postgresql_urls_become_libpq_uris() -> None:
    url = make_url(
        "postgresql+psycopg://me%40corp:p%3Aw%2Fd@db.example:6543/leads"
        "?options=-csearch_path%3Dbench1m&sslmode=require"
    )
    assert columnar._target(url) == (
        "postgresql",
        "postgresql://me%40corp:p%3Aw%2Fd@db.example:6543/leads"
        "?options=-csearch_path%3Dbench1m&sslmode=require",
    )
    assert columnar._target(make_url("postgresql://[::1]/t")) == (
        "postgresql",
        "postgresql://[::1]/t",
    )
    assert columnar._target(make_url("postgresql+psycopg:///t?host=/run/pg")) == (
        "postgresql",
        "postgresql:///t?host=%2Frun%2Fpg",
    )


def test_values_are_bound_not_written_into_the_sql(filled) -> None:
    store, cid = filled
    statement = select(Lead.crm_id).where(
        Lead.connection_id == cid,
        Lead.created_at >= T0,
        among(store, Lead.crm_id, ["L1", "Robert'); DROP TABLE lead;--"]),
    )
    sql, parameters = columnar.compile_statement(store, statement)
    assert "L1" not in sql and "DROP" not in sql and str(T0.year) not in sql
    assert ("$1" in sql) == (store.dialect == "postgresql")
    assert parameters.num_columns == 3
    assert columnar.read_frame(store, statement)["crm_id"].tolist() == ["L1"]


def test_statements_without_a_plain_arrow_form_fall_back(filled) -> None:
    store, cid = filled
    expanding = select(Lead.crm_id).where(Lead.crm_id.in_(["L1", "L3"]))
    repeated = select(Lead.crm_id, Account.crm_id).join(
        Account, Account.crm_id == Lead.account_crm_id
    )
    # PostgreSQL's driver gives JSON as dicts, SQLite's as the stored text.
    json_column = select(Lead.crm_id, Lead.raw).where(Lead.connection_id == cid)
    for statement in (expanding, repeated, json_column):
        fallback = statement is not json_column or store.dialect == "postgresql"
        assert (columnar.read_frame(store, statement) is None) == fallback
        pd.testing.assert_frame_equal(
            features._read(store, statement), _rows_read(store, statement), check_exact=True
        )


def test_synced_crms_read_the_same(store, tmp_path) -> None:
    """Realistic rows: Salesforce and HubSpot syncs (lifecycle stages in HubSpot's raw
    JSON) of a small world."""
    world = generate_world(n_leads=300, seed=3, now=NOW)
    key = Fernet.generate_key().decode()
    with make_rig(world, tmp_path, database_url=store.url, secret_key=key) as rig:
        for crm in ("salesforce", "hubspot"):
            connection = get_connection(rig.store, rig.connect(crm))
            connector = build_connector(rig.store, rig.settings, connection)
            run_sync(rig.store, rig.settings, connection, connector, NullReporter())
            if store.dialect == "postgresql":
                # Fresh statistics now, not from autovacuum between the two reads: an
                # unordered read's row order follows the plan.
                with rig.store.engine.begin() as analyze:
                    analyze.execute(text("ANALYZE"))
            with rows_only():
                expected = load_frames(rig.store, connection.id)
            with counted_columnar_reads() as answered, mock.patch.object(columnar, "FEW_IDS", 0):
                got = load_frames(rig.store, connection.id)
            assert answered == [True] * 5
            _assert_same_frames(got, expected)
            assert min(len(getattr(got, name)) for name in FRAMES if name != "engagements")
            if crm == "salesforce":
                assert len(got.engagements) > 100
            else:
                assert got.leads["lifecycle_raw"].notna().any()


@pytest.mark.parametrize("recount_after", [0, 10**9])
def test_a_large_sync_has_the_planner_count_the_tables(tmp_path, recount_after) -> None:
    """Without counts SQLite's planner read a million leads' events in index order."""
    world = generate_world(n_leads=60, seed=5, now=NOW)
    with make_rig(world, tmp_path, secret_key=Fernet.generate_key().decode()) as rig:
        connection = get_connection(rig.store, rig.connect("salesforce"))
        connector = build_connector(rig.store, rig.settings, connection)
        with mock.patch("integration.pipeline.RECOUNT_AFTER_ROWS", recount_after):
            run_sync(rig.store, rig.settings, connection, connector, NullReporter())
        with rig.store.engine.connect() as db:
            counted = db.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).scalar()
            if counted:
                counted = db.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'lead'"
                ).scalar()
        assert bool(counted) == (recount_after == 0)


def test_concurrently_returns_each_result_and_raises_a_failure(filled) -> None:
    store, _ = filled
    assert columnar.concurrently(store, {"a": lambda: 1, "b": lambda: 2}) == {"a": 1, "b": 2}

    def fails() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        columnar.concurrently(store, {"a": lambda: 1, "b": fails})


def test_scores_read_for_monitoring_read_the_same(filled) -> None:
    """`read_frame`'s other readers: a join on a grouped subquery, floats and times."""
    store, cid = filled
    with store.session() as session:
        session.add_all(
            [
                Score(connection_id=cid, lead_crm_id=lead, crm_object="Lead", propensity=p,
                      scored_at=T0 + timedelta(seconds=i), uplift={}, reasons={})
                for i, (lead, p) in enumerate([("L1", 0.25), ("L1", 0.5), ("L3", 0.125)])
            ]
        )  # fmt: skip
    first = (
        select(Score.lead_crm_id, func.min(Score.id).label("id"))
        .where(Score.connection_id == cid, Score.shadow.is_(False))
        .group_by(Score.lead_crm_id)
        .subquery()
    )
    statement = (
        select(Score.lead_crm_id, Score.propensity, Score.scored_at)
        .join(first, Score.id == first.c.id)
        .where(Score.scored_at <= T0 + timedelta(days=1))
        .order_by(Score.lead_crm_id)
    )
    got = columnar.read_frame(store, statement)
    assert got is not None and got["propensity"].tolist() == [0.25, 0.125]
    pd.testing.assert_frame_equal(got, _rows_read(store, statement), check_exact=True)


def test_a_sqlite_read_leaves_the_engines_open_connections_intact(tmp_path) -> None:
    """ADBC's SQLite is a second copy of SQLite: in this process, closing its connection
    would delete the WAL under the engine's open connection, losing the commit below."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.upgrade()
    cid = _fill(store)
    statement = select(Lead.crm_id).where(Lead.connection_id == cid)
    with store.engine.connect() as open_connection:
        open_connection.execute(select(func.count()).select_from(Lead)).scalar()
        assert columnar.read_frame(store, statement) is not None
        assert (tmp_path / "store.db-wal").exists()
        open_connection.execute(update(Lead).where(Lead.crm_id == "L2").values(phone="+44"))
        open_connection.commit()
    other = Store(url)
    with other.engine.connect() as connection:
        phone = connection.execute(select(Lead.phone).where(Lead.crm_id == "L2")).scalar()
    assert phone == "+44"
    other.dispose()
    store.dispose()
