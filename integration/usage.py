"""API usage per connection: the calls leadlift made, hour by hour, and the CRM's own count.

Fed to each connector's budget so leadlift's share of a daily limit holds across
runs, processes and workers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from connectors.base import CRMConnector
from integration.store import Store
from integration.store.models import ApiUsage, Connection, utcnow
from integration.store.upserts import dialect_insert


def calls_last_day(store: Store, connection_id: int, now: datetime | None = None) -> int:
    since = (now or utcnow()) - timedelta(hours=24)
    with store.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(ApiUsage.calls), 0)).where(
                ApiUsage.connection_id == connection_id, ApiUsage.hour >= since
            )
        )
    return int(total or 0)


def record_usage(store: Store, connection_id: int, connector: CRMConnector, already: int) -> int:
    """Add the connector's calls since ``already`` to this hour; keep the CRM's last count.

    Returns the connector's call total, to pass as ``already`` next time.
    """
    usage = connector.usage()
    new = usage.calls - already
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    table = ApiUsage.__table__
    with store.session() as session:
        if new > 0:
            statement = dialect_insert(session, table).values(
                connection_id=connection_id, hour=hour, calls=new
            )
            # Add, never overwrite: several workers may count into the same hour.
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["connection_id", "hour"],
                    set_={"calls": table.c.calls + statement.excluded.calls},
                )
            )
        if usage.limit is not None:
            row = session.get(Connection, connection_id)
            reported: dict[str, Any] = {"used": usage.used, "limit": usage.limit,
                                        "at": now.isoformat()}  # fmt: skip
            row.settings = {**(row.settings or {}), "crm_api_usage": reported}
    return usage.calls
