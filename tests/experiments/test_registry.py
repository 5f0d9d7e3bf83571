"""The experiment life cycle: draft → running ⇄ paused → stopped, and nothing else."""

from __future__ import annotations

import pytest

from integration.errors import ConfigError, NotFoundError
from integration.experiments import registry
from integration.experiments.registry import ExperimentStateError
from integration.experiments.spec import ExperimentSpec
from integration.store.models import Connection
from tests.experiments import DAY, T0

SPEC = ExperimentSpec(key="welcome_v1", name="Welcome", actions={"email": "4-step v3"})


@pytest.fixture
def cid(store) -> int:
    with store.session() as session:
        row = Connection(name="acme", crm="hubspot")
        session.add(row)
        session.flush()
        return row.id


def test_create_stores_a_draft_with_the_spec(store, cid) -> None:
    row = registry.create(store, cid, SPEC)
    assert row.status == "draft" and row.started_at is None
    stored = registry.get(store, cid, "welcome_v1")
    assert stored.id == row.id
    assert ExperimentSpec.from_row(stored) == SPEC
    assert registry.describe(stored)["actions"] == {"email": "4-step v3"}


def test_a_key_is_unique_per_connection(store, cid) -> None:
    registry.create(store, cid, SPEC)
    with pytest.raises(ConfigError, match="already exists"):
        registry.create(store, cid, SPEC.model_copy(update={"name": "Other"}))
    with store.session() as session:
        other = Connection(name="other", crm="hubspot")
        session.add(other)
        session.flush()
        other_id = other.id
    assert registry.create(store, other_id, SPEC).connection_id == other_id


def test_the_full_life_cycle(store, cid) -> None:
    registry.create(store, cid, SPEC)
    running = registry.start(store, cid, "welcome_v1", now=T0)
    assert (running.status, running.started_at) == ("running", T0)
    assert registry.pause(store, cid, "welcome_v1", now=T0 + DAY).status == "paused"
    resumed = registry.resume(store, cid, "welcome_v1", now=T0 + 2 * DAY)
    # Resuming continues the same experiment: its start does not move.
    assert (resumed.status, resumed.started_at) == ("running", T0)
    stopped = registry.stop(store, cid, "welcome_v1", now=T0 + 3 * DAY)
    assert (stopped.status, stopped.stopped_at) == ("stopped", T0 + 3 * DAY)
    assert registry.get(store, cid, "welcome_v1").status == "stopped"


@pytest.mark.parametrize(
    ("steps", "bad", "message"),
    [
        ((), registry.pause, "cannot pause experiment 'welcome_v1': it is draft"),
        ((), registry.resume, "cannot resume experiment 'welcome_v1': it is draft"),
        ((registry.start,), registry.start, "it is running; start needs draft"),
        ((registry.start,), registry.resume, "resume needs paused"),
        ((registry.start, registry.pause), registry.start, "it is paused; start needs draft"),
        ((registry.start, registry.stop), registry.resume, "stopped is final"),
        ((registry.stop,), registry.start, "stopped is final"),
        ((registry.stop,), registry.stop, "stopped is final"),
    ],
)
def test_invalid_transitions_raise_and_change_nothing(
    store, cid, steps: tuple, bad, message: str
) -> None:
    registry.create(store, cid, SPEC)
    for step in steps:
        step(store, cid, "welcome_v1", now=T0)
    before = registry.describe(registry.get(store, cid, "welcome_v1"))
    with pytest.raises(ExperimentStateError, match=message):
        bad(store, cid, "welcome_v1", now=T0 + DAY)
    assert registry.describe(registry.get(store, cid, "welcome_v1")) == before


def test_a_state_error_is_a_config_error() -> None:
    # The CLI reports ConfigErrors as the user's mistake, not as a crash.
    assert issubclass(ExperimentStateError, ConfigError)


def test_unknown_keys_are_not_found(store, cid) -> None:
    with pytest.raises(NotFoundError, match="no experiment 'nope'"):
        registry.get(store, cid, "nope")
    with pytest.raises(NotFoundError):
        registry.start(store, cid, "nope")


def test_list_is_oldest_first_and_filters_by_status(store, cid) -> None:
    for key in ("b_exp", "a_exp", "c_exp"):
        registry.create(store, cid, SPEC.model_copy(update={"key": key}))
    registry.start(store, cid, "a_exp")
    assert [e.key for e in registry.list_experiments(store, cid)] == ["b_exp", "a_exp", "c_exp"]
    assert [e.key for e in registry.list_experiments(store, cid, "running")] == ["a_exp"]
