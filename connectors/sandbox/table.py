"""Columnar record storage shared by the Salesforce org and the HubSpot portal.

Each object (Lead, contacts, ...) is one `Table`: a mapping of column name to a
numpy array, all of the same length, plus the storage kind of each column.
Reads take vectorised slices; writes set single cells in place (O(1)), which
is why the arrays are owned numpy arrays rather than pandas blocks (pandas'
copy-on-write would copy whole blocks on a single-cell write).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["str", "num", "bool", "datetime"]


def empty_column(kind: Kind, n: int, fill: Any = None) -> np.ndarray:
    """Return a new column of ``n`` null (or ``fill``) values of storage ``kind``."""
    if kind == "str":
        return np.full(n, fill, dtype=object)
    if kind == "num":
        return np.full(n, np.nan if fill is None else float(fill), dtype=np.float64)
    if kind == "bool":
        return np.full(n, bool(fill), dtype=bool)
    return np.full(n, np.datetime64("NaT", "ns") if fill is None else fill, dtype="datetime64[ns]")


def kind_array(kind: Kind, values: Any) -> np.ndarray:
    """Return Python values (None = null) as an array of storage ``kind``."""
    if kind == "str":
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    if kind == "num":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "bool":
        return np.array([bool(v) for v in values], dtype=bool)
    return np.array(
        [np.datetime64("NaT", "ns") if v is None else v for v in values], dtype="datetime64[ns]"
    )


def coerce_column(kind: Kind, values: Any, n: int) -> np.ndarray:
    """Convert seed-derived values to an owned array of storage ``kind``."""
    if np.isscalar(values) or values is None:
        return empty_column(kind, n, values)
    clean = isinstance(values, np.ndarray) and values.dtype == object
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object) if kind == "str" else values.to_numpy()
    arr = np.asarray(values)
    if kind == "str":
        out = np.array(arr, dtype=object, copy=True)
        # Object arrays built by the renderers already hold None for missing values; anything
        # else (pandas string columns, lists) may carry NaN/NA and is cleaned here.
        if out.size and not clean:
            out[pd.isna(out)] = None
        return out
    if kind == "num":
        return np.array(pd.to_numeric(pd.Series(arr), errors="coerce"), dtype=np.float64)
    if kind == "bool":
        return np.array(pd.Series(arr).fillna(False).astype(bool), dtype=bool)
    return np.array(arr, dtype="datetime64[ns]", copy=True)


class Table:
    """One object's rows, stored column by column.

    Args:
        name: the object name (for messages).
        n: number of rows.
        columns: column name -> array (copied into owned arrays of ``kinds``).
        kinds: column name -> storage kind.
    """

    def __init__(self, name: str, n: int, columns: dict[str, Any], kinds: dict[str, Kind]):
        self.name = name
        self.n = n
        self.kinds: dict[str, Kind] = {}
        self.columns: dict[str, np.ndarray] = {}
        self._lower: dict[str, np.ndarray] = {}
        for col, kind in kinds.items():
            self.columns[col] = coerce_column(kind, columns.get(col), n)
            self.kinds[col] = kind

    def __len__(self) -> int:
        return self.n

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def col(self, column: str) -> np.ndarray:
        """Return the live array of ``column`` (do not mutate it; use `set`)."""
        return self.columns[column]

    def lower(self, column: str) -> np.ndarray:
        """Return a cached lower-cased copy of a string column (None stays None)."""
        cached = self._lower.get(column)
        if cached is None:
            values = self.columns[column]
            cached = np.array(
                [v.lower() if isinstance(v, str) else None for v in values.tolist()], dtype=object
            )
            self._lower[column] = cached
        return cached

    def get(self, pos: int, column: str) -> Any:
        """Return one cell as a Python value (None for nulls)."""
        value = self.columns[column][pos]
        kind = self.kinds[column]
        if kind == "num":
            return None if np.isnan(value) else float(value)
        if kind == "bool":
            return bool(value)
        if kind == "datetime":
            return None if np.isnat(value) else value
        return value

    def set(self, pos: int, column: str, value: Any) -> None:
        """Write one cell; ``value`` must already be of the column's kind (or None)."""
        kind = self.kinds[column]
        arr = self.columns[column]
        if value is None:
            if kind == "num":
                value = np.nan
            elif kind == "datetime":
                value = np.datetime64("NaT", "ns")
            elif kind == "bool":
                value = False
        arr[pos] = value
        self._lower.pop(column, None)

    def set_many(self, positions: np.ndarray, column: str, values: Any) -> None:
        """Write many cells at once; ``values`` are Python values of the column's kind or None."""
        if len(positions) == 0:
            return
        self.columns[column][positions] = kind_array(self.kinds[column], values)
        self._lower.pop(column, None)

    def add_column(self, column: str, kind: Kind, fill: Any = None) -> None:
        """Add a column of nulls (or ``fill``)."""
        self.columns[column] = empty_column(kind, self.n, fill)
        self.kinds[column] = kind

    def drop_column(self, column: str) -> None:
        """Remove a column."""
        self.columns.pop(column, None)
        self.kinds.pop(column, None)
        self._lower.pop(column, None)

    def to_frame(self) -> pd.DataFrame:
        """Return a pandas DataFrame copy of the table (for inspection and tests)."""
        return pd.DataFrame({c: pd.Series(a.copy()) for c, a in self.columns.items()})


def append_row(table: Table, row: dict[str, Any]) -> int:
    """Append one row to a (small) table and return its position.

    This copies every column, so it is meant for small tables such as CustomField.
    """
    for column, kind in table.kinds.items():
        cell = empty_column(kind, 1)
        value = row.get(column)
        if value is not None:
            cell[0] = value
        table.columns[column] = np.concatenate([table.columns[column], cell])
    table.n += 1
    table._lower.clear()
    return table.n - 1


def append_rows(table: Table, columns: dict[str, np.ndarray], count: int) -> np.ndarray:
    """Append ``count`` rows at once (one copy per column); return their positions.

    ``columns`` maps column names to arrays of the column's storage kind; columns left out
    are filled with nulls.
    """
    start = table.n
    for column, kind in table.kinds.items():
        block = columns.get(column)
        if block is None:
            block = empty_column(kind, count)
        table.columns[column] = np.concatenate([table.columns[column], block])
    table.n += count
    table._lower.clear()
    return np.arange(start, start + count)


def delete_rows(table: Table, mask: np.ndarray) -> int:
    """Physically remove the rows where ``mask`` is true (small tables); return how many."""
    removed = int(mask.sum())
    if removed:
        keep = ~mask
        for column in list(table.columns):
            table.columns[column] = table.columns[column][keep]
        table.n -= removed
        table._lower.clear()
    return removed


def delete_row(table: Table, pos: int) -> None:
    """Physically remove one row from a (small) table."""
    for column in list(table.columns):
        table.columns[column] = np.delete(table.columns[column], pos)
    table.n -= 1
    table._lower.clear()
