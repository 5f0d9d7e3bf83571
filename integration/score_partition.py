"""Chunks of a scoring pass for workers to share: whole people and whole accounts.

A chunk must see what the single-process pass sees for each of its leads: the
duplicates hygiene merges into the lead (same email, same name at the same domain,
the converted contact) and the colleagues at its account (the account features).
So chunks are unions of connected components of leads linked by those keys, taken
in lead-id order and cut where a chunk reaches its size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import func, or_, select

from integration.features import among, connection_hygiene, read_frame
from integration.modeling.hygiene import HygieneConfig, person_of
from integration.store import Store
from integration.store.models import Lead


def _components(leads: pd.DataFrame, config: HygieneConfig) -> np.ndarray:
    """Component label per lead row: people (hygiene's links) joined by account."""
    n = len(leads)
    person = person_of(leads, config)
    account, _ = pd.factorize(leads["account_crm_id"], use_na_sentinel=True)
    rows = np.arange(n)
    has_account = account >= 0
    # Nodes: leads, then people, then accounts; each lead links to its person and account.
    people = person.max() + 1 if n else 0
    row = np.concatenate([rows, rows[has_account]])
    col = np.concatenate([n + person, n + people + account[has_account]])
    size = n + people + (account.max() + 1 if has_account.any() else 0)
    graph = coo_matrix((np.ones(len(row)), (row, col)), shape=(size, size))
    return connected_components(graph, directed=False)[1][:n]


def partition(
    leads: pd.DataFrame, size: int, config: HygieneConfig | None = None
) -> list[list[str]]:
    """Lead crm ids per chunk (``leads``: crm_id, account_crm_id and hygiene's key
    columns, in id order); each chunk about ``size`` leads, a component never split."""
    if leads.empty:
        return []
    label = _components(leads.reset_index(drop=True), config or HygieneConfig())
    # A component sorts where its first (lowest-id) lead sits.
    first = pd.Series(np.arange(len(label))).groupby(label).transform("min").to_numpy()
    order = np.argsort(first, kind="stable")
    ordered_label = label[order]
    new_component = np.r_[True, ordered_label[1:] != ordered_label[:-1]]
    starts = np.flatnonzero(new_component)
    ids = leads["crm_id"].astype(str).to_numpy()[order]
    chunks: list[list[str]] = []
    begin = 0
    for start in starts[1:]:
        if start - begin >= size:
            chunks.append(ids[begin:start].tolist())
            begin = start
    chunks.append(ids[begin:].tolist())
    return chunks


KEY_COLUMNS = ("crm_id", "account_crm_id", "email", "first_name", "last_name",
               "converted_contact_crm_id", "created_at")  # fmt: skip


def plan_chunks(store: Store, connection_id: int, size: int) -> list[list[str]]:
    """The chunks of a full pass over the connection's live leads."""
    leads = read_frame(
        store,
        select(*[getattr(Lead, c) for c in KEY_COLUMNS])
        .where(Lead.connection_id == connection_id, Lead.deleted.is_(False))
        .order_by(Lead.id),
    )
    return partition(leads, size, connection_hygiene(store, connection_id))


def neighbourhood(
    store: Store, connection_id: int, lead_ids: list[str], hygiene: HygieneConfig | None = None
) -> list[str]:
    """The leads whose rows scoring ``lead_ids`` reads: theirs, their accounts'
    colleagues', and their duplicates' (same email, or their converted contact),
    closed into whole components one hop out. What a rescore of a few leads (a
    webhook's) loads instead of the whole connection."""
    columns = [getattr(Lead, c) for c in KEY_COLUMNS]
    mine = read_frame(
        store,
        select(*columns).where(
            Lead.connection_id == connection_id, among(store, Lead.crm_id, lead_ids)
        ),
    )
    if mine.empty:
        return []
    accounts = [a for a in mine["account_crm_id"].dropna().unique().tolist()]
    emails = [e.strip().lower() for e in mine["email"].dropna().unique().tolist()]
    contacts = [c for c in mine["converted_contact_crm_id"].dropna().unique().tolist()]
    linked = [
        among(store, Lead.crm_id, lead_ids),
        among(store, Lead.converted_contact_crm_id, lead_ids),
    ]
    if accounts:
        linked.append(among(store, Lead.account_crm_id, accounts))
    if emails:
        linked.append(among(store, func.lower(Lead.email), emails))
    if contacts:
        linked.append(among(store, Lead.crm_id, contacts))
    around = read_frame(
        store,
        select(*columns)
        .where(Lead.connection_id == connection_id, Lead.deleted.is_(False), or_(*linked))
        .order_by(Lead.id),
    )
    config = hygiene or connection_hygiene(store, connection_id)
    label = _components(around.reset_index(drop=True), config)
    wanted = set(label[around["crm_id"].isin(lead_ids).to_numpy()])
    return around.loc[np.isin(label, list(wanted)), "crm_id"].astype(str).tolist()
