"""Vectorised draw and lookup helpers shared by the world's modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MISSING = -1  # code of a missing category; indexes the last slot of a `table`


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def weighted_choice(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    """Draw `size` category codes with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def rowwise_choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row of an (n, k) matrix of row-normalised probabilities."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    # Clip guards against u landing exactly on the float total.
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def table(vocab: Sequence[str], values: Mapping[str, float], missing: float = 0.0) -> np.ndarray:
    """Coefficient array aligned to `vocab`, with `missing` appended for code -1."""
    return np.array([values[v] for v in vocab] + [missing], dtype=float)


def with_missing(values: Sequence[float], missing: float = 0.0) -> np.ndarray:
    """Coefficient array from a sequence aligned to a vocabulary, plus the code -1 slot."""
    return np.array([*values, missing], dtype=float)


def blank_out(rng: np.random.Generator, codes: np.ndarray, share: float) -> np.ndarray:
    """Replace a random `share` of category codes by MISSING."""
    return np.where(rng.random(codes.shape[0]) < share, MISSING, codes)


def duplicate_rank(*keys: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows share all of `keys` (0 for the first)."""
    n = keys[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(keys[::-1])
    same = np.ones(n, dtype=bool)
    for key in keys:
        k = key[order]
        same[1:] &= k[1:] == k[:-1]
    same[0] = False
    # Run-length position inside each group of equal keys.
    starts = np.flatnonzero(~same)
    run_id = np.cumsum(~same) - 1
    pos = np.arange(n) - starts[run_id]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = pos
    return rank


def group_min(groups: np.ndarray, values: np.ndarray, n_groups: int, empty: int) -> np.ndarray:
    """Minimum of `values` per group id in [0, n_groups); `empty` where a group has none."""
    out = np.full(n_groups, empty, dtype=values.dtype)
    np.minimum.at(out, groups, values)
    return out


def group_max(groups: np.ndarray, values: np.ndarray, n_groups: int, empty: int) -> np.ndarray:
    """Maximum of `values` per group id in [0, n_groups); `empty` where a group has none."""
    out = np.full(n_groups, empty, dtype=values.dtype)
    np.maximum.at(out, groups, values)
    return out


def text(vocab: Sequence[str | None], codes: np.ndarray) -> np.ndarray:
    """Object array of strings looked up by code; code -1 gives None."""
    lookup = np.array([*vocab, None], dtype=object)
    return lookup[codes]
