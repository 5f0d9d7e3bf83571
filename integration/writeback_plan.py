"""Write-back planning: latest scores and routing → the smallest set of CRM changes.

A lead is in the plan only when something a rep would act on changed since
the last successful push to it:

* never pushed: every field (priority ``new``);
* bucket, best action, segment or experiment arm changed: the fields that
  changed (priority ``change``);
* the score moved by at least ``writeback_score_step`` points: the fields that
  changed (priority ``refresh``). A smaller move — or new reason wording, or a
  new model version that agrees with the old one — is not worth an API call;
  it rides along with the next material change.

Owner (queue) changes are planned apart from field updates and pushed with
their own calls. An owner a rep set by hand — anything other than a queue or
the owner leadlift itself set last — is kept unless
``overwrite_manual_owners`` says otherwise.

Under an API budget the plan is ordered by priority (new leads, then
changes, then refreshes; within each, the highest score first) and stops at
the budget; what is left is *deferred*, and since nothing about it is
recorded as pushed, the next run plans it again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors.base import CRMConnector, FieldUpdate, OwnerAssignment
from integration.assignment import match_queue
from integration.config import Settings
from integration.features import among
from integration.fields import SEGMENT_LABELS
from integration.scoring import latest_scores
from integration.store import Store
from integration.store.models import Lead, ModelVersion, Score, Writeback

NEW, CHANGE, REFRESH = 0, 1, 2
PRIORITIES = ("new", "change", "refresh")
# Where the owner leadlift set last is kept in a lead's pushed values; not a field name.
OWNER_KEY = "@owner"
REASONS_LENGTH = 255  # a Salesforce text field's maximum
DEFAULT_BATCH = 100


@dataclass(frozen=True)
class PlannedUpdate:
    """Changed fields of one record, and the full pushed state once they land."""

    crm_object: str
    crm_id: str
    values: dict[str, Any]
    pushed: dict[str, Any]
    priority: int
    score: float = 0.0

    @property
    def field_update(self) -> FieldUpdate:
        return FieldUpdate(self.crm_object, self.crm_id, self.values)


@dataclass(frozen=True)
class PlannedOwner:
    crm_object: str
    crm_id: str
    owner_id: str
    queue: str
    previous: str | None
    priority: int
    score: float = 0.0

    @property
    def assignment(self) -> OwnerAssignment:
        return OwnerAssignment(self.crm_object, self.crm_id, self.owner_id)


@dataclass
class WritebackPlan:
    updates: list[PlannedUpdate] = field(default_factory=list)
    owners: list[PlannedOwner] = field(default_factory=list)
    deferred_updates: int = 0
    deferred_owners: int = 0
    manual_owners_kept: int = 0
    unknown_queues: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    max_calls: int | None = None

    def __len__(self) -> int:
        return len(self.updates)

    def as_dict(self) -> dict[str, Any]:
        by_priority = {name: 0 for name in PRIORITIES}
        for update in self.updates:
            by_priority[PRIORITIES[update.priority]] += 1
        by_object: dict[str, int] = {}
        for update in self.updates:
            by_object[update.crm_object] = by_object.get(update.crm_object, 0) + 1
        return {
            "leads_changed": len(
                {u.crm_id for u in self.updates} | {o.crm_id for o in self.owners}
            ),
            "field_updates": sum(len(u.values) for u in self.updates),
            "records": len(self.updates),
            "owner_updates": len(self.owners),
            "api_calls": self.api_calls,
            "max_calls": self.max_calls,
            "by_priority": by_priority,
            "by_object": by_object,
            "deferred_records": self.deferred_updates,
            "deferred_owner_updates": self.deferred_owners,
            "manual_owners_kept": self.manual_owners_kept,
            "unknown_queues": self.unknown_queues,
        }


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def desired_values(
    settings: Settings, score: Score, versions: dict[int, str], arm: str | None = None
) -> dict[str, Any]:
    """The field values a rep sees for one score; uplift fields only once an uplift
    model exists (an empty value would erase what the admin had there)."""
    n = settings.fields
    items = (score.reasons or {}).get("items") or []
    values: dict[str, Any] = {
        n.lead_score: round(score.propensity * 100),
        n.lead_score_bucket: score.bucket,
        n.score_reasons: "; ".join(i["text"] for i in items)[:REASONS_LENGTH] or None,
        n.scored_at: score.scored_at,
        n.experiment_arm: arm,
    }
    uplift = score.uplift or {}
    model = versions.get(score.model_version_id, "?")
    if uplift.get("by_action"):
        best = max(uplift["by_action"].values())
        values[n.uplift_best_action] = (score.action or "none").replace("_", " ")
        values[n.uplift_score] = round(best * 100, 1)
        values[n.uplift_segment] = SEGMENT_LABELS.get(score.segment or "", None)
        model += " / " + versions.get(uplift.get("model_version"), "?")
    values[n.score_model_version] = model
    return {k: v for k, v in values.items() if v is not None}


def material_change(
    settings: Settings, desired: dict[str, Any], pushed: dict[str, Any] | None
) -> tuple[dict[str, Any], int] | None:
    """(fields to send, priority), or None when nothing changed materially."""
    wanted = jsonable(desired)
    if pushed is None:
        return wanted, NEW
    changed = {k: v for k, v in wanted.items() if pushed.get(k) != v}
    if not changed:
        return None
    n = settings.fields
    decisive = {n.lead_score_bucket, n.uplift_best_action, n.uplift_segment, n.experiment_arm}
    if decisive & changed.keys():
        return changed, CHANGE
    old = pushed.get(n.lead_score)
    new = wanted.get(n.lead_score)
    if old is None or (
        new is not None and abs(float(new) - float(old)) >= settings.writeback_score_step
    ):
        return changed, REFRESH
    return None


def batch_size(connector: CRMConnector | None, settings: Settings) -> int:
    size = getattr(connector, "write_batch_size", None) if connector is not None else None
    return int(size or settings.writeback_batch_size or DEFAULT_BATCH)


def _only(store: Store, column: Any, lead_ids: list[str] | None) -> tuple[Any, ...]:
    return () if lead_ids is None else (among(store, column, lead_ids),)


def _pushed_state(
    store: Store, connection_id: int, lead_ids: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    with store.session() as session:
        rows = session.execute(
            select(Writeback.crm_id, Writeback.field_values).where(
                Writeback.connection_id == connection_id,
                Writeback.status == "ok",
                *_only(store, Writeback.crm_id, lead_ids),
            )
        ).all()
    return {crm_id: dict(values or {}) for crm_id, values in rows}


def _versions(store: Store, connection_id: int) -> dict[int, str]:
    with store.session() as session:
        rows = session.execute(
            select(ModelVersion.id, ModelVersion.kind, ModelVersion.version).where(
                ModelVersion.connection_id == connection_id
            )
        ).all()
    return {row.id: f"{row.kind} v{row.version}" for row in rows}


def _owners(
    store: Store, connection_id: int, lead_ids: list[str] | None = None
) -> dict[str, str | None]:
    with store.session() as session:
        rows = session.execute(
            select(Lead.crm_id, Lead.owner_crm_id).where(
                Lead.connection_id == connection_id, *_only(store, Lead.crm_id, lead_ids)
            )
        ).all()
    return dict(rows)


def plan_owner(
    settings: Settings,
    score: Score,
    queue_ids: dict[str, str],
    queue_owner_ids: set[str],
    current: str | None,
    last_set: str | None,
    plan: WritebackPlan,
    priority: int,
) -> PlannedOwner | None:
    """The owner change routing asks for, unless a rep owns the lead by hand."""
    if not score.queue:
        return None
    target = queue_ids.get(score.queue)
    if target is None:
        plan.unknown_queues[score.queue] = plan.unknown_queues.get(score.queue, 0) + 1
        return None
    if current == target:
        return None
    by_hand = current is not None and current not in queue_owner_ids and current != last_set
    if by_hand and not settings.overwrite_manual_owners:
        plan.manual_owners_kept += 1
        return None
    return PlannedOwner(
        score.crm_object, score.lead_crm_id, target, score.queue, current, priority,
        score.propensity,
    )  # fmt: skip


def _within_budget(plan: WritebackPlan, candidates: list, size: int, max_calls: int | None):
    """Keep candidates in order while the batches they need fit the budget."""
    kept, per_object = [], {}
    calls = plan.api_calls
    for item in candidates:
        count = per_object.get(item.crm_object, 0)
        extra = 1 if count % size == 0 else 0
        if max_calls is not None and calls + extra > max_calls:
            continue
        calls += extra
        per_object[item.crm_object] = count + 1
        kept.append(item)
    plan.api_calls = calls
    return kept


def plan_writeback(
    store: Store,
    settings: Settings,
    connection_id: int,
    connector: CRMConnector | None = None,
    arms: dict[str, str] | None = None,
    max_calls: int | None = None,
    lead_ids: Collection[str] | None = None,
) -> WritebackPlan:
    """Plan field updates (and, with a connector that has queues, owner changes);
    ``lead_ids`` restricts the plan to those leads (a webhook's re-scored lead)."""
    max_calls = max_calls if max_calls is not None else settings.writeback_max_calls
    only = None if lead_ids is None else list(lead_ids)
    pushed = _pushed_state(store, connection_id, only)
    versions = _versions(store, connection_id)
    arms = arms or {}
    scores = latest_scores(store, connection_id, lead_ids)
    plan = WritebackPlan(max_calls=max_calls)
    updates: list[PlannedUpdate] = []
    for score in scores:
        before = pushed.get(score.lead_crm_id)
        desired = desired_values(settings, score, versions, arms.get(score.lead_crm_id))
        change = material_change(settings, desired, before)
        if change is None:
            continue
        values, priority = change
        state = {**(before or {}), **values}
        updates.append(
            PlannedUpdate(
                score.crm_object, score.lead_crm_id, values, state, priority, score.propensity
            )
        )
    owners: list[PlannedOwner] = []
    routed = [s for s in scores if s.queue]
    if routed and connector is not None:
        queues = connector.queues()
        queue_ids = _queue_ids(queues, {s.queue for s in routed})
        current = _owners(store, connection_id, only)
        queue_owner_ids = {q.crm_id for q in queues}
        for score in routed:
            last = (pushed.get(score.lead_crm_id) or {}).get(OWNER_KEY)
            priority = NEW if score.lead_crm_id not in pushed else CHANGE
            owner = plan_owner(
                settings, score, queue_ids, queue_owner_ids, current.get(score.lead_crm_id),
                last, plan, priority,
            )  # fmt: skip
            if owner is not None:
                owners.append(owner)
    size = batch_size(connector, settings)
    order = sorted(updates, key=lambda u: (u.priority, -u.score, u.crm_id))
    plan.updates = _within_budget(plan, order, size, max_calls)
    plan.deferred_updates = len(updates) - len(plan.updates)
    owner_order = sorted(owners, key=lambda o: (o.priority, -o.score, o.crm_id))
    plan.owners = _within_budget(plan, owner_order, size, max_calls)
    plan.deferred_owners = len(owners) - len(plan.owners)
    return plan


def _queue_ids(queues, names: set[str]) -> dict[str, str]:
    """Queue name (as routing names it) → the CRM's owner id."""
    matched = {name: match_queue(queues, name) for name in names}
    return {name: queue.crm_id for name, queue in matched.items() if queue is not None}
