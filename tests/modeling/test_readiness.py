"""Data readiness: each check's value, threshold, status and fix; the ml / rules decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from integration.features import Frames, frames_from_seed
from integration.modeling import (
    PropensityModel,
    RulesModel,
    Thresholds,
    assess,
    assess_store,
    decide_mode,
    model_for,
)
from integration.modeling.hygiene import clean_frames
from integration.store.models import Connection, Lead, PipelineRun
from integration.world import generate_world

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CHECKS = {
    "history_months", "positives", "closed_won", "label_consistency", "status_outcome_agreement",
    "source_coverage", "company_coverage", "title_coverage", "behavioural_data",
    "deals_without_outcome",
}  # fmt: skip


def _hand_frames(n: int, **columns) -> Frames:
    created = [pd.Timestamp(NOW) - pd.Timedelta(days=400)] * n
    leads = pd.DataFrame(
        {
            "crm_id": [f"l{i}" for i in range(n)],
            "account_crm_id": [None] * n,
            "email_domain": ["gmail.com"] * n,
            "title": [None] * n,
            "source": [None] * n,
            "status": ["working"] * n,
            "created_at": created,
            **columns,
        }
    )
    empty = pd.DataFrame({"lead_crm_id": [], "kind": [], "occurred_at": []})
    return clean_frames(Frames(leads, pd.DataFrame({"crm_id": []}), empty, empty, empty))


def test_a_thin_history_scores_with_rules_and_says_why() -> None:
    world = generate_world(n_leads=600, seed=5, now=NOW)
    report = assess(frames_from_seed(world.seed), NOW)
    assert {c.name for c in report.checks} == CHECKS
    assert report.mode == "rules"
    assert report.check("positives").status == "fail" and report.check("positives").value < 100
    assert "chance" in report.why and "200 needed" in report.why
    model = model_for(report)
    assert isinstance(model, RulesModel) and report.why in model.why
    for check in report.checks:
        assert check.status in ("pass", "warn", "fail") and check.fix
    json.dumps(report.as_dict())


def test_a_healthy_history_trains_a_model() -> None:
    world = generate_world(n_leads=6000, seed=5, now=NOW)
    report = assess(frames_from_seed(world.seed), NOW)
    assert report.mode == "ml", report.why
    statuses = {c.name: c.status for c in report.checks}
    for name in ("history_months", "positives", "label_consistency", "source_coverage",
                 "company_coverage", "title_coverage", "behavioural_data"):  # fmt: skip
        assert statuses[name] == "pass", (name, report.check(name))
    assert report.check("positives").value >= 200
    assert report.check("history_months").value > 12
    model = model_for(report, gap_days=21)
    assert isinstance(model, PropensityModel) and model.gap_days == 21
    # The same data with the floor counted on closed-won deals instead: rules.
    assert assess(frames_from_seed(world.seed), NOW, label="closed_won").mode == "rules"


@pytest.mark.parametrize(("with_source", "status"), [(8, "pass"), (6, "warn"), (4, "fail")])
def test_coverage_passes_warns_and_fails_at_its_thresholds(with_source, status) -> None:
    frames = _hand_frames(10, source=["Web Form"] * with_source + [None] * (10 - with_source))
    check = assess(frames, NOW).check("source_coverage")
    assert (check.value, check.threshold, check.status) == (with_source / 10, 0.7, status)


def test_statuses_without_their_outcome_are_flagged() -> None:
    frames = _hand_frames(10, status=["Meeting Booked"] * 5 + ["working"] * 5)
    check = assess(frames, NOW).check("status_outcome_agreement")
    assert check.value == 1.0 and check.status == "fail" and check.detail["claimed"] == 5


def test_the_floor_needs_wins_and_some_history() -> None:
    report = assess(_hand_frames(3), NOW)
    checks = [c for c in report.checks if c.name not in ("positives", "history_months")]
    wins = report.check("positives").__class__("positives", 250, 200, "pass", "")
    months = report.check("history_months").__class__("history_months", 2.0, 6, "fail", "")
    assert decide_mode([*checks, wins, months])[0] == "rules"
    enough = months.__class__("history_months", 7.0, 6, "pass", "")
    assert decide_mode([*checks, wins, enough]) == ("ml", "250 positives over 7.0 months")
    assert decide_mode([*checks, wins, enough], Thresholds(min_wins=300))[0] == "rules"


def test_unmapped_values_come_from_the_latest_sync_and_from_hygiene(store) -> None:
    with store.session() as session:
        connection = Connection(name="sf", crm="salesforce")
        session.add(connection)
        session.flush()
        cid = connection.id
        session.add_all(
            [
                Lead(connection_id=cid, crm_object="Lead", crm_id=f"00Q{i}",
                     crm_modified_at=NOW, created_at=NOW, status=status)
                for i, status in enumerate(("Recycled", "Open - Not Contacted", "Qualified"))
            ]
        )  # fmt: skip
        session.add(
            PipelineRun(connection_id=cid, step="sync", stats={"unmapped": {"x": {"y": 1}}})
        )
        session.add(
            PipelineRun(
                connection_id=cid, step="sync",
                stats={"Lead": {"pulled": 3}, "unmapped": {"Opportunity.StageName": {"Won!": 4}}},
            )
        )  # fmt: skip

    check = assess_store(store, cid, NOW).check("label_consistency")

    assert check.detail["unmapped"] == {
        "Opportunity.StageName": {"Won!": 4}, "Lead.status": {"Recycled": 1},
    }  # fmt: skip
    assert check.value == 2 and check.status == "fail"  # 5 rows for 3 leads: far above 5 %
