"""Hygiene at scale: the vectorised cleaning gives exactly what the row-by-row one gave.

The reference below is the implementation `integration.modeling.hygiene` replaced,
kept verbatim: every frame, dtype, alias and report entry must come out the same,
on data as dirty as a CRM gets (spellings, blanks, Unicode, converted contacts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from integration.features import Frames
from integration.modeling import hygiene
from integration.modeling.hygiene import (
    DEPARTMENT_RULES,
    EXAMPLES,
    SENIORITY_RULES,
    HygieneConfig,
    HygieneReport,
    _key,
)

# -- the reference: the implementation before vectorising (verbatim) --------------------


def _classify(titles: pd.Series, rules: tuple[tuple[str, str], ...], default: str) -> pd.Series:
    """Label per title; the regexes run once per distinct title, not once per lead."""
    codes, uniques = pd.factorize(titles.astype(object), use_na_sentinel=True)
    lowered = pd.Series(pd.Index(uniques).astype(str), dtype=object).str.lower()
    labels = pd.Series(default, index=lowered.index, dtype=object)
    decided = pd.Series(False, index=lowered.index)
    for label, pattern in rules:
        hit = lowered.str.contains(pattern, regex=True) & ~decided
        labels[hit] = label
        decided |= hit
    labels[lowered.str.strip() == ""] = "unknown"
    lookup = np.append(labels.to_numpy(dtype=object), "unknown")
    return pd.Series(lookup[codes], index=titles.index, dtype=object)


def seniority(titles: pd.Series) -> pd.Series:
    """Normalised seniority per job title (blank → ``unknown``)."""
    return _classify(titles, SENIORITY_RULES, "individual")


def department(titles: pd.Series) -> pd.Series:
    """Normalised department per job title (blank → ``unknown``, no match → ``other``)."""
    return _classify(titles, DEPARTMENT_RULES, "other")


def normalise_statuses(
    raw: pd.Series, mapping: Mapping[str, str]
) -> tuple[pd.Series, dict[str, int]]:
    """Normalised status per raw value, and the unmapped raw values with their counts."""
    codes, uniques = pd.factorize(raw.astype(object), use_na_sentinel=True)
    keys = [_key(u) for u in uniques]
    mapped = np.array([mapping.get(k, "unmapped") for k in keys] + ["unknown"], dtype=object)
    out = pd.Series(mapped[codes], index=raw.index, dtype=object)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    unmapped = {
        str(u): int(c) for u, k, c in zip(uniques, keys, counts, strict=True) if k not in mapping
    }
    return out, unmapped


def reference_person_of(leads: pd.DataFrame, config: HygieneConfig) -> np.ndarray:
    """The person (a component label) of each lead row: rows hygiene merges share one."""
    return _people(leads, config)[0]


def _people(leads: pd.DataFrame, config: HygieneConfig):
    """Person label per row, whether each row is a converted lead's Contact, and the
    key links (rows, key nodes, each key's rule) the labels came from.

    Records are nodes; each shared key (email, name@domain, converted-contact id) is
    a node too; connected components are the people.
    """
    n = len(leads)
    ids = leads["crm_id"].astype(str).to_numpy()
    rows, keys, rule_of_key = [], [], []
    offset = n

    def link(key: pd.Series, rule: str) -> None:
        nonlocal offset
        codes, uniques = pd.factorize(key, use_na_sentinel=True)
        have = codes >= 0
        rows.append(np.flatnonzero(have))
        keys.append(codes[have] + offset)
        rule_of_key.append(np.full(len(uniques), rule, dtype=object))
        offset += len(uniques)

    email = _column(leads, "email").astype(object)
    normal_email = email.where(email.isna(), email.astype(str).str.strip().str.casefold())
    normal_email = normal_email.where(normal_email.str.contains("@", regex=False, na=False))
    if config.dedupe_by_email:
        link(normal_email, "email")
    if config.dedupe_by_name:
        domain = normal_email.str.rsplit("@", n=1).str[-1]
        first = _column(leads, "first_name").astype(object).str.strip().str.casefold()
        last = _column(leads, "last_name").astype(object).str.strip().str.casefold()
        usable = (
            domain.notna()
            & ~domain.isin(config.free_mail)
            & first.fillna("").ne("")
            & last.fillna("").ne("")
        )
        name_key = (first + "\x1f" + last + "\x1f" + domain).where(usable)
        link(name_key, "name")
    converted = _column(leads, "converted_contact_crm_id").astype(object)
    is_target = pd.Series(ids).isin(set(converted.dropna().astype(str))).to_numpy()
    # A converted lead and its Contact share a key: the Contact's own id.
    contact_key = pd.Series(
        np.where(is_target, ids, converted.astype(str).where(converted.notna()).to_numpy()),
        dtype=object,
    )
    link(contact_key, "converted")

    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(row.shape[0]), (row, col)), shape=(offset, offset))
    _, label = connected_components(graph, directed=False)
    return label[:n], is_target, (row, col, rule_of_key, offset)


def _canonical(leads: pd.DataFrame, config: HygieneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Canonical row per lead row, and the rule that linked each merged row."""
    n = len(leads)
    ids = leads["crm_id"].astype(str).to_numpy()
    person, is_target, (row, col, rule_of_key, offset) = _people(leads, config)
    label = person

    created = pd.to_datetime(_column(leads, "created_at"), utc=True)
    created_ns = created.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    created_ns = np.where(created.isna().to_numpy(), np.iinfo(np.int64).max, created_ns)
    # Earliest created first; a converted Contact never becomes canonical over its Lead.
    order = np.lexsort((ids, created_ns, is_target, person))
    first_of_person = np.full(label.max() + 1 if n else 0, -1)
    first_of_person[person[order[::-1]]] = order[::-1]
    canonical = first_of_person[person]

    # The rule that linked a merged row: the first of its keys another row shares.
    rule = np.full(n, None, dtype=object)
    all_rules = np.concatenate(rule_of_key) if rule_of_key else np.zeros(0, dtype=object)
    shared = np.bincount(col - n, minlength=offset - n)[col - n] > 1
    for name in ("converted", "email", "name"):
        linked = row[shared & (all_rules[col - n] == name)]
        linked = linked[(canonical[linked] != linked) & pd.isna(rule[linked])]
        rule[linked] = name
    return canonical, rule


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].reset_index(drop=True)
    return pd.Series([None] * len(frame), dtype=object)


def _repoint(events: pd.DataFrame, alias: pd.Series) -> tuple[pd.DataFrame, int]:
    if events.empty or alias.empty:
        return events, 0
    target = alias.reindex(events["lead_crm_id"].astype(str).to_numpy()).to_numpy()
    moved = pd.notna(target)
    if not moved.any():
        return events, 0
    out = events.copy()
    out["lead_crm_id"] = np.where(moved, target, events["lead_crm_id"].to_numpy())
    return out, int(moved.sum())


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts(sort=True).items()}


def reference_clean_frames(frames: Frames, config: HygieneConfig | None = None) -> Frames:
    """The frames with duplicates collapsed, titles and statuses normalised.

    Adds to ``leads``: ``seniority``, ``department``, ``status`` (normalised),
    ``status_raw``, ``lifecycle`` (normalised), ``lifecycle_raw``. The returned
    frames carry ``aliases`` (merged crm_id → canonical crm_id) and ``hygiene``
    (the `HygieneReport`). Idempotent: cleaning clean frames changes nothing.
    """
    config = config or HygieneConfig()
    leads = frames.leads.reset_index(drop=True)
    n = len(leads)
    canonical, rule = _canonical(leads, config)
    ids = leads["crm_id"].astype(str).to_numpy()
    merged = canonical != np.arange(n)
    alias = pd.Series(ids[canonical[merged]], index=ids[merged], dtype=object)
    duplicates = {str(k): int(v) for k, v in pd.Series(rule[merged]).value_counts().items()}
    examples = []
    for target in pd.unique(canonical[merged])[:EXAMPLES]:
        members = np.flatnonzero((canonical == target) & merged)
        examples.append(
            {
                "canonical": ids[target],
                "merged": [ids[m] for m in members],
                "rule": sorted({str(rule[m]) for m in members}),
            }
        )
    kept = leads.loc[~merged].copy()

    titles = _column(kept, "title")
    kept["seniority"] = seniority(titles).to_numpy()
    kept["department"] = department(titles).to_numpy()
    status_raw = _column(kept, "status_raw" if "status_raw" in kept.columns else "status")
    lifecycle_raw = _column(
        kept, "lifecycle_raw" if "lifecycle_raw" in kept.columns else "lifecycle"
    )
    status, unmapped_status = normalise_statuses(status_raw, config.statuses())
    lifecycle, unmapped_lifecycle = normalise_statuses(lifecycle_raw, config.lifecycles())
    # A record without a lead status (a HubSpot contact, a Contact) reads its lifecycle stage.
    status = status.where(status != "unknown", lifecycle)
    kept["status_raw"] = status_raw.to_numpy()
    kept["status"] = status.to_numpy()
    kept["lifecycle_raw"] = lifecycle_raw.to_numpy()
    kept["lifecycle"] = lifecycle.to_numpy()
    kept = kept.reset_index(drop=True)

    touches, n_touches = _repoint(frames.touches, alias)
    engagements, n_engagements = _repoint(frames.engagements, alias)
    outcomes, n_outcomes = _repoint(frames.outcomes, alias)
    unmapped = {}
    if unmapped_status:
        unmapped["Lead.status"] = unmapped_status
    if unmapped_lifecycle:
        unmapped["Lead.lifecycle"] = unmapped_lifecycle
    report = HygieneReport(
        leads_in=n,
        leads_out=len(kept),
        duplicates=duplicates,
        duplicate_examples=examples,
        repointed={"touches": n_touches, "engagements": n_engagements, "outcomes": n_outcomes},
        seniority=_counts(kept["seniority"]),
        department=_counts(kept["department"]),
        unclassified_titles=_unmatched(titles),
        statuses=_counts(kept["status"]),
        lifecycles=_counts(kept["lifecycle"]),
        unmapped=unmapped,
    )
    previous = frames.aliases
    if previous is not None and len(previous):
        # Cleaning twice: earlier aliases follow their canonical lead if it merged too.
        moved = alias.reindex(previous.to_numpy())
        earlier = pd.Series(
            np.where(moved.notna(), moved.to_numpy(), previous.to_numpy()), index=previous.index
        )
        alias = pd.concat([earlier, alias])
    return replace(
        frames,
        leads=kept,
        touches=touches,
        engagements=engagements,
        outcomes=outcomes,
        aliases=alias,
        hygiene=report,
    )


def _unmatched(titles: pd.Series) -> list[str]:
    """A few non-blank titles no seniority rule matched (they read as individual)."""
    distinct = pd.Series(pd.unique(titles.dropna().astype(str)), dtype=object)
    distinct = distinct[distinct.str.strip() != ""]
    pattern = "|".join(f"(?:{p})" for _, p in SENIORITY_RULES)
    return distinct[~distinct.str.lower().str.contains(pattern, regex=True)].head(EXAMPLES).tolist()


# -- dirty data ----------------------------------------------------------------------------

T0 = pd.Timestamp("2026-01-01", tz="UTC")
FIRST = ["Ann", "ann ", " ANN", "José", "JOSÉ", "Straße", "STRASSE", "İsmail", "ismail",
         "Zoë", "Ann\u00a0", "\tBo", "Bo\x1c", "Li\x1fMei", "", None]  # fmt: skip
LAST = ["Lee", "LEE", "lee\n", "Müller", "MÜLLER", "O'Brien", "Li\x1f", "Mei", "", None]
DOMAINS = ["acme.com", "ACME.com", "gmail.com", "Gmail.com", "büro.de", "proton.me", "x.io"]
TITLES = ["VP Sales", "vp sales", "  Head of Growth ", "Chief Happiness Officer", "Accountant",
          "Directeur Général", "SOFTWARE ENGINEER", "", "   ", None, "Team Lead, IT"]  # fmt: skip
STATUSES = ["Open - Not Contacted", "open -  not contacted", " Working - Contacted",
            "IN_PROGRESS", "Closed - Converted", "Meeting Booked", "Recycled", "junk",
            "UNQUALIFIED", "", None, None]  # fmt: skip
STAGES = ["lead", "marketingqualifiedlead", " Customer ", "weird_stage", "opportunity", None]


def dirty_frames(n: int = 1500, seed: int = 0, kind: str = "str") -> Frames:
    """Leads with duplicates in every spelling hygiene knows, and their events."""
    rng = np.random.default_rng(seed)

    def pick(values: list, size: int = n) -> list:
        return [values[i] for i in rng.integers(0, len(values), size)]

    first, last, domain = pick(FIRST), pick(LAST), pick(DOMAINS)
    local = [f"{f or 'x'}.{(ln or 'y').strip()}{k}" for f, ln, k in
             zip(first, last, rng.integers(0, 40, n), strict=True)]  # fmt: skip
    email = [f"{u}@{d}" for u, d in zip(local, domain, strict=True)]
    spelled = rng.integers(0, 9, n)
    email = [
        e.upper() if s == 0 else f"  {e}\t" if s == 1 else None if s == 2 else
        e.replace("@", " at ") if s == 3 else "a@" + e if s == 4 else
        f"{e[0]}@x.io" if s == 5 else e  # short ones (under eight bytes) too
        for e, s in zip(email, spelled, strict=True)
    ]  # fmt: skip
    created = T0 + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    crm_id = [f"00Q{i}" for i in range(n)]
    crm_object = ["Lead"] * n
    converted: list = [None] * n
    for i in rng.choice(n, n // 20, replace=False):  # Contacts some leads converted into
        crm_object[i], crm_id[i] = "Contact", f"003{i}"
    contacts = [i for i in range(n) if crm_object[i] == "Contact"]
    for i, c in zip(rng.choice(n, len(contacts), replace=False), contacts, strict=True):
        if crm_object[i] == "Lead":
            converted[i] = crm_id[c]
    converted[0] = "003-missing"
    leads = pd.DataFrame(
        {
            "crm_id": crm_id,
            "crm_object": crm_object,
            "account_crm_id": pick(["A1", "A2", None]),
            "email": email,
            "email_domain": domain,
            "first_name": first,
            "last_name": last,
            "company": pick(["Acme", None]),
            "title": pick(TITLES),
            "phone": pick(["+1 555", None]),
            "source": pick(["Web", None]),
            "status": pick(STATUSES),
            "lifecycle": pick(STAGES),
            "created_at": created.where(rng.random(n) > 0.02, pd.NaT),
            "converted_at": pd.NaT,
            "converted_contact_crm_id": pd.Series(converted, dtype=object),
        }
    )
    if kind == "object":
        leads = leads.astype({c: object for c in leads.columns if leads[c].dtype == "str"})
    elif kind == "mixed":  # values no string column would hold: the row-by-row way
        leads = leads.astype({"email": object, "title": object, "first_name": object})
        leads.loc[1, "email"], leads.loc[2, "title"], leads.loc[3, "first_name"] = 5, 3.0, 7

    ids = [*crm_id, "unknown-lead", None]

    def events(column: str, kinds: list[str], size: int) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "lead_crm_id": pick(ids, size),
                column: pick(kinds, size),
                "occurred_at": T0 + pd.to_timedelta(rng.integers(0, 10**6, size), unit="s"),
            }
        )
        return frame.astype({"lead_crm_id": object}) if kind == "object" else frame

    touches = events("type", ["call", "email"], 4 * n).assign(status="completed")
    accounts = pd.DataFrame({"crm_id": ["A1", "A2"], "industry": ["Retail", None]})
    return Frames(
        leads, accounts, touches, events("kind", ["form_fill"], 8 * n), events("kind", ["won"], n)
    )


def assert_same(frames: Frames, config: HygieneConfig | None = None) -> Frames:
    before = {name: getattr(frames, name).copy() for name in ("leads", "touches", "engagements")}
    want = reference_clean_frames(frames, config)
    got = hygiene.clean_frames(frames, config)
    for name in ("leads", "accounts", "touches", "engagements", "outcomes"):
        pd.testing.assert_frame_equal(
            getattr(got, name), getattr(want, name), check_exact=True, check_index_type=True,
            check_column_type=True, obj=name,
        )  # fmt: skip
    pd.testing.assert_series_equal(got.aliases, want.aliases, check_exact=True)
    assert got.hygiene == want.hygiene
    for name, frame in before.items():  # the input is never written to
        pd.testing.assert_frame_equal(getattr(frames, name), frame, check_exact=True)
    return got


@pytest.mark.parametrize("kind", ["str", "object", "mixed"])
def test_dirty_leads_clean_exactly_as_before(kind: str) -> None:
    frames = dirty_frames(kind=kind)

    clean = assert_same(frames)

    report = clean.hygiene
    assert report.merged > 100 and set(report.duplicates) == {"converted", "email", "name"}
    assert report.repointed["engagements"] > 0 and report.unmapped
    assert report.seniority["unknown"] > 0


@pytest.mark.parametrize(
    "config",
    [
        HygieneConfig(dedupe_by_email=False),
        HygieneConfig(dedupe_by_name=False),
        HygieneConfig(dedupe_by_email=False, dedupe_by_name=False),
        HygieneConfig(free_mail=frozenset({"acme.com", "büro.de"})),
        HygieneConfig(
            status_map={"Recycled": "nurture", "JUNK": "disqualified"},
            lifecycle_map={"Weird_Stage": "other"},
        ),
    ],
)
def test_every_setting_cleans_exactly_as_before(config: HygieneConfig) -> None:
    assert_same(dirty_frames(seed=1), config)


def test_cleaning_again_and_the_people_of_a_chunk_are_as_before() -> None:
    frames = dirty_frames(seed=2)
    once = assert_same(frames)
    twice = assert_same(once)  # earlier aliases carried over
    assert twice.hygiene.merged == 0 and twice.aliases.equals(once.aliases)
    assert twice.engagements is once.engagements  # nothing moved: nothing copied
    for config in (HygieneConfig(), HygieneConfig(dedupe_by_name=False)):
        np.testing.assert_array_equal(
            hygiene.person_of(frames.leads, config), reference_person_of(frames.leads, config)
        )


def test_equal_strings_of_any_length_share_a_fingerprint_wherever_they_sit() -> None:
    rng = np.random.default_rng(4)
    words = ["", "a", "ab", "abcdefg", "abcdefgh", "abcdefghi", "x" * 17, "été", "\x00", "a\x00"]
    values = [words[i] for i in rng.integers(0, len(words), 4000)]
    noise = ["".join(rng.choice(list("xyz"), rng.integers(0, 12))) for _ in range(4000)]
    mixed = [v for pair in zip(values, noise, strict=True) for v in pair]  # unequal neighbours
    for strings in (pa.array(mixed), pa.array(mixed, pa.large_string()).slice(3)):
        found = hygiene._fingerprints(strings)
        text = strings.to_pylist()
        first = {}
        for value, number in zip(text, found.tolist(), strict=True):
            assert first.setdefault(value, number) == number, repr(value)
        rows, codes = hygiene._shared(strings)
        repeated = pd.Series(text).duplicated(keep=False).to_numpy()
        np.testing.assert_array_equal(np.flatnonzero(repeated), rows)
        assert pd.factorize(np.asarray(text, dtype=object)[rows])[0].tolist() == codes.tolist()


def test_no_leads_and_no_duplicates_clean_as_before() -> None:
    frames = dirty_frames(seed=3)
    assert_same(replace(frames, leads=frames.leads.iloc[:0]))
    blank = pd.Series([None] * len(frames.leads), dtype="str")  # a column of no value
    unique = frames.leads.assign(email=None, converted_contact_crm_id=None, lifecycle=blank)
    assert assert_same(replace(frames, leads=unique)).hygiene.merged == 0
