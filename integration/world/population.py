"""Who is in the world: users, queues, accounts and leads with their latent traits.

Everything here is drawn before any experiment or behaviour. Leads are keyed
in creation order and accounts in creation order (CRM ids grow with time).
Latent traits (intent, invalid email, true seniority behind a missing title)
live on `Leads` but only the observable ones reach the CrmSeed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.sandbox.seed import INDUSTRIES, LEAD_SOURCES, REGIONS, TIERS

from . import params as P
from . import vocab as V
from .clock import NEVER, days, epoch_seconds, to_utc
from .sampling import (
    MISSING,
    blank_out,
    duplicate_rank,
    group_min,
    rowwise_choice,
    sigmoid,
    table,
    weighted_choice,
)

# Flattened country table: one row per country with its region and dialling code.
COUNTRY_CODES = tuple(c for r in REGIONS for c, _, _ in V.COUNTRIES[r])
COUNTRY_REGION = np.array([REGIONS.index(r) for r in REGIONS for _ in V.COUNTRIES[r]])
COUNTRY_WEIGHT = np.array([P.REGION_WEIGHTS[r] * w for r in REGIONS for _, w, _ in V.COUNTRIES[r]])
COUNTRY_DIAL = np.array([d for r in REGIONS for _, _, d in V.COUNTRIES[r]])
OUTBOUND = LEAD_SOURCES.index("Outbound List")
SIZE_EDGES = np.array([10, 50, 200, 1000, 5000])  # upper bounds of SIZE_BANDS but the last


@dataclass
class Users:
    """CRM users and the keys of each role."""

    frame: pd.DataFrame
    sdr: np.ndarray
    ae: np.ndarray
    senior_ae: np.ndarray
    marketing: int
    integration: int


@dataclass
class Accounts:
    """Account attributes as arrays indexed by account_key."""

    industry: np.ndarray  # INDUSTRIES code or -1
    employees: np.ndarray  # float, NaN when unknown
    size_band: np.ndarray  # SIZE_BANDS code or -1
    revenue: np.ndarray  # float, NaN when unknown
    country: np.ndarray  # COUNTRY_CODES code
    tier: np.ndarray  # TIERS code
    owner: np.ndarray  # user_key
    name: np.ndarray  # object
    brand: np.ndarray  # object, the name without its noun
    domain: np.ndarray  # object, unique
    created_at: np.ndarray  # epoch seconds
    modified_at: np.ndarray  # epoch seconds; finalised once opportunities exist

    @property
    def n(self) -> int:
        return self.industry.shape[0]


@dataclass
class Leads:
    """Lead attributes as arrays indexed by lead_key (creation order)."""

    account: np.ndarray  # account_key or -1 (free mail)
    created_at: np.ndarray
    first_name: np.ndarray  # object
    last_name: np.ndarray  # object
    email: np.ndarray  # object, unique
    phone: np.ndarray  # object or None
    seniority: np.ndarray  # SENIORITIES code (true, even when the title is missing)
    department: np.ndarray  # DEPARTMENTS code
    title: np.ndarray  # object or None
    company: np.ndarray  # object
    source: np.ndarray  # LEAD_SOURCES code (true)
    source_seen: np.ndarray  # LEAD_SOURCES code or -1 when the field is blank
    country: np.ndarray  # COUNTRY_CODES code
    intent: np.ndarray  # latent
    opt_out: np.ndarray  # bool
    invalid_email: np.ndarray  # bool, latent

    @property
    def n(self) -> int:
        return self.account.shape[0]

    @property
    def free(self) -> np.ndarray:
        return self.account == MISSING

    @property
    def title_missing(self) -> np.ndarray:
        return np.equal(self.title, None)


def make_users(params: P.WorldParams, rng: np.random.Generator) -> Users:
    """Draw sales reps (sdr / ae / senior_ae) plus the automation and integration users.

    Args:
        params: world parameters (n_leads decides the team size).
        rng: random stream for this step.

    Returns:
        The users frame and the user keys of each role.
    """
    n_reps = max(params.min_reps, round(params.n_leads / params.leads_per_rep))
    n_senior = max(1, round(0.2 * n_reps))
    n_sdr = max(2, round(0.4 * n_reps))
    n_ae = n_reps - n_senior - n_sdr
    roles = ["sdr"] * n_sdr + ["ae"] * n_ae + ["senior_ae"] * n_senior
    # Distinct (first, last) pairs so rep emails are unique without suffixes
    # (about 20k pairs: enough reps for 16M leads).
    firsts = V.USER_FIRST_NAMES + V.FIRST_NAMES
    pairs = rng.choice(len(firsts) * len(V.LAST_NAMES), n_reps, replace=False)
    first = [firsts[i // len(V.LAST_NAMES)] for i in pairs]
    last = [V.LAST_NAMES[i % len(V.LAST_NAMES)] for i in pairs]
    first += ["Marketing", "Leadlift"]
    last += ["Automation", "Integration"]
    roles += ["marketing_automation", "integration"]
    emails = [f"{f}.{la}@{V.SELLER_DOMAIN}".lower() for f, la in zip(first, last, strict=True)]
    start = epoch_seconds(params.now) - days(params.history_days)
    created = start - days(rng.uniform(150, 900, len(roles)))
    created[-2:] = start - days(1000)  # system users predate every rep
    n = len(roles)
    frame = pd.DataFrame(
        {
            "user_key": np.arange(n, dtype=np.int64),
            "first_name": pd.Series(first, dtype=object),
            "last_name": pd.Series(last, dtype=object),
            "email": pd.Series(emails, dtype=object),
            "role": pd.Series(roles, dtype=object),
            "active": np.ones(n, dtype=bool),
            "created_at": to_utc(created),
        }
    )
    keys = np.arange(n)
    role_arr = np.array(roles)
    return Users(
        frame=frame,
        sdr=keys[role_arr == "sdr"],
        ae=keys[role_arr == "ae"],
        senior_ae=keys[role_arr == "senior_ae"],
        marketing=n - 2,
        integration=n - 1,
    )


def make_queues() -> pd.DataFrame:
    """The lead queues routing can assign to."""
    return pd.DataFrame(
        {
            "queue_key": np.arange(len(V.QUEUES), dtype=np.int64),
            "name": pd.Series([q[0] for q in V.QUEUES], dtype=object),
            "developer_name": pd.Series([q[1] for q in V.QUEUES], dtype=object),
        }
    )


def _size_band(employees: np.ndarray) -> np.ndarray:
    band = np.searchsorted(SIZE_EDGES, employees, side="left")
    return np.where(np.isnan(employees), MISSING, band)


def _brand_names(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(V.BRAND_PREFIXES)[rng.integers(0, len(V.BRAND_PREFIXES), n)]
    suffix = np.array(V.BRAND_SUFFIXES)[rng.integers(0, len(V.BRAND_SUFFIXES), n)]
    return np.strings.add(prefix, suffix)


def _nouns(rng: np.random.Generator, industry: np.ndarray) -> np.ndarray:
    n = industry.shape[0]
    generic = np.array(V.GENERIC_NOUNS)[rng.integers(0, len(V.GENERIC_NOUNS), n)]
    out = generic.astype("U16")
    pick = rng.integers(0, 8, n)
    use_industry = (rng.random(n) < 0.6) & (industry != MISSING)
    for code, name in enumerate(INDUSTRIES):
        mask = use_industry & (industry == code)
        out[mask] = np.array(V.INDUSTRY_NOUNS[name])[pick[mask]]
    return out


def _unique_domains(slug: np.ndarray) -> np.ndarray:
    # Same-slug companies exist (different countries); the n-th gets another TLD,
    # then a numeric suffix, which cannot clash because slugs contain no digits.
    rank = duplicate_rank(np.unique(slug, return_inverse=True)[1])
    tlds = np.array([".com", ".io", ".co", ".ai", ".net"])
    numbered = np.strings.add(np.strings.add(slug, rank.astype("U")), ".com")
    plain = np.strings.add(slug, tlds[np.minimum(rank, len(tlds) - 1)])
    return np.where(rank < len(tlds), plain, numbered)


def make_accounts(n_accounts: int, users: Users, rng: np.random.Generator) -> Accounts:
    """Draw firmographics, ICP tier, owner, name and domain for each account.

    Args:
        n_accounts: how many accounts.
        users: the CRM users (owners are AEs, senior AEs for the best tiers).
        rng: random stream for this step.

    Returns:
        Accounts in draw order; created/modified times are placeholders until leads exist.
    """
    n = n_accounts
    industry = weighted_choice(rng, [P.INDUSTRY_WEIGHTS[i] for i in INDUSTRIES], n)
    industry = blank_out(rng, industry, P.INDUSTRY_MISSING)
    employees = np.maximum(
        1.0, np.round(np.exp(rng.normal(P.EMPLOYEES_LOG_MEDIAN, P.EMPLOYEES_LOG_SD, n)))
    )
    employees = np.minimum(employees, 400_000.0)
    employees[rng.random(n) < P.EMPLOYEES_MISSING] = np.nan
    size_band = _size_band(employees)
    rev_per = table(
        INDUSTRIES, P.REVENUE_PER_EMPLOYEE, float(np.mean(list(P.REVENUE_PER_EMPLOYEE.values())))
    )[industry]
    revenue = np.round(employees * rev_per * np.exp(rng.normal(0, 0.4, n)), -3)
    revenue[rng.random(n) < P.REVENUE_MISSING_EXTRA] = np.nan
    country = weighted_choice(rng, COUNTRY_WEIGHT, n)

    # ICP tier: a score from industry and size fit plus noise, cut at fixed account shares.
    score = (
        table(INDUSTRIES, P.ICP_INDUSTRY_FIT, P.ICP_INDUSTRY_UNKNOWN)[industry]
        + np.array([*P.ICP_SIZE_FIT, P.ICP_SIZE_UNKNOWN])[size_band]
        + rng.normal(0, P.ICP_NOISE_SD, n)
    )
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(n)
    cuts = np.cumsum(P.TIER_SHARES)[:-1] * n
    tier = np.searchsorted(cuts, rank, side="right")

    # Tier A accounts (and some tier B) belong to senior AEs, the rest to AEs.
    ae = users.ae[rng.integers(0, users.ae.shape[0], n)]
    senior = users.senior_ae[rng.integers(0, users.senior_ae.shape[0], n)]
    owner = np.where((tier == 0) | ((tier == 1) & (rng.random(n) < 0.3)), senior, ae)

    brand = _brand_names(rng, n)
    noun = _nouns(rng, industry)
    name = np.strings.add(np.strings.add(brand, " "), noun)
    slug = np.strings.add(np.strings.add(np.strings.lower(brand), "-"), np.strings.lower(noun))
    domain = _unique_domains(slug)
    placeholder = np.zeros(n, dtype=np.int64)
    return Accounts(
        industry=industry,
        employees=employees,
        size_band=size_band,
        revenue=revenue,
        country=country,
        tier=tier,
        owner=owner,
        name=name.astype(object),
        brand=brand.astype(object),
        domain=domain.astype(object),
        created_at=placeholder,
        modified_at=placeholder.copy(),
    )


def _creation_times(params: P.WorldParams, rng: np.random.Generator, n: int) -> np.ndarray:
    # Inverse CDF of a density growing like exp(growth * t / history) on [0, history].
    g = params.growth
    u = rng.random(n)
    frac = np.log1p(u * np.expm1(g)) / g if g else u
    now = epoch_seconds(params.now)
    return np.sort(now - days(params.history_days) + days(frac * params.history_days))


def _assign_accounts(rng: np.random.Generator, accounts: Accounts, n_attached: int) -> np.ndarray:
    # Every account gets one contact; the rest go to bigger companies more often.
    emp = np.where(np.isnan(accounts.employees), 90.0, accounts.employees)
    weight = emp**P.CONTACTS_SIZE_EXPONENT
    extra = rng.choice(accounts.n, n_attached - accounts.n, p=weight / weight.sum())
    return rng.permutation(np.concatenate([np.arange(accounts.n), extra]))


def _titles(
    rng: np.random.Generator, seniority: np.ndarray, department: np.ndarray, employees: np.ndarray
) -> np.ndarray:
    cells = [(s, d) for s in V.SENIORITIES for d in V.DEPARTMENTS]
    flat = np.array([t for c in cells for t in V.TITLES[c]], dtype=object)
    counts = np.array([len(V.TITLES[c]) for c in cells])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cell = seniority * len(V.DEPARTMENTS) + department
    title = flat[offsets[cell] + (rng.random(cell.shape[0]) * counts[cell]).astype(np.int64)]
    founder = (
        (seniority == 0) & (employees <= 10) & (rng.random(cell.shape[0]) < P.FOUNDER_SHARE_SMALL)
    )
    founders = np.array(V.FOUNDER_TITLES, dtype=object)
    title[founder] = founders[rng.integers(0, len(founders), int(founder.sum()))]
    return title


def _phones(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    n = country.shape[0]
    # Area codes never start with 0 or 1 in the formats we mimic.
    parts = [rng.integers(200, 1000, n).astype("U")]
    parts += [np.strings.zfill(rng.integers(0, 10**k, n).astype("U"), k) for k in (3, 4)]
    out = np.strings.add("+", COUNTRY_DIAL[country])
    for part in parts:
        out = np.strings.add(np.strings.add(out, " "), part)
    return out.astype(object)


def make_population(
    params: P.WorldParams, users: Users, rng: np.random.Generator
) -> tuple[Leads, Accounts]:
    """Draw accounts, the contacts attached to them and the free-mail leads.

    Args:
        params: world parameters.
        users: the CRM users (account owners come from them).
        rng: random stream for this step.

    Returns:
        Leads keyed by creation order, and accounts keyed by creation order.
    """
    n = params.n_leads
    n_free = _free_mail_count(params)
    accounts = make_accounts(account_count(params), users, rng)
    account = rng.permutation(
        np.concatenate([_assign_accounts(rng, accounts, n - n_free), np.full(n_free, MISSING)])
    )
    created = _creation_times(params, rng, n)
    account = _key_accounts_by_creation(accounts, account, created, rng)
    return _draw_leads(accounts, account, created, rng), accounts


def _key_accounts_by_creation(
    accounts: Accounts, account: np.ndarray, created: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Time accounts just before their first lead and re-key them in creation order.

    Reorders `accounts` in place (a CRM autonumber grows with time) and returns the
    leads' account keys translated to the new order.
    """
    attached = account != MISSING
    first_lead = group_min(account[attached], created[attached], accounts.n, NEVER)
    # Most accounts appear with their first contact; some were imported a while earlier.
    acc_created = first_lead - days(np.minimum(rng.exponential(20.0, accounts.n), 120.0))
    order = np.argsort(acc_created, kind="stable")
    new_key = np.empty(accounts.n, dtype=np.int64)
    new_key[order] = np.arange(accounts.n)
    for field in (
        "industry",
        "employees",
        "size_band",
        "revenue",
        "country",
        "tier",
        "owner",
        "name",
        "brand",
        "domain",
    ):
        setattr(accounts, field, getattr(accounts, field)[order])
    accounts.created_at = acc_created[order]
    accounts.modified_at = accounts.created_at.copy()
    return np.where(attached, new_key[np.maximum(account, 0)], MISSING)


def _draw_leads(
    accounts: Accounts, account: np.ndarray, created: np.ndarray, rng: np.random.Generator
) -> Leads:
    n = account.shape[0]
    attached = account != MISSING
    acc = np.maximum(account, 0)
    tier_or_free = np.where(attached, accounts.tier[acc], len(TIERS))
    employees = np.where(attached, accounts.employees[acc], np.nan)

    source = np.where(
        attached,
        weighted_choice(rng, [P.SOURCE_WEIGHTS[s] for s in LEAD_SOURCES], n),
        weighted_choice(rng, [P.SOURCE_WEIGHTS_FREE_MAIL[s] for s in LEAD_SOURCES], n),
    )
    small = employees <= 50
    sen_probs = np.where(
        small[:, None], np.array(P.SENIORITY_WEIGHTS_SMALL), np.array(P.SENIORITY_WEIGHTS)
    )
    seniority = rowwise_choice(rng, sen_probs)
    department = weighted_choice(rng, P.DEPARTMENT_WEIGHTS, n)
    intent = (
        table(LEAD_SOURCES, P.INTENT_SOURCE)[source]
        + np.array(P.INTENT_TIER)[tier_or_free]
        + rng.normal(0, P.INTENT_NOISE_SD, n)
    )

    # Missingness follows intent and purchased lists, so a blank field is itself a signal.
    outbound = (source == OUTBOUND).astype(float)

    def missing(field: str) -> np.ndarray:
        base, b_intent, b_outbound = P.MISSING_LOGITS[field]
        return rng.random(n) < sigmoid(base + b_intent * intent + b_outbound * outbound)

    title = _titles(rng, seniority, department, employees)
    title[missing("title")] = None
    source_seen = np.where(missing("lead_source"), MISSING, source)
    opt_out = missing("email_opt_out")
    invalid_email = missing("invalid_email")

    country = np.where(attached, accounts.country[acc], weighted_choice(rng, COUNTRY_WEIGHT, n))
    phone = _phones(rng, country)
    phone[missing("phone")] = None

    first = rng.integers(0, len(V.FIRST_NAMES), n)
    last = rng.integers(0, len(V.LAST_NAMES), n)
    return Leads(
        account=account,
        created_at=created,
        first_name=np.array(V.FIRST_NAMES, dtype=object)[first],
        last_name=np.array(V.LAST_NAMES, dtype=object)[last],
        email=_emails(rng, accounts, account, first, last),
        phone=phone,
        seniority=seniority,
        department=department,
        title=title,
        company=_typed_company(rng, accounts, account),
        source=source,
        source_seen=source_seen,
        country=country,
        intent=intent,
        opt_out=opt_out,
        invalid_email=invalid_email,
    )


def _emails(
    rng: np.random.Generator,
    accounts: Accounts,
    account: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
) -> np.ndarray:
    attached = account != MISSING
    free_domain = weighted_choice(rng, V.FREE_MAIL_WEIGHTS, account.shape[0])
    domain_id = np.where(attached, account, accounts.n + free_domain)
    rank = duplicate_rank(first, last, domain_id)
    local = np.strings.add(
        np.strings.add(np.strings.lower(np.array(V.FIRST_NAMES))[first], "."),
        np.strings.lower(np.array(V.LAST_NAMES))[last],
    )
    # The second John Smith at a domain becomes john.smith2 (names hold no digits).
    local = np.where(rank > 0, np.strings.add(local, (rank + 1).astype("U")), local)
    domain = np.where(
        attached,
        accounts.domain[np.maximum(account, 0)],
        np.array(V.FREE_MAIL_DOMAINS, dtype=object)[free_domain],
    )
    return np.strings.add(np.strings.add(local, "@"), domain.astype(str)).astype(object)


def _typed_company(rng: np.random.Generator, accounts: Accounts, account: np.ndarray) -> np.ndarray:
    n = account.shape[0]
    attached = account != MISSING
    acc = np.maximum(account, 0)
    typed = accounts.name[acc].copy()
    u = rng.random(n)
    lower = u < P.COMPANY_TYPED_LOWER
    brand_only = (u >= P.COMPANY_TYPED_LOWER) & (u < P.COMPANY_TYPED_LOWER + P.COMPANY_TYPED_BRAND)
    typed[lower] = np.strings.lower(typed[lower].astype(str)).astype(object)
    typed[brand_only] = accounts.brand[acc][brand_only]
    # Personal-address leads type a company we have no account for, or that they freelance.
    free = np.flatnonzero(~attached)
    k = free.shape[0]
    free_names = np.strings.add(
        np.strings.add(_brand_names(rng, k), " "), _nouns(rng, np.full(k, MISSING))
    ).astype(object)
    freelance = np.array(V.FREELANCE_COMPANIES, dtype=object)[
        rng.integers(0, len(V.FREELANCE_COMPANIES), k)
    ]
    typed[free] = np.where(rng.random(k) < 0.25, freelance, free_names)
    return typed


def _free_mail_count(params: P.WorldParams) -> int:
    # A one-lead world still needs an account so every code path runs.
    return round(params.free_mail_share * params.n_leads) if params.n_leads > 1 else 0


def account_count(params: P.WorldParams) -> int:
    """Number of accounts: one per `leads_per_account` attached leads, at least one."""
    n_attached = params.n_leads - _free_mail_count(params)
    return max(1, min(n_attached, round(n_attached / params.leads_per_account)))
