"""What an experiment is: the validated spec an admin writes, and the policy file of them.

A spec is the whole contract of an experiment, fixed before the first unit is
assigned: which actions are tested (each an exact, versioned definition, so a
readout months later still says what was done), how large the random holdout
is, what a unit is, which strata the holdout is balanced within, who is
eligible, which outcome counts within how many days, and the guardrails that
keep valuable accounts out of the holdout. Validation names the bad field, so
a typo in a policy file fails loudly instead of running a different experiment.

A policy file is YAML with an ``experiments:`` list::

    experiments:
      - key: welcome_email_v3
        name: Welcome email sequence vs holdout
        actions:
          email_sequence: 10-day 4-step email sequence v3
        holdout_share: 0.2
        unit: account            # every contact of an account shares one arm
        strata: [tier, region]   # the holdout share holds within each stratum
        eligibility:
          - {field: open, op: "==", value: true}
          - {field: converted, op: "==", value: false}
          - {field: source, op: in, value: [web, webinar]}
        outcome: meeting_booked
        window_days: 21
        guardrails:
          never_hold_out_tiers: [A]
          max_holdout_amount: 50000      # open pipeline / won ACV above this: never held out
          skip_open_opportunity: true
          daily_holdout_cap_per_stratum: 50
          auto_pause_alpha: 0.05
          auto_pause_min_units: 200
      - key: first_touch_q3
        name: Call first vs LinkedIn first vs holdout (multi-arm)
        actions:
          call_first: call within 1 business hour, 2 retries v1
          linkedin_touch: personal LinkedIn connect + note v2
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from integration.errors import ConfigError, key_path
from integration.features import FEATURES

STRATA = ("tier", "size_band", "region", "source", "intent")
ORDERING_OPS = (">=", "<=", ">", "<")
# Outcomes where more is better: the auto-pause reads "fewer than control" as harm.
OUTCOMES = ("meeting_booked", "opportunity", "closed_won")
# Arm names with a meaning of their own in labels and in uplift training.
RESERVED_ARMS = ("control", "override", "treatment")
# Per-lead values an eligibility condition may test besides the model features.
LEAD_FIELDS = (
    "open", "converted", "intent", "status", "lifecycle", "crm_object", "employees",
    "account_crm_id",
)  # fmt: skip
ELIGIBILITY_FIELDS = frozenset(LEAD_FIELDS) | frozenset(FEATURES)
# "<key>/<arm>" must fit the CRM's 80-character Experiment_Arm field.
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,38}$")

Unit = Literal["account", "lead"]
Stratum = Literal["tier", "size_band", "region", "source", "intent"]
Op = Literal["==", "!=", "in", "not_in", ">=", "<=", ">", "<"]


class Condition(BaseModel):
    """One eligibility test on a lead: ``field op value`` (all conditions must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in ELIGIBILITY_FIELDS:
            raise ValueError(
                f"unknown field {value!r}; use a lead field ({', '.join(LEAD_FIELDS)}) "
                "or a model feature (integration.features.FEATURES)"
            )
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list | tuple):
            raise ValueError(f"op {self.op!r} needs a list value, got {self.value!r}")
        if self.op in ORDERING_OPS and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ValueError(f"op {self.op!r} needs a number, got {self.value!r}")
        return self


def default_eligibility() -> list[Condition]:
    """Open leads that have not converted: a closed lead's outcome already happened."""
    return [
        Condition(field="open", op="==", value=True),
        Condition(field="converted", op="==", value=False),
    ]


class GuardrailSpec(BaseModel):
    """Which units may never be held out, and when an arm is stopped for doing harm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    never_hold_out_tiers: list[str] = Field(default_factory=lambda: ["A"])
    # Open pipeline or won ACV of the unit above which it is never held out; None = off.
    max_holdout_amount: float | None = Field(default=None, gt=0)
    skip_open_opportunity: bool = True
    daily_holdout_cap_per_stratum: int | None = Field(default=None, ge=1)
    auto_pause_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    auto_pause_min_units: int = Field(default=200, ge=1)


class ExperimentSpec(BaseModel):
    """One experiment, as declared; see the module docstring for a YAML example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str = Field(min_length=1, max_length=255)
    actions: dict[str, str]
    holdout_share: float = Field(default=0.2, gt=0, lt=1)
    unit: Unit = "account"
    strata: list[Stratum] = Field(default_factory=lambda: ["tier"])
    eligibility: list[Condition] = Field(default_factory=default_eligibility)
    outcome: Literal["meeting_booked", "opportunity", "closed_won"] = "meeting_booked"
    window_days: int = Field(default=21, ge=1, le=365)
    guardrails: GuardrailSpec = Field(default_factory=GuardrailSpec)

    @field_validator("key")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not KEY_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a slug: 1-40 of a-z, 0-9, '_' or '-', starting with a "
                "letter or digit"
            )
        return value

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one action is needed (one = single-arm, more = multi-arm)")
        for action, definition in value.items():
            if not ACTION_PATTERN.match(action):
                raise ValueError(
                    f"action {action!r}: 1-39 of a-z, 0-9 or '_', starting with a letter"
                )
            if action in RESERVED_ARMS:
                raise ValueError(f"action {action!r}: the name is reserved for an arm")
            if not isinstance(definition, str) or not definition.strip():
                raise ValueError(f"action {action!r}: needs its exact, versioned definition")
        return value

    @field_validator("strata")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"strata repeat a field: {value}")
        return value

    @property
    def arms(self) -> list[str]:
        """Every arm label's suffix: ``control`` first, then the actions by name."""
        return ["control", *sorted(self.actions)]

    def label(self, arm: str) -> str:
        """The CRM Experiment_Arm value for an arm (``"<key>/<arm>"``)."""
        return f"{self.key}/{arm}"

    def to_columns(self) -> dict[str, Any]:
        """Column values of the store's ``experiment`` row for this spec."""
        return {
            "key": self.key,
            "name": self.name,
            "arms": dict(self.actions),
            "holdout_share": self.holdout_share,
            "unit": self.unit,
            "strata": {"fields": list(self.strata)},
            "eligibility": {"conditions": [c.model_dump() for c in self.eligibility]},
            "outcome": self.outcome,
            "window_days": self.window_days,
            "guardrails": self.guardrails.model_dump(),
        }

    @classmethod
    def from_row(cls, row: Any) -> ExperimentSpec:
        """The spec an ``experiment`` row was created from (run-time state like paused
        arms, which lives beside it in the guardrails column, is left out)."""
        guardrails = {
            k: v for k, v in (row.guardrails or {}).items() if k in GuardrailSpec.model_fields
        }
        return cls(
            key=row.key,
            name=row.name,
            actions=dict(row.arms),
            holdout_share=row.holdout_share,
            unit=row.unit,
            strata=list((row.strata or {}).get("fields", [])),
            eligibility=list((row.eligibility or {}).get("conditions", [])),
            outcome=row.outcome,
            window_days=row.window_days,
            guardrails=guardrails,
        )


def describe_errors(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming its field (``experiments[0].holdout_share``)."""
    lines = []
    for problem in error.errors():
        where = key_path(problem["loc"], prefix)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where or '(spec)'}: {message}")
    return "\n".join(lines)


def parse_spec(data: Any, where: str = "") -> ExperimentSpec:
    """A spec from plain data, or a ConfigError that lists every bad field."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid experiment {where or 'spec'}:\n{describe_errors(exc, where)}"
        ) from None


def load_policy_file(path: str | Path) -> list[ExperimentSpec]:
    """The experiments declared in a YAML policy file (``experiments:`` list).

    Raises:
        ConfigError: the file is missing, not YAML, has no ``experiments`` list, repeats
            a key, or any spec is invalid (every problem listed, each with its field).
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such policy file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    items = document.get("experiments") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a top-level 'experiments:' list")
    specs, problems = [], []
    for index, item in enumerate(items):
        try:
            specs.append(ExperimentSpec.model_validate(item))
        except ValidationError as exc:
            problems.append(describe_errors(exc, f"experiments[{index}]"))
    keys = [item.get("key") for item in items if isinstance(item, dict) and item.get("key")]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        problems.append(f"  experiments: key repeated: {', '.join(repeated)}")
    if problems:
        raise ConfigError(f"{path}: invalid policy file:\n" + "\n".join(problems))
    return specs


def unit_ids(leads: pd.DataFrame, unit: str) -> pd.Series:
    """The experiment unit of each lead (index = the leads' index).

    ``account``: the account's CRM id, so every contact of an account shares one
    arm; a lead without an account is its own unit (its CRM id), as every lead is
    under ``unit: lead``. Plain CRM ids keep assignment rows readable and joinable;
    Salesforce ids carry an object prefix, so an account id never equals a lead id.
    """
    lead = leads["crm_id"].astype(str)
    if unit == "lead" or "account_crm_id" not in leads.columns:
        return lead
    account = leads["account_crm_id"].astype(object)
    has_account = account.notna() & (account.astype(str).str.strip() != "")
    return account.astype(str).where(has_account, lead)
