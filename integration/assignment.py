"""Routing leads to a queue or a rep: the highest-scored open leads first.

The owner is a CRM field like any other: only leads not already owned by the
target are sent, so re-running an assignment spends no calls.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from connectors.base import CRMConnector, OwnerAssignment, Queue
from integration.errors import NotFoundError
from integration.features import TERMINAL_OUTCOMES
from integration.scoring import newest_score_ids
from integration.store import Store
from integration.store.models import Connection, Lead, Outcome, Score

# Record types that can be routed; HubSpot contacts take any owner id.
ROUTABLE = ("Lead", "contacts")


def plain_name(text: str | None) -> str:
    return "".join(ch for ch in (text or "").lower() if ch.isalnum())


def match_queue(queues: list[Queue], name: str) -> Queue | None:
    """A queue by id, name or developer name ("Senior AE – Now" = "Senior_AE_Now")."""
    for queue in queues:
        if name == queue.crm_id or plain_name(name) in (
            plain_name(queue.name),
            plain_name(queue.developer_name),
        ):
            return queue
    return None


def find_queue(connector: CRMConnector, name: str) -> Queue:
    """`match_queue` among the CRM's queues; a clear error when none matches."""
    queues = connector.queues()
    queue = match_queue(queues, name)
    if queue is None:
        known = ", ".join(q.name for q in queues) or "none"
        raise NotFoundError(f"no queue {name!r} in the CRM (queues: {known})")
    return queue


def assign_top(
    store: Store,
    connection: Connection,
    connector: CRMConnector,
    queue_name: str,
    top: int,
    dry_run: bool = False,
) -> dict[str, Any]:
    queue = find_queue(connector, queue_name)
    newest = newest_score_ids(connection.id)
    finished = (
        select(Outcome.lead_crm_id)
        .where(
            Outcome.connection_id == connection.id,
            Outcome.kind.in_(TERMINAL_OUTCOMES),
            Outcome.deleted.is_(False),
        )
        .scalar_subquery()
    )
    with store.session() as session:
        rows = session.execute(
            select(Lead.crm_object, Lead.crm_id)
            .join(
                Score,
                (Score.lead_crm_id == Lead.crm_id) & (Score.connection_id == Lead.connection_id),
            )
            .join(newest, Score.id == newest.c.id)
            .where(
                Lead.connection_id == connection.id,
                Lead.deleted.is_(False),
                Lead.crm_object.in_(ROUTABLE),
                Lead.converted_at.is_(None),
                Lead.crm_id.not_in(finished),
                Lead.owner_crm_id.is_distinct_from(queue.crm_id),
            )
            .order_by(Score.propensity.desc(), Lead.crm_id)
            .limit(top)
        ).all()
    if queue.objects:
        rows = [r for r in rows if r.crm_object in queue.objects]
    assignments = [OwnerAssignment(r.crm_object, r.crm_id, queue.crm_id) for r in rows]
    if dry_run or not assignments:
        return {"queue": queue.name, "assigned": len(assignments), "errors": [], "api_calls": 0}
    report = connector.assign(assignments)
    failed = {e.crm_id for e in report.errors}
    done = [a.crm_id for a in assignments if a.crm_id not in failed]
    with store.session() as session:
        session.execute(
            update(Lead)
            .where(Lead.connection_id == connection.id, Lead.crm_id.in_(done))
            .values(owner_crm_id=queue.crm_id)
        )
    return {
        "queue": queue.name,
        "assigned": len(done),
        "errors": [f"{e.crm_id}: {e.code} {e.message}"[:200] for e in report.errors],
        "api_calls": report.api_calls,
    }
