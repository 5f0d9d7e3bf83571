"""Write-back planning: material changes only, priorities under a budget, hand-set owners kept."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from integration.config import load_settings
from integration.writeback_plan import (
    CHANGE,
    NEW,
    REFRESH,
    PlannedUpdate,
    WritebackPlan,
    _within_budget,
    material_change,
    plan_owner,
)


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=tmp_path)


PUSHED = {
    "Lead_Score": 40, "Lead_Score_Bucket": "High", "Uplift_Best_Action": "call first",
    "Uplift_Segment": "Persuadable", "Score_Reasons": "+ tier A account",
    "Score_Model_Version": "propensity v1", "Scored_At": "2026-11-01T00:00:00+00:00",
}  # fmt: skip


def test_a_never_pushed_lead_gets_every_field(settings) -> None:
    values, priority = material_change(settings, dict(PUSHED), None)
    assert priority == NEW and values == PUSHED


def test_a_bucket_action_or_segment_change_is_always_pushed_with_only_what_changed(
    settings,
) -> None:
    for key, new in (("Lead_Score_Bucket", "Medium"), ("Uplift_Best_Action", "offer"),
                     ("Uplift_Segment", "Sure Thing")):  # fmt: skip
        values, priority = material_change(settings, PUSHED | {key: new}, PUSHED)
        assert priority == CHANGE and values == {key: new}


def test_a_small_score_move_waits_and_a_large_one_is_a_refresh(settings) -> None:
    assert settings.writeback_score_step == 3
    small = PUSHED | {"Lead_Score": 42, "Score_Reasons": "+ C-level title"}
    assert material_change(settings, small, PUSHED) is None
    large = PUSHED | {"Lead_Score": 43, "Score_Model_Version": "propensity v2"}
    values, priority = material_change(settings, large, PUSHED)
    assert priority == REFRESH
    assert values == {"Lead_Score": 43, "Score_Model_Version": "propensity v2"}
    assert material_change(settings, dict(PUSHED), PUSHED) is None


def _update(crm_id: str, priority: int, score: float, obj: str = "Lead") -> PlannedUpdate:
    return PlannedUpdate(obj, crm_id, {"Lead_Score": 1}, {}, priority, score)


def test_under_a_budget_the_most_important_records_go_first_and_the_rest_wait() -> None:
    candidates = sorted(
        [_update("r1", REFRESH, 0.9), _update("n1", NEW, 0.1), _update("c1", CHANGE, 0.5),
         _update("n2", NEW, 0.3), _update("c2", CHANGE, 0.2)],
        key=lambda u: (u.priority, -u.score),
    )  # fmt: skip
    plan = WritebackPlan(max_calls=2)
    kept = _within_budget(plan, candidates, size=2, max_calls=2)
    assert [u.crm_id for u in kept] == ["n2", "n1", "c1", "c2"]
    assert plan.api_calls == 2

    unlimited = WritebackPlan()
    assert len(_within_budget(unlimited, candidates, size=2, max_calls=None)) == 5
    assert unlimited.api_calls == 3
    per_object = WritebackPlan()
    mixed = [_update("a", NEW, 1, "Lead"), _update("b", NEW, 1, "Contact")]
    assert len(_within_budget(per_object, mixed, size=200, max_calls=None)) == 2
    assert per_object.api_calls == 2  # one call per object: a batch holds one object type


def _score(queue: str | None) -> SimpleNamespace:
    return SimpleNamespace(queue=queue, crm_object="Lead", lead_crm_id="00Q1", propensity=0.3)


QUEUES = {"Senior AE – Now": "00G1", "Nurture": "00G2"}


def test_routing_moves_leads_owned_by_queues_or_by_leadlift_but_never_a_reps_own(
    settings,
) -> None:
    plan = WritebackPlan()
    args = (QUEUES, {"00G1", "00G2"})
    from_queue = plan_owner(settings, _score("Senior AE – Now"), *args, "00G2", None, plan, CHANGE)
    assert from_queue.owner_id == "00G1" and from_queue.previous == "00G2"
    ours = plan_owner(settings, _score("Nurture"), *args, "005REP", "005REP", plan, CHANGE)
    assert ours.owner_id == "00G2"  # leadlift put it with that rep: leadlift may move it
    assert plan_owner(settings, _score("Nurture"), *args, "00G2", None, plan, CHANGE) is None
    kept = plan_owner(settings, _score("Senior AE – Now"), *args, "005REP", None, plan, CHANGE)
    assert kept is None and plan.manual_owners_kept == 1
    assert plan_owner(settings, _score("Unknown"), *args, None, None, plan, NEW) is None
    assert plan.unknown_queues == {"Unknown": 1}

    bold = settings.model_copy(update={"overwrite_manual_owners": True})
    taken = plan_owner(bold, _score("Senior AE – Now"), *args, "005REP", None, plan, CHANGE)
    assert taken.owner_id == "00G1"


def test_moved_owners_are_recorded_on_the_lead_and_in_its_pushed_state(store) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from integration.store.models import Connection, Lead, Writeback
    from integration.writeback import _record_owners
    from integration.writeback_plan import OWNER_KEY, PlannedOwner

    now = datetime(2026, 11, 1, tzinfo=UTC)
    with store.session() as session:
        connection = Connection(name="c", crm="salesforce", status="active", settings={})
        other = Connection(name="o", crm="salesforce", status="active", settings={})
        session.add_all([connection, other])
        session.flush()
        for cid in (connection.id, other.id):
            session.add_all(
                Lead(connection_id=cid, crm_object="Lead", crm_id=f"L{i}", crm_modified_at=now,
                     owner_crm_id="rep")
                for i in range(3)
            )  # fmt: skip
        session.add(
            Writeback(connection_id=connection.id, crm_object="Lead", crm_id="L0",
                      field_values={"Lead_Score": 40}, status="ok")
        )  # fmt: skip
        cid, oid = connection.id, other.id
    moved = [PlannedOwner("Lead", f"L{i}", f"Q{i}", "queue", "rep", NEW) for i in (0, 2)]
    _record_owners(store, cid, moved)
    with store.session() as session:
        owners = dict(
            session.execute(
                select(Lead.connection_id.concat(":").concat(Lead.crm_id), Lead.owner_crm_id)
            ).all()
        )
        pushed = session.scalars(select(Writeback)).one().field_values
    assert owners == {f"{cid}:L0": "Q0", f"{cid}:L1": "rep", f"{cid}:L2": "Q2",
                      f"{oid}:L0": "rep", f"{oid}:L1": "rep", f"{oid}:L2": "rep"}  # fmt: skip
    assert pushed == {"Lead_Score": 40, OWNER_KEY: "Q0"}
