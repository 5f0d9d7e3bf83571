"""Compiled model evaluation (`forest`, `additive`) against LightGBM itself and against the
implementations it replaced (kept here as private references)."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning
from scipy.special import expit

from integration.features import CATEGORICAL
from integration.modeling import additive, forest
from integration.modeling.propensity import EPS, PropensityModel
from integration.modeling.reasons import group_features
from integration.modeling.uplift import UpliftModel, _Basis, _proba
from integration.uplift_training import UPLIFT_FEATURES, UPLIFT_NUMERIC, UpliftScorer

KINDS = ["a", "b", "c", "d", "e"]
WIDE = [f"w{i:02d}" for i in range(80)]  # more categories than a bit mask holds


def frame(n: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    """Dense, zero-heavy (with ±1e-40 and -0.0), count, NaN-holed numerics and two
    pandas categoricals (the wide one beyond 64 codes); ``unseen`` adds values the
    categories lack and missing ones."""
    rng = np.random.default_rng(seed)
    zeros = np.where(rng.random(n) < 0.4, 0.0, rng.normal(size=n))
    zeros[rng.random(n) < 0.05] = 1e-40
    zeros[rng.random(n) < 0.05] = -1e-40
    zeros[rng.random(n) < 0.05] = -0.0
    kind = rng.choice(KINDS, n).astype(object)
    wide = rng.choice(WIDE, n).astype(object)
    if unseen:
        kind[rng.random(n) < 0.1] = "zz"
        kind[rng.random(n) < 0.1] = None
        wide[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "dense": rng.normal(size=n),
            "zeros": zeros,
            "counts": rng.poisson(1.0, n).astype(float),
            "holes": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            # An unseen value is a category the model did not train with.
            "kind": pd.Categorical(kind, categories=[*KINDS, "zz"] if unseen else KINDS),
            "wide": pd.Categorical(wide, categories=WIDE),
        }
    )


def target(X: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wide = X["wide"].cat.codes.to_numpy()
    score = (
        X["dense"].to_numpy()
        + 2.0 * (X["zeros"].to_numpy() == 0)
        + 0.5 * X["counts"].to_numpy()
        + np.nan_to_num(X["holes"].to_numpy(), nan=1.5)
        + X["kind"].cat.codes.to_numpy() * 0.4
        + np.where(wide % 3 == 0, 1.0, -0.5)
        + np.where(wide > 64, 1.5, 0.0)
    )
    return score + rng.normal(scale=0.5, size=len(X))


def as_matrix(X: pd.DataFrame) -> np.ndarray:
    """What LightGBM makes of a frame: categories as their training codes, missing and
    unseen as NaN."""
    columns = []
    for name in X.columns:
        if isinstance(X[name].dtype, pd.CategoricalDtype):
            trained = KINDS if name == "kind" else WIDE
            codes = X[name].cat.set_categories(trained).cat.codes.to_numpy().astype(float)
            columns.append(np.where(codes < 0, np.nan, codes))
        else:
            columns.append(X[name].to_numpy(dtype=float))
    return np.column_stack(columns)


COMMON = {"n_estimators": 40, "min_child_samples": 10, "min_data_per_group": 5,
          "cat_smooth": 1.0, "verbose": -1, "random_state": 0}  # fmt: skip
BOOSTERS = {
    "binary": (lgb.LGBMClassifier, {"num_leaves": 15}),
    "regression": (lgb.LGBMRegressor, {"num_leaves": 15}),
    "no_missing": (lgb.LGBMClassifier, {"num_leaves": 15, "use_missing": False}),
    "zero_as_missing": (lgb.LGBMClassifier, {"num_leaves": 15, "zero_as_missing": True}),
    "one_hot_categories": (lgb.LGBMClassifier, {"num_leaves": 15, "max_cat_to_onehot": 8}),
    "big_trees": (lgb.LGBMRegressor, {"num_leaves": 100, "min_child_samples": 5}),
    "random_forest": (
        lgb.LGBMClassifier,
        {"num_leaves": 15, "boosting_type": "rf", "bagging_freq": 1, "bagging_fraction": 0.7},
    ),
}


@pytest.fixture(scope="module", params=sorted(BOOSTERS))
def booster(request):
    estimator, params = BOOSTERS[request.param]
    X = frame(4000, seed=1)
    score = target(X, seed=2)
    y = score if estimator is lgb.LGBMRegressor else (score > np.median(score)).astype(int)
    return estimator(**{**COMMON, **params}).fit(X, y).booster_


def test_raw_scores_equal_lightgbm(booster) -> None:
    X = frame(3001, seed=3, unseen=True)  # not a whole number of blocks
    trees = forest.forest_for(booster)
    ours = forest.raw_score(trees, as_matrix(X))
    np.testing.assert_allclose(ours, booster.predict(X, raw_score=True), rtol=0, atol=1e-12)
    if trees.sigmoid() is not None:
        np.testing.assert_allclose(
            forest.probability(trees, ours), booster.predict(X), rtol=0, atol=1e-12
        )
    # Row-major input, several threads and small chunks give the same scores.
    matrix = np.ascontiguousarray(as_matrix(X))
    np.testing.assert_array_equal(forest.raw_score(trees, matrix, threads=2), ours)


def test_every_split_kind_and_the_tree_walk_are_exercised() -> None:
    seen: set[int] = set()
    big = False
    X = frame(4000, seed=1)
    score = target(X, seed=2)
    for estimator, params in BOOSTERS.values():
        y = score if estimator is lgb.LGBMRegressor else (score > np.median(score)).astype(int)
        model = estimator(**{**COMMON, **params}).fit(X, y)
        trees = forest.Forest.from_booster(model.booster_)
        seen |= set(trees.kind.tolist())
        big |= bool((np.diff(trees.tree_leaves) > forest.MAX_LEAVES).any())
    assert seen == {
        forest.PLAIN_NAN_RIGHT, forest.PLAIN_NAN_LEFT, forest.NUMERIC, forest.CATEGORICAL,
        forest.SMALL_CATEGORICAL,
    }  # fmt: skip
    assert big


@pytest.mark.parametrize("categories", [6, 70])
def test_odd_category_codes_follow_lightgbm(categories) -> None:
    """Codes as LightGBM reads a numeric array: truncated, negative/NaN/huge go right."""
    rng = np.random.default_rng(4)
    n = 3000
    codes = rng.integers(0, categories, n).astype(float)
    X = np.column_stack([rng.normal(size=n), codes])
    y = ((codes % 4 == 0) ^ (X[:, 0] > 0.3)).astype(int)
    model = lgb.LGBMClassifier(**COMMON, num_leaves=15).fit(X, y, categorical_feature=[1])
    odd = np.array([-0.5, -1.0, -3.0, 0.7, 2.9, 63.99, 64.0, 69.5, 200.0, 2.0**31, 1e12, np.nan])
    test = np.column_stack([rng.normal(size=odd.size * 20), np.tile(odd, 20)])
    trees = forest.forest_for(model.booster_)
    np.testing.assert_allclose(
        forest.raw_score(trees, test), model.booster_.predict(test, raw_score=True), atol=1e-12
    )


def stump(threshold: float, missing: str = "None", default_left: bool = False) -> dict:
    """A one-split model in ``dump_model`` form: left leaf 1, right leaf 2."""
    root = {
        "split_feature": 0, "threshold": threshold, "decision_type": "<=",
        "default_left": default_left, "missing_type": missing, "internal_value": 1.5,
        "left_child": {"leaf_index": 0, "leaf_value": 1.0},
        "right_child": {"leaf_index": 1, "leaf_value": 2.0},
    }  # fmt: skip
    return {
        "max_feature_idx": 0,
        "objective": "regression",
        "tree_info": [{"tree_structure": root}],
    }


@pytest.mark.parametrize(
    ("threshold", "missing", "default_left", "expected"),
    [
        # |x| <= 1e-35 reads as 0, NaN as 0 when missing values are not special.
        (0.0, "None", False, [1, 1, 1, 1, 2, 1]),
        (-1e-36, "None", True, [2, 2, 2, 2, 2, 1]),
        # Zero: NaN and (near) 0 take the default side.
        (5.0, "Zero", False, [2, 2, 2, 2, 1, 1]),
        # NaN: only NaN takes the default side.
        (-5.0, "NaN", True, [2, 2, 2, 1, 2, 2]),
    ],
)
def test_a_handmade_split_follows_lightgbms_rules(threshold, missing, default_left, expected):
    X = np.array([[1e-40], [-1e-40], [0.0], [np.nan], [1e-30], [-1e-30]])
    trees = forest.Forest.from_dump(stump(threshold, missing, default_left))
    np.testing.assert_array_equal(forest.raw_score(trees, X), expected)


def reference_path_contributions(booster, encoded) -> np.ndarray:
    """The decision-path credits as PropensityModel computed them before (leaf tables
    looked up from ``pred_leaf``)."""
    trees = booster.dump_model()["tree_info"]
    paths, bias = [], 0.0
    for tree in trees:
        root = tree["tree_structure"]
        leaves = {}
        if "split_feature" not in root:
            bias += float(root.get("leaf_value", 0.0))
            leaves[int(root.get("leaf_index", 0))] = []
            paths.append(leaves)
            continue
        bias += float(root["internal_value"])
        stack = [(root, [])]
        while stack:
            node, path = stack.pop()
            for side in ("left_child", "right_child"):
                child = node[side]
                leaf = "split_feature" not in child
                value = float(child["leaf_value"] if leaf else child["internal_value"])
                step = [*path, (int(node["split_feature"]), value - node["internal_value"])]
                if leaf:
                    leaves[int(child["leaf_index"])] = step
                else:
                    stack.append((child, step))
        paths.append(leaves)
    n_leaves = max(max(p) + 1 for p in paths)
    depth = max(1, max(len(v) for p in paths for v in p.values()))
    features = np.zeros((len(paths), n_leaves, depth), dtype=np.int32)
    credits = np.zeros((len(paths), n_leaves, depth))
    for t, leaves in enumerate(paths):
        for leaf, steps in leaves.items():
            for d, (feature, credit) in enumerate(steps):
                features[t, leaf, d] = feature
                credits[t, leaf, d] = credit
    n_features = booster.num_feature()
    leaves = np.asarray(booster.predict(encoded, pred_leaf=True), dtype=np.int64)
    leaves = leaves.reshape(len(encoded), -1)[:, : len(paths)]
    index = np.arange(len(paths))
    rows = np.arange(len(encoded))[:, None, None] * n_features
    sums = np.bincount(
        (rows + features[index, leaves]).ravel(),
        weights=credits[index, leaves].ravel(),
        minlength=len(encoded) * n_features,
    )
    return np.column_stack([sums.reshape(len(encoded), n_features), np.full(len(encoded), bias)])


def test_path_credits_equal_the_leaf_tables_and_add_up(booster) -> None:
    X = frame(2000, seed=5, unseen=True)
    trees = forest.forest_for(booster)
    raw, credits, bias = forest.path_credits(trees, as_matrix(X))
    reference = reference_path_contributions(booster, X)
    np.testing.assert_array_equal(np.column_stack([credits, np.full(len(X), bias)]), reference)
    np.testing.assert_allclose(credits.sum(axis=1) + bias, raw, atol=1e-10)
    np.testing.assert_array_equal(raw, forest.raw_score(trees, as_matrix(X)))

    # Groups: sums of the per-feature credits; a feature in no group counts nowhere.
    group = np.array([0, 1, 0, -1, 2, 1])
    _, grouped, _ = forest.path_credits(trees, as_matrix(X), group, n_groups=4)
    expected = np.column_stack([credits[:, group == g].sum(axis=1) for g in range(4)])
    np.testing.assert_allclose(grouped, expected, rtol=0, atol=1e-12)
    _, threaded, _ = forest.path_credits(trees, as_matrix(X), group, n_groups=4, threads=2)
    np.testing.assert_array_equal(threaded, grouped)


@pytest.mark.parametrize("num_leaves", [15, 100])
def test_settings_equal_lightgbm_with_the_columns_set(num_leaves) -> None:
    """The S-learner's what-ifs: set columns (the last three, and one in the middle)."""
    rng = np.random.default_rng(6)
    n = 5000
    X = as_matrix(frame(n, seed=7))
    arm = rng.integers(0, 4, n)
    onehot = (arm[:, None] == np.arange(1, 4)[None, :]).astype(float)
    score = target(frame(n, seed=7), seed=8) + 2.0 * onehot[:, 0] * (X[:, 0] > 0) - onehot[:, 2]
    y = (score > np.median(score)).astype(int)
    design = np.column_stack([X[:, :2], onehot[:, 1], X[:, 2:], onehot[:, [0, 2]]])
    params = {**COMMON, "num_leaves": num_leaves, "min_child_samples": 5}
    booster = lgb.LGBMClassifier(**params).fit(design, y).booster_
    columns = [2, 7, 8]  # onehot 1, onehot 0, onehot 2
    settings = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
    test = np.column_stack([X[:1500, :2], np.full(1500, 7.0), X[:1500, 2:]])  # column 2: junk
    trees = forest.forest_for(booster)
    assert forest._fixed_masks(trees, settings, _source(trees, columns))[1].any()
    ours = forest.raw_score_settings(trees, test, columns, settings)
    for s, values in enumerate(settings):
        full = np.column_stack([test, np.zeros((1500, 2))])
        full[:, columns] = values
        np.testing.assert_allclose(
            ours[:, s], booster.predict(full, raw_score=True), rtol=0, atol=1e-12
        )
    np.testing.assert_array_equal(
        forest.raw_score_settings(trees, test, columns, settings, threads=2), ours
    )


def _source(trees: forest.Forest, columns: list[int]) -> np.ndarray:
    source = np.full(trees.n_features, -1, dtype=np.int64)
    source[columns] = np.arange(len(columns))
    return source


# --- the propensity model ---------------------------------------------------------------


def leads(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tier = rng.choice(["A", "B", "C", "D"], n).astype(object)
    tier[rng.random(n) < 0.05] = None
    visits = rng.poisson(1.0, n).astype(float)
    a = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    effect = pd.Series(tier).map({"A": 1.2, "B": 0.6, "C": 0.0, "D": -0.6}).fillna(0).to_numpy()
    logit = -2.0 + effect + 0.7 * visits + np.nan_to_num(a)
    y = (rng.random(n) < expit(logit)).astype(int)
    X = pd.DataFrame(
        {"tier": tier, "visits": visits, "a": a, "eng_email_click_all": rng.poisson(0.5, n)}
    )
    return X, y


def reference_encode(model: PropensityModel, frame: pd.DataFrame) -> pd.DataFrame:
    """PropensityModel._encode as it was (pandas now warns of the unseen values it meets)."""
    out = {}
    for column in model._columns_:
        if column in model.categories_:
            values = frame[column].astype(object).where(frame[column].notna(), "unknown")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Pandas4Warning)
                out[column] = pd.Categorical(
                    values.astype(str), categories=model.categories_[column]
                )
        else:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def propensity():
    X, y = leads(5000, seed=9)
    return PropensityModel(candidates=("lightgbm",)).fit(X, y)


def odd_leads() -> pd.DataFrame:
    X, _ = leads(3000, seed=10)
    X.loc[X.index[::11], "tier"] = "Z"  # unseen
    X.loc[X.index[::13], "tier"] = np.nan
    return X


def test_encoding_equals_the_old_one(propensity) -> None:
    X = odd_leads()
    frame_ = propensity._as_frame(X)
    pd.testing.assert_frame_equal(propensity._encode(frame_), reference_encode(propensity, frame_))
    # Object columns that are not all strings are mapped value by value, as before.
    mixed = frame_.assign(tier=frame_["tier"].astype(object))
    mixed.loc[mixed.index[:5], "tier"] = [1, 1.0, True, None, "A"]
    pd.testing.assert_frame_equal(propensity._encode(mixed), reference_encode(propensity, mixed))


def test_propensity_scores_and_contributions_equal_lightgbm(propensity) -> None:
    X = odd_leads()
    encoded = reference_encode(propensity, propensity._as_frame(X))
    raw = propensity.estimator_.predict_proba(encoded)[:, 1]
    expected = np.clip(propensity.calibrator_.transform(raw), EPS, 1 - EPS)
    np.testing.assert_allclose(propensity.predict_proba(X)[:, 1], expected, rtol=0, atol=1e-12)
    contributions = propensity.contributions(X).to_numpy()
    np.testing.assert_array_equal(
        contributions, reference_path_contributions(propensity.estimator_.booster_, encoded)
    )


@pytest.mark.parametrize("candidate", ["lightgbm", "logistic_regression"])
def test_proba_and_group_contributions(candidate) -> None:
    X, y = leads(4000, seed=11)
    model = PropensityModel(candidates=(candidate,)).fit(X, y)
    X = odd_leads()
    groups = group_features([*X.columns, "not_a_feature"])
    groups.pop("email_clicks")  # an excluded group: its feature counts nowhere
    proba, weights = model.proba_and_group_contributions(X, groups, threads=2)
    np.testing.assert_allclose(proba, model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    contributions = model.contributions(X)
    expected = np.column_stack(
        [
            contributions[[f for f in cols if f in X.columns]].sum(axis=1)
            for _, cols in groups.values()
        ]
    )
    assert weights.shape == (len(X), len(groups))
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-10)


# --- the uplift learners -----------------------------------------------------------------


def uplift_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": np.where(rng.random(n) < 0.15, np.nan, rng.normal(size=n)),
            "few": rng.integers(0, 3, n).astype(float),
            "flat": np.where(rng.random(n) < 0.93, 0.0, rng.exponential(3.0, n)),
        }
    )
    arm = rng.choice(np.array(["call", "control", "mail"], dtype=object), n, p=[0.4, 0.2, 0.4])
    logit = -1.0 + 0.8 * np.nan_to_num(X["x1"].to_numpy()) + 0.3 * X["few"].to_numpy()
    logit = logit + np.where(arm == "call", 1.5 * (X["x0"].to_numpy() > 0), 0.0)
    logit = logit + np.where(arm == "mail", -0.8, 0.0)
    y = (rng.random(n) < expit(logit)).astype(int)
    return X, arm, y


def shifted(X: pd.DataFrame) -> pd.DataFrame:
    """Rows beyond the training range (extrapolation), unseen levels and more NaN."""
    out = X.copy()
    out.loc[out.index[::5], "x0"] *= 6.0
    out.loc[out.index[::7], "few"] = 7.0
    out.loc[out.index[::9], "flat"] = -4.0
    out.loc[out.index[::4], "x1"] = np.nan
    return out


@pytest.fixture(scope="module")
def uplift_models():
    X, arm, y = uplift_data(3000, seed=12)
    fast = {"n_estimators": 40, "n_boot": 10}
    return {
        "s": UpliftModel(learner="s", **fast).fit(X, arm, y),
        "gam": UpliftModel(learner="gam", **fast).fit(X, arm, y),
    }, X


def test_s_learner_equals_lightgbm_on_each_arms_design(uplift_models) -> None:
    models, X = uplift_models
    learner = models["s"].estimator_
    features = models["s"]._features(shifted(X), fitting=False)
    base = _proba(learner.model_, learner._design(features, 0))
    expected = np.column_stack(
        [_proba(learner.model_, learner._design(features, a)) - base for a in (1, 2)]
    )
    np.testing.assert_allclose(learner.predict(features), expected, rtol=0, atol=1e-12)


def reference_gam_predict(learner, X: np.ndarray) -> np.ndarray:
    """_AdditiveLogit.predict as it was: the design matrix per arm."""
    blocks = learner.basis_.transform(X)
    n = X.shape[0]
    n_main = 1 + sum(b.shape[1] for b in blocks)
    main = learner.coef_[0] + np.hstack(blocks) @ learner.coef_[1:n_main]
    treatment = learner.coef_[n_main:]

    def eta(arm: int) -> np.ndarray:
        w = learner._w(np.full(n, arm, dtype=np.int64))
        parts = [w[:, : learner.n_actions]] + [w[:, [g]] * blocks[j] for g, j in learner.modifiers_]
        return main + np.hstack(parts) @ treatment

    base = expit(eta(0))
    return np.column_stack([expit(eta(a)) - base for a in range(1, learner.n_actions + 1)])


def test_gam_equals_the_design_matrix_product(uplift_models) -> None:
    models, X = uplift_models
    learner = models["gam"].estimator_
    assert learner.modifiers_  # the interaction path is exercised
    specs = learner.basis_.specs_
    assert any(s["spline"] is not None for s in specs)
    assert any(s["linear"] is not None for s in specs)
    assert any(s["missing"] for s in specs)
    features = models["gam"]._features(shifted(X), fitting=False)
    np.testing.assert_allclose(
        learner.predict(features), reference_gam_predict(learner, features), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        additive.uplift(learner, np.ascontiguousarray(features)),
        learner.predict(features),
        rtol=0,
        atol=1e-15,
    )


def test_basis_transform_is_unchanged(uplift_models) -> None:
    models, X = uplift_models
    basis: _Basis = models["gam"].estimator_.basis_
    features = models["gam"]._features(shifted(X), fitting=False)
    for j, (block, spec) in enumerate(zip(basis.transform(features), basis.specs_, strict=True)):
        keep = spec["keep"]
        raw = basis._raw(features[:, j], spec)[:, keep]
        np.testing.assert_array_equal(block, (raw - spec["mean"][keep]) / spec["scale"][keep])


def test_uplift_encoding_equals_the_old_one() -> None:
    rng = np.random.default_rng(13)
    n = 500
    X = pd.DataFrame({c: rng.choice(["p", "q", "r", "new"], n) for c in CATEGORICAL})
    X["tier"] = X["tier"].astype("str")
    X.loc[X.index[::9], "tier"] = np.nan
    X["region"] = X["region"].astype(object)
    X.loc[X.index[:3], "region"] = [None, 1, np.nan]
    for c in UPLIFT_NUMERIC:
        X[c] = rng.normal(size=n)
    vocabulary = {c: ["p", "q", "r"] for c in CATEGORICAL}
    scorer = UpliftScorer(vocabulary, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)  # of the unseen values
        old = {
            c: pd.Categorical(X[c].astype(str), categories=vocabulary[c]).codes.astype(float)
            for c in CATEGORICAL
        }
    old.update({c: X[c].to_numpy(dtype=float) for c in UPLIFT_NUMERIC})
    new = scorer.encode(X)
    assert list(new.columns) == list(UPLIFT_FEATURES)
    pd.testing.assert_frame_equal(new, pd.DataFrame(old))
