"""Hygiene: duplicates collapse, titles and statuses normalise, every change is reported."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from integration.features import Frames, load_frames
from integration.modeling.hygiene import (
    DEFAULT_STATUS_MAP,
    HygieneConfig,
    clean_frames,
    department,
    seniority,
)
from integration.store.models import Connection, Engagement, Lead, Outcome, Touch

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _leads(rows: list[dict]) -> pd.DataFrame:
    base = {
        "crm_object": "Lead", "account_crm_id": None, "email": None, "email_domain": None,
        "first_name": None, "last_name": None, "company": None, "title": None, "phone": None,
        "source": None, "status": None, "lifecycle": None, "converted_at": pd.NaT,
        "converted_contact_crm_id": None,
    }  # fmt: skip
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def _events(rows: list[tuple[str, str, int]], kind_column: str = "kind") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_crm_id": [r[0] for r in rows],
            kind_column: [r[1] for r in rows],
            "occurred_at": [T0 + pd.Timedelta(days=r[2]) for r in rows],
        }
    )


def _frames(leads: pd.DataFrame, events: list[tuple[str, str, int]] = ()) -> Frames:
    accounts = pd.DataFrame(columns=["crm_id", "industry", "employees", "size_band", "region"])
    touches = _events([e for e in events if e[1] == "call"], "type").assign(status="completed")
    engagements = _events([e for e in events if e[1] == "form_fill"])
    outcomes = _events([e for e in events if e[1] == "meeting_booked"])
    return Frames(leads, accounts, touches, engagements, outcomes)


def test_the_same_email_in_any_case_is_one_person_whose_history_moves_to_the_earliest() -> None:
    leads = _leads(
        [
            {"crm_id": "a", "email": "Ann.Lee@Acme.com", "created_at": T0},
            {"crm_id": "b", "email": " ann.lee@acme.com", "created_at": T0 + pd.Timedelta(days=9)},
            {"crm_id": "c", "email": "bo@acme.com", "created_at": T0},
        ]
    )
    frames = _frames(
        leads, [("b", "call", 10), ("b", "form_fill", 11), ("b", "meeting_booked", 12)]
    )

    clean = clean_frames(frames)

    assert list(clean.leads["crm_id"]) == ["a", "c"]
    assert clean.aliases.to_dict() == {"b": "a"}
    for table in (clean.touches, clean.engagements, clean.outcomes):
        assert list(table["lead_crm_id"]) == ["a"]
        assert table["occurred_at"].min() > T0  # times are kept, only the owner moves
    report = clean.hygiene
    assert (report.leads_in, report.leads_out, report.merged) == (3, 2, 1)
    assert report.duplicates == {"email": 1}
    assert report.duplicate_examples == [{"canonical": "a", "merged": ["b"], "rule": ["email"]}]
    assert report.repointed == {"touches": 1, "engagements": 1, "outcomes": 1}


def test_a_name_repeats_at_a_business_domain_merge_but_not_at_free_mail() -> None:
    leads = _leads(
        [
            {"crm_id": "a", "email": "jsmith@acme.com", "first_name": "John",
             "last_name": "Smith", "created_at": T0},
            {"crm_id": "b", "email": "john.smith@ACME.com", "first_name": "john ",
             "last_name": "SMITH", "created_at": T0 + pd.Timedelta(days=1)},
            {"crm_id": "c", "email": "john.smith@gmail.com", "first_name": "John",
             "last_name": "Smith", "created_at": T0},
            {"crm_id": "d", "email": "john.smith2@gmail.com", "first_name": "John",
             "last_name": "Smith", "created_at": T0},
        ]
    )  # fmt: skip
    clean = clean_frames(_frames(leads))
    assert sorted(clean.leads["crm_id"]) == ["a", "c", "d"]
    assert clean.hygiene.duplicates == {"name": 1}

    off = clean_frames(_frames(leads), HygieneConfig(dedupe_by_name=False))
    assert sorted(off.leads["crm_id"]) == ["a", "b", "c", "d"]


def test_a_converted_contact_folds_into_its_lead_even_when_created_first() -> None:
    leads = _leads(
        [
            {"crm_id": "00Q1", "created_at": T0 + pd.Timedelta(days=5),
             "converted_contact_crm_id": "0031", "email": "x@acme.com"},
            {"crm_id": "0031", "crm_object": "Contact", "created_at": T0, "email": "y@acme.com"},
        ]
    )  # fmt: skip
    clean = clean_frames(_frames(leads, [("0031", "call", 6)]))
    assert list(clean.leads["crm_id"]) == ["00Q1"]
    assert clean.hygiene.duplicates == {"converted": 1}
    assert list(clean.touches["lead_crm_id"]) == ["00Q1"]


@pytest.mark.parametrize(
    ("title", "level", "dept"),
    [
        ("VP Sales", "vp", "sales"),
        ("Vice President, Engineering", "vp", "engineering"),
        ("Founder & CEO", "c_level", "other"),
        ("Chief Information Officer", "c_level", "it"),
        ("Head of Demand Generation", "director", "marketing"),
        ("Sales Operations Manager", "manager", "sales"),
        ("Network Engineer", "individual", "it"),
        ("Accountant", "individual", "finance"),
        ("  ", "unknown", "unknown"),
        (None, "unknown", "unknown"),
    ],
)
def test_titles_normalise_to_seniority_and_department(title, level, dept) -> None:
    titles = pd.Series([title], dtype=object)
    assert seniority(titles).iloc[0] == level
    assert department(titles).iloc[0] == dept


def test_statuses_and_lifecycles_map_to_one_vocabulary_and_gaps_are_reported() -> None:
    raw = [
        ("Open - Not Contacted", None, "new"),
        ("Working - Contacted", None, "working"),
        ("Closed - Converted", None, "converted"),
        ("closed - not converted", None, "disqualified"),
        ("Meeting Booked", None, "meeting_booked"),
        ("IN_PROGRESS", "lead", "working"),
        ("UNQUALIFIED", "other", "disqualified"),
        (None, "salesqualifiedlead", "meeting_booked"),  # no lead status: the lifecycle stage
        (None, None, "unknown"),
        ("Recycled", "lead", "unmapped"),
    ]
    leads = _leads(
        [
            {"crm_id": str(i), "status": s, "lifecycle": lc, "created_at": T0}
            for i, (s, lc, _) in enumerate(raw)
        ]
    )
    clean = clean_frames(_frames(leads))
    assert list(clean.leads["status"]) == [expected for *_, expected in raw]
    assert [None if pd.isna(s) else s for s in clean.leads["status_raw"]] == [s for s, *_ in raw]
    assert clean.hygiene.unmapped == {"Lead.status": {"Recycled": 1}}

    mapped = clean_frames(_frames(leads), HygieneConfig(status_map={"Recycled": "nurture"}))
    assert mapped.leads["status"].iloc[-1] == "nurture"
    assert mapped.hygiene.unmapped == {}
    assert {"Open - Not Contacted", "Working - Contacted", "Closed - Converted"} <= set(
        DEFAULT_STATUS_MAP
    )


def test_a_mapping_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        HygieneConfig(status_map={"Recycled": "recycled"})
    with pytest.raises(ValueError, match="unknown hygiene settings"):
        HygieneConfig.from_settings({"status_mapping": {}})


def test_cleaning_clean_frames_changes_nothing() -> None:
    leads = _leads(
        [
            {"crm_id": "a", "email": "a@x.com", "status": "Working - Contacted", "created_at": T0},
            {"crm_id": "b", "email": "A@x.com", "status": "NEW", "created_at": T0},
        ]
    )
    once = clean_frames(_frames(leads, [("b", "call", 1)]))
    twice = clean_frames(once)
    pd.testing.assert_frame_equal(once.leads, twice.leads)
    pd.testing.assert_frame_equal(once.touches, twice.touches)
    assert twice.aliases.to_dict() == {"b": "a"}
    assert twice.hygiene.merged == 0


def test_load_frames_cleans_with_the_connections_own_mapping(store) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with store.session() as session:
        connection = Connection(
            name="sf", crm="salesforce",
            settings={"hygiene": {"status_map": {"Recycled": "nurture"}}},
        )  # fmt: skip
        session.add(connection)
        session.flush()
        cid = connection.id
        common = {"connection_id": cid, "crm_object": "Lead", "crm_modified_at": now}
        session.add_all(
            [
                Lead(crm_id="00Q1", email="Kim@Acme.com", status="Recycled",
                     title="VP Marketing", created_at=now, **common),
                Lead(crm_id="00Q2", email="kim@acme.com", status="Open - Not Contacted",
                     created_at=now, raw={"lifecyclestage": "lead"}, **common),
            ]
        )  # fmt: skip
        session.add(
            Touch(connection_id=cid, crm_object="Task", crm_id="t1", lead_crm_id="00Q2",
                  type="call", channel="phone", occurred_at=now, crm_modified_at=now)
        )  # fmt: skip
        session.add(
            Engagement(connection_id=cid, crm_object="Task", crm_id="e1", lead_crm_id="00Q2",
                       kind="form_fill", occurred_at=now, crm_modified_at=now)
        )  # fmt: skip
        session.add(
            Outcome(connection_id=cid, crm_object="Event", crm_id="o1", lead_crm_id="00Q2",
                    kind="meeting_booked", occurred_at=now, crm_modified_at=now)
        )  # fmt: skip

    frames = load_frames(store, cid)

    assert list(frames.leads["crm_id"]) == ["00Q1"]
    lead = frames.leads.iloc[0]
    assert (lead["status"], lead["seniority"], lead["department"]) == ("nurture", "vp", "marketing")
    assert frames.hygiene.duplicates == {"email": 1}
    # The leads are cleaned while the events load; the report still counts the events moved.
    assert frames.hygiene.repointed == {"touches": 1, "engagements": 1, "outcomes": 1}
    assert {"00Q1"} == set(frames.touches["lead_crm_id"]) == set(frames.outcomes["lead_crm_id"])
    assert set(frames.engagements["lead_crm_id"]) == {"00Q1"}
