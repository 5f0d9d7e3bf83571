"""`leadlift experiments show`: one experiment's readout, or the past experiments', with
the operating metrics the score exists to move."""

from __future__ import annotations

from typing import Any

from integration.config import Settings
from integration.experiments.readout import from_assignments, from_past_arms, readout
from integration.experiments.readout_html import readout_html
from integration.experiments.registry import describe, get
from integration.features import load_frames
from integration.operating_metrics import operating_metrics
from integration.store import Store
from integration.store.models import utcnow


def experiment_readout(
    store: Store, connection_id: int, key: str | None, settings: Settings, html: bool = False
) -> dict[str, Any]:
    """Readout of experiment ``key``, or of the experiments recorded on leads before
    leadlift (``key`` None): JSON-safe figures, the terminal text and optionally HTML."""
    now = utcnow()
    frames = load_frames(store, connection_id)
    if key:
        experiment = describe(get(store, connection_id, key))
        frame = from_assignments(store, connection_id, key, now, frames=frames)
    else:
        experiment = None
        frame = from_past_arms(
            store, connection_id, now, settings.outcome_window_days, frames=frames
        )
    result = readout(frame)
    operating = operating_metrics(store, connection_id, now, frames=frames)
    out: dict[str, Any] = {
        "experiment": experiment,
        "readout": result.as_dict(),
        "operating": operating,
        "text": result.text(),
    }
    if html:
        out["html"] = readout_html(result, operating)
    return out
