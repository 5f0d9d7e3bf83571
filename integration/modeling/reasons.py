"""Per-lead reasons: signed contributions rendered as stable codes and short text.

A model hands over its contributions per input feature on the log-odds scale
(LightGBM's TreeSHAP, the exact decomposition of a linear model, the points of
the rules score). Here they are summed into *reason groups* — every feature
that describes one thing a rep recognises (all the pricing-page columns, tier
and the missing-account flag, …) — and the largest by absolute size become a
lead's reasons.

A reason's code is ``<group>.<band>``: the group and the band the lead's value
falls in (``pricing.recent``, ``title.missing``, ``tier.a``). Bands are fixed
here, never learned, so a code means the same thing across model versions and
model kinds; the sign lives in the weight, and in the text
(``"+ visited pricing 2d ago"``, ``"− no title"``). A feature no group claims
gets a group of its own (``feature.<name>.<band>``), so adding a feature never
breaks reasons.

A scoring pass describes a million leads, who hold a few thousand distinct
descriptions: each group computes a cheap numeric *key* per row (rows with equal
keys read alike) and writes band and text once per distinct key; the stored JSON
is joined from those few strings, never through a Python object per reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NONE_DAYS = 999.0
PLUS, MINUS = "+", "−"
# Groups models leave out of a lead's reasons unless asked: a lead's age moves every
# score (old leads rarely convert), but a rep sees it in the CRM and cannot act on it.
DEFAULT_EXCLUDED = ("age",)
# Beyond this many reasons per row one sort beats a pass of argmax per reason.
_ARGMAX_PASSES = 8


@dataclass(frozen=True)
class Reason:
    """One signal behind a score.

    Attributes:
        code: stable machine code, ``<group>.<band>``.
        text: short human text with its sign (``"+ tier A account"``).
        weight: signed contribution on the log-odds scale (0 for a statement).
    """

    code: str
    text: str
    weight: float

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "text": self.text, "weight": round(float(self.weight), 4)}


# Band and text row by row (run on one row per distinct key, so plain is fine).
Read = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]
# Arrays over ``rows`` of X (all rows for None): rows equal in every array read alike.
Key = Callable[[pd.DataFrame, np.ndarray | None], list[np.ndarray]]


def _col(
    X: pd.DataFrame, name: str, default: object = 0.0, rows: np.ndarray | None = None
) -> pd.Series:
    values = X[name] if name in X.columns else pd.Series(default, index=X.index)
    return values if rows is None else values.iloc[rows]


def _num(
    X: pd.DataFrame, name: str, default: float = 0.0, rows: np.ndarray | None = None
) -> np.ndarray:
    if rows is not None and name in X.columns and X[name].dtype == np.float64:
        # The common case, without pandas' per-call cost (a pass describes many groups).
        values = X[name].to_numpy()[rows]
        return np.where(np.isnan(values), default, values)
    values = _col(X, name, default, rows)
    return pd.to_numeric(values, errors="coerce").fillna(default).to_numpy(float)


def _flags(*conditions: np.ndarray) -> np.ndarray:
    """Which of the conditions each row meets, as one small integer."""
    out = np.zeros(len(conditions[0]), dtype=np.int64)
    for bit, condition in enumerate(conditions):
        out |= np.asarray(condition, dtype=np.int64) << bit
    return out


def _value_key(values: pd.Series) -> list[np.ndarray]:
    """Keys under which a column's values read alike (through ``str``)."""
    if isinstance(values.dtype, pd.StringDtype):
        return [pd.factorize(values)[0]]
    # 1, 1.0 and True hash alike but read apart; a missing value reads apart from "nan".
    return [pd.factorize(values.astype(str))[0], values.isna().to_numpy()]


def _distinct(keys: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A code per row for its tuple of keys (dense from 0), and a row holding each code."""
    codes = np.zeros(n, dtype=np.int64)
    size = 1
    for key in keys:
        part, span = _small(np.asarray(key))
        if size * span > 2**62:
            codes, size = _dense(codes, size)
        codes = codes * span + part
        size *= span
    codes, size = _dense(codes, size)
    sample = np.empty(size, dtype=np.intp)
    sample[codes] = np.arange(n)  # any row of a code will do: they all read alike
    return codes, sample


def _small(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative integers equal where ``key`` is equal, and their bound."""
    if key.dtype.kind == "f":
        key = key.astype(np.float64, copy=False)
        whole = key.astype(np.int64) if (np.abs(key) < 2**52).all() else None  # NaN fails
        # Whole numbers (days, counts) as integers; anything else, -0.0 included (it may
        # read "-0.0"), by factorizing its bit pattern.
        if whole is None or (whole != key).any() or np.signbit(key[whole == 0]).any():
            part, uniques = pd.factorize(np.ascontiguousarray(key).view(np.int64))
            return part, len(uniques)
        key = whole
    key = key.astype(np.int64, copy=False)
    low, high = (int(key.min()), int(key.max())) if len(key) else (0, 0)
    if high - low >= 2**31:
        part, uniques = pd.factorize(key)
        return part, len(uniques)
    return key - low, high - low + 1


def _dense(codes: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Codes below ``size`` renumbered 0.. in order, without gaps."""
    if size > 4 * len(codes) + 1024:
        codes, uniques = pd.factorize(codes)
        return codes, len(uniques)
    seen = np.zeros(size, dtype=bool)
    seen[codes] = True
    number = np.cumsum(seen) - 1
    return number[codes], int(seen.sum())


def _slug(values: pd.Series) -> pd.Series:
    text = values.astype(object).fillna("unknown").astype(str)
    # Once per distinct value: a column of a million leads holds a few dozen.
    codes, uniques = pd.factorize(text)
    lowered = pd.Series(uniques, dtype=text.dtype).str.lower()
    slugs = (
        lowered.str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_").replace("", "unknown")
    )
    return pd.Series(slugs.to_numpy()[codes], index=values.index, dtype=slugs.dtype)


def _ago(days: np.ndarray) -> np.ndarray:
    whole = np.floor(np.clip(days, 0, None)).astype(int).astype(str)
    return np.where(days < 1, "today", np.char.add(whole, "d ago")).astype(object)


def _choose(conditions: list[np.ndarray], choices: list[tuple[str, object]], n: int):
    """Vectorised (band, text) per row: the first condition that holds picks."""
    bands = np.select(conditions, [np.full(n, b, dtype=object) for b, _ in choices[:-1]],
                      default=choices[-1][0])  # fmt: skip
    texts = np.select(
        conditions,
        [np.broadcast_to(np.asarray(t, dtype=object), (n,)) for _, t in choices[:-1]],
        default=np.broadcast_to(np.asarray(choices[-1][1], dtype=object), (n,)),
    )
    return bands.astype(object), texts.astype(object)


def _categorical(
    column: str, label: Callable[[pd.Series], pd.Series], missing_text: str
) -> tuple[Read, Key]:
    def read(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raw = _col(X, column, "unknown").astype(object).fillna("unknown").astype(str)
        unknown = raw.isin(("unknown", "", "nan")).to_numpy()
        bands = np.where(unknown, "unknown", _slug(raw).to_numpy()).astype(object)
        texts = np.where(unknown, missing_text, label(raw).to_numpy()).astype(object)
        return bands, texts

    def key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
        return _value_key(_col(X, column, "unknown", rows))

    return read, key


SENIORITY_TEXT = {
    "c_level": "C-level title",
    "vp": "VP-level title",
    "director": "director-level title",
    "manager": "manager-level title",
    "individual": "individual-contributor title",
}


def _tier(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    tier = _col(X, "tier", "unknown").astype(object).fillna("unknown").astype(str)
    none = tier.isin(("unknown", "")).to_numpy() | (_num(X, "missing_account") > 0)
    bands = np.where(none, "none", _slug(tier).to_numpy()).astype(object)
    texts = np.where(none, "no matched account", ("tier " + tier + " account").to_numpy())
    return bands, texts.astype(object)


def _tier_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    tier = _value_key(_col(X, "tier", "unknown", rows))
    return [*tier, _num(X, "missing_account", rows=rows) > 0]


def _seniority(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    level = _col(X, "seniority", "unknown").astype(object).fillna("unknown").astype(str)
    missing = (level == "unknown").to_numpy() | (_num(X, "missing_title") > 0)
    bands = np.where(missing, "missing", _slug(level).to_numpy()).astype(object)
    texts = np.where(
        missing, "no title", level.map(SENIORITY_TEXT).fillna(level + " title").to_numpy()
    )
    return bands, texts.astype(object)


def _seniority_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    level = _value_key(_col(X, "seniority", "unknown", rows))
    return [*level, _num(X, "missing_title", rows=rows) > 0]


def _email(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = len(X)
    return _choose(
        [_num(X, "free_mail") > 0, _num(X, "role_mailbox") > 0],
        [
            ("free_mail", "personal email address"),
            ("role_mailbox", "shared mailbox address"),
            ("business", "business email address"),
        ],
        n,
    )


def _email_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    return [_flags(_num(X, "free_mail", rows=rows) > 0, _num(X, "role_mailbox", rows=rows) > 0)]


def _flag(column: str, on: tuple[str, str], off: tuple[str, str]) -> tuple[Read, Key]:
    def read(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return _choose([_num(X, column) > 0], [on, off], len(X))

    def key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
        return [_num(X, column, rows=rows) > 0]

    return read, key


def _age(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    days = _num(X, "age_days")
    text = np.char.add(np.char.add("lead is ", np.floor(days).astype(int).astype(str)), "d old")
    bands = np.select([days <= 2, days <= 14, days <= 60], ["new", "recent", "weeks"], "old")
    texts = np.where(days <= 2, "new lead", text)
    return bands.astype(object), texts.astype(object)


def _age_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    days = _num(X, "age_days", rows=rows)
    return [_flags(days <= 2, days <= 14, days <= 60), np.floor(days)]


def _event(kind: str, verb: str, none_text: str) -> tuple[Read, Key]:
    """Recency band of one engagement kind: none, recent (<= 3d), month, old."""

    def days_of(X: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
        days = _num(X, f"eng_{kind}_days_since_last", NONE_DAYS, rows)
        if f"eng_{kind}_days_since_last" not in X.columns:
            days = np.where(_num(X, f"eng_{kind}_all", rows=rows) > 0, NONE_DAYS - 1, NONE_DAYS)
        return days

    def read(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        days = days_of(X)
        none = days >= NONE_DAYS
        bands = np.select([none, days <= 3, days <= 30], ["none", "recent", "month"], "old")
        texts = np.where(none, none_text, np.char.add(f"{verb} ", _ago(days).astype(str)))
        return bands.astype(object), texts.astype(object)

    def key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
        days = days_of(X, rows)
        # The floor of the days decides `_ago`'s text ("today" below 1).
        return [_flags(days >= NONE_DAYS, days <= 3, days <= 30), np.floor(days)]

    return read, key


def _count(column: str, noun: str, none_text: str, many: int) -> tuple[Read, Key]:
    def read(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        count = _num(X, column)
        bands = np.select([count <= 0, count < many], ["none", "some"], "many")
        texts = np.where(
            count <= 0, none_text, np.char.add(count.astype(int).astype(str), f" {noun}")
        )
        return bands.astype(object), texts.astype(object)

    def key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
        count = _num(X, column, rows=rows)
        return [_flags(count <= 0, count < many), np.trunc(count)]

    return read, key


def _activity(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    days = _num(X, "eng_days_since_last", NONE_DAYS)
    none = days >= NONE_DAYS
    bands = np.select([none, days <= 7, days <= 30], ["none", "recent", "month"], "stale")
    texts = np.where(
        none, "no marketing activity", np.char.add("last active ", _ago(days).astype(str))
    )
    return bands.astype(object), texts.astype(object)


def _activity_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    days = _num(X, "eng_days_since_last", NONE_DAYS, rows)
    return [_flags(days >= NONE_DAYS, days <= 7, days <= 30), np.floor(days)]


def _sequence_flags(X: pd.DataFrame, rows: np.ndarray | None = None) -> list[np.ndarray]:
    return [
        _num(X, "eng_pricing_then_form", rows=rows) > 0,
        _num(X, "eng_click_then_pricing", rows=rows) > 0,
        _num(X, "eng_after_touch", rows=rows) > 0,
    ]


def _sequence(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return _choose(
        _sequence_flags(X),
        [
            ("pricing_then_form", "visited pricing, then filled a form"),
            ("click_then_pricing", "clicked an email, then visited pricing"),
            ("engaged_after_outreach", "engaged after outreach"),
            ("none", "no buying sequence"),
        ],
        len(X),
    )


def _sequence_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    return [_flags(*_sequence_flags(X, rows))]


def _outreach_values(X: pd.DataFrame, rows: np.ndarray | None = None):
    touches = sum(
        _num(X, f"touch_{k}_all", rows=rows) for k in ("email", "call", "linkedin", "offer")
    )
    touched = (_num(X, "touched", rows=rows) > 0) | (touches > 0)
    no_answer = _num(X, "touch_no_answer", rows=rows)
    last = _num(X, "touch_days_since_last", NONE_DAYS, rows)
    return touches, touched, no_answer, last


def _outreach(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    touches, touched, no_answer, last = _outreach_values(X)
    contacted = np.char.add(
        np.char.add("contacted ", np.asarray(touches, dtype=int).astype(str)),
        np.char.add("x, last ", _ago(last).astype(str)),
    )
    unanswered = np.char.add(no_answer.astype(int).astype(str), " unanswered calls")
    bands = np.select([~touched, no_answer > 0], ["none", "no_answer"], "contacted")
    texts = np.select([~touched, no_answer > 0], ["not contacted yet", unanswered], contacted)
    return bands.astype(object), texts.astype(object)


def _outreach_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    touches, touched, no_answer, last = _outreach_values(X, rows)
    unanswered = touched & (no_answer > 0)
    contacted = touched & ~(no_answer > 0)
    # Only what the row's branch reads, so leads not contacted share one key.
    return [
        _flags(~touched, no_answer > 0),
        np.where(unanswered, np.trunc(no_answer), 0.0),
        np.where(contacted, np.trunc(touches), 0.0),
        np.where(contacted, np.floor(last), 0.0),
    ]


def _account_values(X: pd.DataFrame, rows: np.ndarray | None = None):
    meetings = _num(X, "acct_meetings", rows=rows)
    disqualified = _num(X, "acct_disqualified", rows=rows)
    return meetings, disqualified, _num(X, "acct_leads", rows=rows)


def _account(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    meetings, disqualified, colleagues = _account_values(X)
    return _choose(
        [meetings > 0, disqualified > 0, colleagues > 0],
        [
            ("meetings", np.char.add(meetings.astype(int).astype(str), " colleague meetings")),
            (
                "disqualified",
                np.char.add(disqualified.astype(int).astype(str), " colleagues disqualified"),
            ),
            ("colleagues", np.char.add(colleagues.astype(int).astype(str), " colleagues known")),
            ("single", "only contact at the account"),
        ],
        len(X),
    )


def _account_key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
    values = _account_values(X, rows)
    conditions = [v > 0 for v in values]
    return [_flags(*conditions), np.select(conditions, [np.trunc(v) for v in values], 0.0)]


@dataclass(frozen=True)
class ReasonGroup:
    """Features that describe one thing, and how a lead's values read (band, text).

    ``read`` gives band and text row by row; ``key`` cheap arrays under which rows
    read alike, so that ``read`` runs once per distinct key, not once per lead.
    """

    name: str
    pattern: str  # a regex over feature names
    read: Read
    key: Key

    def labels(
        self, X: pd.DataFrame, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A code per row of ``rows`` (positions in X; all rows for None), and per code
        its band and its text."""
        n = len(X) if rows is None else len(rows)
        if not n:
            return np.zeros(0, dtype=np.int64), np.zeros(0, object), np.zeros(0, object)
        codes, sample = _distinct(self.key(X, rows), n)
        bands, texts = self.read(X.iloc[sample if rows is None else rows[sample]])
        return codes, np.asarray(bands, dtype=object), np.asarray(texts, dtype=object)

    def describe(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Band and text per row of ``X``."""
        codes, bands, texts = self.labels(X)
        return bands[codes], texts[codes]


# Order matters: a feature belongs to the first group whose pattern matches its name.
GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("tier", r"^(tier|missing_account)$", _tier, _tier_key),
    ReasonGroup(
        "size",
        r"^(size_band|log_employees|missing_employees)$",
        *_categorical("size_band", lambda s: s + " employees", "company size unknown"),
    ),
    ReasonGroup(
        "industry",
        r"^(industry|missing_industry)$",
        *_categorical("industry", lambda s: s + " industry", "industry unknown"),
    ),
    ReasonGroup(
        "region", r"^region$", *_categorical("region", lambda s: "region " + s, "region unknown")
    ),
    ReasonGroup(
        "source",
        r"^(source|missing_source)$",
        *_categorical("source", lambda s: "source: " + s, "no lead source"),
    ),
    ReasonGroup("title", r"^(seniority|missing_title)$", _seniority, _seniority_key),
    ReasonGroup(
        "department",
        r"^department$",
        *_categorical("department", lambda s: s + " department", "department unknown"),
    ),
    ReasonGroup("email", r"^(free_mail|role_mailbox)$", _email, _email_key),
    ReasonGroup(
        "phone",
        r"^missing_phone$",
        *_flag("missing_phone", ("missing", "no phone number"), ("present", "phone on file")),
    ),
    ReasonGroup("age", r"^age_days$", _age, _age_key),
    ReasonGroup(
        "pricing",
        r"^eng_pricing_page_visit_",
        *_event("pricing_page_visit", "visited pricing", "no pricing-page visit"),
    ),
    ReasonGroup("form", r"^eng_form_fill_", *_event("form_fill", "filled a form", "no form fill")),
    ReasonGroup(
        "webinar",
        r"^eng_webinar_attended_",
        *_event("webinar_attended", "attended a webinar", "no webinar"),
    ),
    ReasonGroup(
        "content",
        r"^eng_content_download_",
        *_event("content_download", "downloaded content", "no content download"),
    ),
    ReasonGroup(
        "email_clicks",
        r"^eng_email_click_",
        *_count("eng_email_click_all", "email clicks", "no email clicks", 3),
    ),
    ReasonGroup(
        "web", r"^eng_page_view_", *_count("eng_page_view_all", "site visits", "no site visits", 5)
    ),
    ReasonGroup(
        "sequence",
        r"^eng_(pricing_then_form|click_then_pricing|after_touch)$",
        _sequence,
        _sequence_key,
    ),
    ReasonGroup("activity", r"^eng_", _activity, _activity_key),
    ReasonGroup("outreach", r"^touch", _outreach, _outreach_key),
    ReasonGroup(
        "bounce",
        r"^bounced$",
        *_flag("bounced", ("bounced", "email bounced"), ("deliverable", "email deliverable")),
    ),
    ReasonGroup(
        "unsubscribe",
        r"^unsubscribed$",
        *_flag("unsubscribed", ("yes", "unsubscribed"), ("no", "subscribed")),
    ),
    ReasonGroup("account", r"^acct_", _account, _account_key),
)


def _own_group(feature: str) -> ReasonGroup:
    def read(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = _col(X, feature, "unknown")
        if pd.api.types.is_numeric_dtype(values):
            number = pd.to_numeric(values, errors="coerce").fillna(0.0).to_numpy(float)
            bands = np.where(number > 0, "positive", np.where(number < 0, "negative", "zero"))
            texts = np.char.add(f"{feature} = ", np.round(number, 2).astype(str))
            return bands.astype(object), texts.astype(object)
        bands = _slug(values).to_numpy(dtype=object)
        return bands, (f"{feature}: " + values.astype(str)).to_numpy(dtype=object)

    def key(X: pd.DataFrame, rows: np.ndarray | None) -> list[np.ndarray]:
        values = _col(X, feature, "unknown", rows)
        if pd.api.types.is_numeric_dtype(values):
            number = pd.to_numeric(values, errors="coerce").fillna(0.0).to_numpy(float)
            return [_flags(number > 0, number < 0), np.round(number, 2)]
        return _value_key(values)

    return ReasonGroup(f"feature.{feature}", re.escape(feature), read, key)


def group_features(features: Sequence[str]) -> dict[str, tuple[ReasonGroup, list[str]]]:
    """Reason group name → (group, its features among ``features``), in GROUPS order."""
    out: dict[str, tuple[ReasonGroup, list[str]]] = {}
    for feature in features:
        group = next((g for g in GROUPS if re.search(g.pattern, feature)), None) or _own_group(
            feature
        )
        out.setdefault(group.name, (group, []))[1].append(feature)
    order = {g.name: i for i, g in enumerate(GROUPS)}
    return dict(sorted(out.items(), key=lambda item: order.get(item[0], len(order))))


def group_weights(
    contributions: pd.DataFrame, X: pd.DataFrame, exclude: Sequence[str] = ()
) -> tuple[np.ndarray, list[ReasonGroup]]:
    """Per-feature contributions summed per reason group (``(rows, groups)``, in
    `group_features` order over the features of X), and those groups.

    Args:
        contributions: one column per feature of ``X`` (log-odds), extra columns
            (``bias``) ignored.
        X: the feature rows the contributions explain (same order).
        exclude: reason groups left out.
    """
    features = [f for f in contributions.columns if f in X.columns]
    grouped = [
        (group, cols)
        for name, (group, cols) in group_features(features).items()
        if name not in exclude
    ]
    if not grouped:
        return np.zeros((len(X), 0)), []
    weights = np.column_stack([contributions[c].to_numpy(float).sum(axis=1) for _, c in grouped])
    return weights, [group for group, _ in grouped]


@dataclass(frozen=True)
class _Shown:
    """The reasons picked per row, largest first.

    ``entry[row, slot]`` indexes ``codes`` and ``texts`` (-1: no reason in that slot);
    ``weight[row, slot]`` is the signed weight.
    """

    entry: np.ndarray
    weight: np.ndarray
    codes: list[str]
    texts: list[str]


def _largest(weights: np.ndarray, k: int) -> np.ndarray:
    """Per row the columns of the ``k`` largest ``|weights|``, largest first: what a
    stable argsort of ``-|weights|`` gives (ties to the left, NaN last)."""
    if k > _ARGMAX_PASSES:
        return np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :k]
    size = np.abs(weights, order="C")  # rows contiguous, for argmax along them
    if np.isnan(size.sum()):
        size = np.fmax(size, -1.0)  # NaN → -1: below every size, so sorted last
    rows = np.arange(len(size))
    order = np.empty((k, len(size)), dtype=np.intp)
    for slot in range(k):
        # argmax takes the first of equal maxima, as the stable sort does.
        order[slot] = column = size.argmax(axis=1)
        size[rows, column] = -2.0
    return order.T


# The groups of the weights' columns: a list, or `group_features`' mapping itself.
Groups = Sequence[ReasonGroup] | Mapping[str, tuple[ReasonGroup, Sequence[str]]]


def _pick(
    weights: np.ndarray,
    groups: Groups,
    X: pd.DataFrame,
    top: int,
    min_weight: float,
    exclude: Sequence[str],
) -> _Shown:
    if isinstance(groups, Mapping):
        groups = [group for group, _ in groups.values()]
    weights = np.asarray(weights, dtype=float).reshape(len(X), len(groups))
    keep = [j for j, group in enumerate(groups) if group.name not in exclude]
    if len(keep) < len(groups):
        weights, groups = weights[:, keep], [groups[j] for j in keep]
    k = len(range(len(groups))[:top])  # as slicing a sorted row to ``top`` would
    order = _largest(weights, k)
    chosen = np.take_along_axis(weights, order, axis=1)
    shown = np.abs(chosen) >= min_weight
    X = X.reset_index(drop=True)
    entry = np.full(order.shape, -1, dtype=np.int64)
    codes: list[str] = []
    texts: list[str] = []
    # The shown (row, slot) cells grouped by reason group, rows ascending within each:
    # one stable sort of small integers instead of a scan per group.
    small = np.int16 if len(groups) < 2**15 else np.int64  # int16 sorts by radix
    group_of = np.where(shown, order, len(groups)).astype(small).ravel()
    cells = np.argsort(group_of, kind="stable")
    ends = np.cumsum(np.bincount(group_of, minlength=len(groups) + 1))
    for j, group in enumerate(groups):
        cell = cells[(ends[j - 1] if j else 0) : ends[j]]
        if not cell.size:
            continue
        # Described only for the rows that show it; a row shows a group at most once.
        rows, slots = np.divmod(cell, k)
        label, bands, words = group.labels(X, rows)
        positive = chosen[rows, slots] > 0
        combo, sample = _distinct([label, positive], rows.size)
        entry[rows, slots] = len(codes) + combo
        which = label[sample]
        codes += [f"{group.name}.{b}" for b in np.asarray(bands[which], dtype=str)]
        texts += [
            f"{PLUS if p else MINUS} {t}"
            for p, t in zip(positive[sample].tolist(), words[which], strict=True)
        ]
    return _Shown(entry, chosen, codes, texts)


def group_reasons(
    weights: np.ndarray,
    groups: Groups,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: Sequence[str] = (),
) -> list[list[Reason]]:
    """The ``top`` largest reason-group weights per row, largest first.

    Args:
        weights: ``(rows, groups)`` contributions (log-odds) summed per group.
        groups: the groups of the columns of ``weights``, in order (or the mapping
            `group_features` returns).
        X: the feature rows the weights explain (same order).
        top: reasons per row.
        min_weight: smaller weights are not reasons.
        exclude: reason groups left out (their contribution still counts in the score).
    """
    shown = _pick(weights, groups, X, top, min_weight, exclude)
    codes, texts = shown.codes, shown.texts
    return [
        [Reason(codes[e], texts[e], w) for e, w in zip(es, ws, strict=True) if e >= 0]
        for es, ws in zip(shown.entry.tolist(), shown.weight.tolist(), strict=True)
    ]


def top_reasons(
    contributions: pd.DataFrame,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: Sequence[str] = (),
) -> list[list[Reason]]:
    """The ``top`` largest reason-group contributions per row, largest first.

    Args:
        contributions: one column per feature of ``X`` (log-odds), extra columns
            (``bias``) ignored.
        X: the feature rows the contributions explain (same index order).
        top: reasons per row.
        min_weight: smaller contributions are not reasons.
        exclude: reason groups left out (their contribution still counts in the score).
    """
    weights, groups = group_weights(contributions, X, exclude)
    return group_reasons(weights, groups, X, top, min_weight)


def _rounded(values: np.ndarray) -> np.ndarray:
    """``round(float(v), 4)`` per value, as numpy's scaled ``rint``, except where Python's
    correctly rounded decimal could differ from it."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN go to Python below
        scaled = values * 1e4
        out = np.rint(scaled) / 1e4
        # The product is off the exact value by at most 1e9 * 2**-53 < 1e-6 here, so only
        # a product that close to a tie can round the other way.
        safe = (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6) & (np.abs(scaled) < 1e9)
    risky = np.flatnonzero(~safe)
    out[risky] = [round(v, 4) for v in values[risky].tolist()]
    return out


def reasons_parts(
    weights: np.ndarray,
    groups: Groups,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: Sequence[str] = (),
) -> tuple[list[list[str]], np.ndarray]:
    """`reasons_json`'s text as columns of shared strings whose join, row by row, is the
    row's text; and per row, whether it has a reason. A caller that wraps the text in
    more (`integration.scoring`) joins once, instead of copying every row's text again
    per piece it adds."""
    shown = _pick(weights, groups, X, top, min_weight, exclude)
    n, k = shown.entry.shape
    if not k:
        return [[""] * n], np.zeros(n, dtype=bool)
    heads = [
        f'{{"code": {json.dumps(c)}, "text": {json.dumps(t)}, "weight": '
        for c, t in zip(shown.codes, shown.texts, strict=True)
    ]
    # 0 is the empty string (no reason); then each head, then each after ", ".
    head_table = np.array(["", *heads, *(", " + h for h in heads)], dtype=object)
    visible = shown.entry >= 0
    values = _rounded(shown.weight[visible])
    number, distinct = pd.factorize(values.view(np.int64))  # by bit pattern: -0.0 stays
    numbers = [json.dumps(v) + "}" for v in distinct.view(np.float64).tolist()]
    number_table = np.array(["", *numbers], dtype=object)
    number_of = np.zeros(shown.entry.shape, dtype=np.int64)
    number_of[visible] = number + 1
    parts = []
    before = np.zeros(n, dtype=bool)  # a reason already in the row's text
    for slot in range(k):
        head = np.where(before, len(heads), 0) + shown.entry[:, slot] + 1
        head = np.where(visible[:, slot], head, 0)
        parts += [head_table[head].tolist(), number_table[number_of[:, slot]].tolist()]
        before |= visible[:, slot]
    return parts, before


def reasons_json(
    weights: np.ndarray,
    groups: Groups,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Per row, its reasons (see `group_reasons`) as ``json.dumps(reason.as_dict())``
    joined by ``", "`` ("" for none): the same text, built once per distinct string."""
    parts, _ = reasons_parts(weights, groups, X, top, min_weight, exclude)
    # One join per row of a few shared strings: cheaper than Arrow's take and join.
    return list(map("".join, zip(*parts, strict=True)))


def top_reasons_json(
    contributions: pd.DataFrame,
    X: pd.DataFrame,
    top: int = 3,
    min_weight: float = 1e-6,
    exclude: Sequence[str] = (),
) -> list[str]:
    """`reasons_json` from per-feature contributions (see `top_reasons`)."""
    weights, groups = group_weights(contributions, X, exclude)
    return reasons_json(weights, groups, X, top, min_weight)


def render(reasons: Sequence[Reason], limit: int = 255) -> str:
    """One line for a CRM text field: ``"+ tier A account; − no title"``."""
    text = "; ".join(r.text for r in reasons)
    return text if len(text) <= limit else text[: limit - 1] + "…"
