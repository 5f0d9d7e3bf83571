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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NONE_DAYS = 999.0
PLUS, MINUS = "+", "−"
# Groups models leave out of a lead's reasons unless asked: a lead's age moves every
# score (old leads rarely convert), but a rep sees it in the CRM and cannot act on it.
DEFAULT_EXCLUDED = ("age",)


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


Describe = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]


def _col(X: pd.DataFrame, name: str, default: object = 0.0) -> pd.Series:
    if name in X.columns:
        return X[name]
    return pd.Series(default, index=X.index)


def _num(X: pd.DataFrame, name: str, default: float = 0.0) -> np.ndarray:
    return pd.to_numeric(_col(X, name, default), errors="coerce").fillna(default).to_numpy(float)


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


def _categorical(column: str, label: Callable[[pd.Series], pd.Series], missing_text: str):
    def describe(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raw = _col(X, column, "unknown").astype(object).fillna("unknown").astype(str)
        unknown = raw.isin(("unknown", "", "nan")).to_numpy()
        bands = np.where(unknown, "unknown", _slug(raw).to_numpy()).astype(object)
        texts = np.where(unknown, missing_text, label(raw).to_numpy()).astype(object)
        return bands, texts

    return describe


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


def _seniority(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    level = _col(X, "seniority", "unknown").astype(object).fillna("unknown").astype(str)
    missing = (level == "unknown").to_numpy() | (_num(X, "missing_title") > 0)
    bands = np.where(missing, "missing", _slug(level).to_numpy()).astype(object)
    texts = np.where(
        missing, "no title", level.map(SENIORITY_TEXT).fillna(level + " title").to_numpy()
    )
    return bands, texts.astype(object)


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


def _flag(column: str, on: tuple[str, str], off: tuple[str, str]) -> Describe:
    def describe(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return _choose([_num(X, column) > 0], [on, off], len(X))

    return describe


def _age(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    days = _num(X, "age_days")
    text = np.char.add(np.char.add("lead is ", np.floor(days).astype(int).astype(str)), "d old")
    bands = np.select([days <= 2, days <= 14, days <= 60], ["new", "recent", "weeks"], "old")
    texts = np.where(days <= 2, "new lead", text)
    return bands.astype(object), texts.astype(object)


def _event(kind: str, verb: str, none_text: str) -> Describe:
    """Recency band of one engagement kind: none, recent (<= 3d), month, old."""

    def describe(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        days = _num(X, f"eng_{kind}_days_since_last", NONE_DAYS)
        if f"eng_{kind}_days_since_last" not in X.columns:
            days = np.where(_num(X, f"eng_{kind}_all") > 0, NONE_DAYS - 1, NONE_DAYS)
        none = days >= NONE_DAYS
        bands = np.select([none, days <= 3, days <= 30], ["none", "recent", "month"], "old")
        texts = np.where(none, none_text, np.char.add(f"{verb} ", _ago(days).astype(str)))
        return bands.astype(object), texts.astype(object)

    return describe


def _count(column: str, noun: str, none_text: str, many: int) -> Describe:
    def describe(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        count = _num(X, column)
        bands = np.select([count <= 0, count < many], ["none", "some"], "many")
        texts = np.where(
            count <= 0, none_text, np.char.add(count.astype(int).astype(str), f" {noun}")
        )
        return bands.astype(object), texts.astype(object)

    return describe


def _activity(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    days = _num(X, "eng_days_since_last", NONE_DAYS)
    none = days >= NONE_DAYS
    bands = np.select([none, days <= 7, days <= 30], ["none", "recent", "month"], "stale")
    texts = np.where(
        none, "no marketing activity", np.char.add("last active ", _ago(days).astype(str))
    )
    return bands.astype(object), texts.astype(object)


def _sequence(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return _choose(
        [
            _num(X, "eng_pricing_then_form") > 0,
            _num(X, "eng_click_then_pricing") > 0,
            _num(X, "eng_after_touch") > 0,
        ],
        [
            ("pricing_then_form", "visited pricing, then filled a form"),
            ("click_then_pricing", "clicked an email, then visited pricing"),
            ("engaged_after_outreach", "engaged after outreach"),
            ("none", "no buying sequence"),
        ],
        len(X),
    )


def _outreach(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    touches = sum(_num(X, f"touch_{k}_all") for k in ("email", "call", "linkedin", "offer"))
    touched = (_num(X, "touched") > 0) | (touches > 0)
    no_answer = _num(X, "touch_no_answer")
    last = _num(X, "touch_days_since_last", NONE_DAYS)
    contacted = np.char.add(
        np.char.add("contacted ", np.asarray(touches, dtype=int).astype(str)),
        np.char.add("x, last ", _ago(last).astype(str)),
    )
    unanswered = np.char.add(no_answer.astype(int).astype(str), " unanswered calls")
    bands = np.select([~touched, no_answer > 0], ["none", "no_answer"], "contacted")
    texts = np.select([~touched, no_answer > 0], ["not contacted yet", unanswered], contacted)
    return bands.astype(object), texts.astype(object)


def _account(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    meetings, disqualified = _num(X, "acct_meetings"), _num(X, "acct_disqualified")
    colleagues = _num(X, "acct_leads")
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


@dataclass(frozen=True)
class ReasonGroup:
    """Features that describe one thing, and how a lead's values read (band, text)."""

    name: str
    pattern: str  # a regex over feature names
    describe: Describe


# Order matters: a feature belongs to the first group whose pattern matches its name.
GROUPS: tuple[ReasonGroup, ...] = (
    ReasonGroup("tier", r"^(tier|missing_account)$", _tier),
    ReasonGroup(
        "size",
        r"^(size_band|log_employees|missing_employees)$",
        _categorical("size_band", lambda s: s + " employees", "company size unknown"),
    ),
    ReasonGroup(
        "industry",
        r"^(industry|missing_industry)$",
        _categorical("industry", lambda s: s + " industry", "industry unknown"),
    ),
    ReasonGroup(
        "region", r"^region$", _categorical("region", lambda s: "region " + s, "region unknown")
    ),
    ReasonGroup(
        "source",
        r"^(source|missing_source)$",
        _categorical("source", lambda s: "source: " + s, "no lead source"),
    ),
    ReasonGroup("title", r"^(seniority|missing_title)$", _seniority),
    ReasonGroup(
        "department",
        r"^department$",
        _categorical("department", lambda s: s + " department", "department unknown"),
    ),
    ReasonGroup("email", r"^(free_mail|role_mailbox)$", _email),
    ReasonGroup(
        "phone",
        r"^missing_phone$",
        _flag("missing_phone", ("missing", "no phone number"), ("present", "phone on file")),
    ),
    ReasonGroup("age", r"^age_days$", _age),
    ReasonGroup(
        "pricing",
        r"^eng_pricing_page_visit_",
        _event("pricing_page_visit", "visited pricing", "no pricing-page visit"),
    ),
    ReasonGroup("form", r"^eng_form_fill_", _event("form_fill", "filled a form", "no form fill")),
    ReasonGroup(
        "webinar",
        r"^eng_webinar_attended_",
        _event("webinar_attended", "attended a webinar", "no webinar"),
    ),
    ReasonGroup(
        "content",
        r"^eng_content_download_",
        _event("content_download", "downloaded content", "no content download"),
    ),
    ReasonGroup(
        "email_clicks",
        r"^eng_email_click_",
        _count("eng_email_click_all", "email clicks", "no email clicks", 3),
    ),
    ReasonGroup(
        "web", r"^eng_page_view_", _count("eng_page_view_all", "site visits", "no site visits", 5)
    ),
    ReasonGroup("sequence", r"^eng_(pricing_then_form|click_then_pricing|after_touch)$", _sequence),
    ReasonGroup("activity", r"^eng_", _activity),
    ReasonGroup("outreach", r"^touch", _outreach),
    ReasonGroup(
        "bounce",
        r"^bounced$",
        _flag("bounced", ("bounced", "email bounced"), ("deliverable", "email deliverable")),
    ),
    ReasonGroup(
        "unsubscribe",
        r"^unsubscribed$",
        _flag("unsubscribed", ("yes", "unsubscribed"), ("no", "subscribed")),
    ),
    ReasonGroup("account", r"^acct_", _account),
)


def _own_group(feature: str) -> ReasonGroup:
    def describe(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = _col(X, feature, "unknown")
        if pd.api.types.is_numeric_dtype(values):
            number = pd.to_numeric(values, errors="coerce").fillna(0.0).to_numpy(float)
            bands = np.where(number > 0, "positive", np.where(number < 0, "negative", "zero"))
            texts = np.char.add(f"{feature} = ", np.round(number, 2).astype(str))
            return bands.astype(object), texts.astype(object)
        bands = _slug(values).to_numpy(dtype=object)
        return bands, (f"{feature}: " + values.astype(str)).to_numpy(dtype=object)

    return ReasonGroup(f"feature.{feature}", re.escape(feature), describe)


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
    features = [f for f in contributions.columns if f in X.columns]
    groups = {
        name: value for name, value in group_features(features).items() if name not in exclude
    }
    names = list(groups)
    if not names:
        return [[] for _ in range(len(X))]
    X = X.reset_index(drop=True)
    weights = np.column_stack(
        [contributions[cols].to_numpy(float).sum(axis=1) for _, cols in groups.values()]
    )
    k = min(top, len(names))
    order = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(weights, order, axis=1)
    picked_codes = np.empty(order.shape, dtype=object)
    picked_texts = np.empty(order.shape, dtype=object)
    for j, (group, _) in enumerate(groups.values()):
        # Described only for the rows that show it (every description is row by row);
        # a row shows a group at most once, so these rows are distinct and ascending.
        rows, slots = np.nonzero(order == j)
        if not rows.size:
            continue
        band, text = group.describe(X if rows.size == len(X) else X.iloc[rows])
        picked_codes[rows, slots] = [f"{group.name}.{b}" for b in np.asarray(band, dtype=str)]
        picked_texts[rows, slots] = np.asarray(text, dtype=object)
    signs = np.where(chosen > 0, PLUS, MINUS).tolist()
    shown = (np.abs(chosen) >= min_weight).tolist()
    return [
        [
            Reason(c, f"{s} {t}", w)
            for c, t, s, w, keep in zip(cs, ts, ss, ws, ks, strict=True)
            if keep
        ]
        for cs, ts, ss, ws, ks in zip(
            picked_codes.tolist(),
            picked_texts.tolist(),
            signs,
            chosen.tolist(),
            shown,
            strict=True,
        )
    ]


def render(reasons: Sequence[Reason], limit: int = 255) -> str:
    """One line for a CRM text field: ``"+ tier A account; − no title"``."""
    text = "; ".join(r.text for r in reasons)
    return text if len(text) <= limit else text[: limit - 1] + "…"
