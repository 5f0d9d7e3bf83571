"""The routing policy: score buckets → routing action and CRM queue, uplift rules, queue
capacities and drift thresholds, as one validated YAML document.

Routing is a business decision that RevOps changes more often than any model, so it
lives in data (``default_policy.yaml``, packaged and fully commented) and not in code.
Loading turns every schema problem into one `ConfigError` that names each offending key
(``buckets[2].threshold``, ``queues.ae_queue.spill_to``), because a policy that
half-loads would route a whole pass of leads wrongly and silently.

Why buckets cut on the score **percentile** by default: calibrated B2B probabilities are
small (typically 0.1%–30%, rarely above 20%), so thresholds of 85/65/40/20 read as
*probabilities* would put nearly every lead in the bottom bucket. Cutting on the lead's
rank among the leads scored in the same pass keeps each bucket a fixed share of the
book (top 15% Very High, …), which is what queue staffing is planned on. ``basis:
probability`` is there for orgs whose reps want an absolute meaning ("Very High = at
least 10% likely"); it then needs thresholds in percent of probability, and capacity
limits matter more because bucket sizes float with the model.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from integration.errors import ConfigError, key_path

__all__ = [
    "BUCKET_COUNT",
    "BucketRule",
    "DriftSettings",
    "QueueSpec",
    "RoutingPolicy",
    "SegmentRule",
    "SegmentRules",
    "Suppression",
    "load_policy",
    "policy_from_dict",
]

BUCKET_COUNT = 5
DEFAULT_POLICY = "default_policy.yaml"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo (``capacity_per_dya``) must not silently mean
    "unlimited"."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BucketRule(_Strict):
    """One score bucket: who enters it and where they go.

    ``threshold`` is the lowest percentile (or probability in %, see ``basis``) that
    enters the bucket; the lowest bucket's is 0 so every lead lands somewhere.
    """

    name: str = Field(min_length=1)
    threshold: float = Field(ge=0, le=100)
    route: str = Field(min_length=1)
    label: str | None = None
    queue: str | None = None
    sla_hours: float | None = Field(default=None, gt=0)

    @property
    def text(self) -> str:
        """How a reason names the route: the label, plus the SLA when there is one."""
        words = self.label or self.route.replace("_", " ")
        if self.sla_hours is not None:
            words += f", {self.sla_hours:g} h SLA"
        return words


class QueueSpec(_Strict):
    """A CRM queue, its daily intake and where its overflow goes (null: nowhere)."""

    crm_queue: str = Field(min_length=1)
    capacity_per_day: int | None = Field(default=None, ge=0)
    spill_to: str | None = None


class SegmentRule(_Strict):
    """What an uplift segment does to outreach.

    ``best_action``: take the lead's best action (bucket routing stays);
    ``none``: no outreach action (bucket routing stays);
    ``suppress``: no outreach and the suppression route (no sales queue).
    ``note`` is the why a reason shows.
    """

    outreach: Literal["best_action", "none", "suppress"]
    note: str = ""


class SegmentRules(_Strict):
    """One rule per uplift segment (`integration.modeling.segments.SEGMENT_LABELS`)."""

    persuadable: SegmentRule = SegmentRule(outreach="best_action")
    sure_thing: SegmentRule = SegmentRule(outreach="none", note="converts anyway")
    lost_cause: SegmentRule = SegmentRule(outreach="none", note="little to gain")
    do_not_disturb: SegmentRule = SegmentRule(
        outreach="suppress", note="every action lowers the odds"
    )

    def get(self, segment: str) -> SegmentRule:
        return getattr(self, segment)


class Suppression(_Strict):
    """Where suppressed leads go: marketing only, no sales queue by default."""

    route: str = Field(default="newsletter_only", min_length=1)
    label: str = "newsletter only"
    queue: str | None = None


class DriftSettings(_Strict):
    """Alert thresholds on the bucket mix; ``baseline`` maps bucket name → share (or
    count; normalised). Without one, the percentile basis compares against its designed
    shares."""

    baseline: dict[str, float] | None = None
    share_threshold: float = Field(default=0.10, gt=0, le=1)
    psi_threshold: float = Field(default=0.2, gt=0)


class RoutingPolicy(_Strict):
    """The whole policy; see ``default_policy.yaml`` for every key, documented."""

    basis: Literal["percentile", "probability"] = "percentile"
    buckets: list[BucketRule]
    segments: SegmentRules = SegmentRules()
    suppress: Suppression = Suppression()
    queues: dict[str, QueueSpec] = Field(default_factory=dict)
    drift: DriftSettings = DriftSettings()

    @model_validator(mode="after")
    def _consistent(self) -> RoutingPolicy:
        problems = [
            *_bucket_problems(self.buckets),
            *_queue_problems(self),
            *_baseline_problems(self),
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def bucket_names(self) -> tuple[str, ...]:
        """Top bucket first."""
        return tuple(b.name for b in self.buckets)

    def designed_shares(self) -> dict[str, float]:
        """Each bucket's share of leads by construction under the percentile basis."""
        upper = [100.0, *(b.threshold for b in self.buckets[:-1])]
        return {
            b.name: (top - b.threshold) / 100.0 for b, top in zip(self.buckets, upper, strict=True)
        }


def _bucket_problems(buckets: list[BucketRule]) -> list[str]:
    if len(buckets) != BUCKET_COUNT:
        return [
            f"buckets: exactly {BUCKET_COUNT} buckets are needed, top first "
            f"(Very High, High, Medium, Low, Very Low); got {len(buckets)}"
        ]
    problems = []
    seen: dict[str, int] = {}
    for i, bucket in enumerate(buckets):
        if bucket.name in seen:
            first = seen[bucket.name]
            problems.append(f"buckets[{i}].name: {bucket.name!r} is already buckets[{first}].name")
        seen.setdefault(bucket.name, i)
    for i in range(1, len(buckets)):
        high, low = buckets[i - 1].threshold, buckets[i].threshold
        if not low < high:
            problems.append(
                f"buckets[{i}].threshold: {low:g} must be below buckets[{i - 1}].threshold "
                f"({high:g}): thresholds strictly descend from the top bucket"
            )
    if buckets[-1].threshold != 0:
        problems.append(
            f"buckets[{len(buckets) - 1}].threshold: the lowest bucket takes every remaining "
            f"lead, so its threshold must be 0 (got {buckets[-1].threshold:g})"
        )
    return problems


def _queue_problems(policy: RoutingPolicy) -> list[str]:
    defined = sorted(policy.queues)
    known = ", ".join(defined) or "none defined"
    problems = []
    references = [(f"buckets[{i}].queue", b.queue) for i, b in enumerate(policy.buckets)]
    references.append(("suppress.queue", policy.suppress.queue))
    references += [(f"queues.{name}.spill_to", q.spill_to) for name, q in policy.queues.items()]
    for key, queue in references:
        if queue is not None and queue not in policy.queues:
            problems.append(f"{key}: unknown queue {queue!r} (queues: {known})")
    if problems:
        return problems
    for name in defined:
        path = [name]
        nxt = policy.queues[name].spill_to
        while nxt is not None and nxt not in path:
            path.append(nxt)
            nxt = policy.queues[nxt].spill_to
        # Report each cycle once, at its alphabetically first queue.
        if nxt == name and name == min(path):
            chain = " → ".join([*path, name])
            problems.append(f"queues.{name}.spill_to: spill cycle {chain}")
    return problems


def _baseline_problems(policy: RoutingPolicy) -> list[str]:
    baseline = policy.drift.baseline
    if baseline is None:
        return []
    problems = [
        f"drift.baseline.{name}: not a bucket (buckets: {', '.join(policy.bucket_names)})"
        for name in baseline
        if name not in policy.bucket_names
    ]
    problems += [
        f"drift.baseline.{name}: share must be at least 0 (got {value:g})"
        for name, value in baseline.items()
        if value < 0
    ]
    if not problems and sum(baseline.values()) <= 0:
        problems.append("drift.baseline: the shares sum to 0")
    return problems


def _render(error: ValidationError, source: str) -> ConfigError:
    lines = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        message = str(cause) if cause is not None else item["msg"]
        shown = item.get("input")
        if cause is None and item["type"] != "missing" and not isinstance(shown, dict | list):
            message += f" (got {shown!r})"
        key = key_path(item["loc"])
        for line in message.splitlines():
            lines.append(f"  {key}: {line}" if key else f"  {line}")
    return ConfigError(f"invalid routing policy {source}:\n" + "\n".join(lines))


def policy_from_dict(data: Any, source: str = "(mapping)") -> RoutingPolicy:
    """Validate a parsed policy; ``source`` names where it came from in the error."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid routing policy {source}: expected a mapping of keys")
    try:
        return RoutingPolicy.model_validate(data)
    except ValidationError as exc:
        raise _render(exc, source) from None


@lru_cache(maxsize=1)
def _default() -> RoutingPolicy:
    resource = files("integration.routing") / DEFAULT_POLICY
    return policy_from_dict(yaml.safe_load(resource.read_text(encoding="utf-8")), DEFAULT_POLICY)


def load_policy(path: str | Path | None = None) -> RoutingPolicy:
    """The routing policy in ``path``, or the packaged default when None.

    Raises:
        ConfigError: no such file, not YAML, or invalid (every bad key named).
    """
    if path is None:
        return _default().model_copy(deep=True)  # parsed once; callers get their own copy
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such routing policy file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return policy_from_dict(data, str(path))
