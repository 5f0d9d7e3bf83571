"""The scoring brain: propensity, uplift, their evaluation metrics and data readiness.

Estimators follow scikit-learn's contract: ``__init__`` stores its keyword
arguments, ``fit`` learns and returns ``self``, learned state ends in ``_``,
randomness comes only from ``random_state``.
"""

# Propensity: hygiene, readiness, rules fallback and guardrails, the model and its reasons.
from integration.modeling.hygiene import HygieneConfig, HygieneReport, clean_frames
from integration.modeling.propensity import PropensityModel, expected_calibration_error
from integration.modeling.readiness import (
    Check,
    ReadinessReport,
    Thresholds,
    assess,
    assess_store,
    decide_mode,
    model_for,
)
from integration.modeling.reasons import Reason, render, top_reasons
from integration.modeling.rules import (
    DEFAULT_BUCKETS,
    DEFAULT_GUARDRAILS,
    DEFAULT_POINTS,
    BucketScheme,
    Condition,
    GuardedScores,
    Guardrail,
    PointRule,
    RulesModel,
    apply_guardrails,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_GUARDRAILS",
    "DEFAULT_POINTS",
    "BucketScheme",
    "Check",
    "Condition",
    "GuardedScores",
    "Guardrail",
    "HygieneConfig",
    "HygieneReport",
    "PointRule",
    "PropensityModel",
    "ReadinessReport",
    "Reason",
    "RulesModel",
    "Thresholds",
    "apply_guardrails",
    "assess",
    "assess_store",
    "clean_frames",
    "decide_mode",
    "expected_calibration_error",
    "model_for",
    "render",
    "top_reasons",
]

# Uplift: per-action models, segment-level estimates and uplift metrics. (The
# calibration error of the package root is propensity's; both use equal-frequency bins.)
from integration.modeling.metrics import (
    best_action_gain,
    bootstrap_se,
    bucket_conversion,
    calibration_by_segment,
    policy_value,
    qini_auc_score,
    qini_curve,
    true_at_k,
    true_policy_value,
    uplift_at_k,
    uplift_auc_score,
    uplift_calibration,
    uplift_curve,
)
from integration.modeling.segments import (
    SegmentThresholds,
    SegmentUplift,
    classify_segments,
    uplift_by_rep,
)
from integration.modeling.uplift import UpliftModel, best_action

__all__ += [
    "SegmentThresholds",
    "SegmentUplift",
    "UpliftModel",
    "best_action",
    "best_action_gain",
    "bootstrap_se",
    "bucket_conversion",
    "calibration_by_segment",
    "classify_segments",
    "policy_value",
    "qini_auc_score",
    "qini_curve",
    "true_at_k",
    "true_policy_value",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_by_rep",
    "uplift_calibration",
    "uplift_curve",
]
