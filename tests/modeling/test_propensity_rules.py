"""The rules fit score, the ICP guardrails on top of any model, and reason rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from integration.modeling import (
    DEFAULT_BUCKETS,
    BucketScheme,
    Condition,
    Guardrail,
    PointRule,
    Reason,
    RulesModel,
    apply_guardrails,
    render,
    top_reasons,
)


def _lead(**values) -> dict:
    base = {
        "tier": "C", "seniority": "individual", "size_band": "51-200", "source": "Paid Search",
        "free_mail": 0.0, "missing_title": 0.0, "missing_account": 0.0, "missing_phone": 0.0,
        "bounced": 0.0, "unsubscribed": 0.0, "eng_days_since_last": 5.0,
        "eng_pricing_page_visit_days_since_last": 999.0, "eng_form_fill_all": 0.0,
        "eng_page_view_all": 1.0, "acct_meetings": 0.0,
    }  # fmt: skip
    return {**base, **values}


def _frame(*leads: dict) -> pd.DataFrame:
    return pd.DataFrame(list(leads))


def test_points_add_up_and_map_to_a_probability_through_one_curve() -> None:
    X = _frame(
        _lead(),
        _lead(tier="A", seniority="vp", eng_pricing_page_visit_days_since_last=2.0),
        _lead(tier="D", source="Outbound List", bounced=1.0),
    )
    model = RulesModel(base_rate=0.05).fit(X)
    points = model.score_points(X)
    assert points[1] - points[0] == 25 + 15 + 20  # tier A over C, VP, a recent pricing visit
    assert points[2] - points[0] == -10 - 18 - 20
    p = model.predict_proba(X)[:, 1]
    assert p[1] > p[0] > p[2]
    assert np.log(p / (1 - p)).mean() == pytest.approx(np.log(0.05 / 0.95))  # no labels: prior
    assert not model.calibrated_
    contributions = model.contributions(X)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(p / (1 - p)))


def test_with_labels_the_curve_is_fitted_and_never_reversed() -> None:
    rng = np.random.default_rng(0)
    tiers = rng.choice(["A", "B", "C", "D"], 2000)
    X = _frame(*[_lead(tier=t) for t in tiers])
    rate = pd.Series(tiers).map({"A": 0.3, "B": 0.15, "C": 0.05, "D": 0.02}).to_numpy()
    y = (rng.random(2000) < rate).astype(int)
    model = RulesModel().fit(X, y)
    assert model.calibrated_ and model.slope_ > 0
    p = model.predict_proba(X)[:, 1]
    assert abs(p.mean() - y.mean()) < 0.01
    backwards = RulesModel().fit(X, 1 - y)  # labels that contradict the points
    assert not backwards.calibrated_


def test_rules_reasons_say_they_are_rules_and_share_the_ml_codes() -> None:
    X = _frame(_lead(tier="A", seniority="unknown", missing_title=1.0))
    model = RulesModel(why="37 meetings, 200 needed").fit(X)
    (reasons,) = model.reasons(X, top=2)
    assert reasons[0].code == "mode.rules" and "37 meetings, 200 needed" in reasons[0].text
    assert [r.code for r in reasons[1:]] == ["tier.a", "title.missing"]
    assert reasons[1].text == "+ tier A account" and reasons[2].text == "− no title"


def test_a_rule_on_a_column_the_data_lacks_is_skipped_not_fatal() -> None:
    X = _frame(_lead()).drop(columns=["acct_meetings"])
    model = RulesModel().fit(X)
    skipped = {r.feature for r in model.skipped_rules_}
    assert "acct_meetings" in skipped and "tier" not in skipped
    custom = RulesModel(points=(PointRule("tier", 50, (Condition("tier", "in", ("C",)),)),))
    assert custom.fit(X).score_points(X)[0] == 50


def test_buckets_are_ascending_and_edges_validated() -> None:
    assert list(DEFAULT_BUCKETS.label([0.001, 0.01, 0.02, 0.05, 0.5])) == [
        "Very Low", "Low", "Medium", "High", "Very High",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        BucketScheme(edges=(0.1, 0.05, 0.2, 0.3))


def test_guardrails_floor_tier_a_cap_unengaged_free_mail_and_caps_win() -> None:
    X = _frame(
        _lead(tier="A"),
        _lead(free_mail=1.0, eng_days_since_last=999.0),
        _lead(tier="A", bounced=1.0, missing_phone=1.0),
        _lead(tier="B"),
    )
    p = np.array([0.001, 0.30, 0.30, 0.002])
    guarded = apply_guardrails(X, p, context=pd.DataFrame({"status": ["working"] * 4}))
    assert list(guarded.buckets) == ["Medium", "Low", "Very Low", "Very Low"]
    assert guarded.proba[0] == pytest.approx(DEFAULT_BUCKETS.edges[1])  # just into Medium
    assert guarded.proba[1] < DEFAULT_BUCKETS.edges[1] and guarded.proba[3] == p[3]
    assert guarded.fired == [
        ["guard.tier_a_floor"], ["guard.free_mail_unengaged"], ["guard.unreachable"], [],
    ]  # fmt: skip
    assert guarded.changed == 3 and guarded.skipped == []
    assert guarded.reasons[0][0].text.startswith("= tier A account")


def test_guardrails_are_data_and_a_missing_column_skips_the_rule() -> None:
    X = _frame(_lead(tier="A"))
    guarded = apply_guardrails(X, [0.5])  # no status context
    assert guarded.skipped == ["guard.disqualified"]
    mine = (Guardrail("guard.vp_cap", "VPs at most High", (Condition("seniority", "==", "vp"),),
                      cap="High"),)  # fmt: skip
    vp = apply_guardrails(_frame(_lead(seniority="vp")), np.array([[0.5, 0.5]]), mine)
    assert list(vp.buckets) == ["High"] and vp.fired == [["guard.vp_cap"]]


def test_top_reasons_group_features_and_render_signed_text() -> None:
    X = pd.DataFrame(
        {
            "tier": ["A", "D"], "missing_account": [0.0, 0.0],
            "eng_pricing_page_visit_7d": [1.0, 0.0],
            "eng_pricing_page_visit_days_since_last": [2.4, 999.0],
            "mystery": [3.0, 0.0],
        }
    )  # fmt: skip
    contributions = pd.DataFrame(
        {
            "tier": [0.5, -0.8], "missing_account": [0.1, 0.0],
            "eng_pricing_page_visit_7d": [0.4, -0.05],
            "eng_pricing_page_visit_days_since_last": [0.4, -0.05],
            "mystery": [0.01, 0.2], "bias": [-3.0, -3.0],
        }
    )  # fmt: skip
    first, second = top_reasons(contributions, X, top=2)
    assert first == [
        Reason("pricing.recent", "+ visited pricing 2d ago", pytest.approx(0.8)),
        Reason("tier.a", "+ tier A account", pytest.approx(0.6)),
    ]
    assert [r.code for r in second] == ["tier.d", "feature.mystery.zero"]
    assert second[0].text == "− tier D account" and second[1].text.startswith("+ ")
    assert render(first) == "+ visited pricing 2d ago; + tier A account"
    assert len(render([Reason("x", "y" * 300, 1.0)])) == 255
