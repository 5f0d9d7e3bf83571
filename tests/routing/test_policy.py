"""The routing policy: the packaged default, and validation errors that name the key."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from integration.errors import ConfigError
from integration.modeling.segments import SEGMENT_LABELS
from integration.routing import load_policy
from integration.routing.policy import SegmentRules
from tests.routing.builders import policy_with

ROOT = Path(__file__).resolve().parents[2]


def test_default_policy_is_the_documented_one():
    policy = load_policy()
    assert policy.basis == "percentile"
    assert policy.bucket_names == ("Very High", "High", "Medium", "Low", "Very Low")
    assert [b.threshold for b in policy.buckets] == [85, 65, 40, 20, 0]
    assert [b.route for b in policy.buckets] == [
        "senior_ae_now",
        "ae_queue_sla",
        "sdr_mid_touch",
        "nurture",
        "newsletter_only",
    ]
    assert policy.queues["senior_ae_now"].crm_queue == "Senior AE – Now"
    assert policy.buckets[1].sla_hours == 24
    assert policy.buckets[4].queue is None  # marketing only
    assert policy.designed_shares() == pytest.approx(
        {"Very High": 0.15, "High": 0.20, "Medium": 0.25, "Low": 0.20, "Very Low": 0.20}
    )
    assert policy.segments.persuadable.outreach == "best_action"
    assert policy.segments.sure_thing.outreach == "none"
    assert policy.segments.do_not_disturb.outreach == "suppress"
    assert policy.suppress.route == "newsletter_only" and policy.suppress.queue is None
    assert policy.drift.share_threshold == 0.10 and policy.drift.psi_threshold == 0.2


def test_policy_segments_are_the_uplift_segments():
    assert set(SegmentRules.model_fields) == set(SEGMENT_LABELS)


def test_default_policy_ships_in_the_package():
    """setuptools package data must carry the YAML, or a wheel install has no default."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["integration.routing"]
    assert any(fnmatch.fnmatch("default_policy.yaml", pattern) for pattern in patterns)


def test_load_policy_reads_a_file(tmp_path):
    text = (ROOT / "integration/routing/default_policy.yaml").read_text(encoding="utf-8")
    path = tmp_path / "routing.yaml"
    path.write_text(text.replace("basis: percentile", "basis: probability"), encoding="utf-8")
    assert load_policy(path).basis == "probability"


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such routing policy file"):
        load_policy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("buckets: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_policy(bad)


def _error(edit) -> str:
    with pytest.raises(ConfigError) as caught:
        policy_with(edit)
    return caught.value.message


def test_thresholds_must_strictly_descend():
    def edit(data):
        data["buckets"][2]["threshold"] = 65  # equal to High's

    message = _error(edit)
    assert "buckets[2].threshold" in message
    assert "buckets[1].threshold (65)" in message


def test_threshold_outside_0_100_names_the_key():
    def edit(data):
        data["buckets"][0]["threshold"] = 120

    assert "buckets[0].threshold" in _error(edit)


def test_lowest_threshold_must_be_zero():
    def edit(data):
        data["buckets"][4]["threshold"] = 5

    assert "buckets[4].threshold" in _error(edit)


def test_unknown_queue_names_the_referring_key():
    def edit(data):
        data["buckets"][1]["queue"] = "ae_queu"

    message = _error(edit)
    assert "buckets[1].queue: unknown queue 'ae_queu'" in message


def test_unknown_spill_target_names_the_key():
    def edit(data):
        data["queues"]["nurture"]["spill_to"] = "marketing"

    assert "queues.nurture.spill_to: unknown queue 'marketing'" in _error(edit)


def test_spill_cycle_is_rejected():
    def edit(data):
        data["queues"]["nurture"]["spill_to"] = "ae_queue"  # ae → sdr → nurture → ae

    message = _error(edit)
    assert "queues.ae_queue.spill_to: spill cycle ae_queue → sdr_queue → nurture → ae_queue" in (
        message
    )
    assert message.count("spill cycle") == 1


def test_four_buckets_are_rejected():
    def edit(data):
        del data["buckets"][2]

    message = _error(edit)
    assert "buckets:" in message and "got 4" in message


def test_bucket_names_must_be_unique():
    def edit(data):
        data["buckets"][3]["name"] = "High"

    assert "buckets[3].name: 'High' is already buckets[1].name" in _error(edit)


def test_negative_capacity_names_the_key():
    def edit(data):
        data["queues"]["ae_queue"]["capacity_per_day"] = -5

    assert "queues.ae_queue.capacity_per_day" in _error(edit)


def test_unknown_keys_are_errors_not_defaults():
    def edit(data):
        data["queues"]["ae_queue"]["capacity_per_dya"] = 50

    assert "queues.ae_queue.capacity_per_dya" in _error(edit)


def test_drift_baseline_must_name_buckets():
    def edit(data):
        data["drift"]["baseline"] = {"Very High": 0.15, "Hot": 0.85}

    assert "drift.baseline.Hot: not a bucket" in _error(edit)


def test_every_problem_is_reported_at_once():
    def edit(data):
        data["buckets"][1]["queue"] = "nowhere"
        data["suppress"]["queue"] = "elsewhere"

    message = _error(edit)
    assert "buckets[1].queue" in message and "suppress.queue" in message
