"""Reasons: the vectorised path gives what describing every row one by one gave, to the byte."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from integration.features import build_features, frames_from_seed, training_panel
from integration.modeling import PropensityModel
from integration.modeling.reasons import (
    DEFAULT_EXCLUDED,
    GROUPS,
    MINUS,
    PLUS,
    Reason,
    _rounded,
    group_features,
    group_reasons,
    group_weights,
    reasons_json,
    top_reasons,
    top_reasons_json,
)
from integration.world import generate_world


def reference_top_reasons(
    contributions: pd.DataFrame,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: tuple[str, ...] = (),
) -> list[list[Reason]]:
    """The implementation the vectorised one replaced: a full sort per row, every row
    that shows a group described row by row (``read``), a Reason per reason."""
    features = [f for f in contributions.columns if f in X.columns]
    groups = {n: v for n, v in group_features(features).items() if n not in exclude}
    if not groups:
        return [[] for _ in range(len(X))]
    X = X.reset_index(drop=True)
    weights = np.column_stack(
        [contributions[cols].to_numpy(float).sum(axis=1) for _, cols in groups.values()]
    )
    k = min(top, len(groups))
    order = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(weights, order, axis=1)
    codes = np.empty(order.shape, dtype=object)
    texts = np.empty(order.shape, dtype=object)
    for j, (group, _) in enumerate(groups.values()):
        rows, slots = np.nonzero(order == j)
        if rows.size:
            band, text = group.read(X.iloc[rows])
            codes[rows, slots] = [f"{group.name}.{b}" for b in np.asarray(band, dtype=str)]
            texts[rows, slots] = np.asarray(text, dtype=object)
    out = []
    for i in range(len(X)):
        out.append(
            [
                Reason(codes[i, s], f"{PLUS if chosen[i, s] > 0 else MINUS} {texts[i, s]}", w)
                for s, w in enumerate(chosen[i].tolist())
                if abs(chosen[i, s]) >= min_weight
            ]
        )
    return out


def reference_json(reasons: list[list[Reason]]) -> list[str]:
    """What the scoring pass stored per row before: each reason through json.dumps."""
    return [", ".join(json.dumps(r.as_dict()) for r in items) for items in reasons]


def assert_same(contributions: pd.DataFrame, X: pd.DataFrame, **kwargs) -> list[str]:
    expected = reference_top_reasons(contributions, X, **kwargs)
    assert top_reasons(contributions, X, **kwargs) == expected
    text = top_reasons_json(contributions, X, **kwargs)
    assert text == reference_json(expected)
    return text


@pytest.fixture(scope="module")
def scored() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of a synthetic world's leads and a LightGBM model's contributions."""
    world = generate_world(n_leads=3000, seed=5)
    frames = frames_from_seed(world.seed)
    panel = training_panel(frames, world.seed.now, 21)
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    model = PropensityModel(gap_days=21, candidates=("lightgbm",), n_jobs=1)
    model.fit(X, panel["label"], time=panel["cutoff"])
    return X, model.contributions(X)


@pytest.mark.parametrize(("top", "exclude"), [(3, DEFAULT_EXCLUDED), (3, ()), (6, ()), (30, ())])
def test_a_model_s_reasons_are_the_row_by_row_ones(scored, top, exclude) -> None:
    X, contributions = scored
    text = assert_same(contributions, X, top=top, exclude=exclude)
    assert sum(t.count('"code"') for t in text) > len(X) * min(top, 3) // 2  # reasons shown


def test_group_weights_give_the_same_reasons_as_feature_contributions(scored) -> None:
    X, contributions = scored
    weights, groups = group_weights(contributions, X)
    assert [g.name for g in groups] == list(group_features(list(X.columns)))
    expected = reference_top_reasons(contributions, X, exclude=DEFAULT_EXCLUDED)
    shuffled = X.set_axis(np.random.default_rng(0).permutation(len(X)))  # rows are positional
    assert reasons_json(weights, groups, shuffled, exclude=("age",)) == reference_json(expected)
    assert group_reasons(weights, groups, X, exclude=("age",)) == expected
    mapping = group_features(list(X.columns))  # as the scoring pass hands its groups over
    assert reasons_json(weights, mapping, X, exclude=("age",)) == reference_json(expected)


def edge_rows(X: pd.DataFrame) -> pd.DataFrame:
    """Realistic rows with values at and around every band edge, blanks and odd text."""
    n = 40
    rng = np.random.default_rng(3)
    out = X.sample(n, replace=True, random_state=1).reset_index(drop=True)
    days = [-1.0, -0.0, 0.0, 0.5, 0.999, 1.0, 1.5, 2.0, 2.5, 3.0, 3.001, 7.0, 7.5, 14.0, 14.2,
            29.9, 30.0, 30.0001, 60.0, 60.5, 998.0, 998.9, 999.0, 1e6, np.nan]  # fmt: skip
    counts = [0.0, -0.0, -1.0, 0.4, 1.0, 2.0, 2.9, 3.0, 4.99, 5.0, 7.0, np.nan]
    for column in out.columns:
        if out[column].dtype == np.float64:
            pool = days if "days" in column else counts
            out[column] = rng.choice(pool, n)
    blanks = ["A", "a", "", "nan", "unknown", None, "Zürich — Ost", "5000+", "  x  "]
    for column in ("tier", "size_band", "industry", "region", "source", "department"):
        out[column] = pd.Series(rng.choice(np.array(blanks, dtype=object), n), dtype=object)
    out["seniority"] = rng.choice(["vp", "unknown", "c_level", "intern", None], n)
    return out


def test_every_group_describes_each_row_as_reading_it_alone_would(scored) -> None:
    X, _ = scored
    for frame in (X, edge_rows(X)):
        for group in GROUPS:
            bands, texts = group.describe(frame)
            want_bands, want_texts = group.read(frame)
            assert bands.tolist() == list(want_bands), group.name
            assert texts.tolist() == list(want_texts), group.name


def test_edge_values_give_the_row_by_row_reasons(scored) -> None:
    X, contributions = scored
    edges = edge_rows(X)
    rng = np.random.default_rng(4)
    noise = rng.choice([-0.3, -0.00004, 0.0, 0.00004, 0.2, 0.3], size=(len(edges), 70))
    fake = pd.DataFrame(noise, columns=contributions.columns)
    for exclude in ((), DEFAULT_EXCLUDED):
        assert_same(fake, edges, top=4, exclude=exclude)
        assert_same(fake, edges, top=4, exclude=exclude, min_weight=0.0)


def _frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_ties_go_to_the_earlier_group_and_keep_their_sign() -> None:
    X = _frame(tier=["A", "B"], industry=["Retail", "unknown"], region=["EMEA", "NA"])
    contributions = _frame(
        tier=[0.5, 0.25], industry=[-0.5, -0.25], region=[0.5, 0.25], bias=[1.0, 1.0]
    )

    text = assert_same(contributions, X, top=2)

    first = json.loads(f"[{text[0]}]")
    assert [r["code"] for r in first] == ["tier.a", "industry.retail"]
    assert [r["text"] for r in first] == ["+ tier A account", "− Retail industry"]
    assert '"text": "\\u2212 industry unknown"' in text[1]  # json.dumps escapes the minus


def test_min_weight_negative_zero_and_nan() -> None:
    X = _frame(tier=["A"] * 5, region=["EMEA"] * 5, source=["Web"] * 5)
    contributions = _frame(
        tier=[0.3, -0.00004, 1e-7, np.nan, -0.0],
        region=[-1e-7, 0.2, 0.0, 0.1, 0.0],
        source=[0.0, 0.0, 0.0, np.nan, -0.0],
    )

    text = assert_same(contributions, X)
    assert_same(contributions, X, min_weight=0.0)
    assert_same(contributions, X, min_weight=0.25)

    assert text[0] == '{"code": "tier.a", "text": "+ tier A account", "weight": 0.3}'
    assert text[1].endswith('{"code": "tier.a", "text": "\\u2212 tier A account", "weight": -0.0}')
    assert text[2] == text[4] == ""  # below min_weight: no reason at all
    assert "region" in text[3] and "NaN" not in text[3]  # a NaN weight is never a reason
    assert top_reasons_json(contributions, X, min_weight=0.0)[4].count('"code"') == 3


def test_exclusions_leave_groups_out_at_either_level() -> None:
    X = _frame(age_days=[1.0, 90.0], tier=["A", "B"], region=["NA", "NA"])
    contributions = _frame(age_days=[2.0, -3.0], tier=[0.1, 0.2], region=[0.0, -0.1])

    text = assert_same(contributions, X, exclude=("age",))
    with_age = assert_same(contributions, X)

    assert "age." not in "".join(text) and "lead is 90d old" in with_age[1]
    weights, groups = group_weights(contributions, X)
    assert reasons_json(weights, groups, X, exclude=("age",)) == text
    assert reasons_json(weights, groups, X, exclude=("age", "tier", "region")) == ["", ""]
    assert assert_same(contributions[[]], X) == ["", ""]  # no feature: no reason


def test_features_no_group_claims_and_columns_the_description_lacks() -> None:
    X = _frame(
        zeta=[0.004, -0.001, 3.0, 0.0, -0.0],  # whole once rounded, -0.0 apart
        city=["Zürich", None, "nan", "Köln", "Köln"],
        missing_account=[0.0, 1.0, 0.0, 0.0, 0.0],  # tier itself is missing: "unknown"
        eng_pricing_page_visit_all=[0.0, 2.0, 1.0, 0.0, 0.0],  # no days-since column
        touch_call_all=[1.0, 0.0, 3.0, 0.0, 0.0],
    )
    contributions = _frame(
        zeta=[0.5, -0.4, 0.3, 0.1, 0.1],
        city=[0.2, 0.3, -0.1, 0.2, 0.0],
        missing_account=[-0.1, -0.2, 0.0, 0.0, 0.0],
        eng_pricing_page_visit_all=[0.01, 0.6, 0.1, 0.0, 0.0],
        touch_call_all=[0.3, 0.0, -0.05, 0.05, 0.0],
    )

    text = assert_same(contributions, X, top=5)

    assert '"text": "+ zeta = 0.0"' in text[0] and '"text": "\\u2212 zeta = -0.0"' in text[1]
    assert '"text": "+ zeta = 0.0"' in text[3] and '"text": "+ zeta = -0.0"' in text[4]
    assert '"code": "feature.city.z_rich", "text": "+ city: Z\\u00fcrich"' in text[0]
    assert '"code": "feature.city.unknown"' in text[1]
    assert '"code": "tier.none"' in text[1] and '"+ visited pricing 998d ago"' in text[1]


def test_rounding_is_python_s_round_to_four_places() -> None:
    rng = np.random.default_rng(0)
    ties = (np.arange(-2000, 2000) + 0.5) / 1e4
    near = np.concatenate([np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)])
    values = np.concatenate(
        [
            rng.normal(0, 1, 20_000),
            rng.normal(0, 1e-4, 5_000),
            rng.normal(0, 1e6, 1_000),
            ties,
            near,
            [0.0, -0.0, -0.00004, 0.00005, -0.00005, 1e300, -1e300, np.inf, -np.inf, np.nan],
        ]
    )
    rounded = _rounded(values)
    expected = np.array([round(v, 4) for v in values.tolist()])
    assert np.array_equal(rounded.view(np.int64)[~np.isnan(values)],
                          expected.view(np.int64)[~np.isnan(values)])  # fmt: skip
    assert np.isnan(rounded[np.isnan(values)]).all()
