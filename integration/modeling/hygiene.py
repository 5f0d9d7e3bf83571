"""Data hygiene applied to the store's frames before anything learns or scores.

Three repairs, each reported, none written back to the CRM:

* **Duplicate people** collapse to one canonical lead: the same email address
  (case-insensitive), the same first + last name at the same business email
  domain (never at a free-mail domain, where two John Smiths at gmail.com are
  two people), or a Salesforce Contact that a Lead was converted into. The
  canonical record is the earliest created one (a converted Contact never wins
  over its Lead); the others' touches, engagements and outcomes are re-pointed
  to it, and their own rows leave the lead table. Only timestamped rows move,
  so features as of a cut-off still see only what had happened by then.
* **Job titles** become a seniority (``c_level, vp, director, manager,
  individual, unknown``) and a department, by the regular expressions below:
  the one place those rules live.
* **Lead statuses and lifecycle stages** map onto one vocabulary
  (`STATUS_VOCABULARY`) through a configurable table whose defaults cover the
  standard Salesforce Lead statuses and HubSpot's ``hs_lead_status`` and
  ``lifecyclestage`` values; values the table does not know become
  ``"unmapped"`` and are listed in the report, never guessed.

The raw status and lifecycle values stay beside the normalised ones
(``status_raw``, ``lifecycle_raw``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from integration.features import Frames

FREE_MAIL = frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com",
     "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "mail.com", "live.com",
     "me.com", "msn.com", "web.de", "yandex.ru", "qq.com"}
)  # fmt: skip

SENIORITIES = ("c_level", "vp", "director", "manager", "individual", "unknown")
# First match wins, top to bottom; a title matching none is "individual", a blank one "unknown".
SENIORITY_RULES = (
    (
        "c_level",
        r"\b(?:chief|ceo|cfo|cto|cmo|coo|cio|ciso|cro|cso|founder|co-?founder|owner"
        r"|(?<!vice )(?<!vice-)president"
        r"|managing director|general manager)\b",
    ),
    ("vp", r"\b(?:vp|svp|evp|avp|vice[- ]president)\b"),
    ("director", r"\b(?:director|head of|dir\.?)\b"),
    ("manager", r"\b(?:manager|mgr|lead|supervisor|team lead)\b"),
)
DEPARTMENT_RULES = (
    ("it", r"\b(?:it|information|systems|ciso|cio|security|infrastructure|network)\b"),
    ("engineering", r"\b(?:engineer\w*|developer|cto|software|devops|technology|architect)\b"),
    ("sales", r"\b(?:sales|account executive|account manager|business development|cro|revenue"
              r"|sdr|bdr)\b"),
    ("marketing", r"\b(?:marketing|marketer|cmo|growth|brand|demand|content)\b"),
    ("finance", r"\b(?:finance|financial|cfo|controller|accounting|accountant)\b"),
    ("operations", r"\b(?:operations|coo|supply|logistics|procurement)\b"),
)  # fmt: skip

STATUS_VOCABULARY = (
    "new",
    "working",
    "nurture",
    "qualified",
    "meeting_booked",
    "converted",
    "customer",
    "disqualified",
    "other",
    "unknown",  # blank
    "unmapped",  # a value the mapping does not know (listed in the report)
)
# Keys are compared case-insensitively with whitespace collapsed.
DEFAULT_STATUS_MAP: dict[str, str] = {
    # Salesforce's standard Lead.Status picklist, plus the common "Meeting Booked".
    "Open - Not Contacted": "new",
    "Working - Contacted": "working",
    "Closed - Converted": "converted",
    "Closed - Not Converted": "disqualified",
    "Meeting Booked": "meeting_booked",
    # Frequent custom Salesforce values.
    "Open": "new",
    "Contacted": "working",
    "Nurturing": "nurture",
    "Qualified": "qualified",
    "Unqualified": "disqualified",
    "Disqualified": "disqualified",
    # HubSpot hs_lead_status (internal values of the default options).
    "NEW": "new",
    "IN_PROGRESS": "working",
    "ATTEMPTED_TO_CONTACT": "working",
    "CONNECTED": "meeting_booked",
    "OPEN_DEAL": "converted",
    "BAD_TIMING": "nurture",
    "UNQUALIFIED": "disqualified",
}
DEFAULT_LIFECYCLE_MAP: dict[str, str] = {
    # HubSpot lifecyclestage (internal values of the default stages).
    "subscriber": "new",
    "lead": "new",
    "marketingqualifiedlead": "qualified",
    "salesqualifiedlead": "meeting_booked",
    "opportunity": "converted",
    "customer": "customer",
    "evangelist": "customer",
    "other": "other",
}
EXAMPLES = 5


def _key(value: str) -> str:
    return " ".join(str(value).split()).casefold()


@dataclass(frozen=True)
class HygieneConfig:
    """What hygiene does; every vocabulary is data.

    Attributes:
        status_map: extra or overriding raw lead status → normalised status.
        lifecycle_map: extra or overriding raw lifecycle stage → normalised status.
        dedupe_by_email: merge records sharing an email address.
        dedupe_by_name: merge records sharing first + last name at a business domain.
        free_mail: domains where the same name does not mean the same person.
    """

    status_map: Mapping[str, str] = field(default_factory=dict)
    lifecycle_map: Mapping[str, str] = field(default_factory=dict)
    dedupe_by_email: bool = True
    dedupe_by_name: bool = True
    free_mail: frozenset[str] = FREE_MAIL

    def __post_init__(self) -> None:
        bad = {
            v
            for v in (*self.status_map.values(), *self.lifecycle_map.values())
            if v not in STATUS_VOCABULARY
        }
        if bad:
            raise ValueError(f"status mapping targets outside the vocabulary: {sorted(bad)}")

    @classmethod
    def from_settings(cls, values: Mapping[str, Any] | None) -> HygieneConfig:
        """Build from a connection's ``settings["hygiene"]`` (JSON), unknown keys rejected."""
        values = dict(values or {})
        unknown = set(values) - {
            "status_map", "lifecycle_map", "dedupe_by_email", "dedupe_by_name", "free_mail",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"unknown hygiene settings: {sorted(unknown)}")
        if "free_mail" in values:
            values["free_mail"] = frozenset(values["free_mail"])
        return cls(**values)

    def statuses(self) -> dict[str, str]:
        return _merged(DEFAULT_STATUS_MAP, self.status_map)

    def lifecycles(self) -> dict[str, str]:
        return _merged(DEFAULT_LIFECYCLE_MAP, self.lifecycle_map)


def _merged(defaults: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    # Canonical values map to themselves, so an already-normalised frame passes unchanged.
    out = {v: v for v in STATUS_VOCABULARY if v not in ("unknown", "unmapped")}
    out |= {_key(k): v for k, v in defaults.items()}
    out |= {_key(k): v for k, v in overrides.items()}
    return out


@dataclass(frozen=True)
class HygieneReport:
    """What hygiene changed: counts and a few examples per repair (nothing is written back).

    Attributes:
        leads_in, leads_out: lead rows before and after collapsing duplicates.
        duplicates: records merged per rule (``email``, ``name``, ``converted``).
        duplicate_examples: up to five ``{"canonical", "merged", "rule"}`` groups.
        repointed: touches / engagements / outcomes moved to their canonical lead.
        seniority, department: lead counts per normalised value.
        unclassified_titles: up to five titles no rule matched (read as individual).
        statuses, lifecycles: lead counts per normalised value.
        unmapped: raw values the status / lifecycle mapping lacks → lead count.
    """

    leads_in: int
    leads_out: int
    duplicates: dict[str, int]
    duplicate_examples: list[dict[str, Any]]
    repointed: dict[str, int]
    seniority: dict[str, int]
    department: dict[str, int]
    unclassified_titles: list[str]
    statuses: dict[str, int]
    lifecycles: dict[str, int]
    unmapped: dict[str, dict[str, int]]

    @property
    def merged(self) -> int:
        return self.leads_in - self.leads_out

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "merged": self.merged}


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


def person_of(leads: pd.DataFrame, config: HygieneConfig) -> np.ndarray:
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


def clean_frames(frames: Frames, config: HygieneConfig | None = None) -> Frames:
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
