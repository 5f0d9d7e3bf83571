"""Helpers for rendering a CrmSeed: key indexes and vectorised lookups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class KeyIndex:
    """Maps a seed frame's integer keys to row positions (the frame sorted by key)."""

    def __init__(self, keys: Any):
        self.keys = np.asarray(pd.to_numeric(pd.Series(keys), errors="coerce"), dtype=np.float64)
        if len(self.keys) and np.any(np.diff(self.keys) < 0):
            raise ValueError("KeyIndex needs sorted keys")

    def __len__(self) -> int:
        return len(self.keys)

    def positions(self, keys: Any) -> np.ndarray:
        """Return row positions for ``keys`` (-1 where missing or null)."""
        wanted = np.asarray(pd.to_numeric(pd.Series(keys), errors="coerce"), dtype=np.float64)
        if not len(self.keys):
            return np.full(len(wanted), -1, dtype=np.int64)
        pos = np.searchsorted(self.keys, wanted)
        pos = np.clip(pos, 0, len(self.keys) - 1)
        ok = self.keys[pos] == wanted
        return np.where(ok, pos, -1).astype(np.int64)

    def position(self, key: Any) -> int | None:
        """Return the row position of one key, or None."""
        pos = int(self.positions([key])[0])
        return None if pos < 0 else pos


def sorted_frame(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Return ``frame`` sorted by its key column with a fresh RangeIndex."""
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Return ``values[positions]`` as an object array with None where position is -1."""
    out = np.full(len(positions), None, dtype=object)
    ok = positions >= 0
    if len(values):
        out[ok] = np.asarray(values, dtype=object)[positions[ok]]
    return out


def take_num(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Like `take` for numeric columns (NaN where missing)."""
    out = np.full(len(positions), np.nan)
    ok = positions >= 0
    if len(values):
        out[ok] = np.asarray(values, dtype=np.float64)[positions[ok]]
    return out


def map_values(values: Any, mapping: dict[Any, Any]) -> np.ndarray:
    """Vectorised vocabulary mapping; unmapped or null values become None.

    Returns an object array that shares the mapping's value objects.
    """
    series = pd.Series(np.asarray(values, dtype=object))
    mapped = series.map(mapping)
    out = mapped.to_numpy(dtype=object)
    out[pd.isna(out)] = None
    return out


def str_column(values: Any) -> np.ndarray:
    """Return an object array of str/None from a seed column."""
    out = np.asarray(pd.Series(values).to_numpy(dtype=object), dtype=object).copy()
    out[pd.isna(out)] = None
    return out


def floor_seconds(values: np.ndarray) -> np.ndarray:
    """Truncate datetime64 values to whole seconds (Salesforce audit-field precision)."""
    return np.asarray(values).astype("datetime64[s]").astype("datetime64[ns]")


def stable_fraction(keys: Any, salt: int) -> np.ndarray:
    """Return a deterministic pseudo-random number in [0, 1) per integer key."""
    k = np.asarray(pd.to_numeric(pd.Series(keys), errors="coerce").fillna(0), dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (k + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(32)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
