"""Experiment arms from the CRM, and the uplift training set built from them.

Past holdout experiments leave their arm on each lead (Salesforce
``Experiment_Arm__c``, HubSpot ``experiment_arm``) as ``<action>_v<n>/<arm>``,
e.g. ``call_first_v1/control``. Every experiment was randomized, so the
controls of all experiments form one shared holdout: each action is compared
with it (multi-treatment uplift).

leadlift's own experiments (`integration.experiments`) label ``<key>/<arm>``,
where the arm is ``control`` or the action's name (one experiment may test
several actions), or ``override`` for a holdout a rep worked anyway: an
override was neither randomized to treatment nor left alone, so it is no
training row at all.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from integration.features import Frames, first_outcome, naive_times
from integration.store import Store
from integration.store.models import Lead

ARM_FIELDS = ("Experiment_Arm__c", "experiment_arm", "leadlift_experiment_arm")
ARM_PATTERN = re.compile(r"^(?P<experiment>(?P<action>.+?)(?:_v\d+)?)/(?P<arm>[^/]+)$")
CONTROL = "control"
# The old labels' treated arm: its action is the experiment's name without the version.
TREATMENT = "treatment"
OVERRIDE = "override"
# A lead is assigned within about two days of creation; the label window starts at creation.
ASSIGNMENT_SLACK_DAYS = 2


def load_arms(store: Store, connection_id: int) -> pd.DataFrame:
    """One row per lead with a recorded experiment arm: crm_id, experiment, action, arm.

    The action is the arm's name, except for ``control`` and ``treatment`` arms, whose
    action comes from the experiment (``call_first_v1/treatment`` → ``call_first``);
    an override row's action is ``override`` (its own arm: `uplift_panel` drops it).
    """
    with store.session() as session:
        rows = session.execute(
            select(Lead.crm_id, Lead.raw).where(
                Lead.connection_id == connection_id, Lead.deleted.is_(False)
            )
        ).all()
    records = []
    for crm_id, raw in rows:
        label = next((raw.get(f) for f in ARM_FIELDS if raw and raw.get(f)), None)
        match = ARM_PATTERN.match(str(label)) if label else None
        if match:
            arm = match["arm"]
            action = match["action"] if arm in (CONTROL, TREATMENT) else arm
            records.append((crm_id, match["experiment"], action, arm))
    return pd.DataFrame(records, columns=["crm_id", "experiment", "action", "arm"])


def uplift_panel(
    frames: Frames, arms: pd.DataFrame, now: datetime, window_days: int
) -> pd.DataFrame:
    """Rows (lead, cut-off at creation, treatment label, outcome) for leads whose whole
    outcome window has passed. The label is the action for treated leads and
    ``control`` for every experiment's holdout (the shared control); overrides are
    left out (neither randomized to treatment nor left alone)."""
    if "arm" in arms.columns:
        arms = arms[arms["arm"] != OVERRIDE]
    if arms.empty:
        return pd.DataFrame(columns=["lead_crm_id", "cutoff", "treatment", "label"])
    leads = frames.leads[["crm_id", "created_at"]].merge(arms, on="crm_id")
    window = pd.Timedelta(days=window_days + ASSIGNMENT_SLACK_DAYS)
    leads = leads[leads["created_at"] + window <= pd.Timestamp(now)]
    meeting = naive_times(first_outcome(frames, ("meeting_booked",)).reindex(leads["crm_id"]))
    cutoff = naive_times(leads["created_at"])
    label = (meeting > cutoff) & (meeting <= cutoff + window.to_timedelta64())
    treatment = np.where(leads["arm"].to_numpy() == CONTROL, CONTROL, leads["action"].to_numpy())
    return pd.DataFrame(
        {
            "lead_crm_id": leads["crm_id"].to_numpy(),
            "cutoff": leads["created_at"].reset_index(drop=True),
            "treatment": treatment,
            "label": label.astype(int),
        }
    )
