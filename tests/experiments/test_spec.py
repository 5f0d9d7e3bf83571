"""Experiment specs: defaults, validation errors that name the field, policy files."""

from __future__ import annotations

import re
import textwrap
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from integration.errors import ConfigError
from integration.experiments import spec as spec_module
from integration.experiments.spec import (
    Condition,
    ExperimentSpec,
    load_policy_file,
    parse_spec,
)

BASE = {"key": "welcome_v1", "name": "Welcome", "actions": {"email_sequence": "4-step v3"}}


def _error_fields(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        ExperimentSpec(**data)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


def test_defaults_are_the_documented_ones() -> None:
    spec = ExperimentSpec(**BASE)
    assert spec.holdout_share == 0.2
    assert spec.unit == "account"
    assert spec.strata == ["tier"]
    assert [(c.field, c.op, c.value) for c in spec.eligibility] == [
        ("open", "==", True),
        ("converted", "==", False),
    ]
    assert spec.outcome == "meeting_booked"
    assert spec.window_days == 21
    rules = spec.guardrails
    assert rules.never_hold_out_tiers == ["A"]
    assert rules.max_holdout_amount is None
    assert rules.skip_open_opportunity is True
    assert rules.daily_holdout_cap_per_stratum is None
    assert (rules.auto_pause_alpha, rules.auto_pause_min_units) == (0.05, 200)
    assert spec.arms == ["control", "email_sequence"]
    assert spec.label("control") == "welcome_v1/control"


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1])
def test_a_holdout_share_outside_0_1_is_refused(share: float) -> None:
    assert _error_fields(BASE | {"holdout_share": share}) == ["holdout_share"]


def test_an_unknown_stratum_is_refused() -> None:
    assert _error_fields(BASE | {"strata": ["tier", "country"]}) == ["strata.1"]


def test_repeated_strata_are_refused() -> None:
    assert _error_fields(BASE | {"strata": ["tier", "tier"]}) == ["strata"]


def test_empty_actions_are_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="at least one action") as caught:
        ExperimentSpec(**(BASE | {"actions": {}}))
    assert caught.value.errors()[0]["loc"] == ("actions",)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"control": "nothing"}, "reserved"),
        ({"Email Seq": "v1"}, "a-z"),
        ({"email": "  "}, "versioned definition"),
    ],
)
def test_bad_actions_are_refused(actions: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExperimentSpec(**(BASE | {"actions": actions}))


@pytest.mark.parametrize("key", ["Welcome V1", "a/b", "", "x" * 41, "_lead"])
def test_a_key_must_be_a_slug(key: str) -> None:
    assert _error_fields(BASE | {"key": key}) == ["key"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "tier", "op": "=~", "value": "A"}, "Input should be"),
        ({"field": "tier", "op": "in", "value": "A"}, "needs a list"),
        ({"field": "eng_decay", "op": ">", "value": "high"}, "needs a number"),
        ({"field": "eng_decay", "op": ">", "value": True}, "needs a number"),
        ({"field": "shoe_size", "op": "==", "value": 9}, "unknown field 'shoe_size'"),
    ],
)
def test_bad_eligibility_conditions_name_the_condition(condition: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ExperimentSpec(**(BASE | {"eligibility": [condition]}))
    assert caught.value.errors()[0]["loc"][:2] == ("eligibility", 0)


def test_conditions_accept_lead_fields_and_features() -> None:
    Condition(field="source", op="in", value=["web", "event"])
    Condition(field="eng_pricing_page_visit_all", op=">=", value=1)
    Condition(field="intent", op="!=", value="low")


def test_a_misspelt_setting_is_an_error_not_a_silent_default() -> None:
    assert _error_fields(BASE | {"holdout_shre": 0.3}) == ["holdout_shre"]
    assert _error_fields(BASE | {"guardrails": {"never_hold_out_tier": ["A"]}}) == [
        "guardrails.never_hold_out_tier"
    ]


def test_guardrail_bounds() -> None:
    assert _error_fields(BASE | {"guardrails": {"auto_pause_alpha": 0.7}}) == [
        "guardrails.auto_pause_alpha"
    ]
    assert _error_fields(BASE | {"guardrails": {"daily_holdout_cap_per_stratum": 0}}) == [
        "guardrails.daily_holdout_cap_per_stratum"
    ]


def test_an_outcome_where_less_is_better_is_refused() -> None:
    # The auto-pause reads "fewer conversions than control" as harm.
    assert _error_fields(BASE | {"outcome": "bounced"}) == ["outcome"]


def test_parse_spec_raises_a_config_error_naming_every_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(BASE | {"holdout_share": 2, "unit": "contact"})
    assert "holdout_share:" in caught.value.message
    assert "unit:" in caught.value.message


def test_the_store_row_gives_back_the_same_spec() -> None:
    spec = ExperimentSpec(
        **BASE,
        strata=["tier", "intent"],
        eligibility=[{"field": "source", "op": "in", "value": ["web"]}],
        guardrails={"max_holdout_amount": 50_000, "daily_holdout_cap_per_stratum": 10},
    )
    columns = spec.to_columns()
    # Run-time state stored beside the guardrails is not part of the spec.
    columns["guardrails"] = columns["guardrails"] | {"paused_arms": {"email_sequence": {}}}
    assert ExperimentSpec.from_row(SimpleNamespace(**columns)) == spec


def _docstring_yaml() -> str:
    """The literal block after the docstring's ``::`` (indented lines up to the end)."""
    block = spec_module.__doc__.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith(" "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_the_documented_policy_file_is_valid(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_docstring_yaml())
    specs = load_policy_file(path)
    assert [s.key for s in specs] == ["welcome_email_v3", "first_touch_q3"]
    assert specs[0].guardrails.max_holdout_amount == 50_000
    assert specs[0].eligibility[2].value == ["web", "webinar"]
    assert specs[1].arms == ["control", "call_first", "linkedin_touch"]


def test_a_policy_file_lists_every_problem_with_its_place(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "experiments:\n"
        "  - {key: a, name: A, actions: {email: v1}, holdout_share: 1.2}\n"
        "  - {key: b, name: B, actions: {}}\n"
        "  - {key: a, name: A again, actions: {call: v1}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy_file(path)
    message = caught.value.message
    assert re.search(r"experiments\[0\]\.holdout_share: .*less than 1", message)
    assert "experiments[1].actions: at least one action" in message
    assert "key repeated: a" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("experiments: {key: a}\n", "'experiments:' list"),
        ("- just a list\n", "'experiments:' list"),
        ("experiments: [\n", "not valid YAML"),
    ],
)
def test_a_malformed_policy_file_is_a_config_error(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_policy_file(path)


def test_a_missing_policy_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such policy file"):
        load_policy_file(tmp_path / "absent.yaml")
