"""Transparent rules: the points-based fit score and the ICP guardrails, both as data.

`RulesModel` is the score below the data-readiness floor, when there are too
few wins for a model to beat chance honestly. Every `PointRule` adds points
when its conditions hold; the total maps to a probability through a logistic
curve — fitted on the labels there are (two parameters: Platt scaling), or,
with almost none, anchored so the average lead gets ``base_rate``. It has the
same ``predict_proba`` / ``contributions`` / ``reasons`` interface as
`PropensityModel`, and its first reason always says it is a rules score.

`Guardrail` rules apply on top of *any* model's probabilities, on the score
buckets reps see (`BucketScheme`): a floor lifts a lead to at least a bucket,
a cap holds it at most at one. Floors apply first, caps last, so a cap always
wins (an unreachable lead is never pushed up). The probability moves just
enough to land in the resulting bucket; a fired guardrail becomes a reason.

Default guardrails (`DEFAULT_GUARDRAILS`):

==============================  =====================================================
``guard.tier_a_floor``          tier A account, email not bounced, not unsubscribed
                                → never below **Medium**
``guard.free_mail_unengaged``   personal email address and no engagement at all
                                → at most **Low**
``guard.unreachable``           email bounced and no phone number → at most **Very Low**
``guard.unsubscribed``          unsubscribed (timestamped) → at most **Low**
``guard.disqualified``          CRM status disqualified (a ``status`` context column)
                                → at most **Very Low**
==============================  =====================================================
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from integration.modeling.reasons import DEFAULT_EXCLUDED, Reason, top_reasons, top_reasons_json

BUCKETS = ("Very Low", "Low", "Medium", "High", "Very High")  # ascending
EPS = 1e-6

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Condition:
    """``feature op value``; ``op`` one of ==, !=, >, >=, <, <=, in, not in."""

    feature: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in (*_OPS, "in", "not in"):
            raise ValueError(f"unknown operator {self.op!r}")

    def holds(self, X: pd.DataFrame) -> np.ndarray:
        column = X[self.feature]
        if self.op in ("in", "not in"):
            hit = column.isin(list(self.value)).to_numpy()
            return hit if self.op == "in" else ~hit
        if isinstance(self.value, (int, float)) and not isinstance(self.value, bool):
            column = pd.to_numeric(column, errors="coerce")
        return np.asarray(_OPS[self.op](column, self.value).fillna(False), dtype=bool)


def _all(conditions: Sequence[Condition], X: pd.DataFrame) -> np.ndarray:
    hit = np.ones(len(X), dtype=bool)
    for condition in conditions:
        hit &= condition.holds(X)
    return hit


def _when(*clauses: tuple[str, str, Any]) -> tuple[Condition, ...]:
    return tuple(Condition(*c) for c in clauses)


@dataclass(frozen=True)
class PointRule:
    """``points`` when every condition holds, credited to ``feature`` (its reason group)."""

    feature: str
    points: float
    when: tuple[Condition, ...]


def _levels(feature: str, points: dict[str, float]) -> list[PointRule]:
    return [PointRule(feature, p, _when((feature, "==", v))) for v, p in points.items()]


DEFAULT_POINTS: tuple[PointRule, ...] = (
    *_levels("tier", {"A": 30, "B": 20, "C": 5, "D": -5, "unknown": -10}),
    *_levels(
        "seniority",
        {"c_level": 12, "vp": 15, "director": 15, "manager": 10, "individual": 0, "unknown": -12},
    ),
    *_levels(
        "size_band",
        {"1-10": -10, "11-50": -3, "51-200": 3, "201-1000": 8, "1001-5000": 6, "5000+": 3},
    ),
    *_levels(
        "source",
        {
            "Referral": 18,
            "Web Form": 12,
            "Partner": 10,
            "Event": 6,
            "Webinar": 3,
            "Paid Search": 0,
            "Content Download": -3,
            "Outbound List": -18,
            "unknown": -6,
        },
    ),
    PointRule(
        "eng_pricing_page_visit_days_since_last",
        20,
        _when(("eng_pricing_page_visit_days_since_last", "<=", 30)),
    ),
    PointRule("eng_form_fill_all", 10, _when(("eng_form_fill_all", ">=", 1))),
    PointRule("eng_webinar_attended_all", 3, _when(("eng_webinar_attended_all", ">=", 1))),
    PointRule("eng_content_download_all", 3, _when(("eng_content_download_all", ">=", 1))),
    PointRule("eng_email_click_all", 3, _when(("eng_email_click_all", ">=", 1))),
    PointRule("eng_page_view_all", 5, _when(("eng_page_view_all", ">=", 3))),
    PointRule("free_mail", -8, _when(("free_mail", "==", 1))),
    PointRule("bounced", -20, _when(("bounced", "==", 1))),
    PointRule("unsubscribed", -20, _when(("unsubscribed", "==", 1))),
    PointRule("acct_meetings", 6, _when(("acct_meetings", ">=", 1))),
    PointRule("acct_disqualified", -4, _when(("acct_disqualified", ">=", 1))),
)


class RulesModel(ClassifierMixin, BaseEstimator):
    """Points-based fit score with the `PropensityModel` interface.

    Args:
        points: the point rules (data); rules on columns X lacks are skipped.
        points_per_logit: points that multiply the odds by e when uncalibrated.
        base_rate: the average lead's probability when there are too few labels.
        min_labels: positives (and negatives) needed to fit the two-parameter curve.
        why: the sentence the first reason carries (why this is a rules score).

    Attributes:
        intercept_, slope_: probability = sigmoid(intercept_ + slope_ * points).
        calibrated_: True when the curve was fitted on labels.
        skipped_rules_: rules whose feature X lacked.
    """

    def __init__(
        self,
        *,
        points: tuple[PointRule, ...] = DEFAULT_POINTS,
        points_per_logit: float = 20.0,
        base_rate: float = 0.03,
        min_labels: int = 10,
        why: str = "too few wins for a model",
    ) -> None:
        self.points = points
        self.points_per_logit = points_per_logit
        self.base_rate = base_rate
        self.min_labels = min_labels
        self.why = why

    def _usable(self, X: pd.DataFrame) -> list[PointRule]:
        return [r for r in self.points if all(c.feature in X.columns for c in r.when)]

    def points_by_feature(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per credited feature and row (features X has, zero when no rule fired)."""
        X = X.reset_index(drop=True)
        out = pd.DataFrame(0.0, index=X.index, columns=list(X.columns))
        for rule in self._usable(X):
            if rule.feature not in out.columns:
                out[rule.feature] = 0.0
            out[rule.feature] += np.where(_all(rule.when, X), rule.points, 0.0)
        return out

    def score_points(self, X: pd.DataFrame) -> np.ndarray:
        return self.points_by_feature(X).to_numpy(float).sum(axis=1)

    def fit(self, X: pd.DataFrame, y: Any = None, time: Any = None) -> RulesModel:
        """Fit the points-to-probability curve (``time`` is accepted and unused: no
        rule is learned, so there is nothing to validate over time)."""
        X = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.skipped_rules_ = [r for r in self.points if r not in self._usable(X)]
        total = self.score_points(X)
        self.classes_ = np.array([0, 1])
        self.calibrated_ = False
        self.slope_ = 1.0 / self.points_per_logit
        rate = self.base_rate
        if y is not None:
            labels = np.asarray(y).ravel().astype(int)
            positives, negatives = int(labels.sum()), int((1 - labels).sum())
            if min(positives, negatives) >= self.min_labels:
                curve = LogisticRegression(C=1e6, max_iter=1000)
                curve.fit(total.reshape(-1, 1), labels)
                if curve.coef_[0, 0] > 0:  # a curve pointing the wrong way is not kept
                    self.slope_ = float(curve.coef_[0, 0])
                    self.intercept_ = float(curve.intercept_[0])
                    self.calibrated_ = True
            elif positives + negatives:
                rate = min(max(positives / (positives + negatives), EPS), 1 - EPS)
        if not self.calibrated_:
            mean = float(total.mean()) if len(total) else 0.0
            self.intercept_ = float(np.log(rate / (1 - rate)) - self.slope_ * mean)
        return self

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Log-odds per feature (slope × its points) plus ``bias``: exact."""
        check_is_fitted(self, "intercept_")
        out = self.points_by_feature(X) * self.slope_
        out["bias"] = self.intercept_
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "intercept_")
        z = self.intercept_ + self.slope_ * self.score_points(pd.DataFrame(X))
        p = np.clip(1.0 / (1.0 + np.exp(-z)), EPS, 1 - EPS)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def reasons(
        self, X: pd.DataFrame, top: int = 3, exclude: tuple[str, ...] = DEFAULT_EXCLUDED
    ) -> list[list[Reason]]:
        """A ``mode.rules`` statement first, then the ``top`` largest point groups."""
        X = pd.DataFrame(X).reset_index(drop=True)
        mode = Reason("mode.rules", f"= fit score from rules: {self.why}", 0.0)
        found = top_reasons(self.contributions(X), X, top=top, exclude=exclude)
        return [[mode, *r] for r in found]

    def reasons_json(
        self, X: pd.DataFrame, top: int = 3, exclude: tuple[str, ...] = DEFAULT_EXCLUDED
    ) -> list[str]:
        """`reasons` per row as serialised JSON items joined by ", " (built in bulk)."""
        X = pd.DataFrame(X).reset_index(drop=True)
        mode = Reason("mode.rules", f"= fit score from rules: {self.why}", 0.0)
        first = json.dumps(mode.as_dict())
        found = np.asarray(
            top_reasons_json(self.contributions(X), X, top=top, exclude=exclude), dtype=object
        )
        return np.where(found == "", first, first + ", " + found).tolist()


@dataclass(frozen=True)
class BucketScheme:
    """Probability edges between the ascending buckets (``len(labels) - 1`` edges)."""

    edges: tuple[float, ...] = (0.005, 0.015, 0.04, 0.10)
    labels: tuple[str, ...] = BUCKETS

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.labels) - 1 or list(self.edges) != sorted(self.edges):
            raise ValueError("need ascending edges, one fewer than labels")

    def index(self, p: Any) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), np.asarray(p, dtype=float), side="right")

    def label(self, p: Any) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.index(p)]

    def position(self, label: str) -> int:
        return self.labels.index(label)

    def bounds(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lows = np.r_[0.0, self.edges]
        highs = np.r_[self.edges, 1.0]
        return lows[index], highs[index]


DEFAULT_BUCKETS = BucketScheme()


@dataclass(frozen=True)
class Guardrail:
    """When every condition holds: at least bucket ``floor`` and/or at most ``cap``."""

    code: str
    text: str
    when: tuple[Condition, ...]
    floor: str | None = None
    cap: str | None = None


DEFAULT_GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(
        "guard.tier_a_floor",
        "tier A account: never below Medium",
        _when(("tier", "==", "A"), ("bounced", "==", 0), ("unsubscribed", "==", 0)),
        floor="Medium",
    ),
    Guardrail(
        "guard.free_mail_unengaged",
        "personal email and no engagement: at most Low",
        _when(("free_mail", "==", 1), ("eng_days_since_last", ">=", 999)),
        cap="Low",
    ),
    Guardrail(
        "guard.unreachable",
        "email bounced and no phone: at most Very Low",
        _when(("bounced", "==", 1), ("missing_phone", "==", 1)),
        cap="Very Low",
    ),
    Guardrail(
        "guard.unsubscribed",
        "unsubscribed: at most Low",
        _when(("unsubscribed", "==", 1)),
        cap="Low",
    ),
    Guardrail(
        "guard.disqualified",
        "disqualified in the CRM: at most Very Low",
        _when(("status", "==", "disqualified")),
        cap="Very Low",
    ),
)


@dataclass(frozen=True)
class GuardedScores:
    """Probabilities after guardrails, their buckets, and which guardrails moved what.

    ``moved[j, i]`` says guardrail ``rules[j]`` moved row ``i``: one boolean per rule and
    row, so a million scores carry no per-row objects. ``fired`` and ``reasons`` are the
    per-row lists, made when asked; `reason_items` gives their serialised JSON items."""

    proba: np.ndarray
    buckets: np.ndarray
    rules: tuple[Guardrail, ...]
    moved: np.ndarray
    skipped: list[str] = field(default_factory=list)
    # Per row, the lowest and highest bucket position the guardrails allow (0 and the
    # top where none applies): for buckets assigned by other means than probability
    # edges, such as a routing policy's percentiles.
    limits: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def fired(self) -> list[list[str]]:
        return [[self.rules[j].code for j in np.flatnonzero(row)] for row in self.moved.T]

    @property
    def reasons(self) -> list[list[Reason]]:
        return [[_guard_reason(self.rules[j]) for j in np.flatnonzero(row)] for row in self.moved.T]

    @property
    def changed(self) -> int:
        return int(self.moved.any(axis=0).sum()) if self.moved.size else 0

    def any_moved(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Per row (of ``rows``), whether a guardrail moved it."""
        moved = self.moved if rows is None else self.moved[:, rows]
        return moved.any(axis=0) if moved.shape[0] else np.zeros(moved.shape[1], dtype=bool)

    def reason_items(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Per row (of ``rows``), the JSON of its guardrail reasons (`guard_items`)."""
        return guard_items(self.rules, self.moved if rows is None else self.moved[:, rows])


def guard_items(rules: Sequence[Guardrail], moved: np.ndarray) -> np.ndarray:
    """Per row, the JSON of the reasons of the guardrails that moved it (``moved``: one
    row per rule), joined by ", " as `Reason.as_dict` serialises them; "" for none."""
    out = np.full(moved.shape[1], "", dtype=object)
    for j, rule in enumerate(rules):
        hit = moved[j]
        if hit.any():
            item = json.dumps(_guard_reason(rule).as_dict())
            out[hit] = np.where(out[hit] == "", item, out[hit] + ", " + item)
    return out


def _guard_reason(rule: Guardrail) -> Reason:
    return Reason(rule.code, f"= {rule.text}", 0.0)


def _rule_hits(
    X: pd.DataFrame, guardrails: Sequence[Guardrail], context: pd.DataFrame | None
) -> list[np.ndarray | None]:
    """Per rule, the rows it applies to; None for a rule reading a column neither X nor
    ``context`` has."""
    rows = X.reset_index(drop=True)
    if context is not None:
        rows = pd.concat([rows, context.reset_index(drop=True)], axis=1)
    return [
        None if any(c.feature not in rows.columns for c in rule.when) else _all(rule.when, rows)
        for rule in guardrails
    ]


def _limits(
    hits: list[np.ndarray | None], guardrails: Sequence[Guardrail], scheme: BucketScheme, n: int
) -> tuple[np.ndarray, np.ndarray]:
    low = np.zeros(n, dtype=int)
    high = np.full(n, len(scheme.labels) - 1, dtype=int)
    for rule, hit in zip(guardrails, hits, strict=True):
        if hit is None:
            continue
        if rule.floor is not None:
            low = np.where(hit, np.maximum(low, scheme.position(rule.floor)), low)
        if rule.cap is not None:
            high = np.where(hit, np.minimum(high, scheme.position(rule.cap)), high)
    return np.minimum(low, high), high


def apply_guardrails(
    X: pd.DataFrame,
    proba: Any,
    guardrails: Sequence[Guardrail] = DEFAULT_GUARDRAILS,
    scheme: BucketScheme = DEFAULT_BUCKETS,
    context: pd.DataFrame | None = None,
) -> GuardedScores:
    """Apply floors, then caps, to any model's P(positive).

    Args:
        X: the feature rows scored.
        proba: P(positive) per row (a 1-d array, or ``predict_proba``'s two columns).
        guardrails: the rules; one referring to a column neither X nor ``context``
            has is skipped (and listed).
        scheme: the bucket edges.
        context: extra per-row columns rules may read (e.g. the CRM ``status``).
    """
    p = np.asarray(proba, dtype=float)
    p = p[:, 1] if p.ndim == 2 else p
    hits = _rule_hits(X, guardrails, context)
    skipped = [rule.code for rule, hit in zip(guardrails, hits, strict=True) if hit is None]
    start = scheme.index(p)
    floor = start.copy()
    for rule, hit in zip(guardrails, hits, strict=True):
        if hit is not None and rule.floor is not None:
            floor = np.where(hit, np.maximum(floor, scheme.position(rule.floor)), floor)
    final = floor.copy()
    for rule, hit in zip(guardrails, hits, strict=True):
        if hit is not None and rule.cap is not None:
            final = np.where(hit, np.minimum(final, scheme.position(rule.cap)), final)
    low, high = scheme.bounds(final)
    moved = final != start
    adjusted = np.where(moved, np.clip(p, low, np.nextafter(high, 0.0)), p)
    moved_by = np.zeros((len(guardrails), len(p)), dtype=bool)
    for j, (rule, hit) in enumerate(zip(guardrails, hits, strict=True)):
        if hit is None:
            continue
        target = (final > start) if rule.floor is not None and rule.cap is None else (final < start)
        moved_by[j] = hit & moved & target
    limits = _limits(hits, guardrails, scheme, len(p))
    return GuardedScores(
        adjusted, scheme.label(adjusted), tuple(guardrails), moved_by, skipped, limits
    )
