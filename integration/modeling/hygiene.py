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

A million leads take a second or two: titles and statuses are worked once per
distinct value, keys are normalised by Arrow where every implementation agrees
(printable ASCII) and by Python's own string methods elsewhere, only keys whose
cheap fingerprint repeats are hashed as strings, and an event table is rewritten
only when one of its leads merged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def _factorized(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values.astype(object))``: a string column (Arrow) hashes without
    turning every value into a Python object first; anything else as it was."""
    if isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes, np.asarray(uniques, dtype=object)
    return pd.factorize(values.astype(object), use_na_sentinel=True)


def _labels(uniques: np.ndarray, rules: tuple[tuple[str, str], ...], default: str) -> np.ndarray:
    """The label of each distinct title, then ``unknown`` (for a missing one)."""
    lowered = pd.Series(pd.Index(uniques).astype(str), dtype=object).str.lower()
    labels = pd.Series(default, index=lowered.index, dtype=object)
    decided = pd.Series(False, index=lowered.index)
    for label, pattern in rules:
        hit = lowered.str.contains(pattern, regex=True) & ~decided
        labels[hit] = label
        decided |= hit
    labels[lowered.str.strip() == ""] = "unknown"
    return np.append(labels.to_numpy(dtype=object), "unknown")


def _classify(titles: pd.Series, rules: tuple[tuple[str, str], ...], default: str) -> pd.Series:
    """Label per title; the regexes run once per distinct title, not once per lead."""
    codes, uniques = _factorized(titles)
    return pd.Series(_labels(uniques, rules, default)[codes], index=titles.index, dtype=object)


def seniority(titles: pd.Series) -> pd.Series:
    """Normalised seniority per job title (blank → ``unknown``)."""
    return _classify(titles, SENIORITY_RULES, "individual")


def department(titles: pd.Series) -> pd.Series:
    """Normalised department per job title (blank → ``unknown``, no match → ``other``)."""
    return _classify(titles, DEPARTMENT_RULES, "other")


def _statuses(
    raw: pd.Series, mapping: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Per raw value a code into normalised statuses, and the unmapped raw values with
    their counts."""
    codes, uniques = _factorized(raw)
    keys = [_key(u) for u in uniques]
    mapped = np.array([mapping.get(k, "unmapped") for k in keys] + ["unknown"], dtype=object)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    unmapped = {
        str(u): int(c) for u, k, c in zip(uniques, keys, counts, strict=True) if k not in mapping
    }
    return np.where(codes < 0, len(uniques), codes), mapped, unmapped


def normalise_statuses(
    raw: pd.Series, mapping: Mapping[str, str]
) -> tuple[pd.Series, dict[str, int]]:
    """Normalised status per raw value, and the unmapped raw values with their counts."""
    codes, mapped, unmapped = _statuses(raw, mapping)
    return pd.Series(mapped[codes], index=raw.index, dtype=object), unmapped


def _strings(values: pd.Series) -> pa.Array | None:
    """The values as Arrow strings (NA → null), or None when some value is not a string."""
    if values.dtype == object:
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
    elif not isinstance(values.dtype, pd.StringDtype):
        return None
    try:
        out = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _to_arrow(values: pd.Series) -> pa.Array:
    return pa.array(
        [v if isinstance(v, str) else None for v in values.tolist()], type=pa.large_string()
    )


def _folded(values: pd.Series, slow: Callable[[pd.Series], pd.Series]) -> pa.Array:
    """``slow(values)`` (a strip and casefold) as Arrow strings, null where NA: Arrow does
    the printable-ASCII values, ``slow`` itself the rest (a few non-ASCII names)."""
    strings = _strings(values)
    if strings is None:
        return _to_arrow(slow(values))
    # Printable ASCII is where Python's str methods and Arrow's agree whatever pandas
    # dispatches to: " " is the only whitespace, and casefold is lower.
    out = pc.ascii_lower(pc.utf8_trim(strings, " "))
    plain = pc.fill_null(pc.ascii_is_printable(strings), True)
    odd = np.flatnonzero(~plain.to_numpy(zero_copy_only=False))
    if odd.size:
        out = pc.replace_with_mask(out, pc.invert(plain), _to_arrow(slow(values.iloc[odd])))
    return out


def _email_slow(email: pd.Series) -> pd.Series:
    email = email.astype(object)
    return email.where(email.isna(), email.astype(str).str.strip().str.casefold())


def _name_slow(name: pd.Series) -> pd.Series:
    return name.astype(object).str.strip().str.casefold()


def _codes(keys: pa.Array) -> np.ndarray:
    """A code per distinct key (-1: null)."""
    indices = pc.dictionary_encode(keys).indices
    return pc.fill_null(indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_ALL = np.uint64(2**64 - 1)


def _fingerprints(strings: pa.Array) -> np.ndarray:
    """A number per string, equal for equal strings: its length and its first, middle and
    last eight bytes, mixed (null: any number)."""
    strings = strings.cast(pa.large_string())
    _, offsets, data = strings.buffers()
    offset = np.frombuffer(offsets, np.int64, count=len(strings) + 1, offset=8 * strings.offset)
    padded = np.zeros((data.size if data is not None else 0) + 8, dtype=np.uint8)
    if data is not None:
        padded[: data.size] = np.frombuffer(data, np.uint8)
    # The eight bytes from every position (unaligned reads).
    words = np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    start, length = offset[:-1], np.diff(offset)
    # A string under eight bytes is its first eight, the bytes after it masked off.
    width = np.minimum(length, 7).astype(np.uint64) * np.uint64(8)
    keep = np.where(length < 8, (np.uint64(1) << width) - np.uint64(1), _ALL)
    head = words[start] & keep
    tail = words[start + np.maximum(length, 8) - 8] & keep
    middle = words[start + np.maximum(length - 8, 0) // 2] & keep
    return head * _MIX[0] ^ tail * _MIX[1] ^ middle * _MIX[2] ^ length.astype(np.uint64)


def _repeated(values: np.ndarray) -> np.ndarray:
    """Whether each value occurs more than once: a sort finds the repeated values (far
    cheaper than hashing them all), a lookup of those few marks their rows."""
    ordered = np.sort(values)
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    return pd.Series(values).isin(twice).to_numpy(dtype=bool)


def _shared(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key another row may share, and their exact key codes: most keys are
    one row's, so only rows whose fingerprint repeats are hashed as strings."""
    have = np.flatnonzero(keys.is_valid().to_numpy(zero_copy_only=False))
    rows = have[_repeated(_fingerprints(keys)[have])]
    return rows, _codes(keys.take(rows))


RULES = ("converted", "email", "name")  # which rule a merged row reports: the first it shares


class _Links:
    """Rows sharing a key: (row, key node, rule) edges, only for keys two or more rows
    hold (a key of one row links nothing, and most emails are one row's)."""

    def __init__(self, n: int) -> None:
        self.rows: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []
        self.rules: list[np.ndarray] = []
        self.nodes = n

    def add(self, codes: np.ndarray, rule: str, rows: np.ndarray | None = None) -> None:
        """``codes`` of one key per row (of ``rows``, by default all; -1: none)."""
        rows = np.arange(len(codes)) if rows is None else rows
        have = codes >= 0
        rows, codes = rows[have], codes[have]
        if not codes.size:
            return
        count = np.bincount(codes)
        shared = count[codes] > 1
        rows, codes = rows[shared], codes[shared]
        number = np.cumsum(count > 1) - 1  # shared keys numbered from 0
        self.rows.append(rows)
        self.keys.append(self.nodes + number[codes])
        self.rules.append(np.full(rows.size, RULES.index(rule), dtype=np.int8))
        self.nodes += int((count > 1).sum())

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=np.int8)
        return np.concatenate(self.rows), np.concatenate(self.keys), np.concatenate(self.rules)


def person_of(leads: pd.DataFrame, config: HygieneConfig) -> np.ndarray:
    """The person (a component label) of each lead row: rows hygiene merges share one."""
    return _people(leads, config)[0]


def _people(leads: pd.DataFrame, config: HygieneConfig):
    """Person label per row, whether each row is a converted lead's Contact, and the
    key links (rows, key nodes, each link's rule) the labels came from.

    Records are nodes; each shared key (email, name@domain, converted-contact id) is
    a node too; connected components are the people, numbered by their first row.
    """
    n = len(leads)
    links = _Links(n)
    none = pa.scalar(None, pa.large_string())
    if config.dedupe_by_email or config.dedupe_by_name:
        email = _folded(_column(leads, "email"), _email_slow)
        email = pc.if_else(pc.match_substring(email, "@"), email, none)
    if config.dedupe_by_email:
        rows, codes = _shared(email)
        links.add(codes, "email", rows)
    if config.dedupe_by_name:
        domain = pc.list_element(pc.split_pattern(email, "@", max_splits=1, reverse=True), 1)
        first = _folded(_column(leads, "first_name"), _name_slow)
        last = _folded(_column(leads, "last_name"), _name_slow)
        free = pa.array([d for d in config.free_mail if isinstance(d, str)], pa.large_string())
        usable = pc.and_(
            pc.and_(pc.is_valid(domain), pc.invert(pc.is_in(domain, value_set=free))),
            pc.and_(
                pc.not_equal(pc.fill_null(first, ""), ""), pc.not_equal(pc.fill_null(last, ""), "")
            ),
        )
        unit = pa.scalar("\x1f", pa.large_string())
        name_key = pc.binary_join_element_wise(first, last, domain, unit)
        rows, codes = _shared(pc.if_else(usable, name_key, none))
        links.add(codes, "name", rows)
    is_target = np.zeros(n, dtype=bool)
    converted = _column(leads, "converted_contact_crm_id").astype(object)
    has_contact = converted.notna().to_numpy()
    targets = set(converted[has_contact].astype(str))
    ids = leads["crm_id"].astype(str)
    if targets:
        is_target = ids.isin(targets).to_numpy(dtype=bool)
    # A converted lead and its Contact share a key: the Contact's own id.
    rows = np.flatnonzero(is_target | has_contact)
    own = is_target[rows]
    contact_key = np.where(
        own,
        ids.iloc[rows].to_numpy(dtype=object),
        converted.iloc[rows].astype(str).to_numpy(dtype=object),
    )
    links.add(pd.factorize(pd.Series(contact_key, dtype=object))[0], "converted", rows)

    row, col, rule = links.edges()
    if not row.size:
        return np.arange(n), is_target, (row, col, rule)
    graph = coo_matrix((np.ones(row.size), (row, col)), shape=(links.nodes, links.nodes))
    _, label = connected_components(graph, directed=False)
    return label[:n], is_target, (row, col, rule)


def _canonical(leads: pd.DataFrame, config: HygieneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Canonical row per lead row, and the rule that linked each merged row."""
    n = len(leads)
    person, is_target, (row, _, link_rule) = _people(leads, config)
    canonical = np.arange(n)
    # Only people of two or more rows have a canonical row to choose.
    many = np.flatnonzero(np.bincount(person, minlength=1)[person] > 1)
    if many.size:
        ids = leads["crm_id"].iloc[many].astype(str).to_numpy()
        created_at = _column(leads, "created_at")
        if isinstance(created_at.dtype, pd.DatetimeTZDtype) or created_at.dtype.kind == "M":
            created = pd.to_datetime(created_at.iloc[many], utc=True)
        else:  # parsed whole, as the format is inferred from the column
            created = pd.to_datetime(created_at, utc=True).iloc[many]
        created_ns = created.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
        created_ns = np.where(created.isna().to_numpy(), np.iinfo(np.int64).max, created_ns)
        # Earliest created first; a converted Contact never becomes canonical over its Lead.
        order = np.lexsort((ids, created_ns, is_target[many], person[many]))
        people = person[many][order]
        first = np.r_[True, people[1:] != people[:-1]]
        first_of_person = np.full(person.max() + 1, -1)
        first_of_person[people[first]] = many[order][first]
        canonical[many] = first_of_person[person[many]]

    # The rule that linked a merged row: the first of its keys another row shares.
    rule = np.full(n, None, dtype=object)
    for code, name in enumerate(RULES):
        linked = row[link_rule == code]
        linked = linked[(canonical[linked] != linked) & pd.isna(rule[linked])]
        rule[linked] = name
    return canonical, rule


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].reset_index(drop=True)
    return pd.Series([None] * len(frame), dtype=object)


def _as_assigned(table: np.ndarray, codes: np.ndarray) -> Any:
    """What ``frame[column] = table[codes]`` (``table`` an object array) stores, built
    once per distinct value when pandas would store strings: the same dtype, since the
    inference sees the same values."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(table)))
    probe = pd.Series(table[used])
    if not isinstance(probe.dtype, pd.StringDtype):
        return table[codes]
    position = np.zeros(len(table), dtype=np.intp)
    position[used] = np.arange(used.size)
    return probe.array.take(position[codes])


def _raw(values: pd.Series) -> Any:
    """What ``frame[column] = values.to_numpy()`` stores: a string column itself when
    pandas would infer its very dtype back from those objects."""
    if isinstance(values.dtype, pd.StringDtype):
        missing = values.isna().to_numpy()
        if not missing.all():
            kinds = ["x", values.dtype.na_value] if missing.any() else ["x"]
            if pd.Series(np.array(kinds, dtype=object)).dtype == values.dtype:
                return values.array
    return values.to_numpy()


def _repoint(events: pd.DataFrame, alias: pd.Series) -> tuple[pd.DataFrame, int]:
    if events.empty or alias.empty:
        return events, 0
    lead = events["lead_crm_id"]
    follow = alias[alias.notna()]
    string = lead.dtype if isinstance(lead.dtype, pd.StringDtype) else None
    if (
        string is None
        or not alias.index.is_unique
        or alias.index.hasnans
        or pd.api.types.infer_dtype(follow, skipna=False) not in ("string", "empty")
        or pd.Series(np.array(["x", string.na_value], dtype=object)).dtype != string
        or pd.Series(np.array(["x"], dtype=object)).dtype != string
    ):
        return _repoint_rows(events, alias)
    # A column of strings written back whole as Python objects is inferred as the same
    # strings: replace only the moved rows, in Arrow, and share the other columns.
    values = pa.array(lead)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    merged = pa.array(follow.index.astype(str).tolist(), values.type)
    hit = pc.fill_null(pc.is_in(values, value_set=merged), False)
    moved = int(pc.sum(hit).as_py() or 0)
    if not moved:
        return events, 0
    canonical = pa.array(follow.tolist(), values.type)
    target = canonical.take(pc.index_in(values.filter(hit), value_set=merged))
    out = events.copy(deep=False)
    out["lead_crm_id"] = pd.array(pc.replace_with_mask(values, hit, target), dtype=string)
    return out, moved


def _repoint_rows(events: pd.DataFrame, alias: pd.Series) -> tuple[pd.DataFrame, int]:
    target = alias.reindex(events["lead_crm_id"].astype(str).to_numpy()).to_numpy()
    moved = pd.notna(target)
    if not moved.any():
        return events, 0
    out = events.copy()
    out["lead_crm_id"] = np.where(moved, target, events["lead_crm_id"].to_numpy())
    return out, int(moved.sum())


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts(sort=True).items()}


@dataclass(frozen=True)
class CleanLeads:
    """`clean_leads`' answer: the leads kept, normalised; each merged crm_id's canonical
    crm_id; the report of what was changed (``repointed`` still empty: the events are
    moved by `clean_frames`)."""

    leads: pd.DataFrame
    aliases: pd.Series
    report: HygieneReport


def clean_leads(leads: pd.DataFrame, config: HygieneConfig | None = None) -> CleanLeads:
    """The lead half of `clean_frames`: duplicates collapsed, titles and statuses
    normalised. It needs no event, so a load cleans the leads while the events are
    still being read."""
    config = config or HygieneConfig()
    leads = leads.reset_index(drop=True)
    n = len(leads)
    canonical, rule = _canonical(leads, config)
    merged = canonical != np.arange(n)
    rows = np.flatnonzero(merged)
    crm_id = leads["crm_id"]

    def ids(at: Any) -> np.ndarray:
        return crm_id.iloc[at].astype(str).to_numpy()

    alias = pd.Series(ids(canonical[rows]), index=ids(rows), dtype=object)
    duplicates = {str(k): int(v) for k, v in pd.Series(rule[merged]).value_counts().items()}
    examples = []
    for target in pd.unique(canonical[merged])[:EXAMPLES]:
        members = rows[canonical[rows] == target]
        examples.append(
            {
                "canonical": ids([target])[0],
                "merged": list(ids(members)),
                "rule": sorted({str(rule[m]) for m in members}),
            }
        )
    # Nothing merged (cleaning clean frames): the reset frame is already a new one.
    kept = leads.take(np.flatnonzero(~merged)) if rows.size else leads

    titles = _column(kept, "title")
    title, distinct = _factorized(titles)
    title = np.where(title < 0, len(distinct), title)
    kept["seniority"] = _as_assigned(_labels(distinct, SENIORITY_RULES, "individual"), title)
    kept["department"] = _as_assigned(_labels(distinct, DEPARTMENT_RULES, "other"), title)
    status_raw = _column(kept, "status_raw" if "status_raw" in kept.columns else "status")
    lifecycle_raw = _column(
        kept, "lifecycle_raw" if "lifecycle_raw" in kept.columns else "lifecycle"
    )
    status, statuses, unmapped_status = _statuses(status_raw, config.statuses())
    lifecycle, lifecycles, unmapped_lifecycle = _statuses(lifecycle_raw, config.lifecycles())
    # A record without a lead status (a HubSpot contact, a Contact) reads its lifecycle stage.
    either = np.concatenate([statuses, lifecycles])
    status = np.where((statuses == "unknown")[status], len(statuses) + lifecycle, status)
    kept["status_raw"] = _raw(status_raw)
    kept["status"] = _as_assigned(either, status)
    kept["lifecycle_raw"] = _raw(lifecycle_raw)
    kept["lifecycle"] = _as_assigned(lifecycles, lifecycle)
    kept = kept.reset_index(drop=True)

    # A string column's distinct titles, in order, are the ones just factorized.
    string_titles = isinstance(titles.dtype, pd.StringDtype)
    named = pd.Series(distinct, dtype=object) if string_titles else titles
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
        repointed={},
        seniority=_counts(kept["seniority"]),
        department=_counts(kept["department"]),
        unclassified_titles=_unmatched(named),
        statuses=_counts(kept["status"]),
        lifecycles=_counts(kept["lifecycle"]),
        unmapped=unmapped,
    )
    return CleanLeads(kept, alias, report)


def clean_frames(
    frames: Frames, config: HygieneConfig | None = None, cleaned: CleanLeads | None = None
) -> Frames:
    """The frames with duplicates collapsed, titles and statuses normalised.

    Adds to ``leads``: ``seniority``, ``department``, ``status`` (normalised),
    ``status_raw``, ``lifecycle`` (normalised), ``lifecycle_raw``. The returned
    frames carry ``aliases`` (merged crm_id → canonical crm_id) and ``hygiene``
    (the `HygieneReport`). Idempotent: cleaning clean frames changes nothing.

    ``cleaned``: `clean_leads` of the leads these frames were read with, when the
    caller has it already (``frames.leads`` is then not read).
    """
    cleaned = cleaned or clean_leads(frames.leads, config)
    alias = cleaned.aliases
    touches, n_touches = _repoint(frames.touches, alias)
    engagements, n_engagements = _repoint(frames.engagements, alias)
    outcomes, n_outcomes = _repoint(frames.outcomes, alias)
    repointed = {"touches": n_touches, "engagements": n_engagements, "outcomes": n_outcomes}
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
        leads=cleaned.leads,
        touches=touches,
        engagements=engagements,
        outcomes=outcomes,
        aliases=alias,
        hygiene=replace(cleaned.report, repointed=repointed),
    )


def _unmatched(titles: pd.Series) -> list[str]:
    """A few non-blank titles no seniority rule matched (they read as individual)."""
    distinct = pd.Series(pd.unique(titles.dropna().astype(str)), dtype=object)
    distinct = distinct[distinct.str.strip() != ""]
    pattern = "|".join(f"(?:{p})" for _, p in SENIORITY_RULES)
    return distinct[~distinct.str.lower().str.contains(pattern, regex=True)].head(EXAMPLES).tolist()
