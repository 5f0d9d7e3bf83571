"""Assignment: deterministic, stratified, sticky, account-level; overrides are their own arm."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, update

from integration.errors import TransientError
from integration.experiments import registry
from integration.experiments.assignment import (
    assign,
    detect_overrides,
    unit_hash,
    write_assignments,
)
from integration.experiments.guardrails import GuardrailDecision
from integration.features import load_frames
from integration.store.models import Assignment, Experiment, GuardrailEvent, Lead
from integration.uplift_data import load_arms, uplift_panel
from tests.experiments import DAY, T0, Crm, sqlite_store

TIERS = ("A", "B", "C")
REGIONS = ("NA", "EU", "APAC", "LATAM")


@pytest.fixture
def crm(tmp_path) -> Crm:
    return Crm(sqlite_store(tmp_path))


def _accounts(crm: Crm, n: int, leads_per_account: int = 1, prefix: str = "") -> None:
    for a in range(n):
        account = f"001{prefix}{a:05d}"
        crm.account(account, tier=TIERS[a % 3], region=REGIONS[a // 3 % 4])
        for i in range(leads_per_account):
            crm.lead(f"00Q{prefix}{a:05d}{i}", account=account)
    crm.save()


def test_the_draw_is_a_keyed_hash_in_0_1() -> None:
    draws = [unit_hash("exp1", f"u{i}") for i in range(2000)]
    assert draws == [unit_hash("exp1", f"u{i}") for i in range(2000)]
    assert all(0 <= d < 1 for d in draws)
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert unit_hash("exp1", "u1") != unit_hash("exp2", "u1")
    assert unit_hash("exp1", "u1") != unit_hash("exp1", "u1", "action")


def test_same_data_same_arms_and_another_key_other_arms(tmp_path) -> None:
    arms = []
    for run, key in enumerate(("exp1", "exp1", "exp2")):
        crm = Crm(sqlite_store(tmp_path / str(run)))
        _accounts(crm, 300)
        crm.experiment(key=key, guardrails={"never_hold_out_tiers": []})
        assign(crm.store, crm.connection_id, key, now=T0)
        arms.append(crm.arms(key))
    assert len(arms[0]) == 300
    assert arms[0] == arms[1]
    assert arms[0] != arms[2]
    controls = [{u for u, arm in a.items() if arm == "control"} for a in arms]
    # Another key draws independently: its holdout is not the same accounts.
    assert len(controls[0] & controls[2]) < 0.5 * len(controls[0])


def test_only_open_eligible_leads_are_assigned(crm: Crm) -> None:
    crm.account("001A", tier="B")
    crm.lead("00Qopen", account="001A")
    crm.lead("00Qconverted", converted_at=T0 - DAY)
    crm.lead("00Qdisqualified", status="Disqualified")
    crm.lead("00Qmeeting")
    crm.outcome("00Qmeeting", "meeting_booked", T0 - DAY)
    crm.lead("00Qevent", source="event")
    crm.lead("00Qfuture", created=T0 + DAY)
    crm.save()
    crm.experiment(eligibility=[{"field": "source", "op": "==", "value": "web"}])
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert set(crm.arms()) == {"001A"}
    assert set(report.labels) == {"00Qopen"}


def test_eligibility_can_test_features(crm: Crm) -> None:
    for lead in ("00Q1", "00Q2", "00Q3"):
        crm.lead(lead)
    crm.engagement("00Q1", "pricing_page_visit", T0 - DAY)
    crm.engagement("00Q2", "page_view", T0 - DAY)
    crm.save()
    crm.experiment(
        unit="lead",
        eligibility=[
            {"field": "open", "op": "==", "value": True},
            {"field": "eng_pricing_page_visit_all", "op": ">=", "value": 1},
        ],
    )
    assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert set(crm.arms()) == {"00Q1"}


def test_sticky_arms_survive_a_new_share_and_new_data(crm: Crm) -> None:
    _accounts(crm, 200)
    crm.experiment(strata=["tier", "intent"], guardrails={"never_hold_out_tiers": []})
    first = assign(crm.store, crm.connection_id, "exp1", now=T0)
    before = crm.arms()
    # Strata of 67, 67 and 66 units hold out round(0.2 × n) = 13 each.
    assert first.new_units == 200 and first.units["control"] == 39

    again = assign(crm.store, crm.connection_id, "exp1", now=T0 + DAY)
    assert again.new_units == 0 and again.guardrails == []
    assert crm.arms() == before

    # Data that would change a unit's stratum, and a new share, change no existing arm.
    for a in range(0, 200, 7):
        crm.engagement(f"00Q{a:05d}0", "form_fill", T0 + DAY)
    crm.account("001Z", tier="B")
    crm.lead("00Qnew", account="001Z", created=T0 + DAY)
    crm.save()
    with crm.store.session() as session:
        session.execute(update(Experiment).values(holdout_share=0.9))
    later = assign(crm.store, crm.connection_id, "exp1", now=T0 + 2 * DAY)
    assert later.new_units == 1
    after = crm.arms()
    assert {u: after[u] for u in before} == before
    assert set(after) - set(before) == {"001Z"}


def _source(i: int) -> str:
    return ("web", "event")[i // 2000 % 2]  # every account gets leads from both sources


def test_every_stratum_holds_the_share_at_10k_units(crm: Crm) -> None:
    """10,000 lead units in 24 strata, arriving in two batches."""
    for a in range(2000):
        crm.account(f"001{a:05d}", tier=TIERS[a % 3], region=REGIONS[a // 3 % 4])
    for i in range(6000):
        crm.lead(f"00Q{i:05d}", account=f"001{i % 2000:05d}", source=_source(i))
    crm.save()
    crm.experiment(
        unit="lead",
        strata=["tier", "region", "source"],
        actions={"email": "email v1", "call": "call v1"},
        guardrails={"never_hold_out_tiers": []},
    )
    assign(crm.store, crm.connection_id, "exp1", now=T0)
    for i in range(6000, 10000):
        crm.lead(
            f"00Q{i:05d}", account=f"001{i % 2000:05d}", source=_source(i),
            created=T0 + DAY,
        )  # fmt: skip
    crm.save()
    report = assign(crm.store, crm.connection_id, "exp1", now=T0 + 2 * DAY)

    assert sum(report.units.values()) == 10_000
    assert abs(report.units["control"] / 10_000 - 0.2) <= 0.02
    big = {s: arms for s, arms in report.strata.items() if sum(arms.values()) >= 100}
    assert len(big) == 24
    for stratum, arms in big.items():
        share = arms.get("control", 0) / sum(arms.values())
        assert abs(share - 0.2) <= 0.02, (stratum, share)
    # The treated units split between the two actions by a second, independent draw.
    treated = report.units["email"] + report.units["call"]
    assert abs(report.units["email"] / treated - 0.5) < 0.03


def test_all_leads_of_an_account_share_its_arm_including_later_ones(crm: Crm) -> None:
    _accounts(crm, 60, leads_per_account=3)
    crm.lead("00Qalone")  # no account: a unit of its own
    crm.save()
    crm.experiment(guardrails={"never_hold_out_tiers": []})
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    arms = crm.arms()
    assert len(arms) == 61 and arms["00Qalone"] in ("control", "email")
    assert len(report.labels) == 181
    for a in range(60):
        account = f"001{a:05d}"
        labels = {report.labels[f"00Q{a:05d}{i}"] for i in range(3)}
        assert labels == {f"exp1/{arms[account]}"}

    control_account = next(u for u, arm in arms.items() if arm == "control" and u != "00Qalone")
    crm.lead("00Qlate", account=control_account, created=T0 + DAY)
    crm.save()
    later = assign(crm.store, crm.connection_id, "exp1", now=T0 + 2 * DAY)
    assert later.new_units == 0
    assert later.labels["00Qlate"] == "exp1/control"
    assert crm.arms() == arms


def test_overridden_holdouts_become_their_own_arm(crm: Crm) -> None:
    _accounts(crm, 50, leads_per_account=2)
    crm.experiment(guardrails={"never_hold_out_tiers": []})
    assign(crm.store, crm.connection_id, "exp1", now=T0)
    arms = crm.arms()
    control = sorted(u for u, arm in arms.items() if arm == "control")
    treated = sorted(u for u, arm in arms.items() if arm != "control")
    touched_control, early_control = control[0], control[1]
    crm.touch(f"00Q{touched_control[3:]}1", T0 + DAY)  # the second lead of the account
    crm.touch(f"00Q{early_control[3:]}0", T0 - DAY)  # before the assignment: no override
    crm.touch(f"00Q{treated[0][3:]}0", T0 + DAY)  # treated leads are meant to be touched
    crm.save()

    found = detect_overrides(crm.store, crm.connection_id, "exp1", now=T0 + 2 * DAY)
    assert found.new_overrides == [touched_control]
    prefix = f"00Q{touched_control[3:]}"
    assert found.labels == {f"{prefix}0": "exp1/override", f"{prefix}1": "exp1/override"}
    with crm.store.session() as session:
        flagged = session.execute(
            select(Assignment.unit_id, Assignment.arm, Assignment.override_detected_at).where(
                Assignment.override.is_(True)
            )
        ).all()
    # What was drawn stays on record; the override is a flag beside it.
    assert flagged == [(touched_control, "control", T0 + 2 * DAY)]
    assert crm.arms() == arms

    again = detect_overrides(crm.store, crm.connection_id, "exp1", now=T0 + 3 * DAY)
    assert again.new_overrides == []
    report = assign(crm.store, crm.connection_id, "exp1", now=T0 + 3 * DAY)
    assert report.labels[f"{prefix}0"] == "exp1/override"
    assert report.labels[f"00Q{treated[0][3:]}0"] == f"exp1/{arms[treated[0]]}"
    assert report.units["override"] == 1
    assert report.units["control"] == len(control) - 1
    assert report.units["email"] == len(treated)


def test_a_touch_after_the_stop_is_no_override(crm: Crm) -> None:
    _accounts(crm, 20)
    crm.experiment(guardrails={"never_hold_out_tiers": []})
    assign(crm.store, crm.connection_id, "exp1", now=T0)
    registry.stop(crm.store, crm.connection_id, "exp1", now=T0 + DAY)
    control = next(u for u, arm in crm.arms().items() if arm == "control")
    crm.touch(f"00Q{control[3:]}0", T0 + 2 * DAY)
    crm.save()
    assert detect_overrides(crm.store, crm.connection_id, "exp1", T0 + 3 * DAY).new_overrides == []


def test_only_a_running_experiment_assigns(crm: Crm) -> None:
    _accounts(crm, 10)
    crm.experiment(start=False)
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert report.new_units == 0 and crm.arms() == {}
    assert report.notes == ["experiment is draft: no new units assigned"]
    registry.start(crm.store, crm.connection_id, "exp1", now=T0)
    registry.pause(crm.store, crm.connection_id, "exp1", now=T0)
    assert assign(crm.store, crm.connection_id, "exp1", now=T0).new_units == 0


def test_multi_arm_labels_name_the_action_and_train_uplift(crm: Crm) -> None:
    """Labels written back to the CRM come back as training rows per action; overrides
    are left out of training, and the old ``<action>_v<n>/treatment`` labels still work."""
    _accounts(crm, 300)
    crm.lead("00Qold_t", raw={"Experiment_Arm__c": "call_first_v1/treatment"})
    crm.lead("00Qold_c", raw={"Experiment_Arm__c": "call_first_v1/control"})
    crm.save()
    crm.experiment(
        key="touch_q3",
        actions={"email": "email v1", "linkedin": "linkedin v2"},
        eligibility=[{"field": "account_crm_id", "op": "!=", "value": None}],
        guardrails={"never_hold_out_tiers": []},
    )
    report = assign(crm.store, crm.connection_id, "touch_q3", now=T0)
    assert set(report.labels.values()) == {
        "touch_q3/control", "touch_q3/email", "touch_q3/linkedin"
    }  # fmt: skip
    assert Counter(report.new_by_arm) == Counter(report.units)
    control = next(u for u, arm in crm.arms("touch_q3").items() if arm == "control")
    crm.touch(f"00Q{control[3:]}0", T0 + DAY)
    crm.save()
    overrides = detect_overrides(crm.store, crm.connection_id, "touch_q3", now=T0 + DAY)
    labels = report.labels | overrides.labels
    with crm.store.session() as session:
        for lead, label in labels.items():
            row = session.scalar(select(Lead).where(Lead.crm_id == lead))
            row.raw = {"Experiment_Arm__c": label}

    arms = load_arms(crm.store, crm.connection_id).set_index("crm_id")
    assert arms.loc["00Qold_t", "action"] == "call_first"
    assert arms.loc["00Qold_c", ["action", "arm"]].tolist() == ["call_first", "control"]
    for lead, label in labels.items():
        arm = label.split("/")[1]
        assert arms.loc[lead, ["experiment", "arm"]].tolist() == ["touch_q3", arm]
        if arm != "control":
            assert arms.loc[lead, "action"] == arm
    panel = uplift_panel(
        load_frames(crm.store, crm.connection_id), arms.reset_index(), T0 + 60 * DAY, 21
    )
    treatments = panel.set_index("lead_crm_id")["treatment"]
    assert set(treatments) == {"control", "email", "linkedin", "call_first"}
    overridden = next(iter(overrides.labels))
    assert overridden not in treatments.index
    assert len(treatments) == len(labels) + 2 - len(overrides.labels)


def test_a_connection_without_leads_assigns_nothing(crm: Crm) -> None:
    crm.experiment()
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert (report.new_units, report.units, report.labels) == (0, {}, {})
    assert detect_overrides(crm.store, crm.connection_id, "exp1", now=T0).new_overrides == []


def test_a_run_that_loses_a_race_writes_nothing_and_asks_for_a_retry(crm: Crm) -> None:
    crm.account("001A", tier="A")  # forced to treatment: the run also logs an event
    crm.lead("00Q1", account="001A")
    crm.save()
    crm.experiment()
    assign(crm.store, crm.connection_id, "exp1", now=T0)
    experiment = registry.get(crm.store, crm.connection_id, "exp1")
    with crm.store.session() as session:
        session.execute(delete(GuardrailEvent))
    # A second run that computed its plan before the first one wrote:
    plan = pd.DataFrame({"unit_id": ["001A"], "arm": ["email"], "stratum": ["tier=A"]})
    decision = GuardrailDecision("never_hold_out_tier", "forced_treatment", "tier A", "001A")
    with pytest.raises(TransientError, match="another assignment run wrote first"):
        write_assignments(crm.store, crm.connection_id, experiment.id, "exp1", plan, [decision], T0)
    with crm.store.session() as session:
        assert session.scalar(select(func.count()).select_from(GuardrailEvent)) == 0
        assert session.scalar(select(func.count()).select_from(Assignment)) == 1
