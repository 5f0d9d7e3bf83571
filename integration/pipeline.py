"""One pipeline, many triggers: sync → (train when due) → score → write back.

The CLI, the Celery tasks and the demo all call these functions. Each step
is recorded as a PipelineRun row with its figures or its error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.base import CRMConnector, FieldSpec, InstallReport
from integration.config import Settings
from integration.connections import build_connector, get_connection
from integration.errors import LeadliftError, ModelError
from integration.experiment_cycle import run_experiments
from integration.features import Frames, load_frames
from integration.fields import written_fields
from integration.install import install_fields, ready_fields
from integration.progress import NullReporter, Reporter
from integration.routing import load_policy
from integration.scoring import score_leads
from integration.store import Store
from integration.store.models import Connection, PipelineRun, utcnow
from integration.sync import sync_object
from integration.training import train_propensity, training_due
from integration.uplift_training import train_uplift
from integration.usage import record_usage
from integration.writeback import WritebackReport, push_plan
from integration.writeback_plan import plan_writeback


@contextmanager
def recorded(store: Store, connection_id: int, step: str) -> Iterator[dict[str, Any]]:
    """Record one pipeline step; the caller fills the yielded stats dict."""
    with store.session() as session:
        run = PipelineRun(connection_id=connection_id, step=step, status="running", stats={})
        session.add(run)
        session.flush()
        run_id = run.id
    stats: dict[str, Any] = {}
    try:
        yield stats
    except BaseException as exc:
        with store.session() as session:
            row = session.get(PipelineRun, run_id)
            row.status, row.finished_at, row.stats = "error", utcnow(), stats
            row.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    with store.session() as session:
        row = session.get(PipelineRun, run_id)
        row.status, row.finished_at, row.stats = "ok", utcnow(), stats


@contextmanager
def tracked(store: Store, connection: Connection, connector: CRMConnector) -> Iterator[None]:
    """Count the connector's API calls into the connection's usage, even when a step fails."""
    before = connector.usage().calls
    try:
        yield
    finally:
        record_usage(store, connection.id, connector, before)


@dataclass
class CycleReport:
    connection: str
    crm: str
    synced: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    trained: dict[str, Any] | None = None
    training_skipped: str | None = None
    experiments: dict[str, Any] = field(default_factory=dict)
    scored: dict[str, Any] | None = None
    writeback: dict[str, Any] | None = None
    api_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# A sync writing this many rows has the planner count the tables again (see
# `Store.refresh_statistics`): a first sync of a large org, or a big import.
RECOUNT_AFTER_ROWS = 100_000


def run_sync(
    store: Store,
    settings: Settings,
    connection: Connection,
    connector: CRMConnector,
    reporter: Reporter,
    objects: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with recorded(store, connection.id, "sync") as stats:
        for obj in objects or connector.sync_objects():
            with reporter.task(f"sync {obj}") as bar:
                result = sync_object(
                    store, settings, connection.id, connector, obj, lambda _o, n: bar.advance(n)
                )
            out[obj] = result.as_dict()
            stats[obj] = {"pulled": result.pulled, "written": result.written}
        if sum(result["written"] for result in out.values()) >= RECOUNT_AFTER_ROWS:
            store.refresh_statistics()
        gaps = getattr(connector, "vocabulary_gaps", None)
        if gaps and gaps():
            # Values the vocabulary does not map yet: for RevOps to map, never guessed.
            stats["unmapped"] = gaps()
    return out


def install_configured_fields(
    store: Store,
    settings: Settings,
    connection: Connection,
    connector: CRMConnector,
    specs: Sequence[FieldSpec],
    dry_run: bool = False,
) -> InstallReport:
    """``install_fields`` with the page layouts and list view the settings ask for; a
    real install is recorded as an ``install_fields`` pipeline run."""

    def install() -> InstallReport:
        return install_fields(
            store, connection, connector, specs, dry_run=dry_run,
            layouts=settings.salesforce_layouts,
            list_view_field=settings.fields.lead_score if settings.salesforce_list_view else None,
        )  # fmt: skip

    if dry_run:
        return install()
    with recorded(store, connection.id, "install_fields") as stats:
        report = install()
        stats.update(
            created=list(report.created),
            existing=list(report.existing),
            clashes=list(report.clashes),
            components=[f"{c.kind} {c.name}" for c in report.components],
        )
    return report


def ensure_written_fields(
    store: Store, settings: Settings, connection: Connection, connector: CRMConnector
) -> dict[str, Any]:
    """Make sure the fields the pipeline writes exist (once per connection and field)."""
    if {spec.name for spec in written_fields(settings)} <= ready_fields(connection):
        return {"checked": False}
    report = install_configured_fields(
        store, settings, connection, connector, written_fields(settings)
    )
    if report.clashes:
        raise LeadliftError("field type clash, not overwritten: " + "; ".join(report.clashes))
    return {
        "checked": True,
        "created": list(report.created),
        "existing": list(report.existing),
        "components": len(report.components),
    }


def run_train(
    store: Store,
    settings: Settings,
    connection: Connection,
    now: datetime | None = None,
    frames: Frames | None = None,
) -> dict[str, Any]:
    """Train the propensity model and, where past experiments exist, the uplift model.
    The propensity model is required (its failure raises); uplift is skipped with a
    reason when there is no experiment to learn from."""
    with recorded(store, connection.id, "train") as stats:
        result = train_propensity(store, settings, connection.id, now, frames=frames)
        out = result.summary()
        stats.update(out)
    with recorded(store, connection.id, "train_uplift") as stats:
        try:
            uplift = train_uplift(store, settings, connection.id, now, frames=frames)
        except ModelError as exc:
            out["uplift"] = None
            out["uplift_skipped"] = exc.message
            stats["skipped"] = exc.message
        else:
            out["uplift"] = uplift.summary()
            stats.update(out["uplift"])
    return out


def run_score(
    store: Store,
    connection: Connection,
    reporter: Reporter,
    now: datetime | None = None,
    settings: Settings | None = None,
    arms: pd.DataFrame | None = None,
    frames: Frames | None = None,
) -> dict[str, Any]:
    policy = load_policy(settings.routing_policy if settings else None)
    with recorded(store, connection.id, "score") as stats, reporter.task("score leads") as bar:
        result = score_leads(
            store, connection.id, now, bar.advance, policy=policy, arms=arms, frames=frames
        )
        out = {
            "scored": result.scored,
            "written": result.written,
            "model_version": result.model_version,
            "uplift_version": result.uplift_version,
            "mode": result.mode,
            "mean_propensity": round(result.mean_propensity, 4),
            "buckets": result.buckets,
            "segments": result.segments,
            "actions": result.actions,
            "queues": result.queues,
            "spilled": result.spilled,
            "drift_alerts": result.drift_alerts,
            "shadow_written": result.shadow_written,
        }
        stats.update(out)
    return out


def run_writeback(
    store: Store,
    settings: Settings,
    connection: Connection,
    connector: CRMConnector,
    reporter: Reporter,
    dry_run: bool = False,
    max_calls: int | None = None,
    labels: dict[str, str] | None = None,
) -> WritebackReport:
    plan = plan_writeback(
        store, settings, connection.id, connector, arms=labels, max_calls=max_calls
    )
    if dry_run:
        return WritebackReport(
            planned=len(plan.updates), owners_planned=len(plan.owners), dry_run=True,
            api_calls=plan.api_calls, plan=plan.as_dict(),
        )  # fmt: skip
    with (
        recorded(store, connection.id, "writeback") as stats,
        reporter.task("write back", total=len(plan.updates)) as bar,
    ):
        report = push_plan(store, connection.id, connector, plan, bar.advance)
        stats.update(report.as_dict())
    return report


def run_cycle(
    store: Store,
    settings: Settings,
    connection_name: str | None = None,
    reporter: Reporter | None = None,
    now: datetime | None = None,
    force_train: bool = False,
    connector_factory: Callable[[Connection], CRMConnector] | None = None,
) -> CycleReport:
    """One full cycle on a connection: what `leadlift run` and the demo execute."""
    reporter = reporter or NullReporter()
    connection = get_connection(store, connection_name)
    connector = (connector_factory or (lambda c: build_connector(store, settings, c)))(connection)
    report = CycleReport(connection.name, connection.crm)
    with recorded(store, connection.id, "cycle") as cycle, tracked(store, connection, connector):
        report.synced = run_sync(store, settings, connection, connector, reporter)
        report.fields = ensure_written_fields(store, settings, connection, connector)
        moment = now or utcnow()
        # One read of the store serves every step of the cycle.
        frames = load_frames(store, connection.id)
        if force_train or training_due(store, settings, connection.id, moment):
            try:
                report.trained = run_train(store, settings, connection, moment, frames)
            except ModelError as exc:
                report.training_skipped = exc.message
        with recorded(store, connection.id, "experiments") as stats:
            experiments = run_experiments(store, connection.id, moment, frames)
            stats.update(experiments.summary)
        report.experiments = experiments.summary
        try:
            report.scored = run_score(
                store, connection, reporter, moment, settings, experiments.arms(), frames
            )
        except ModelError as exc:
            report.training_skipped = report.training_skipped or exc.message
        if report.scored is not None:
            report.writeback = run_writeback(
                store, settings, connection, connector, reporter, labels=experiments.labels
            ).as_dict()
        report.api_calls = connector.usage().calls
        cycle.update(api_calls=report.api_calls, skipped=report.training_skipped)
    return report
