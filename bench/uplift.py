"""Uplift quality and cost: leadlift's UpliftModel against causalml and scikit-uplift.

    python -m bench.uplift [--seeds 5] [--first-seed 1] [--quick]
                           [--scenarios b2b_rare_2pct,multi_arm,sandbox_world]
                           [--variants s,gam] [--no-peers | --peers causalml_X,...]

Needs the benchmark extra (``pip install -e '.[bench]'``: causalml, scikit-uplift);
leadlift itself never imports them.

Scenarios (every one: a fresh data set per seed, one train/test split, every model
fitted on the same train rows and scored on the same test rows):

``b2b_rare_2pct``
    causalml ``make_uplift_classification_logistic``: 2% control conversion, +1 pt
    average effect, 10 classification features (5 informative), 2 uplift features
    and 1 mixed one for the single action. 80k rows per group are generated, and
    control rows are subsampled so that the holdout is 20% of 100k rows. Split 50k
    train / 50k test. ``random`` is seeded as well as numpy (the generator draws the
    feature shapes from ``random``).
``multi_arm``
    The same generator with 10% control conversion and three actions: email_seq
    +2 pt, call_first +5 pt, linkedin -5 pt (harmful). 25k rows per arm, half of
    them for testing.
``sandbox_world``
    leadlift's own world (``generate_world(n_leads)``, four actions against a pooled
    20% holdout, 4% base rate). The truth frame is used directly: assigned leads
    whose outcome window had closed, minus the control leads a rep called anyway.
    Features are simple numbers taken from the seed as of assignment: tier, size
    band, industry, lead source, seniority from the title, a missing-title flag,
    opt-out, free mail, and engagement counts per kind before assignment. Split
    50/50 by randomization unit (account), so that contacts of one account never
    straddle the split.

Every LightGBM model, leadlift's and the peers', uses one budget: 200 trees,
learning rate 0.05, 31 leaves, min_child_samples 50, 0.8 row and column subsampling,
n_jobs=1. No hyper-parameters are tuned for anyone. leadlift's ``"auto"`` chooses its
learner on a validation split of the training rows only. The peers get the known
constant propensity where they take one (X, DR).

Metrics, all on the test rows. ``qini_auc`` is scikit-uplift's normalized Qini
(``integration.modeling.metrics.qini_auc_score``, tested equal to sklift 0.5.1).
``uplift_at_20`` is the observed treated-minus-control rate in the top 20%, and
``policy_value`` is the same per 1,000 treated. ``true_at_20`` is the mean true
uplift in the top 20% as a share of the oracle's. ``spearman`` is the rank
correlation with the true uplift. ``fit_s`` and ``predict_s`` are wall times (the
entries take turns at fitting first after a seed's data is made). With
several actions, the per-action figures are averaged: each action is scored on its
own rows plus the holdout's for the observed metrics, and on every test row for the
true ones. ``policy_share`` is the true gain per lead of giving each lead the action
with the largest predicted uplift (none if every prediction is <= 0), as a share of
the oracle's gain.

Reference rows, scored like the models: ``oracle`` (the true uplift), ``random``,
``feature_oracle`` (LightGBM regressors fitted on the train rows' *true* uplift: how much
the features can explain at all) and, in the sandbox world, ``known_form`` (a learner
told which 15 conditions the world's uplift is made of, fitted on the observed outcomes:
about as well as this many rows allow; see `known_form`). In the sandbox world the
feature oracle reaches about 0.98 of the oracle's top-20% uplift, but the known form,
from about 47k train rows at a 4% base rate, reaches far less: the sandbox's targets
are bounded by the data, not by the features.

Per scenario the output has the mean and sd over seeds, and the
paired difference leadlift - best peer (the peer with the best mean on that metric)
with a paired t-test p-value.

Last line: one JSON object ``{"leadlift": {...}, "peers": {name: {...}}, "oracle":
{...}, "random": {...}, "comparison": {...}, "scenarios": {...}}``. The top-level
entries are the primary scenario (``b2b_rare_2pct``); ``scenarios`` holds all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import random
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr, ttest_rel

from integration.features import seniority
from integration.modeling.metrics import (
    best_action_gain,
    policy_value,
    qini_auc_score,
    true_at_k,
    uplift_at_k,
)
from integration.modeling.uplift import UpliftModel

CONTROL = "control"
BUDGET = dict(
    n_estimators=200,
    learning_rate=0.05,
    num_leaves=31,
    min_child_samples=50,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    n_jobs=1,
    verbose=-1,
)
K = 0.2
ALL_SCENARIOS = ("b2b_rare_2pct", "multi_arm", "sandbox_world")
METRICS = (
    "qini_auc",
    "uplift_at_20",
    "policy_value",
    "true_at_20",
    "spearman",
    "policy_share",
    "fit_s",
    "predict_s",
)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Split:
    """One scenario's data: train and test features, arms, outcomes and true uplift."""

    X_train: pd.DataFrame
    arm_train: np.ndarray
    y_train: np.ndarray
    X_test: pd.DataFrame
    arm_test: np.ndarray
    y_test: np.ndarray
    tau_test: np.ndarray  # (n_test, actions), columns in `actions` order
    actions: list[str]  # sorted
    tau_train: np.ndarray  # true uplift of the train rows (only for the feature oracle)


# --- data ----------------------------------------------------------------------------------


def _logistic(seed: int, groups: list[str], n_per_group: int, base: float, **kw):
    from causalml.dataset import make_uplift_classification_logistic

    random.seed(seed)  # the generator draws feature shapes from `random` (notes, trap #3)
    np.random.seed(seed)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        frame, names = make_uplift_classification_logistic(
            n_samples=n_per_group,
            treatment_name=[CONTROL, *groups],
            positive_class_proportion=base,
            random_seed=seed,
            **kw,
        )
    return frame, names


def _finish(frame, names, groups, train_rows, test_rows) -> Split:
    X = frame[names].astype(float)
    arm = frame["treatment_group_key"].to_numpy(dtype=object)
    y = frame["conversion"].to_numpy().astype(np.int64)
    actions = sorted(groups)
    tau = frame[[f"{a}_true_effect" for a in actions]].to_numpy(float)
    return Split(
        X.iloc[train_rows].reset_index(drop=True),
        arm[train_rows],
        y[train_rows],
        X.iloc[test_rows].reset_index(drop=True),
        arm[test_rows],
        y[test_rows],
        tau[test_rows],
        actions,
        tau[train_rows],
    )


def b2b_rare(seed: int, n_train: int = 50_000, n_test: int = 50_000) -> Split:
    n = n_train + n_test
    n_control = round(0.2 * n)
    frame, names = _logistic(
        seed,
        ["treatment"],
        n - n_control,
        0.02,
        n_uplift_dict={"treatment": 2},
        n_mix_informative_uplift_dict={"treatment": 1},
        delta_uplift_dict={"treatment": 0.01},
    )
    rng = np.random.default_rng(seed)
    key = frame["treatment_group_key"].to_numpy()
    control = rng.choice(np.flatnonzero(key == CONTROL), n_control, replace=False)
    rows = rng.permutation(np.r_[np.flatnonzero(key != CONTROL), control])
    return _finish(frame, names, ["treatment"], rows[:n_train], rows[n_train:])


def multi_arm(seed: int, n_per_arm: int = 25_000) -> Split:
    groups = ["email_seq", "call_first", "linkedin"]
    frame, names = _logistic(
        seed,
        groups,
        n_per_arm,
        0.10,
        n_uplift_dict={"email_seq": 2, "call_first": 2, "linkedin": 3},
        n_mix_informative_uplift_dict={"email_seq": 1, "call_first": 1, "linkedin": 0},
        delta_uplift_dict={"email_seq": 0.02, "call_first": 0.05, "linkedin": -0.05},
    )
    rows = np.random.default_rng(seed).permutation(len(frame))
    half = len(rows) // 2
    return _finish(frame, names, groups, rows[:half], rows[half:])


SENIORITY_CODES = {"c_level": 0, "vp": 1, "director": 2, "manager": 3, "individual": 4}


def world_features(world) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(X, truth) for the leads usable for uplift learning in a generated world."""
    from connectors.sandbox.seed import ENGAGEMENT_KINDS, INDUSTRIES, LEAD_SOURCES, SIZE_BANDS

    truth = world.truth
    leads = world.seed.leads
    accounts = world.seed.accounts.set_index("account_key")
    window = pd.Timedelta(days=world.params.window_days)
    usable = (
        truth["arm"].notna()
        & ~truth["override"]
        & (truth["assigned_at"] + window <= pd.Timestamp(world.params.now))
    ).to_numpy()
    account = leads["account_key"]
    has_account = account.notna().to_numpy()
    acc = accounts.reindex(account.fillna(-1).astype(np.int64).to_numpy())

    def codes(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(vocabulary)}
        return values.map(lookup).fillna(-1).to_numpy(float)

    tiers = ("A", "B", "C", "D")
    X = pd.DataFrame(
        {
            "tier": np.where(has_account, codes(acc["tier"].reset_index(drop=True), tiers), 4),
            "size_band": codes(acc["size_band"].reset_index(drop=True), SIZE_BANDS),
            "industry": codes(acc["industry"].reset_index(drop=True), INDUSTRIES),
            "source": codes(leads["lead_source"], LEAD_SOURCES),
            "seniority": seniority(leads["title"]).map(SENIORITY_CODES).fillna(-1).to_numpy(float),
            "missing_title": leads["title"].isna().to_numpy(float),
            "opt_out": leads["email_opt_out"].to_numpy(float),
            "free_mail": (~has_account).astype(float),
        }
    )
    events = world.seed.engagements[["lead_key", "kind", "occurred_at"]].merge(
        truth[["lead_key", "assigned_at"]], on="lead_key"
    )
    before = events[events["occurred_at"] < events["assigned_at"]]
    counts = before.groupby(["lead_key", "kind"]).size().unstack(fill_value=0)
    for kind in ENGAGEMENT_KINDS:
        column = counts[kind] if kind in counts.columns else pd.Series(dtype=float)
        X[f"pre_{kind}"] = column.reindex(truth["lead_key"], fill_value=0).to_numpy(float)
    return X[usable].reset_index(drop=True), truth[usable].reset_index(drop=True)


def sandbox_world(seed: int, n_leads: int = 100_000) -> Split:
    from integration.world import ACTIONS, generate_world

    X, truth = world_features(generate_world(n_leads=n_leads, seed=seed))
    arm = np.where(truth["arm"] == "control", CONTROL, truth["action"]).astype(object)
    y = truth["meeting"].to_numpy().astype(np.int64)
    actions = sorted(ACTIONS)
    tau = truth[[f"tau_{a}" for a in actions]].to_numpy(float)
    units = truth["unit_key"].to_numpy()
    unique = np.unique(units)
    test_units = np.random.default_rng(seed).permutation(unique)[: unique.size // 2]
    test = np.isin(units, test_units)
    return Split(
        X[~test].reset_index(drop=True),
        arm[~test],
        y[~test],
        X[test].reset_index(drop=True),
        arm[test],
        y[test],
        tau[test],
        actions,
        tau[~test],
    )


SCENARIOS: dict[str, Callable[..., Split]] = {
    "b2b_rare_2pct": b2b_rare,
    "multi_arm": multi_arm,
    "sandbox_world": sandbox_world,
}


# --- models -----------------------------------------------------------------------------
# Each entry: fit(split) -> predict(X) -> (n, actions) array in split.actions order.


def _clf():
    return lgb.LGBMClassifier(random_state=0, **BUDGET)


def _reg():
    return lgb.LGBMRegressor(random_state=0, **BUDGET)


def leadlift(learner: str = "auto"):
    def fit(split: Split):
        model = UpliftModel(learner=learner, control=CONTROL, random_state=0, n_jobs=1)
        model.fit(split.X_train, split.arm_train, split.y_train)
        assert model.actions_ == split.actions, (model.actions_, split.actions)
        fit.chosen = model.learner_  # reported per seed
        return lambda X: model.predict(X)[split.actions].to_numpy()

    return fit


def _propensity(split: Split, n: int) -> dict[str, np.ndarray]:
    counts = pd.Series(split.arm_train).value_counts()
    return {a: np.full(n, counts[a] / (counts[a] + counts[CONTROL])) for a in split.actions}


def causalml(kind: str):
    def fit(split: Split):
        from causalml.inference.meta import (
            BaseDRLearner,
            BaseSClassifier,
            BaseTClassifier,
            BaseXClassifier,
        )

        X = split.X_train.to_numpy()
        if kind == "S":
            model = BaseSClassifier(learner=_clf(), control_name=CONTROL)
        elif kind == "T":
            model = BaseTClassifier(learner=_clf(), control_name=CONTROL)
        elif kind == "X":
            model = BaseXClassifier(
                outcome_learner=_clf(), effect_learner=_reg(), control_name=CONTROL
            )
        else:
            model = BaseDRLearner(learner=_reg(), control_name=CONTROL)
        p = _propensity(split, X.shape[0])
        if len(split.actions) == 1:
            p = p[split.actions[0]]
        if kind in ("X", "DR"):
            model.fit(X, treatment=split.arm_train, y=split.y_train, p=p)
        else:
            model.fit(X, treatment=split.arm_train, y=split.y_train)
        # causalml returns columns in sorted arm-name order (trap #4): map by name.
        order = [list(model.t_groups).index(a) for a in split.actions]

        def predict(Xt: pd.DataFrame) -> np.ndarray:
            values = Xt.to_numpy()
            if kind == "X":
                q = _propensity(split, values.shape[0])
                q = q[split.actions[0]] if len(split.actions) == 1 else q
                out = model.predict(values, p=q)
            else:
                out = model.predict(values)
            return np.asarray(out).reshape(values.shape[0], -1)[:, order]

        return predict

    return fit


def sklift(kind: str):
    def fit(split: Split):
        from sklift.models import ClassTransformation, SoloModel, TwoModels

        models = {}
        for action in split.actions:
            rows = (split.arm_train == action) | (split.arm_train == CONTROL)
            treatment = (split.arm_train[rows] == action).astype(int)
            if kind == "TwoModels":
                model = TwoModels(estimator_trmnt=_clf(), estimator_ctrl=_clf(), method="vanilla")
            elif kind == "SoloModel":
                model = SoloModel(estimator=_clf(), method="dummy")
            else:
                model = ClassTransformation(estimator=_clf())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(split.X_train[rows], split.y_train[rows], treatment)
            models[action] = model

        def predict(Xt: pd.DataFrame) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.column_stack([models[a].predict(Xt) for a in split.actions])

        return predict

    return fit


PEERS = {
    "causalml_S": causalml("S"),
    "causalml_T": causalml("T"),
    "causalml_X": causalml("X"),
    "causalml_DR": causalml("DR"),
    "sklift_SoloModel": sklift("SoloModel"),
    "sklift_TwoModels": sklift("TwoModels"),
    "sklift_ClassTransformation": sklift("ClassTransformation"),
}


# --- scoring -------------------------------------------------------------------------------


def score(split: Split, uplift: np.ndarray) -> dict[str, float]:
    """Every metric for one prediction matrix (columns in split.actions order)."""
    per_action = {m: [] for m in ("qini_auc", "uplift_at_20", "policy_value")}
    weights = []
    truth = {m: [] for m in ("true_at_20", "spearman")}
    for i, action in enumerate(split.actions):
        rows = (split.arm_test == action) | (split.arm_test == CONTROL)
        y = split.y_test[rows]
        t = (split.arm_test[rows] == action).astype(np.int64)
        u = uplift[rows, i]
        per_action["qini_auc"].append(qini_auc_score(y, u, t))
        per_action["uplift_at_20"].append(uplift_at_k(y, u, t, K))
        per_action["policy_value"].append(policy_value(y, u, t, K))
        weights.append(rows.sum())
        truth["true_at_20"].append(true_at_k(split.tau_test[:, i], uplift[:, i], K))
        truth["spearman"].append(spearmanr(uplift[:, i], split.tau_test[:, i])[0])
    out = {m: float(np.average(v, weights=weights)) for m, v in per_action.items()}
    out |= {m: float(np.nanmean(v)) for m, v in truth.items()}
    oracle_gain = best_action_gain(split.tau_test, split.tau_test)
    out["policy_gain"] = best_action_gain(split.tau_test, uplift)
    out["policy_share"] = out["policy_gain"] / oracle_gain
    return out


def feature_oracle(split: Split) -> np.ndarray:
    """Uplift predicted by regressors fitted on the train rows' *true* uplift.

    Not attainable (no CRM knows the true uplift). It shows how much of the oracle
    the features can explain at all. In the sandbox world the uplift also depends on
    latent intent and on bounced addresses, which no feature shows.
    """
    return np.column_stack(
        [
            _reg().fit(split.X_train, split.tau_train[:, i]).predict(split.X_test)
            for i in range(len(split.actions))
        ]
    )


def true_terms(X: pd.DataFrame) -> np.ndarray:
    """The 0/1 terms the sandbox world's true uplift is built from (see
    ``integration.world.effects.uplift``), read off the benchmark's features: every
    positive effect, harm and damping condition of every action."""
    from connectors.sandbox.seed import LEAD_SOURCES
    from integration.world import effects as E

    def col(name: str) -> np.ndarray:
        return X[name].to_numpy(float)

    seen, tier, size, industry = col("seniority"), col("tier"), col("size_band"), col("industry")
    engaged = (col("pre_pricing_page_visit") > 0) | (col("pre_form_fill") > 0)
    content = (
        (col("pre_webinar_attended") > 0)
        | (col("pre_content_download") > 0)
        | (col("pre_email_click") > 0)
    )
    executive = (seen == E.C_LEVEL) | (seen == E.VP)
    manager = (seen == E.MANAGER) | (seen == E.DIRECTOR)
    big = size >= E.BIG_BAND
    small = (size >= 0) & (size <= E.SMALL_BAND)
    tier_ab = tier <= E.TIER_B
    tier_cd = (tier == E.TIER_C) | (tier == E.TIER_D)
    sw_fs = (industry == E.SOFTWARE) | (industry == E.FIN_SERV)
    poor_fit = (tier >= E.TIER_C) | (size == E.TINY_BAND)
    unengaged = ~engaged & ~content & (col("pre_page_view") <= 2)
    terms = [
        engaged, tier_ab, engaged & tier_ab & manager, content, executive & sw_fs, sw_fs,
        small & tier_cd, col("opt_out") > 0, executive & big, (seen == E.C_LEVEL) & big,
        col("source") == LEAD_SOURCES.index("Partner"), seen == E.INDIVIDUAL,
        tier == E.TIER_A, poor_fit & unengaged, poor_fit | unengaged,
    ]  # fmt: skip
    return np.column_stack(terms).astype(float)


def known_form(split: Split) -> np.ndarray:
    """Uplift of an estimator told the *form* of the sandbox world's true uplift.

    Per action, a linear uplift over `true_terms` (an intercept and 15 terms, the
    conditions ``integration.world.effects`` builds the truth from) is fitted on the
    train rows by the R-loss (Nie & Wager): ``(y - m(x)) - (t - e) * tau(x)`` in least
    squares, weighted by 1 / (m(1 - m)), with ``m`` a cross-fitted LightGBM (the
    shared budget) of the outcome on every train row. No real learner knows which terms
    matter; this one does, so what it reaches is about what this many rows can tell.
    """
    from sklearn.model_selection import KFold

    X, y = split.X_train, split.y_train.astype(float)
    m = np.zeros(y.size)
    for fit_rows, held in KFold(3, shuffle=True, random_state=0).split(X):
        m[held] = _clf().fit(X.iloc[fit_rows], y[fit_rows]).predict_proba(X.iloc[held])[:, 1]
    m = np.clip(m, 1e-3, 1 - 1e-3)
    terms = np.column_stack([np.ones(y.size), true_terms(X)])
    test_terms = np.column_stack([np.ones(len(split.X_test)), true_terms(split.X_test)])
    out = []
    for action in split.actions:
        rows = (split.arm_train == action) | (split.arm_train == CONTROL)
        t = (split.arm_train[rows] == action).astype(float)
        design = terms[rows] * (t - t.mean())[:, None]
        weight = 1.0 / (m[rows] * (1 - m[rows]))
        gram = design.T @ (design * weight[:, None]) + 1e-6 * np.eye(design.shape[1])
        coef = np.linalg.solve(gram, design.T @ ((y[rows] - m[rows]) * weight))
        out.append(test_terms @ coef)
    return np.column_stack(out)


def run_entry(name: str, fit, split: Split) -> dict[str, float]:
    start = time.perf_counter()
    predict = fit(split)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    uplift = predict(split.X_test)
    predict_s = time.perf_counter() - start
    result = score(split, uplift) | {"fit_s": fit_s, "predict_s": predict_s}
    chosen = getattr(fit, "chosen", None)
    extra = f" learner={chosen}" if chosen else ""
    say(
        f"  {name:28s} qini={result['qini_auc']:.3f} true@20={result['true_at_20']:.3f} "
        f"spearman={result['spearman']:.3f} policy={result['policy_share']:.3f} "
        f"fit={fit_s:.1f}s predict={predict_s:.2f}s{extra}"
    )
    return result | ({"learner": chosen} if chosen else {})


def run_scenario(name: str, seeds: list[int], entries: dict, quick: bool) -> dict:
    per_seed: dict[str, list[dict]] = {}
    for seed in seeds:
        start = time.perf_counter()
        kwargs = {}
        if quick:
            kwargs = {
                "b2b_rare_2pct": {"n_train": 20_000, "n_test": 20_000},
                "multi_arm": {"n_per_arm": 10_000},
                "sandbox_world": {"n_leads": 50_000},
            }[name]
        split = SCENARIOS[name](seed, **kwargs)
        say(
            f"{name} seed {seed}: {len(split.y_train)} train / {len(split.y_test)} test rows, "
            f"actions {split.actions}, train conversion {split.y_train.mean():.4f} "
            f"({time.perf_counter() - start:.1f}s)"
        )
        # Each seed starts with the next entry: the first fit after a data set is made
        # can pay for memory the later ones reuse, and no entry should always pay it.
        names = list(entries)
        shift = seeds.index(seed) % len(names)
        for entry in names[shift:] + names[:shift]:
            per_seed.setdefault(entry, []).append(run_entry(entry, entries[entry], split))
        rng = np.random.default_rng(seed)
        reference = {
            "oracle": split.tau_test,
            "feature_oracle": feature_oracle(split),
            "random": rng.random(split.tau_test.shape) - 0.5,
        }
        if name == "sandbox_world":
            reference["known_form"] = known_form(split)
        for entry, uplift in reference.items():
            per_seed.setdefault(entry, []).append(score(split, uplift))
    return summarize(per_seed)


def summarize(per_seed: dict[str, list[dict]]) -> dict:
    out: dict = {"entries": {}, "comparison": {}}
    for entry, rows in per_seed.items():
        stats = {}
        for metric in METRICS:
            values = [r[metric] for r in rows if metric in r]
            if values:
                stats[metric] = float(np.mean(values))
                stats[f"{metric}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        stats["seeds"] = len(rows)
        learners = [r["learner"] for r in rows if "learner" in r]
        if learners:
            stats["learners"] = learners
        out["entries"][entry] = stats
    peers = [e for e in per_seed if e in PEERS]
    if "leadlift" in per_seed and peers:
        for metric in ("qini_auc", "true_at_20", "spearman", "policy_share"):
            best = max(peers, key=lambda p: out["entries"][p][metric])
            mine = np.array([r[metric] for r in per_seed["leadlift"]])
            theirs = np.array([r[metric] for r in per_seed[best]])
            diff = mine - theirs
            p = (
                float(ttest_rel(mine, theirs).pvalue)
                if diff.size > 1 and np.ptp(diff) > 0
                else math.nan
            )
            out["comparison"][metric] = {
                "best_peer": best,
                "mean_diff": float(diff.mean()),
                "sd_diff": float(diff.std(ddof=1)) if diff.size > 1 else 0.0,
                "p_value": p,
                "wins": int((diff > 0).sum()),
                "seeds": int(diff.size),
            }
    return out


def print_table(name: str, summary: dict) -> None:
    print(f"\n== {name} (mean (sd) over seeds) ==", flush=True)
    header = (
        f"{'entry':28s} {'qini_auc':>15s} {'uplift@20':>9s} {'pv/1000':>8s} "
        f"{'true@20':>15s} {'spearman':>15s} {'policy':>15s} {'fit_s':>6s} {'pred_s':>6s}"
    )
    print(header)
    entries = summary["entries"]
    order = sorted(entries, key=lambda e: -entries[e]["qini_auc"])
    for entry in order:
        s = entries[entry]

        def ms(metric: str, s: dict = s) -> str:
            return f"{s[metric]:.3f} ({s[metric + '_sd']:.3f})"

        fit_s = f"{s['fit_s']:6.1f}" if "fit_s" in s else f"{'-':>6s}"
        pred_s = f"{s['predict_s']:6.2f}" if "predict_s" in s else f"{'-':>6s}"
        print(
            f"{entry:28s} {ms('qini_auc'):>15s} {s['uplift_at_20']:9.4f} "
            f"{s['policy_value']:8.2f} {ms('true_at_20'):>15s} {ms('spearman'):>15s} "
            f"{ms('policy_share'):>15s} {fit_s} {pred_s}"
        )
    for metric, c in summary["comparison"].items():
        print(
            f"leadlift - {c['best_peer']} on {metric}: {c['mean_diff']:+.4f} "
            f"(sd {c['sd_diff']:.4f}, wins {c['wins']}/{c['seeds']}, paired t p={c['p_value']:.3g})"
        )


def _clean(value):
    """JSON-safe copy: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _json_entry(stats: dict) -> dict:
    return _clean(stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of data seeds")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("--scenarios", default=",".join(ALL_SCENARIOS))
    parser.add_argument(
        "--variants", default="", help="extra leadlift learners to report, e.g. s,gam,ensemble"
    )
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peers", default="", help=f"only these peers, from {sorted(PEERS)}")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # causalml logs every fit at INFO/WARNING

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    entries: dict = {"leadlift": leadlift("auto")}
    for variant in filter(None, args.variants.split(",")):
        entries[f"leadlift_{variant}"] = leadlift(variant)
    if not args.no_peers:
        chosen = [p for p in args.peers.split(",") if p] or list(PEERS)
        unknown = sorted(set(chosen) - set(PEERS))
        if unknown:
            parser.error(f"unknown peers {unknown}")
        entries |= {p: PEERS[p] for p in chosen}
    results = {}
    start = time.perf_counter()
    for name in args.scenarios.split(","):
        results[name] = run_scenario(name, seeds, entries, args.quick)
        print_table(name, results[name])
    say(f"done in {time.perf_counter() - start:.0f}s")

    primary = results.get("b2b_rare_2pct") or next(iter(results.values()))
    keys = ("qini_auc", "true_at_20", "spearman", "fit_s", "policy_share")

    def pick(stats: dict) -> dict:
        return _json_entry({k: stats[k] for k in keys if k in stats})

    out = {
        "leadlift": pick(primary["entries"]["leadlift"]),
        "peers": {e: pick(s) for e, s in primary["entries"].items() if e in PEERS},
        "oracle": pick(primary["entries"]["oracle"]),
        "random": pick(primary["entries"]["random"]),
        "comparison": primary["comparison"],
        "seeds": seeds,
        "scenarios": {
            name: {
                "entries": {e: _json_entry(s) for e, s in r["entries"].items()},
                "comparison": r["comparison"],
            }
            for name, r in results.items()
        },
    }
    print(json.dumps(_clean(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
