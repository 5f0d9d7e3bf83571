"""As-of features: nothing after a row's cut-off counts, and each feature means what it says."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from connectors.sandbox.ids import decode_sf_serials
from integration.connections import build_connector, get_connection
from integration.features import (
    DECAY_DAYS,
    FEATURES,
    NUMERIC,
    SNAPSHOT_AGES_DAYS,
    Frames,
    build_features,
    frames_from_seed,
    load_frames,
    training_panel,
)
from integration.pipeline import run_sync
from integration.progress import NullReporter
from integration.world import generate_world
from tests.integration.conftest import NOW, make_rig

T0 = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def small_world():
    return generate_world(n_leads=600, seed=5)


@pytest.fixture(scope="module")
def seeded(small_world) -> Frames:
    return frames_from_seed(small_world.seed)


def _day(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def _frames(
    engagements=(), touches=(), outcomes=(), leads=None, accounts=None
) -> Frames:  # fmt: skip
    leads = leads if leads is not None else pd.DataFrame(
        {
            "crm_id": ["a", "b"], "account_crm_id": ["acc", "acc"],
            "email_domain": ["acme.com", "gmail.com"], "title": ["VP Sales", None],
            "phone": ["1", None], "source": ["Web Form", None],
            "created_at": [_day(0), _day(0)],
        }
    )  # fmt: skip
    accounts = accounts if accounts is not None else pd.DataFrame(
        {"crm_id": ["acc"], "industry": ["Software"], "employees": [120], "size_band": ["51-200"],
         "region": ["NA"], "tier": ["A"]}
    )  # fmt: skip

    def table(rows, kind):
        return pd.DataFrame(
            {
                "lead_crm_id": [r[0] for r in rows],
                kind: [r[1] for r in rows],
                "occurred_at": pd.to_datetime([_day(r[2]) for r in rows], utc=True),
                **({"status": [r[3] if len(r) > 3 else "completed" for r in rows]}
                   if kind == "type" else {}),
            }
        )  # fmt: skip

    return Frames(
        leads, accounts, table(touches, "type"), table(engagements, "kind"),
        table(outcomes, "kind"),
    )  # fmt: skip


def _one(frames: Frames, lead: str = "a", cutoff: float = 30.0) -> pd.Series:
    panel = pd.DataFrame({"lead_crm_id": [lead], "cutoff": [_day(cutoff)]})
    return build_features(frames, panel).iloc[0]


def test_the_feature_spec_is_shared_and_complete(seeded) -> None:
    panel = training_panel(seeded, seeded.leads["created_at"].max(), 21)
    X = build_features(seeded, panel[["lead_crm_id", "cutoff"]])
    assert list(X.columns) == list(FEATURES)
    numeric = X[list(NUMERIC)].to_numpy(float)
    assert np.isfinite(numeric).all()
    assert "email_opt_out" not in FEATURES and "status" not in FEATURES


def test_appending_later_events_outcomes_and_leads_changes_no_feature(seeded) -> None:
    """The leakage guard: anything dated after a row's cut-off is invisible to that row."""
    rng = np.random.default_rng(0)
    leads = seeded.leads.sample(200, random_state=1)
    panel = pd.concat(
        [
            pd.DataFrame(
                {
                    "lead_crm_id": leads["crm_id"].to_numpy(),
                    "cutoff": (leads["created_at"] + pd.Timedelta(days=days)).to_numpy(),
                }
            )
            for days in (1, 29)
        ],
        ignore_index=True,
    )
    before = build_features(seeded, panel)

    last_cutoff = panel.groupby("lead_crm_id")["cutoff"].max()
    ids = last_cutoff.index.to_numpy()
    # After every cut-off of the panel: colleagues' history counts for a lead's account too.
    later = pd.Series(panel["cutoff"].max(), index=range(len(ids))) + pd.to_timedelta(
        rng.uniform(1e-3, 30, len(ids)), unit="D"
    )
    n = len(ids)

    def extra(kinds: tuple[str, ...], column: str = "kind") -> pd.DataFrame:
        return pd.DataFrame(
            {"lead_crm_id": ids, column: rng.choice(kinds, n), "occurred_at": later}
        )

    engagements = extra(("pricing_page_visit", "form_fill", "email_click", "unsubscribe"))
    touches = extra(("email", "call", "linkedin", "offer"), "type").assign(status="bounced")
    outcomes = extra(("meeting_booked", "disqualified", "bounced", "unsubscribed"))
    account = seeded.leads.set_index("crm_id").loc[ids, "account_crm_id"].to_numpy()
    newcomers = pd.DataFrame(
        {"crm_id": [f"new{i}" for i in range(n)], "account_crm_id": account, "created_at": later}
    )
    grown = Frames(
        pd.concat([seeded.leads, newcomers], ignore_index=True),
        seeded.accounts,
        pd.concat([seeded.touches, touches], ignore_index=True),
        pd.concat([seeded.engagements, engagements], ignore_index=True),
        pd.concat(
            [
                seeded.outcomes,
                outcomes,
                # A new colleague's meeting, after the cut-off too.
                pd.DataFrame(
                    {
                        "lead_crm_id": newcomers["crm_id"],
                        "kind": "meeting_booked",
                        "occurred_at": later,
                    }
                ),
            ],
            ignore_index=True,
        ),
    )
    after = build_features(grown, panel)
    pd.testing.assert_frame_equal(before, after)
    # The same events dated at the cut-off itself do count: the guard is not vacuous.
    at_cutoff_rows = engagements.assign(occurred_at=last_cutoff.reset_index(drop=True))
    at_cutoff = Frames(
        seeded.leads, seeded.accounts, seeded.touches,
        pd.concat([seeded.engagements, at_cutoff_rows]), seeded.outcomes,
    )  # fmt: skip
    moved = build_features(at_cutoff, panel)
    assert (moved["eng_decay"] > before["eng_decay"]).mean() > 0.4


def test_features_are_deterministic_and_independent_of_row_order(seeded) -> None:
    panel = training_panel(seeded, seeded.leads["created_at"].max(), 21).head(600)
    panel = panel[["lead_crm_id", "cutoff"]]
    first = build_features(seeded, panel)
    shuffled = panel.sample(frac=1.0, random_state=3)
    second = build_features(seeded, shuffled)
    second.index = shuffled.index
    pd.testing.assert_frame_equal(first, second.sort_index())


def test_one_cut_off_per_lead_is_answered_as_a_panel_of_many_would_be(seeded) -> None:
    # A scoring pass asks about each lead once (one pass over the events per question); a
    # training panel asks about leads several times (a binary search per row). Both must
    # give the same features: build the pass's rows alone, and again inside a panel that
    # also holds each lead at a second cut-off.
    # A cut-off inside the history: many events come after it and must not count.
    now = seeded.leads["created_at"].quantile(0.8)
    ids = seeded.leads["crm_id"].to_numpy()
    scoring = pd.DataFrame({"lead_crm_id": ids, "cutoff": now})
    earlier = pd.DataFrame({"lead_crm_id": ids, "cutoff": now - pd.Timedelta(days=20)})
    mixed = pd.concat([scoring, earlier], ignore_index=True)
    alone = build_features(seeded, scoring)
    within = build_features(seeded, mixed).iloc[: len(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, within, check_exact=False, rtol=1e-12, atol=1e-12)
    assert alone["eng_decay"].gt(0).mean() > 0.3 and alone["acct_leads"].gt(0).mean() > 0.3
    # Every lead at the same cut-off, but some asked about twice: still one answer each.
    repeated = build_features(seeded, pd.concat([scoring, scoring.head(50)], ignore_index=True))
    pd.testing.assert_frame_equal(repeated.iloc[: len(ids)], alone)
    pd.testing.assert_frame_equal(
        repeated.iloc[len(ids) :].reset_index(drop=True), alone.head(50), check_index_type=False
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_a_build_in_slices_equals_one_build(seeded, monkeypatch, threads) -> None:
    """Slices of the panel, in turn or side by side in threads, give the one-slice build:
    every cache a slice fills answers for its own rows only."""
    from integration import features

    now = seeded.leads["created_at"].quantile(0.8)
    ids = seeded.leads["crm_id"].to_numpy()
    scoring = pd.DataFrame({"lead_crm_id": ids, "cutoff": now})
    panel = training_panel(seeded, seeded.leads["created_at"].max(), 21)[["lead_crm_id", "cutoff"]]
    for rows in (scoring, panel.reset_index(drop=True)):
        whole = build_features(seeded, rows)
        monkeypatch.setattr(features, "BUILD_ROWS", 37)
        monkeypatch.setattr(features, "BUILD_THREADS", threads)
        sliced = build_features(seeded, rows)
        monkeypatch.undo()
        pd.testing.assert_frame_equal(sliced, whole)


def test_counts_windows_decay_and_recency() -> None:
    frames = _frames(
        engagements=[
            ("a", "pricing_page_visit", 16.0),  # 14 days before the cut-off
            ("a", "pricing_page_visit", 28.0),
            ("a", "page_view", -3.0),  # before the lead existed
            ("a", "page_view", 31.0),  # after the cut-off
            ("a", "form_fill", 30.0 + 1e-8),  # a millisecond after it
        ],
        touches=[("a", "call", 20.0, "no_answer"), ("a", "email", 25.0)],
    )
    row = _one(frames, "a", cutoff=30.0)
    assert row["eng_pricing_page_visit_all"] == 2
    assert row["eng_pricing_page_visit_7d"] == 1 and row["eng_pricing_page_visit_30d"] == 2
    assert row["eng_pricing_page_visit_decay"] == pytest.approx(
        math.exp(-14 / DECAY_DAYS) + math.exp(-2 / DECAY_DAYS)
    )
    assert row["eng_pricing_page_visit_days_since_last"] == pytest.approx(2.0)
    assert row["eng_page_view_all"] == 1 and row["eng_before_created"] == 1
    assert row["eng_form_fill_all"] == 0
    assert row["eng_days_since_first"] == pytest.approx(33.0)
    assert row["eng_kinds"] == 2
    assert row["eng_after_touch"] == 1  # the pricing visit on day 28, after the call on day 20
    assert row["touch_call_all"] == 1 and row["touch_email_all"] == 1
    assert row["touch_no_answer"] == 1 and row["touched"] == 1
    assert row["touch_days_since_first"] == pytest.approx(10.0)
    assert row["age_days"] == pytest.approx(30.0)
    quiet = _one(frames, "b", cutoff=30.0)
    assert quiet["eng_days_since_last"] == 999.0 and quiet["touched"] == 0


def test_fit_attributes_and_missing_indicators() -> None:
    frames = _frames()
    a, b = _one(frames, "a"), _one(frames, "b")
    assert (a["tier"], a["seniority"], a["department"], a["source"]) == (
        "A",
        "vp",
        "sales",
        "Web Form",
    )
    assert (a["free_mail"], a["missing_title"], a["missing_phone"]) == (0.0, 0.0, 0.0)
    assert a["log_employees"] == pytest.approx(math.log1p(120))
    assert (b["seniority"], b["source"]) == ("unknown", "unknown")
    assert (b["free_mail"], b["missing_title"], b["missing_phone"], b["missing_source"]) == (
        1.0, 1.0, 1.0, 1.0,
    )  # fmt: skip


def test_sequences_follow_the_order_of_events() -> None:
    pricing_first = _frames(
        engagements=[("a", "pricing_page_visit", 5.0), ("a", "form_fill", 6.0),
                     ("b", "form_fill", 5.0), ("b", "pricing_page_visit", 6.0)]
    )  # fmt: skip
    assert _one(pricing_first, "a")["eng_pricing_then_form"] == 1
    assert _one(pricing_first, "b")["eng_pricing_then_form"] == 0
    clicks = _frames(engagements=[("a", "email_click", 5.0), ("a", "pricing_page_visit", 6.0)])
    assert _one(clicks, "a")["eng_click_then_pricing"] == 1
    assert _one(clicks, "a", cutoff=5.5)["eng_click_then_pricing"] == 0


def test_negative_signals_count_only_once_dated() -> None:
    frames = _frames(
        engagements=[("a", "unsubscribe", 10.0), ("b", "unsubscribe", 40.0)],
        touches=[("b", "email", 3.0, "bounced")],
        outcomes=[("a", "bounced", 12.0), ("b", "disqualified", 2.0)],
    )
    a, b = _one(frames, "a", 30.0), _one(frames, "b", 30.0)
    assert (a["unsubscribed"], a["bounced"]) == (1.0, 1.0)
    assert (b["unsubscribed"], b["bounced"]) == (0.0, 1.0)  # b unsubscribes after the cut-off
    assert _one(frames, "a", 11.0)["bounced"] == 0.0
    # b's disqualification is a colleague's history for a, never b's own.
    assert (a["acct_disqualified"], b["acct_disqualified"]) == (1.0, 0.0)
    assert (a["acct_leads"], b["acct_leads"]) == (1.0, 1.0)


def test_an_unknown_lead_gets_neutral_values() -> None:
    row = _one(_frames(), "nobody")
    assert row["tier"] == "unknown" and row["age_days"] == 0 and row["touched"] == 0


def test_the_training_panel_keeps_open_leads_and_labels_the_window(seeded, small_world) -> None:
    now = small_world.seed.now
    panel = training_panel(seeded, now, 21)
    assert set(panel["snapshot_age"]) <= set(SNAPSHOT_AGES_DAYS)
    assert (panel["cutoff"] + pd.Timedelta(days=21) <= now).all()
    meetings = seeded.outcomes[seeded.outcomes["kind"] == "meeting_booked"]
    first = meetings.groupby("lead_crm_id")["occurred_at"].min()
    met = first.reindex(panel["lead_crm_id"]).reset_index(drop=True)
    cutoff = panel["cutoff"].reset_index(drop=True)
    in_window = (met > cutoff) & (met <= cutoff + pd.Timedelta(days=21))
    assert (panel["label"].to_numpy() == in_window.to_numpy()).all()
    assert panel["label"].sum() > 0


def test_frames_from_a_seed_match_what_a_salesforce_sync_stores(tmp_path) -> None:
    """The benchmark's CRM-less frames are the frames the pipeline sees after a real sync."""
    world = generate_world(n_leads=300, seed=3, now=NOW)
    with make_rig(world, tmp_path) as rig:
        connection = get_connection(rig.store, rig.connect("salesforce"))
        connector = build_connector(rig.store, rig.settings, connection)
        run_sync(rig.store, rig.settings, connection, connector, NullReporter())
        synced = load_frames(rig.store, connection.id)
    seeded = frames_from_seed(world.seed)

    assert synced.hygiene.duplicates == {
        "converted": (world.seed.leads["status"] == "converted").sum()
    }
    ids = synced.leads["crm_id"].to_numpy()
    keys = decode_sf_serials(ids.astype(object), "00Q") - 1
    at = pd.Timestamp(NOW) - pd.Timedelta(days=90)
    via_sync = build_features(synced, pd.DataFrame({"lead_crm_id": ids, "cutoff": at}))
    via_seed = build_features(
        seeded, pd.DataFrame({"lead_crm_id": [f"L{k}" for k in keys], "cutoff": at})
    )
    # The Salesforce connector files Mexico under NA (connectors.normalize); the world, LATAM.
    columns = [c for c in FEATURES if c != "region"]
    pd.testing.assert_frame_equal(via_sync[columns], via_seed[columns])
    kinds = synced.outcomes["kind"].value_counts().to_dict()
    assert kinds == seeded.outcomes["kind"].value_counts().to_dict()
