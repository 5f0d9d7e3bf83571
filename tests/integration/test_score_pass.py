"""A scoring pass spread over chunks (as workers run it) writes what one process would."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import func, select

from integration.connections import get_connection
from integration.features import load_frames
from integration.pipeline import run_cycle
from integration.score_partition import neighbourhood, partition
from integration.score_pass import finish_pass, plan_pass, pushed_arms, stage_chunk
from integration.scoring import latest_scores, score_leads
from integration.store.models import Score, ScoreStage

from .conftest import NOW, make_rig


def test_partition_never_splits_a_person_or_an_account() -> None:
    leads = pd.DataFrame(
        {
            "crm_id": ["1", "2", "3", "4", "5", "6"],
            "account_crm_id": ["A", None, "B", "A", None, "C"],
            "email": ["a@x.io", "p@y.io", None, None, "P@Y.io", None],
            "first_name": [None] * 6,
            "last_name": [None] * 6,
            "converted_contact_crm_id": [None] * 6,
            "created_at": [None] * 6,
        }
    )
    chunks = partition(leads, size=1)
    where = {lead: n for n, chunk in enumerate(chunks) for lead in chunk}
    assert where["1"] == where["4"]  # account A
    assert where["2"] == where["5"]  # the same person, by email
    assert sorted(where) == ["1", "2", "3", "4", "5", "6"]
    # Components in lead-id order, cut once a chunk reaches its size.
    assert chunks == [["1", "4"], ["2", "5"], ["3"], ["6"]]


def test_a_chunked_pass_writes_what_a_single_pass_would(world, tmp_path) -> None:
    with make_rig(world, tmp_path) as rig:
        name = rig.connect("salesforce")
        run_cycle(rig.store, rig.settings, name, now=NOW)
        connection = get_connection(rig.store, name)
        later = NOW + timedelta(days=3)

        # What a pass whose finish never ran leaves behind, days ago.
        ids = sorted(load_frames(rig.store, connection.id).leads["crm_id"])[:50]
        assert stage_chunk(rig.store, connection.id, "20200101T000000-lost", 0, ids, later)
        plan = plan_pass(rig.store, connection.id, chunk_leads=700)
        assert len(plan.chunks) >= 4
        with rig.store.session() as session:
            left = select(func.count()).where(ScoreStage.pass_id == "20200101T000000-lost")
            assert session.scalar(left) == 0
        frames = load_frames(rig.store, connection.id)
        assert plan.leads == len(frames.leads) + len(frames.aliases)
        staged = [
            stage_chunk(rig.store, connection.id, plan.pass_id, n, ids, later)
            for n, ids in enumerate(plan.chunks)
        ]
        # A retried chunk replaces what it staged, it does not add to it.
        stage_chunk(rig.store, connection.id, plan.pass_id, 0, plan.chunks[0], later)
        open_leads = int(frames.leads["converted_at"].isna().sum())
        assert sum(staged) == open_leads
        arms = pushed_arms(rig.store, connection.id, rig.settings.fields.experiment_arm)
        before = _rows(rig)
        stats = finish_pass(rig.store, connection.id, plan.pass_id, later, arms=arms)

        assert stats.scored == open_leads and stats.written > 0
        assert _rows(rig) == before + stats.written
        with rig.store.session() as session:
            assert session.scalar(select(func.count()).select_from(ScoreStage)) == 0
        # The single-process pass at the same moment finds nothing left to change.
        again = score_leads(rig.store, connection.id, later, arms=arms)
        assert again.scored == open_leads and again.written == 0
        latest = latest_scores(rig.store, connection.id)
        reasons = [s.reasons["items"] for s in latest if s.scored_at == later]
        assert reasons and all(items[-1]["code"] == "route" for items in reasons)


def _rows(rig) -> int:
    with rig.store.session() as session:
        return session.scalar(select(func.count()).select_from(Score))


def test_rescoring_a_few_leads_reads_only_their_neighbourhood(world, tmp_path) -> None:
    with make_rig(world, tmp_path) as rig:
        name = rig.connect("salesforce")
        run_cycle(rig.store, rig.settings, name, now=NOW)
        connection = get_connection(rig.store, name)
        before = {s.lead_crm_id: s.propensity for s in latest_scores(rig.store, connection.id)}
        sample = sorted(before)[::150]
        around = neighbourhood(rig.store, connection.id, sample)
        assert set(sample) <= set(around) and len(around) < len(before) / 5
        # The same moment, read from the neighbourhood alone: the same probabilities.
        score_leads(rig.store, connection.id, NOW, lead_ids=sample)
        after = {s.lead_crm_id: s.propensity for s in latest_scores(rig.store, connection.id)}
        assert max(abs(after[lead] - before[lead]) for lead in sample) < 1e-4


def test_an_id_filter_binds_one_parameter_on_both_backends(store) -> None:
    from sqlalchemy import func as sql_func

    from integration.features import among
    from integration.store.models import Lead

    ids = [f"id{n}" for n in range(50_000)]  # more than SQLite binds one by one
    with store.engine.connect() as connection:
        for column in (Lead.crm_id, sql_func.lower(Lead.email)):
            statement = select(Lead.crm_id).where(among(store, column, ids))
            assert connection.execute(statement).all() == []
