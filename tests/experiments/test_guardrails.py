"""Guardrails: protected units are forced to treatment and logged; harmful arms pause."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from scipy import stats
from sqlalchemy import func, insert, select

from integration.experiments import registry
from integration.experiments.assignment import assign
from integration.experiments.guardrails import (
    check_arms,
    exposure,
    forced_unit_ids,
    one_sided_z_test,
)
from integration.features import load_frames
from integration.store.models import Assignment, GuardrailEvent
from tests.experiments import DAY, T0, Crm, sqlite_store


@pytest.fixture
def crm(tmp_path) -> Crm:
    return Crm(sqlite_store(tmp_path))


def _events(crm: Crm, rule: str | None = None) -> list[GuardrailEvent]:
    statement = select(GuardrailEvent).order_by(GuardrailEvent.id)
    if rule:
        statement = statement.where(GuardrailEvent.rule == rule)
    with crm.store.session() as session:
        return list(session.scalars(statement))


def _forced(crm: Crm, key: str = "exp1") -> set[str]:
    experiment = registry.get(crm.store, crm.connection_id, key)
    with crm.store.session() as session:
        return forced_unit_ids(session, experiment.id)


# -- who may be held out ---------------------------------------------------------------


def test_a_protected_tier_is_never_held_out(crm: Crm) -> None:
    for a in range(30):
        crm.account(f"001{a:02d}", tier="ABC"[a % 3])
        crm.lead(f"00Q{a:02d}", account=f"001{a:02d}")
    crm.save()
    crm.experiment()  # default: never_hold_out_tiers ["A"], strata ["tier"]
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)

    tier_a = {f"001{a:02d}" for a in range(0, 30, 3)}
    arms = crm.arms()
    assert {arms[u] for u in tier_a} == {"email"}
    assert report.strata["tier=A"] == {"email": 10}
    # The forced units are kept out of the quota: the other tiers still hold out 20 %.
    assert report.strata["tier=B"] == {"control": 2, "email": 8}
    assert report.strata["tier=C"] == {"control": 2, "email": 8}
    events = _events(crm)
    assert {e.unit_id for e in events} == tier_a
    assert {(e.rule, e.decision, e.reason) for e in events} == {
        ("never_hold_out_tier", "forced_treatment", "tier A is never held out")
    }
    assert {e.lead_crm_id for e in events} == {f"00Q{u[3:]}" for u in tier_a}
    assert _forced(crm) == tier_a
    assert {d.unit_id for d in report.guardrails} == tier_a

    assign(crm.store, crm.connection_id, "exp1", now=T0 + DAY)
    assert len(_events(crm)) == 10  # each decision is logged once


def _deals(crm: Crm) -> None:
    """Accounts (tier B) each with one open, eligible lead and a deal history on a
    converted contact."""
    for account in ("001OPEN", "001CLOSED", "001TWO", "001LATER", "001NONE"):
        crm.account(account)
        crm.lead(f"00Q{account[3:]}", account=account)
        crm.lead(f"00Q{account[3:]}_c", account=account, converted_at=T0 - 30 * DAY)
    crm.outcome("00QOPEN_c", "opportunity", T0 - 10 * DAY, deal="D1")
    crm.outcome("00QCLOSED_c", "opportunity", T0 - 10 * DAY, deal="D2")
    crm.outcome("00QCLOSED_c", "closed_lost", T0 - 5 * DAY, deal="D2")
    # Deal D4 is still open although a later deal on the same contact closed.
    crm.outcome("00QTWO_c", "opportunity", T0 - 20 * DAY, deal="D4")
    crm.outcome("00QTWO_c", "opportunity", T0 - 15 * DAY, deal="D3")
    crm.outcome("00QTWO_c", "closed_won", T0 - 5 * DAY, deal="D3")
    # Closed only after the assignment: open when the unit was assigned.
    crm.outcome("00QLATER_c", "opportunity", T0 - 10 * DAY, deal="D5")
    crm.outcome("00QLATER_c", "closed_won", T0 + 5 * DAY, deal="D5")
    crm.save()


def test_an_account_with_an_open_opportunity_is_never_held_out(crm: Crm) -> None:
    _deals(crm)
    stakes = exposure(crm.store, crm.connection_id, load_frames(crm.store, crm.connection_id), T0)
    opened = stakes.index[stakes["open_opportunity"]]
    assert set(opened) == {"account:001OPEN", "account:001TWO", "account:001LATER"}

    crm.experiment(guardrails={"never_hold_out_tiers": []})
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    blocked = {d.unit_id: d for d in report.guardrails}
    assert set(blocked) == {"001OPEN", "001TWO", "001LATER"}
    assert {d.rule for d in blocked.values()} == {"open_opportunity"}
    arms = crm.arms()
    assert all(arms[u] == "email" for u in blocked)
    assert {e.unit_id for e in _events(crm, "open_opportunity")} == set(blocked)


def test_open_opportunities_may_be_held_out_when_the_rule_is_off(crm: Crm) -> None:
    _deals(crm)
    crm.experiment(guardrails={"never_hold_out_tiers": [], "skip_open_opportunity": False})
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert report.guardrails == [] and _events(crm) == []


def test_an_account_with_too_much_at_stake_is_never_held_out(crm: Crm) -> None:
    for account in ("001BIG", "001WON", "001SMALL", "001SHARED"):
        crm.account(account)
        crm.lead(f"00Q{account[3:]}", account=account)
        crm.lead(f"00Q{account[3:]}_c", account=account, converted_at=T0 - 30 * DAY)
    crm.outcome("00QBIG_c", "opportunity", T0 - 9 * DAY, value=80_000, deal="D1")
    crm.outcome("00QWON_c", "opportunity", T0 - 9 * DAY, value=60_000, deal="D2")
    crm.outcome("00QWON_c", "closed_won", T0 - 2 * DAY, value=60_000, deal="D2")
    crm.outcome("00QSMALL_c", "opportunity", T0 - 9 * DAY, value=10_000, deal="D3")
    # One deal on two contacts of the account counts once.
    crm.lead("00QSHARED_d", account="001SHARED", converted_at=T0 - 30 * DAY)
    crm.outcome("00QSHARED_c", "opportunity", T0 - 9 * DAY, value=30_000, deal="D4")
    crm.outcome("00QSHARED_d", "opportunity", T0 - 9 * DAY, value=30_000, deal="D4")
    crm.save()
    stakes = exposure(crm.store, crm.connection_id, load_frames(crm.store, crm.connection_id), T0)
    assert stakes["amount"].to_dict() == {
        "account:001BIG": 80_000, "account:001WON": 60_000, "account:001SMALL": 10_000,
        "account:001SHARED": 30_000,
    }  # fmt: skip

    crm.experiment(
        guardrails={
            "never_hold_out_tiers": [],
            "skip_open_opportunity": False,
            "max_holdout_amount": 50_000,
        }
    )
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    blocked = {d.unit_id: d for d in report.guardrails}
    assert set(blocked) == {"001BIG", "001WON"}
    assert blocked["001BIG"].reason == "80,000 at stake is above the 50,000 limit"
    assert blocked["001BIG"].details == {"amount": 80_000, "limit": 50_000}
    assert report.notes == []


def test_the_amount_rule_says_when_there_are_no_amounts(crm: Crm) -> None:
    crm.account("001A", tier="B")
    crm.lead("00Q1", account="001A")
    crm.save()
    crm.experiment(guardrails={"max_holdout_amount": 1_000})
    report = assign(crm.store, crm.connection_id, "exp1", now=T0)
    assert report.notes == [
        "max_holdout_amount not applied: no opportunity in the store carries an amount"
    ]


def test_the_daily_cap_treats_units_over_it_and_logs_them(crm: Crm) -> None:
    def arrive(first: int, n: int, day: int) -> None:
        for a in range(first, first + n):
            crm.account(f"001{a:03d}", tier="B")
            crm.lead(f"00Q{a:03d}", account=f"001{a:03d}", created=T0 + day * DAY - DAY)
        crm.save()

    arrive(0, 100, 0)
    crm.experiment(guardrails={"daily_holdout_cap_per_stratum": 5})
    first = assign(crm.store, crm.connection_id, "exp1", now=T0)
    # A cap of 5 balances 27 randomized units (round(0.2 × 27) = 5); the other 73
    # are treated without being randomized.
    assert first.new_by_arm == {"control": 5, "email": 95}
    capped = {d.unit_id for d in first.guardrails}
    assert len(capped) == 73
    assert {d.rule for d in first.guardrails} == {"daily_holdout_cap"}
    assert first.guardrails[0].reason == "stratum tier=B reached its cap of 5 held-out units today"
    arms = crm.arms()
    assert all(arms[u] == "email" for u in capped)
    assert {u for u, arm in arms.items() if arm == "control"}.isdisjoint(capped)

    arrive(100, 20, 0)
    same_day = assign(crm.store, crm.connection_id, "exp1", now=T0 + 0.5 * DAY)
    assert same_day.new_by_arm == {"email": 20}
    assert len(same_day.guardrails) == 20

    arrive(120, 50, 1)
    next_day = assign(crm.store, crm.connection_id, "exp1", now=T0 + DAY)
    # A new day, a new cap: 25 more randomized units, 5 of them held out.
    assert next_day.new_by_arm["control"] == 5
    assert len(next_day.guardrails) == 25
    forced = _forced(crm)
    assert forced == capped | {d.unit_id for d in same_day.guardrails + next_day.guardrails}
    randomized = {u: arm for u, arm in crm.arms().items() if u not in forced}
    # Busy days do not tilt the randomized units: 10 of 52 held out.
    assert (len(randomized), Counter(randomized.values())["control"]) == (52, 10)


# -- auto-pause -------------------------------------------------------------------------


def test_the_z_test_is_the_pooled_one_sided_two_proportion_test() -> None:
    z, p = one_sided_z_test(20, 200, 60, 200)
    # p_t = 0.1, p_c = 0.3, pooled 0.2: z = −0.2 / sqrt(0.2 · 0.8 · 2/200) = −5.
    assert z == pytest.approx(-5.0)
    assert p == pytest.approx(stats.norm.cdf(-5.0))
    z, p = one_sided_z_test(60, 200, 20, 200)
    assert z == pytest.approx(5.0) and p == pytest.approx(1 - stats.norm.cdf(-5.0))
    assert one_sided_z_test(0, 50, 0, 50) is None
    assert one_sided_z_test(3, 0, 5, 50) is None


def _arm_results(crm: Crm, rates: dict[str, float], n: int = 250) -> None:
    """``n`` lead units per arm, assigned at T0; the first rate × n book a meeting."""
    experiment = registry.get(crm.store, crm.connection_id, "exp1")
    rows = []
    for arm, rate in rates.items():
        for i in range(n):
            lead = f"00Q{arm}{i:04d}"
            crm.lead(lead, created=T0 - DAY)
            if i < round(rate * n):
                crm.outcome(lead, "meeting_booked", T0 + 3 * DAY)
            rows.append(
                {"connection_id": crm.connection_id, "experiment_id": experiment.id,
                 "unit_id": lead, "arm": arm, "stratum": "past", "assigned_at": T0}
            )  # fmt: skip
    crm.save()
    with crm.store.session() as session:
        session.execute(insert(Assignment), rows)


def _harm_experiment(crm: Crm, **guardrails) -> None:
    crm.experiment(
        unit="lead",
        actions={"harmful": "aggressive call blitz v1", "neutral": "newsletter v2"},
        guardrails={"never_hold_out_tiers": [], **guardrails},
    )
    _arm_results(crm, {"control": 0.3, "neutral": 0.3, "harmful": 0.1})


def test_a_clearly_harmful_arm_is_paused_and_a_neutral_one_is_not(crm: Crm) -> None:
    _harm_experiment(crm)
    checks = {c.action: c for c in check_arms(crm.store, crm.connection_id, "exp1", T0 + 30 * DAY)}

    harmful, neutral = checks["harmful"], checks["neutral"]
    assert (harmful.n_treated, harmful.converted_treated) == (250, 25)
    assert (harmful.n_control, harmful.converted_control) == (250, 75)
    assert harmful.z == pytest.approx(-0.2 / math.sqrt(0.2 * 0.8 * 2 / 250))
    assert harmful.p_value < 1e-6
    assert harmful.paused and harmful.newly_paused
    assert neutral.z == pytest.approx(0.0) and neutral.p_value == pytest.approx(0.5)
    assert not neutral.paused

    experiment = registry.get(crm.store, crm.connection_id, "exp1")
    assert set(experiment.guardrails["paused_arms"]) == {"harmful"}
    assert registry.describe(experiment)["paused_arms"] == ["harmful"]
    [event] = _events(crm, "auto_pause")
    assert event.decision == "paused_arm" and event.unit_id is None
    assert event.details["arm"] == "harmful"
    assert event.details["z"] == pytest.approx(harmful.z, abs=1e-4)
    assert event.details["p"] == pytest.approx(harmful.p_value)
    assert "z=-5.59" in event.reason and "25/250 vs 75/250" in event.reason

    # A paused arm gets no new units; the other action and the holdout go on (the
    # new units are a stratum of their own: the synthetic ones above are "past").
    for i in range(100):
        crm.lead(f"00Qnew{i:03d}", created=T0 + 30 * DAY)
    crm.save()
    report = assign(crm.store, crm.connection_id, "exp1", now=T0 + 31 * DAY)
    assert set(report.new_by_arm) == {"control", "neutral"}
    assert report.new_by_arm["neutral"] == 80
    assert report.notes == ["paused actions get no new units: harmful"]

    again = {c.action: c for c in check_arms(crm.store, crm.connection_id, "exp1", T0 + 32 * DAY)}
    assert again["harmful"].paused and not again["harmful"].newly_paused
    assert len(_events(crm, "auto_pause")) == 1


def test_no_pause_below_the_minimum_units(crm: Crm) -> None:
    _harm_experiment(crm, auto_pause_min_units=251)
    checks = check_arms(crm.store, crm.connection_id, "exp1", T0 + 30 * DAY)
    assert not any(c.paused for c in checks)
    assert min(c.p_value for c in checks) < 1e-6  # the evidence is there; the sample is not
    assert _events(crm) == []


def test_no_pause_before_the_outcome_window_closes(crm: Crm) -> None:
    _harm_experiment(crm)
    checks = check_arms(crm.store, crm.connection_id, "exp1", T0 + 20 * DAY)
    assert [(c.n_treated, c.n_control, c.paused) for c in checks] == [(0, 0, False)] * 2


def test_overrides_and_forced_units_stay_out_of_the_comparison(crm: Crm) -> None:
    _harm_experiment(crm)
    experiment = registry.get(crm.store, crm.connection_id, "exp1")
    with crm.store.session() as session:
        # 100 non-converting harmful units were forced, not randomized: without them
        # the arm converts 25/150.
        session.add_all(
            GuardrailEvent(
                connection_id=crm.connection_id,
                experiment_id=experiment.id,
                unit_id=f"00Qharmful{i:04d}",
                rule="never_hold_out_tier",
                decision="forced_treatment",
                reason="test",
                at=T0,
            )
            for i in range(25, 125)
        )
        # Overrides among the control units that converted: without them control
        # converts 25/200 like the harmful arm, so nothing is paused.
        session.execute(
            Assignment.__table__.update()
            .where(Assignment.unit_id.in_([f"00Qcontrol{i:04d}" for i in range(50)]))
            .values(override=True)
        )
        count = session.scalar(select(func.count()).where(Assignment.override.is_(True)))
    assert count == 50
    checks = {c.action: c for c in check_arms(crm.store, crm.connection_id, "exp1", T0 + 30 * DAY)}
    harmful = checks["harmful"]
    assert (harmful.n_control, harmful.converted_control) == (200, 25)
    assert (harmful.n_treated, harmful.converted_treated) == (150, 25)
    assert harmful.z > 0 and not harmful.paused
