"""Propensity model quality and cost on a synthetic world, without a CRM.

    python -m bench.propensity [--leads 200000] [--seed 7] [--window-days 21]

Generates a world, turns its CRM-visible seed into frames
(``integration.features.frames_from_seed``, hygiene included), builds the
training panel (snapshots of open leads 1, 15, 29, 43 and 57 days after
creation, labelled by a meeting within the window) and its as-of features,
and splits it by time: the last quarter of cut-off dates is the test period;
training rows end a label window before it, so no training label peeks into
the test period.

``PropensityModel`` (time-based validation inside the training rows, gap = the
label window) is compared with a **default** ``lightgbm.LGBMClassifier()`` fitted
on the same training rows (categoricals as pandas categories). Measured on the
test rows:

* AUC of both, and their difference;
* ECE: expected calibration error over 10 equal-frequency bins of the predicted
  probability (sum over bins of bin share × |mean prediction − observed rate|);
* Brier score;
* conversion per score quintile and per bucket of the 5-bucket scheme
  (``integration.modeling.rules.DEFAULT_BUCKETS``), and whether each is strictly
  increasing;
* training seconds (``PropensityModel.fit`` only) and the process's peak RSS.

``held_out`` is measured on new leads (each lead's first snapshot, one day after
creation: the decision routing makes, and the population ``integration.training``
reports too); ``held_out_all_snapshots`` on every test snapshot, where ageing
leads that almost never convert fill the lowest quintiles (often with no
conversion at all, so those quintiles tie at zero).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from integration.features import CATEGORICAL, build_features, frames_from_seed, training_panel
from integration.modeling import (
    DEFAULT_BUCKETS,
    PropensityModel,
    apply_guardrails,
    expected_calibration_error,
)
from integration.world import generate_world

TEST_SHARE = 0.25


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_split(cutoffs: pd.Series, window_days: int) -> tuple[np.ndarray, np.ndarray]:
    dates = np.sort(cutoffs.unique())
    split = dates[min(len(dates) - 1, int(len(dates) * (1 - TEST_SHARE)))]
    train = (cutoffs + pd.Timedelta(days=window_days) <= split).to_numpy()
    test = (cutoffs >= split).to_numpy()
    return train, test


def strictly_increasing(values: list[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def conversion_table(y: np.ndarray, groups: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(names):
        part = groups == i
        if part.any():
            out.append(
                {"bucket": name, "rows": int(part.sum()), "conversion": float(y[part].mean())}
            )
    return out


def evaluate(y: np.ndarray, p: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    quintile = np.zeros(len(p), dtype=int)
    quintile[np.argsort(p, kind="stable")] = np.arange(len(p)) * 5 // len(p)
    quintiles = conversion_table(y, quintile, [f"Q{i + 1}" for i in range(5)])
    buckets = conversion_table(y, DEFAULT_BUCKETS.index(p), list(DEFAULT_BUCKETS.labels))
    auc, default_auc = roc_auc_score(y, p), roc_auc_score(y, baseline)
    return {
        "rows": len(y),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()),
        "auc": round(float(auc), 4),
        "default_lgbm_auc": round(float(default_auc), 4),
        "auc_minus_default": round(float(auc - default_auc), 4),
        "ece": round(expected_calibration_error(y, p), 5),
        "default_lgbm_ece": round(expected_calibration_error(y, baseline), 5),
        "brier": round(float(brier_score_loss(y, p)), 6),
        "default_lgbm_brier": round(float(brier_score_loss(y, baseline)), 6),
        "mean_prediction": round(float(p.mean()), 5),
        "quintiles": quintiles,
        "quintiles_increasing": strictly_increasing([q["conversion"] for q in quintiles]),
        "buckets": buckets,
        "buckets_increasing": strictly_increasing([b["conversion"] for b in buckets]),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window-days", type=int, default=21)
    args = parser.parse_args(argv)

    say(f"generating a world of {args.leads:,} leads")
    world = generate_world(n_leads=args.leads, seed=args.seed)
    started = time.perf_counter()
    frames = frames_from_seed(world.seed)
    panel = training_panel(frames, world.seed.now, args.window_days)
    X = build_features(frames, panel[["lead_crm_id", "cutoff"]])
    feature_seconds = time.perf_counter() - started
    y = panel["label"].to_numpy()
    cutoffs = panel["cutoff"]
    train, test = time_split(cutoffs, args.window_days)
    say(
        f"panel {len(panel):,} rows × {X.shape[1]} features in {feature_seconds:.1f}s; "
        f"train {train.sum():,}, test {test.sum():,}"
    )

    say("fitting PropensityModel")
    started = time.perf_counter()
    model = PropensityModel(gap_days=args.window_days, random_state=0)
    model.fit(X[train], y[train], time=cutoffs[train])
    train_seconds = time.perf_counter() - started
    rss = peak_rss_mb()
    say(f"chose {model.estimator_name_}, {model.calibration_} calibration, {train_seconds:.1f}s")

    say("fitting a default LGBMClassifier on the same rows")
    categorised = X.astype({c: "category" for c in CATEGORICAL})
    started = time.perf_counter()
    default = lgb.LGBMClassifier(verbose=-1).fit(categorised[train], y[train])
    default_seconds = time.perf_counter() - started

    p = model.predict_proba(X[test])[:, 1]
    baseline = default.predict_proba(categorised[test])[:, 1]
    y_test = y[test]
    fresh = (panel["snapshot_age"] == panel["snapshot_age"].min()).to_numpy()[test]
    held_out = evaluate(y_test[fresh], p[fresh], baseline[fresh])
    all_snapshots = evaluate(y_test, p, baseline)

    started = time.perf_counter()
    sample = X[test].iloc[:2000]
    reasons = model.reasons(sample, top=3)
    reason_seconds = time.perf_counter() - started
    guarded = apply_guardrails(sample, p[:2000])
    for i in range(3):
        say(f"lead {i}: p={p[i]:.3f} " + "; ".join(f"{r.code} [{r.text}]" for r in reasons[i]))

    result = {
        "leads": args.leads,
        "panel_rows": len(panel),
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "features": X.shape[1],
        "feature_seconds": round(feature_seconds, 1),
        "estimator": model.estimator_name_,
        "calibration": model.calibration_,
        "validation": {
            k: {m: v[m] for m in ("auc", "brier", "ece")}
            for k, v in model.validation_.items()
            if k in ("lightgbm", "logistic_regression")
        },
        "train_seconds": round(train_seconds, 1),
        "default_lgbm_train_seconds": round(default_seconds, 1),
        "peak_rss_mb": round(rss, 0),
        "held_out": held_out,
        "held_out_all_snapshots": all_snapshots,
        "reasons_per_second": round(len(sample) / reason_seconds),
        "guardrails_moved_share": round(guarded.changed / len(sample), 4),
        "hygiene_merged": frames.hygiene.merged if frames.hygiene else 0,
        "targets": {
            "auc_within_0.005_of_default": held_out["auc_minus_default"] >= -0.005,
            "ece_at_most_0.02": held_out["ece"] <= 0.02,
            "buckets_strictly_increasing": held_out["buckets_increasing"]
            and held_out["quintiles_increasing"],
            "train_at_most_60s": train_seconds <= 60,
        },
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
