"""Write-back: latest scores → the minimal set of CRM field changes → pushed, recorded.

A record is pushed only when the values leadlift would write differ from the
last values it successfully wrote there; a failed record keeps its old hash,
so the next run retries exactly the failures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors.base import CRMConnector, FieldUpdate, RecordError
from integration.config import Settings
from integration.fields import SEGMENT_LABELS
from integration.scoring import latest_scores
from integration.store import Store
from integration.store.models import ModelVersion, Score, Writeback, utcnow
from integration.store.upserts import upsert_rows

PUSH_CHUNK = 1000  # updates per committed step
REASONS_LENGTH = 255  # a Salesforce text field's maximum


@dataclass
class WritebackReport:
    planned: int = 0
    attempted: int = 0
    succeeded: int = 0
    errors: list[RecordError] = field(default_factory=list)
    api_calls: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": len(self.errors),
            "errors": [f"{e.crm_id}: {e.code} {e.message}"[:200] for e in self.errors[:20]],
            "api_calls": self.api_calls,
            "dry_run": self.dry_run,
        }


def values_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def desired_values(settings: Settings, score: Score, versions: dict[int, str]) -> dict[str, Any]:
    """The field values a rep sees for one score; uplift fields only once an uplift
    model exists (an empty value would erase what the admin had there)."""
    n = settings.fields
    items = (score.reasons or {}).get("items") or []
    values: dict[str, Any] = {
        n.lead_score: round(score.propensity * 100),
        n.lead_score_bucket: score.bucket,
        n.score_reasons: "; ".join(i["text"] for i in items)[:REASONS_LENGTH] or None,
        n.scored_at: score.scored_at,
    }
    uplift = score.uplift or {}
    model = versions.get(score.model_version_id, "?")
    if uplift.get("by_action"):
        by_action = uplift["by_action"]
        best = max(by_action.values())
        values[n.uplift_best_action] = (score.action or "none").replace("_", " ")
        values[n.uplift_score] = round(best * 100, 1)
        values[n.uplift_segment] = SEGMENT_LABELS.get(score.segment or "", None)
        model += " / " + versions.get(uplift.get("model_version"), "?")
    values[n.score_model_version] = model
    return {k: v for k, v in values.items() if v is not None}


def plan_writeback(store: Store, settings: Settings, connection_id: int) -> list[FieldUpdate]:
    """Field updates for every lead whose desired values differ from the last pushed ones."""
    with store.session() as session:
        pushed = dict(
            session.execute(
                select(Writeback.crm_id, Writeback.values_hash).where(
                    Writeback.connection_id == connection_id, Writeback.status == "ok"
                )
            ).all()
        )
        versions = {
            row.id: f"{row.kind} v{row.version}"
            for row in session.execute(
                select(ModelVersion.id, ModelVersion.kind, ModelVersion.version).where(
                    ModelVersion.connection_id == connection_id
                )
            )
        }
    updates = []
    for score in latest_scores(store, connection_id):
        values = desired_values(settings, score, versions)
        if pushed.get(score.lead_crm_id) != values_hash(values):
            updates.append(FieldUpdate(score.crm_object, score.lead_crm_id, values))
    return updates


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _record(store: Store, connection_id: int, batch: Sequence[FieldUpdate], errors) -> None:
    failed = {e.crm_id: e for e in errors}
    now = utcnow()
    with store.session() as session:
        attempts = dict(
            session.execute(
                select(Writeback.crm_id, Writeback.attempts).where(
                    Writeback.connection_id == connection_id,
                    Writeback.crm_id.in_([u.crm_id for u in batch if u.crm_id in failed]),
                )
            ).all()
        )
        ok_rows, error_rows = [], []
        for update in batch:
            key = {
                "connection_id": connection_id,
                "crm_object": update.crm_object,
                "crm_id": update.crm_id,
            }
            error = failed.get(update.crm_id)
            if error is None:
                ok_rows.append(
                    key | {"field_values": _jsonable(update.values),
                           "values_hash": values_hash(dict(update.values)), "pushed_at": now,
                           "status": "ok", "error": None, "attempts": 0}
                )  # fmt: skip
            else:
                error_rows.append(
                    key | {"status": "error", "error": f"{error.code}: {error.message}"[:1000],
                           "attempts": attempts.get(update.crm_id, 0) + 1}
                )  # fmt: skip
        upsert_rows(session, Writeback.__table__, ok_rows, changed_when=())
        upsert_rows(session, Writeback.__table__, error_rows, changed_when=())


def push_updates(
    store: Store,
    connection_id: int,
    connector: CRMConnector,
    updates: Sequence[FieldUpdate],
    progress: Callable[[int], None] | None = None,
) -> WritebackReport:
    report = WritebackReport(planned=len(updates))
    for start in range(0, len(updates), PUSH_CHUNK):
        batch = updates[start : start + PUSH_CHUNK]
        result = connector.push(batch)
        _record(store, connection_id, batch, result.errors)
        report.attempted += result.attempted
        report.succeeded += result.succeeded
        report.errors.extend(result.errors)
        report.api_calls += result.api_calls
        if progress:
            progress(len(batch))
    return report
