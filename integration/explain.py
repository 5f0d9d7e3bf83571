"""`leadlift explain LEAD`: a lead's score history, so "why did this score change?" is a lookup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from integration.errors import NotFoundError
from integration.store import Store
from integration.store.models import Lead, ModelVersion, Score


def _reason_lines(reasons: dict[str, Any] | None) -> list[str]:
    items = (reasons or {}).get("items") or []
    return [f"{r.get('text', '')}  [{r.get('code', '')}]" for r in items]


def score_history(store: Store, connection_id: int, lead: str) -> dict[str, Any]:
    """Every stored score of a lead (by CRM id or email), oldest first, with what changed."""
    with store.session() as session:
        row = session.scalar(
            select(Lead).where(
                Lead.connection_id == connection_id,
                or_(Lead.crm_id == lead, Lead.email == lead),
            )
        )
        if row is None:
            raise NotFoundError(f"no lead {lead!r} in this connection")
        scores = session.execute(
            select(Score, ModelVersion.kind, ModelVersion.version)
            .outerjoin(ModelVersion, Score.model_version_id == ModelVersion.id)
            .where(Score.connection_id == connection_id, Score.lead_crm_id == row.crm_id)
            .order_by(Score.id)
        ).all()
    history: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for score, kind, version in scores:
        entry = {
            "scored_at": score.scored_at.isoformat(),
            "score": round(score.propensity * 100),
            "propensity": score.propensity,
            "bucket": score.bucket,
            "segment": score.segment,
            "action": score.action,
            "uplift": score.uplift,
            "model": f"{kind} v{version}" if kind else "?",
            "shadow": score.shadow,
            "reasons": _reason_lines(score.reasons),
        }
        if previous is not None and not score.shadow:
            changed = {
                k: f"{previous[k]} → {entry[k]}"
                for k in ("score", "bucket", "segment", "action", "model")
                if previous[k] != entry[k]
            }
            entry["changed"] = changed or None
        if not score.shadow:
            previous = entry
        history.append(entry)
    name = " ".join(p for p in (row.first_name, row.last_name) if p)
    return {"lead": row.crm_id, "name": name, "email": row.email, "scores": history}
