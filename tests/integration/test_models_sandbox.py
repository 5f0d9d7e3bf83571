"""Training, promotion, shadow scoring, explanations and the written fields, on a synced store."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from integration.connections import build_connector, get_connection
from integration.errors import ModelError
from integration.explain import score_history
from integration.fields import SEGMENT_LABELS
from integration.model_card import html_card, text_card
from integration.pipeline import run_cycle, run_sync
from integration.progress import NullReporter
from integration.registry import active, versions
from integration.scoring import latest_scores, score_leads
from integration.store.models import Score
from integration.training import train_propensity
from integration.uplift_training import fit_scorer, train_uplift
from integration.writeback_plan import plan_writeback

from .conftest import NOW


@pytest.fixture
def synced(rig):
    name = rig.connect("salesforce")
    connection = get_connection(rig.store, name)
    connector = build_connector(rig.store, rig.settings, connection)
    run_sync(rig.store, rig.settings, connection, connector, NullReporter())
    return rig, connection


def test_a_challenger_is_promoted_only_when_it_beats_the_champion_on_fresh_outcomes(
    synced,
) -> None:
    rig, connection = synced
    champion = train_propensity(rig.store, rig.settings, connection.id, NOW - timedelta(days=90))
    assert champion.status == "active" and champion.decision == "promoted: no active model"

    challenger = train_propensity(rig.store, rig.settings, connection.id, NOW)

    backtest = challenger.metrics["backtest"]
    assert backtest["champion_version"] == champion.version
    # Both were scored on the same new leads whose outcome window began after the
    # champion's cut-off: outcomes the champion never saw.
    assert backtest["positives"] >= 10 and backtest["rows"] > backtest["positives"]
    beat = backtest["challenger_auc"] > backtest["champion_auc"]
    assert challenger.status == ("active" if beat else "shadow")
    expected = "active" if not beat else "retired"
    assert active(rig.store, connection.id).version == (
        challenger.version if beat else champion.version
    )
    statuses = {v.version: v.status for v in versions(rig.store, connection.id, "propensity")}
    assert statuses[champion.version] == expected


def test_a_retrain_with_nothing_new_to_judge_it_on_stays_a_shadow_that_is_never_written(
    synced,
) -> None:
    rig, connection = synced
    first = train_propensity(rig.store, rig.settings, connection.id, NOW)
    score_leads(rig.store, connection.id, NOW)
    again = train_propensity(rig.store, rig.settings, connection.id, NOW)

    assert again.status == "shadow" and again.decision.startswith("shadow: 0 outcomes")
    assert active(rig.store, connection.id).version == first.version
    before = len(plan_writeback(rig.store, rig.settings, connection.id))
    stats = score_leads(rig.store, connection.id, NOW)
    assert stats.written == 0 and stats.shadow_written == stats.scored  # shadows score all
    with rig.store.session() as session:
        shadow_models = set(
            session.scalars(select(Score.model_version_id).where(Score.shadow.is_(True)))
        )
    assert shadow_models == {again.model_version_id}
    # Nothing the shadow computed is planned for the CRM.
    assert len(plan_writeback(rig.store, rig.settings, connection.id)) == before


def test_every_metric_on_the_card_was_measured_on_the_test_period(synced) -> None:
    rig, connection = synced
    result = train_propensity(rig.store, rig.settings, connection.id, NOW)
    m = result.metrics
    held = m["held_out"]
    assert 0.5 < held["auc"] < 1 and 0 <= held["ece"] < 0.1
    assert held["rows"] == sum(b["rows"] for b in m["buckets"])
    assert sum(c["rows"] for c in m["calibration"]) == held["rows"]
    assert m["split"]["test_from"] > pd.Timestamp(NOW - timedelta(days=400)).isoformat()
    assert set(m["by_segment"]) == {"source", "region", "size_band"}
    assert m["importance"][0]["importance"] >= m["importance"][-1]["importance"] > 0

    row = active(rig.store, connection.id)
    card = html_card(row)
    for plot in ("calibration", "buckets", "importance"):
        assert f'alt="{plot}" src="data:image/png;base64,' in card
    assert "Data readiness" in card and "history_months" in card
    assert f"auc {held['auc']:.4f}" in text_card(row)


def test_uplift_is_measured_per_action_and_refuses_data_without_a_holdout(synced) -> None:
    rig, connection = synced
    result = train_uplift(rig.store, rig.settings, connection.id, NOW)
    actions = set(result.metrics["arms"]) - {"control"}
    assert actions == {"email_sequence", "call_first", "linkedin_touch", "offer"}
    assert set(result.metrics["per_action"]) == actions
    assert all("uplift_at_20" in m for m in result.metrics["per_action"].values())
    segments = pd.DataFrame(result.metrics["segments"])
    assert (segments["ci_low"] <= segments["uplift"]).all()
    assert (segments["uplift"] <= segments["ci_high"]).all()
    assert result.metrics["by_rep"] and "rep" in result.metrics["by_rep"][0]

    X = pd.DataFrame({"tier": ["A", "B"] * 100, **{c: 0.0 for c in ("eng_decay",)}})
    with pytest.raises(ModelError, match="no holdout"):
        fit_scorer(X, np.array(["offer", "call_first"] * 100, dtype=object), np.zeros(200, int))


def test_a_cycle_writes_every_score_field_and_explain_tells_the_story(synced) -> None:
    rig, connection = synced
    run_cycle(rig.store, rig.settings, connection.name, now=NOW)
    scores = {s.lead_crm_id: s for s in latest_scores(rig.store, connection.id)}
    lead, score = next((k, s) for k, s in scores.items() if s.action)
    landed = rig.sandbox.salesforce.get("Lead", lead)

    assert landed["Lead_Score__c"] == round(score.propensity * 100)
    assert landed["Lead_Score_Bucket__c"] == score.bucket
    assert landed["Uplift_Best_Action__c"] == score.action.replace("_", " ")
    best = max(score.uplift["by_action"].values())
    assert landed["Uplift_Score__c"] == round(best * 100, 1)
    assert landed["Uplift_Segment__c"] == SEGMENT_LABELS[score.segment]
    assert landed["Score_Model_Version__c"] == "propensity v1 / uplift v1"
    texts = [i["text"] for i in score.reasons["items"]]
    assert landed["Score_Reasons__c"] == "; ".join(texts)[:255]
    assert texts[-1].startswith("= ") and score.action.replace("_", " ") in texts[-1]
    assert landed["Lead_Score_Bucket__c"] in texts[-1]  # the route says which bucket and why

    history = score_history(rig.store, connection.id, lead)
    assert history["scores"][-1]["bucket"] == score.bucket
    assert history["scores"][-1]["reasons"][0].endswith(f"[{score.reasons['items'][0]['code']}]")
    with rig.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Score)) == len(scores)
