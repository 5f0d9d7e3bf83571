"""Operating metrics on a small hand-built store whose every number is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from integration.operating_metrics import operating_metrics
from integration.store.models import Connection, Lead, Outcome, Score, Touch

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=60)
H = timedelta(hours=1)
D = timedelta(days=1)


def _crm(crm_id: str, at: datetime) -> dict:
    return {"crm_object": "Lead", "crm_id": crm_id, "crm_modified_at": at, "deleted": False}


class _Writer:
    """Rows for one connection, added to one session."""

    def __init__(self, session, connection_id: int) -> None:
        self.session, self.cid, self.n = session, connection_id, 0

    def lead(self, crm_id: str, created: datetime, source: str | None = "web", **extra) -> None:
        email = f"{crm_id.lower()}@corp{self.cid}.example"
        self.session.add(
            Lead(connection_id=self.cid, **_crm(crm_id, created), created_at=created,
                 source=source, email=email, raw={}, **extra)
        )  # fmt: skip

    def touch(self, lead: str, at: datetime, kind: str = "email") -> None:
        self.n += 1
        self.session.add(
            Touch(connection_id=self.cid, **_crm(f"T{self.n}", at) | {"crm_object": "Task"},
                  lead_crm_id=lead, type=kind, channel=kind, occurred_at=at, raw={})
        )  # fmt: skip

    def outcome(self, lead: str, kind: str, at: datetime) -> None:
        self.n += 1
        self.session.add(
            Outcome(connection_id=self.cid, **_crm(f"O{self.n}", at), lead_crm_id=lead,
                    kind=kind, occurred_at=at, raw={})
        )  # fmt: skip

    def score(self, lead: str, at: datetime, bucket: str, segment: str | None, shadow=False):
        self.session.add(
            Score(connection_id=self.cid, lead_crm_id=lead, crm_object="Lead", propensity=0.1,
                  bucket=bucket, segment=segment, scored_at=at, shadow=shadow)
        )  # fmt: skip


def _connection(session, name: str) -> int:
    row = Connection(name=name, crm="salesforce")
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def metrics(store) -> dict:
    """Five leads in scope; the comments say what each row is there to prove."""
    with store.session() as session:
        cid = _connection(session, "acme")
        w = _Writer(session, cid)
        w.lead("L1", T0)
        w.score("L1", T0 + H, "Low", "lost_cause")
        w.score("L1", T0 + 10 * D, "High", "persuadable")
        w.score("L1", T0 + 20 * D, "Very Low", "sure_thing", shadow=True)  # never shown
        w.touch("L1", T0 + 2 * H, "call")  # lost_cause at the time
        w.touch("L1", T0 + 12 * D)  # persuadable
        w.touch("L1", T0 + 21 * D)  # still persuadable: the shadow score does not count
        w.touch("L1", T0 + 65 * D)  # after now
        w.outcome("L1", "opportunity", T0 + 15 * D)

        w.lead("L2", T0)
        w.score("L2", T0 + H, "High", "sure_thing")
        w.touch("L2", T0 + H / 2)  # before any score
        w.touch("L2", T0 + H)  # at the score's time: it counts
        w.touch("L2", T0 + 5 * H)
        w.outcome("L2", "meeting_booked", T0 + 3 * D)  # not an opportunity

        w.lead("L3", T0, source="event", converted_at=T0 + 3 * D)  # conversion = opportunity
        w.score("L3", T0 + H, "Low", None)
        w.score("L3", NOW + D, "Very High", "persuadable")  # after now
        w.touch("L3", T0 + 4 * H, "linkedin")  # unsegmented

        w.lead("L4", T0 + 40 * D, source=None)  # never scored
        w.touch("L4", T0 + 40 * D + H, "offer")
        w.touch("L4", T0 + 40 * D + 2 * H, "meeting")  # not a sales touch
        w.outcome("L4", "closed_won", T0 + 45 * D)

        w.lead("L5", T0)
        w.touch("L5", T0 - D)  # before creation: a touch, but not a first touch

        w.lead("L6", NOW + D)  # created after now

        other = _Writer(session, _connection(session, "other"))
        other.lead("L9", T0)
        other.score("L9", T0 + H, "Very High", "sure_thing")
        other.touch("L9", T0 + 2 * H)
        cid_out = cid
    return operating_metrics(store, cid_out, now=NOW)


def test_conversion_by_bucket_uses_the_latest_visible_score(metrics) -> None:
    assert metrics["leads"] == 5
    assert metrics["conversion_by_bucket"] == [
        {"bucket": "High", "leads": 2, "opportunities": 1, "rate": 0.5},
        {"bucket": "Low", "leads": 1, "opportunities": 1, "rate": 1.0},
        {"bucket": "unscored", "leads": 2, "opportunities": 1, "rate": 0.5},
    ]


def test_conversion_by_source(metrics) -> None:
    assert metrics["conversion_by_source"] == [
        {"source": "event", "leads": 1, "opportunities": 1, "rate": 1.0},
        {"source": "web", "leads": 3, "opportunities": 1, "rate": 0.3333},
        {"source": "unknown", "leads": 1, "opportunities": 1, "rate": 1.0},
    ]


def test_speed_to_first_touch_by_bucket(metrics) -> None:
    rows = {r["bucket"]: r for r in metrics["speed_to_first_touch"]}
    assert list(rows) == ["High", "Low", "unscored", "all"]
    # High: first touches after 2 h (L1) and 0.5 h (L2); linear interpolation for p90.
    assert rows["High"] == {
        "bucket": "High", "leads": 2, "touched": 2, "never_touched_share": 0.0,
        "median_hours": 1.25, "p90_hours": 1.85,
    }  # fmt: skip
    assert rows["unscored"]["touched"] == 1  # L5's only touch predates it
    assert rows["unscored"]["never_touched_share"] == 0.5
    assert rows["unscored"]["median_hours"] == 1.0
    # All: 0.5, 1, 2, 4 hours and one lead never touched.
    assert rows["all"]["never_touched_share"] == 0.2
    assert rows["all"]["median_hours"] == 1.5
    assert rows["all"]["p90_hours"] == 3.4


def test_wasted_touches_by_month_use_the_score_at_touch_time(metrics) -> None:
    wasted = metrics["wasted_touches"]
    months = {m["month"]: m for m in wasted["by_month"]}
    assert list(months) == ["2026-02", "2026-03", "2026-04"]
    march = months["2026-03"]
    assert (march["touches"], march["lost_cause"], march["sure_thing"]) == (7, 1, 2)
    assert (march["persuadable"], march["unsegmented"], march["unscored"]) == (2, 1, 1)
    assert march["wasted"] == 3
    assert march["wasted_share"] == round(3 / 7, 4)
    assert march["wasted_share_of_segmented"] == 0.6
    assert months["2026-02"]["unscored"] == 1
    april = months["2026-04"]  # L4's offer; its meeting is not a sales touch
    assert (april["touches"], april["unscored"], april["wasted"]) == (1, 1, 0)
    assert april["wasted_share"] == 0.0
    assert april["wasted_share_of_segmented"] is None
    total = wasted["total"]
    assert (total["touches"], total["wasted"], total["unscored"]) == (9, 3, 3)
    assert total["wasted_share_of_segmented"] == 0.6


def test_metrics_are_json_safe(metrics) -> None:
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics


def test_an_empty_connection_gives_empty_metrics(store) -> None:
    with store.session() as session:
        cid = _connection(session, "empty")
    metrics = operating_metrics(store, cid, now=NOW)
    assert metrics["leads"] == 0
    assert metrics["conversion_by_bucket"] == metrics["speed_to_first_touch"] == []
    assert metrics["wasted_touches"]["by_month"] == []
    assert metrics["wasted_touches"]["total"]["touches"] == 0
