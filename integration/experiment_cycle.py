"""The experiments step of a cycle: guard, assign, find overrides, and hand the arms on.

For every running or paused experiment of a connection, in this order: the
auto-pause check (a harmful arm stops taking units before more are assigned
to it), assignment of new eligible units, override detection. What comes out
is each lead's current arm, for routing (a held-out lead gets no outreach) and
for the CRM's Experiment_Arm field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from integration.experiments.assignment import assign, detect_overrides, lead_table
from integration.experiments.guardrails import check_arms
from integration.experiments.registry import list_experiments
from integration.experiments.spec import ExperimentSpec
from integration.features import Frames, load_frames
from integration.store import Store

LIVE = ("running", "paused")


@dataclass
class ExperimentsStep:
    labels: dict[str, str] = field(default_factory=dict)  # lead → "key/arm"
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)

    def arms(self) -> pd.DataFrame | None:
        """Arm and experiment per lead (index lead CRM id), for routing."""
        return arms_frame(self.labels)


def arms_frame(labels: dict[str, str] | None) -> pd.DataFrame | None:
    """``{lead: "experiment/arm"}`` as routing reads it: ``arm`` and ``experiment``
    columns indexed by lead CRM id (None when no lead has a label)."""
    if not labels:
        return None
    leads = list(labels)
    experiment, arm = zip(*(labels[lead].rsplit("/", 1) for lead in leads), strict=True)
    return pd.DataFrame({"arm": arm, "experiment": experiment}, index=pd.Index(leads))


def run_experiments(
    store: Store, connection_id: int, now: datetime, frames: Frames | None = None
) -> ExperimentsStep:
    step = ExperimentsStep()
    rows = [r for r in list_experiments(store, connection_id) if r.status in LIVE]
    if rows and frames is None:
        frames = load_frames(store, connection_id)
    for row in rows:
        checks = check_arms(store, connection_id, row.key, now, frames=frames)
        # One lead table (every open lead's features) serves assignment and overrides.
        table = lead_table(frames, ExperimentSpec.from_row(row), now)
        report = assign(store, connection_id, row.key, now, frames=frames, table=table)
        overrides = detect_overrides(store, connection_id, row.key, now, frames=frames, table=table)
        # A lead in two live experiments shows the later one's arm.
        step.labels.update(report.labels)
        step.labels.update(overrides.labels)
        step.summary[row.key] = {
            "status": report.status,
            "new_units": report.new_units,
            "units": report.units,
            "new_overrides": len(overrides.new_overrides),
            "newly_paused": [c.action for c in checks if c.newly_paused],
            "guardrail_decisions": len(report.guardrails),
            "notes": report.notes,
        }
    return step
