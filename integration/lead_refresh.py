"""Processing stored webhook events: re-pull the leads they name, rescore those leads,
write back what changed, and settle the events with an ``outcome``.

Every pending event of a lead is taken at once, so a burst of events for one lead
costs one re-pull, one rescore and at most one write. A pass may take several
leads (those asked for, plus any other lead whose events are older than the
debounce window): under load one scoring pass and one batched write serve many
leads instead of one each. Events stay unprocessed until their pass has
finished, so a crash leaves them for the next pass or the sweeper; a transient
CRM error propagates (the caller retries) and leaves them pending too.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from connectors.base import CRMConnector, DomainRecord
from integration.config import Settings
from integration.connections import build_connector
from integration.errors import LeadliftError, ModelError
from integration.pipeline import recorded, tracked
from integration.routing import load_policy
from integration.score_pass import pushed_arms
from integration.scoring import score_leads
from integration.store import Store
from integration.store.models import Connection, Lead, WebhookEvent, utcnow
from integration.sync import write_records
from integration.usage import record_usage
from integration.writeback import push_plan
from integration.writeback_plan import plan_writeback

MAX_LEADS = 500  # per pass: one scoring pass and a few write batches
# Threads re-reading a large pass's leads. HubSpot only: its refresh tokens do not
# rotate, so connectors refreshing side by side cannot invalidate each other's token;
# a Salesforce org may rotate them, so its leads are read one after another.
PULL_THREADS = {"hubspot": 4}
STEP = "webhook_refresh"
MAX_ATTEMPTS = 5  # failed passes (not counting rate limits) before events are given up


@dataclass
class RefreshReport:
    connection_id: int
    leads: int = 0
    events: int = 0
    pulled: int = 0
    deleted: int = 0
    rescored: int = 0
    written: int = 0
    failed: int = 0
    api_calls: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # lead → status

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "outcomes"} | {
            "statuses": _count(self.outcomes.values())
        }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for value in values:
        out[value] += 1
    return dict(out)


@dataclass
class _LeadEvents:
    crm_object: str
    lead_crm_id: str
    ids: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    first_received: datetime | None = None


def _pending(
    store: Store,
    connection_id: int,
    lead_ids: Sequence[str],
    due_before: datetime | None,
    max_leads: int,
) -> list[_LeadEvents]:
    wanted = WebhookEvent.lead_crm_id.in_(list(lead_ids)) if lead_ids else None
    due = WebhookEvent.received_at <= due_before if due_before is not None else None
    which = [c for c in (wanted, due) if c is not None]
    if not which:
        return []
    query = (
        select(WebhookEvent)
        .where(
            and_(
                WebhookEvent.connection_id == connection_id,
                WebhookEvent.processed_at.is_(None),
                WebhookEvent.lead_crm_id.is_not(None),
                or_(*which),
            )
        )
        .order_by(WebhookEvent.id)
    )
    with store.session() as session:
        rows = session.scalars(query).all()
    grouped: dict[tuple[str, str], _LeadEvents] = {}
    for row in rows:
        key = (row.crm_object or "", row.lead_crm_id or "")
        item = grouped.get(key)
        if item is None:
            item = grouped[key] = _LeadEvents(key[0], key[1], first_received=row.received_at)
        item.ids.append(row.id)
        if row.kind:
            item.kinds.add(row.kind)
        prop = (row.payload or {}).get("propertyName")
        if prop:
            item.properties.add(str(prop))
    asked = set(lead_ids)
    # The leads asked for first, then the longest-waiting.
    ordered = sorted(grouped.values(), key=lambda g: (g.lead_crm_id not in asked, g.first_received))
    return ordered[:max_leads]


Settled = tuple[_LeadEvents, dict[str, Any], str | None]


def _settle(store: Store, settled: Sequence[Settled]) -> None:
    """Mark each lead's events processed with its outcome (or error), in one transaction."""
    now = utcnow()
    with store.session() as session:
        for events, outcome, error in settled:
            described = outcome | {
                "events": len(events.ids),
                "kinds": sorted(events.kinds),
                "properties": sorted(events.properties),
            }
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(events.ids))
                .values(processed_at=now, outcome=described, error=error)
            )


def refresh_leads(
    store: Store,
    settings: Settings,
    connection_id: int,
    lead_ids: Sequence[str] = (),
    due_before: datetime | None = None,
) -> RefreshReport:
    """Process the pending events of ``lead_ids`` (and of every lead whose events were
    received at or before ``due_before``) on one connection.

    Raises:
        TransientError: the CRM asked us to wait; every event is left pending.
    """
    report = RefreshReport(connection_id)
    batch = _pending(store, connection_id, lead_ids, due_before, MAX_LEADS)
    if not batch:
        return report
    report.leads = len(batch)
    report.events = sum(len(b.ids) for b in batch)
    with store.session() as session:
        connection = session.get(Connection, connection_id)
    if connection is None or connection.status != "active":
        skipped = {"status": "skipped", "reason": "connection not active"}
        _settle(store, [(item, skipped, None) for item in batch])
        for item in batch:
            report.outcomes[item.lead_crm_id] = "skipped"
        return report

    def factory(c: Connection) -> CRMConnector:
        return build_connector(store, settings, c)

    connector = factory(connection)
    before = connector.usage().calls
    try:
        with recorded(store, connection_id, STEP) as stats, tracked(store, connection, connector):
            pulled = _pull(store, connection, connector, factory, batch, report)
            _process(store, settings, connection_id, connector, batch, report, pulled)
            report.api_calls += connector.usage().calls - before
            stats.update(report.as_dict())
    except Exception as exc:
        _record_failure(store, batch, exc)
        raise
    return report


def _record_failure(store: Store, batch: list[_LeadEvents], exc: Exception) -> None:
    """Keep a failed pass's events pending with the error shown; after MAX_ATTEMPTS
    non-transient failures settle them as errors, so one lead that always fails is not
    retried by every sweep for ever."""
    transient = isinstance(exc, LeadliftError) and exc.transient
    message = f"{type(exc).__name__}: {exc}"[:1000]
    ids = [i for item in batch for i in item.ids]
    with store.session() as session:
        for row in session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(ids))):
            if row.processed_at is not None:
                continue
            failures = int((row.outcome or {}).get("failures", 0)) + (not transient)
            row.error = message
            if failures >= MAX_ATTEMPTS:
                row.processed_at = utcnow()
                row.outcome = {"status": "error", "failures": failures}
            else:
                row.outcome = {"failures": failures}


def _pull_one(connector: CRMConnector, item: _LeadEvents) -> tuple[Any, str | None]:
    try:
        return connector.pull_one(item.crm_object, item.lead_crm_id), None
    except LeadliftError as exc:
        if exc.transient:
            raise
        return None, f"{type(exc).__name__}: {exc.message}"[:1000]


def _pull(
    store: Store,
    connection: Connection,
    connector: CRMConnector,
    factory: Callable[[Connection], CRMConnector],
    batch: list[_LeadEvents],
    report: RefreshReport,
) -> list[tuple[_LeadEvents, Any, str | None]]:
    """Re-read every lead of the pass: one request chain per lead, so a large pass reads
    on a few threads, each with a connector of its own (connectors are not shared
    across threads)."""
    threads = PULL_THREADS.get(connection.crm, 1)
    if threads <= 1 or len(batch) < 2 * threads:
        return [(item, *_pull_one(connector, item)) for item in batch]
    local = threading.local()
    made: list[CRMConnector] = []
    guard = threading.Lock()

    def pull(item: _LeadEvents) -> tuple[_LeadEvents, Any, str | None]:
        mine = getattr(local, "connector", None)
        if mine is None:
            mine = local.connector = factory(connection)
            with guard:
                made.append(mine)
        return (item, *_pull_one(mine, item))

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(pull, batch))
    finally:
        for extra in made:
            report.api_calls += record_usage(store, connection.id, extra, 0)


def _process(
    store: Store,
    settings: Settings,
    connection_id: int,
    connector: CRMConnector,
    batch: list[_LeadEvents],
    report: RefreshReport,
    pulled: list[tuple[_LeadEvents, Any, str | None]],
) -> None:
    records: list[DomainRecord] = []
    live: list[_LeadEvents] = []
    gone: list[_LeadEvents] = []
    errors: dict[str, str] = {}
    for item, raw, error in pulled:
        if error is not None:
            errors[item.lead_crm_id] = error
            continue
        report.pulled += raw is not None
        if raw is None or raw.deleted:
            gone.append(item)
        else:
            live.append(item)
        if raw is not None:
            records.extend(connector.to_domain(raw))
    with store.session() as session:
        write_records(session, connection_id, records)
        if gone:
            session.execute(
                update(Lead)
                .where(
                    Lead.connection_id == connection_id,
                    Lead.crm_id.in_([g.lead_crm_id for g in gone]),
                )
                .values(deleted=True, synced_at=utcnow())
            )
    report.deleted = len(gone)

    ids = [item.lead_crm_id for item in live]
    not_scored: str | None = None
    if ids:
        try:
            # Leads in an experiment keep routing by the arm they show.
            arms = pushed_arms(store, connection_id, settings.fields.experiment_arm, ids)
            stats = score_leads(
                store, connection_id, lead_ids=ids, arms=arms,
                policy=load_policy(settings.routing_policy),
            )  # fmt: skip
            report.rescored = stats.scored
        except ModelError as exc:
            not_scored = exc.message
    written: dict[str, list[str]] = {}
    push_errors: dict[str, str] = {}
    if ids and not_scored is None:
        plan = plan_writeback(store, settings, connection_id, connector, lead_ids=ids)
        pushed = push_plan(store, connection_id, connector, plan)
        push_errors = {e.crm_id: f"{e.code}: {e.message}"[:1000] for e in pushed.errors}
        for planned in plan.updates:
            if planned.crm_id not in push_errors:
                written.setdefault(planned.crm_id, []).extend(sorted(planned.values))
        for owner in plan.owners:
            if owner.crm_id not in push_errors:
                written.setdefault(owner.crm_id, []).append("owner")
    report.written = len(written)

    gone_ids = {g.lead_crm_id for g in gone}
    settled: list[Settled] = []
    for item in batch:
        lead = item.lead_crm_id
        if lead in errors:
            outcome, error = {"status": "error", "pulled": False}, errors[lead]
        elif lead in gone_ids:
            outcome, error = {"status": "deleted", "pulled": True}, None
        elif not_scored is not None:
            outcome, error = {"status": "not_scored", "pulled": True, "reason": not_scored}, None
        elif lead in push_errors:
            outcome, error = (
                {"status": "failed", "pulled": True, "rescored": True},
                push_errors[lead],
            )
        elif lead in written:
            outcome = {"status": "written", "pulled": True, "rescored": True,
                       "fields": written[lead]}  # fmt: skip
            error = None
        else:
            outcome, error = {"status": "unchanged", "pulled": True, "rescored": True}, None
        report.outcomes[lead] = outcome["status"]
        report.failed += outcome["status"] in ("error", "failed")
        settled.append((item, outcome, error))
    _settle(store, settled)


def pending_leads(
    store: Store, older_than: datetime | None = None, limit: int = 10_000
) -> list[tuple[int, str]]:
    """(connection, lead) pairs with unprocessed events received at or before
    ``older_than``: what the sweeper hands back to processing."""
    conditions = [
        WebhookEvent.processed_at.is_(None),
        WebhookEvent.connection_id.is_not(None),
        WebhookEvent.lead_crm_id.is_not(None),
    ]
    if older_than is not None:
        conditions.append(WebhookEvent.received_at <= older_than)
    query = (
        select(WebhookEvent.connection_id, WebhookEvent.lead_crm_id)
        .where(*conditions)
        .group_by(WebhookEvent.connection_id, WebhookEvent.lead_crm_id)
        .limit(limit)
    )
    with store.session() as session:
        return [(int(c), str(lead)) for c, lead in session.execute(query).all()]


def next_due(store: Store, connection_id: int, debounce_seconds: float) -> float | None:
    """Seconds until the oldest pending event of a connection is due (0 when it is),
    or None when nothing is pending."""
    with store.session() as session:
        oldest = session.scalar(
            select(WebhookEvent.received_at)
            .where(
                WebhookEvent.connection_id == connection_id,
                WebhookEvent.processed_at.is_(None),
                WebhookEvent.lead_crm_id.is_not(None),
            )
            .order_by(WebhookEvent.received_at)
            .limit(1)
        )
    if oldest is None:
        return None
    due = oldest + timedelta(seconds=debounce_seconds)
    return max(0.0, (due - utcnow()).total_seconds())
