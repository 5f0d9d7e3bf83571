"""The custom fields leadlift writes into the CRM, named from settings."""

from __future__ import annotations

from connectors.base import FieldSpec
from integration.config import Settings

BUCKETS = ("Very High", "High", "Medium", "Low", "Very Low")
SEGMENTS = ("Persuadable", "Sure Thing", "Lost Cause", "Do-Not-Disturb")


def field_specs(settings: Settings) -> dict[str, FieldSpec]:
    """Every leadlift field, keyed by its settings key (``lead_score`` …)."""
    n = settings.fields
    return {
        "lead_score": FieldSpec(
            n.lead_score, "Lead Score", "number", "leadlift: calibrated chance (0-100) of a "
            "meeting within the outcome window", precision=3, scale=0,
        ),
        "lead_score_bucket": FieldSpec(
            n.lead_score_bucket, "Lead Score Bucket", "picklist", "leadlift: score bucket",
            options=BUCKETS,
        ),
        "uplift_best_action": FieldSpec(
            n.uplift_best_action, "Best Action", "text", "leadlift: action with the largest "
            "incremental effect", length=80,
        ),
        "uplift_score": FieldSpec(
            n.uplift_score, "Uplift (pp)", "number", "leadlift: incremental conversion of the "
            "best action, percentage points", precision=5, scale=1,
        ),
        "uplift_segment": FieldSpec(
            n.uplift_segment, "Uplift Segment", "picklist", "leadlift: uplift segment",
            options=SEGMENTS,
        ),
        "score_reasons": FieldSpec(
            n.score_reasons, "Score Reasons", "text", "leadlift: top signals behind the score",
        ),
        "experiment_arm": FieldSpec(
            n.experiment_arm, "Experiment Arm", "text", "leadlift: experiment and arm", length=80,
        ),
        "score_model_version": FieldSpec(
            n.score_model_version, "Score Model Version", "text", "leadlift: model version",
            length=40,
        ),
        "scored_at": FieldSpec(n.scored_at, "Scored At", "datetime", "leadlift: when scored"),
    }  # fmt: skip


SCORE_FIELDS = (
    "lead_score", "lead_score_bucket", "uplift_best_action", "uplift_score", "uplift_segment",
    "score_reasons", "experiment_arm", "score_model_version", "scored_at",
)  # fmt: skip
SEGMENT_LABELS = dict(
    zip(("persuadable", "sure_thing", "lost_cause", "do_not_disturb"), SEGMENTS, strict=True)
)


def written_fields(settings: Settings) -> list[FieldSpec]:
    """The fields a cycle writes (Experiment_Arm: for leads in leadlift's experiments)."""
    specs = field_specs(settings)
    return [specs[key] for key in SCORE_FIELDS]
