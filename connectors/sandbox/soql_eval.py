"""Evaluate a parsed SOQL query over a `Table` as vectorised numpy masks."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from .ids import to_18
from .salesforce_schema import NUMBER_TYPES, STRING_TYPES, FieldDef, ObjectSchema
from .soql import (
    BoolOp,
    Expr,
    FieldRef,
    InList,
    Literal,
    Not,
    Query,
    SoqlError,
    error_at,
    relative_range,
)
from .table import Table

_TYPE_WORDS = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}


def no_such_column(query: Query, ref: FieldRef, sobject: str) -> SoqlError:
    """Return Salesforce's INVALID_FIELD error for an unknown column."""
    if "." in ref.name:
        detail = (
            f"Didn't understand relationship '{ref.name.split('.')[0]}' in field path. If you "
            "are attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name. Please reference your WSDL or the describe call for the "
            "appropriate names."
        )
    else:
        detail = (
            f"No such column '{ref.name}' on entity '{sobject}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names."
        )
    return error_at(query.text, ref.pos, "INVALID_FIELD", detail)


def resolve(query: Query, schema: ObjectSchema, ref: FieldRef) -> FieldDef:
    """Return the field ``ref`` names, or raise INVALID_FIELD."""
    fdef = schema.get(ref.name)
    if fdef is None:
        raise no_such_column(query, ref, schema.name)
    return fdef


def _type_error(query: Query, lit: Literal, fdef: FieldDef) -> SoqlError:
    if fdef.type in STRING_TYPES:
        detail = (
            f"value of filter criterion for field '{fdef.name}' must be of type string and "
            "should be enclosed in quotes"
        )
    elif fdef.type in NUMBER_TYPES:
        detail = (
            f"value of filter criterion for field '{fdef.name}' must be of type double and "
            "should not be enclosed in quotes"
        )
    else:
        word = _TYPE_WORDS.get(fdef.type, fdef.type)
        detail = (
            f"value of filter criterion for field '{fdef.name}' must be of type {word} and "
            "should not be enclosed in quotes"
        )
    return error_at(query.text, lit.pos, "INVALID_FIELD", detail)


def _check_literal(query: Query, lit: Literal, fdef: FieldDef) -> None:
    if lit.kind == "null":
        return
    ok = {
        "str": lit.kind == "string",
        "num": lit.kind == "number",
        "bool": lit.kind == "boolean",
        "datetime": lit.kind
        in (("datetime", "relative") if fdef.type == "datetime" else ("date", "relative")),
    }[fdef.kind]
    if not ok:
        raise _type_error(query, lit, fdef)


class Evaluator:
    """Evaluates one query against one table.

    Args:
        query: the parsed query.
        schema: the object's fields.
        table: the object's rows.
        today: midnight UTC of the current day, for relative date literals.
    """

    def __init__(
        self,
        query: Query,
        schema: ObjectSchema,
        table: Table,
        today: np.datetime64,
        locate: Callable[[str], int | None] | None = None,
    ):
        self.query = query
        self.schema = schema
        self.table = table
        self.today = today
        self.locate = locate

    def _id_mask(self, ids: list[str]) -> np.ndarray:
        # Ids decode to row positions, so `Id = '...'` / `Id IN (...)` skip the column scan.
        mask = np.zeros(self.table.n, dtype=bool)
        assert self.locate is not None
        for value in ids:
            pos = self.locate(value)
            if pos is not None:
                mask[pos] = True
        return mask

    def validate(self) -> None:
        """Resolve every field and check every literal, raising SoqlError on the first problem."""
        for ref in self.query.fields:
            resolve(self.query, self.schema, ref)
        if self.query.count_field is not None:
            resolve(self.query, self.schema, self.query.count_field)
        for item in self.query.order_by:
            resolve(self.query, self.schema, item.field)
        if self.query.where is not None:
            self._validate_expr(self.query.where)
        if self.query.offset is not None and self.query.offset > 2000:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")

    def _validate_expr(self, expr: Expr) -> None:
        if isinstance(expr, BoolOp):
            for operand in expr.operands:
                self._validate_expr(operand)
        elif isinstance(expr, Not):
            self._validate_expr(expr.operand)
        elif isinstance(expr, InList):
            fdef = resolve(self.query, self.schema, expr.field)
            for lit in expr.values:
                _check_literal(self.query, lit, fdef)
        else:
            fdef = resolve(self.query, self.schema, expr.field)
            if expr.op == "LIKE" and fdef.kind != "str":
                raise error_at(
                    self.query.text,
                    expr.field.pos,
                    "INVALID_FIELD",
                    f"invalid operator on {fdef.type} field: LIKE",
                )
            _check_literal(self.query, expr.value, fdef)

    # evaluation --------------------------------------------------------------------------
    def mask(self, expr: Expr) -> np.ndarray:
        """Return the boolean row mask of ``expr``."""
        if isinstance(expr, BoolOp):
            masks = [self.mask(e) for e in expr.operands]
            reducer: Callable = np.logical_and if expr.op == "AND" else np.logical_or
            return reducer.reduce(masks)
        if isinstance(expr, Not):
            return ~self.mask(expr.operand)
        fdef = resolve(self.query, self.schema, expr.field)
        if isinstance(expr, InList):
            return self._in(fdef, expr.values, expr.negated)
        return self._compare(fdef, expr.op, expr.value)

    def _column(self, fdef: FieldDef) -> np.ndarray:
        if fdef.kind == "str" and fdef.type not in ("id", "reference"):
            return self.table.lower(fdef.name)
        return self.table.col(fdef.name)

    def _literal(self, fdef: FieldDef, lit: Literal):
        if fdef.kind == "str" and lit.value is not None:
            if fdef.type in ("id", "reference"):
                return to_18(lit.value)
            return lit.value.lower()
        return lit.value

    def _in(self, fdef: FieldDef, values: tuple[Literal, ...], negated: bool) -> np.ndarray:
        column = self._column(fdef)
        wanted = [self._literal(fdef, v) for v in values if v.kind != "null"]
        has_null = any(v.kind == "null" for v in values)
        if fdef.type == "id" and self.locate is not None:
            hit = self._id_mask(wanted)
            return ~hit if negated else hit
        if fdef.kind == "datetime" and any(v.kind == "relative" for v in values):
            result = np.zeros(self.table.n, dtype=bool)
            for v in values:
                result |= self._compare(fdef, "=", v)
        else:
            result = (
                pd.Series(column).isin(wanted).to_numpy()
                if wanted
                else np.zeros(self.table.n, dtype=bool)
            )
            if has_null:
                result |= pd.isna(column)
        return ~result if negated else result

    def _compare(self, fdef: FieldDef, op: str, lit: Literal) -> np.ndarray:
        if (
            fdef.type == "id"
            and self.locate is not None
            and op in ("=", "!=")
            and (lit.kind == "string")
        ):
            hit = self._id_mask([self._literal(fdef, lit)])
            return hit if op == "=" else ~hit
        column = self._column(fdef)
        n = self.table.n
        if lit.kind == "null":
            nulls = pd.isna(column) if fdef.kind != "bool" else np.zeros(n, dtype=bool)
            if op == "=":
                return np.asarray(nulls)
            if op == "!=":
                return ~np.asarray(nulls)
            return np.zeros(n, dtype=bool)
        if lit.kind == "relative":
            name, days = lit.relative or ("TODAY", 0)
            start, end = relative_range(name, days, self.today)
            if op == "=":
                return (column >= start) & (column < end)
            if op == "!=":
                return ~((column >= start) & (column < end))
            if op == "<":
                return column < start
            if op == "<=":
                return column < end
            if op == ">":
                return column >= end
            return column >= start
        value = self._literal(fdef, lit)
        if op == "LIKE":
            return _like(column, value)
        if fdef.kind == "str":
            if op == "=":
                return np.asarray(column == value, dtype=bool)
            if op == "!=":
                return np.asarray(column != value, dtype=bool)
            present = np.array([v is not None for v in column.tolist()], dtype=bool)
            out = np.zeros(n, dtype=bool)
            sub = column[present].astype(str)
            out[present] = _ordered(sub, op, value)
            return out
        if fdef.kind == "datetime":
            value = np.datetime64(value, "ns")
        return _ordered(column, op, value)


def _ordered(column: np.ndarray, op: str, value) -> np.ndarray:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    return column >= value


def _like(column: np.ndarray, pattern: str) -> np.ndarray:
    regex = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    compiled = re.compile("".join(regex), re.IGNORECASE | re.DOTALL)
    return np.array(
        [v is not None and compiled.fullmatch(v) is not None for v in column.tolist()], dtype=bool
    )


def sort_positions(
    positions: np.ndarray, query: Query, schema: ObjectSchema, table: Table
) -> np.ndarray:
    """Return ``positions`` ordered by the query's ORDER BY (stable, ties by position)."""
    if not query.order_by or len(positions) == 0:
        return positions
    keys: list[np.ndarray] = [positions]  # last-resort tiebreaker
    for item in reversed(query.order_by):
        fdef = resolve(query, schema, item.field)
        if fdef.type == "id":
            # Ids are minted in row order, so row position is the id order.
            values = positions.astype(np.float64)
            nulls = np.zeros(len(positions), dtype=bool)
        elif fdef.kind == "str":
            raw = table.lower(fdef.name)[positions]
            codes, _ = pd.factorize(raw, sort=True, use_na_sentinel=True)
            nulls = codes < 0
            values = codes.astype(np.float64)
        elif fdef.kind == "datetime":
            raw = table.col(fdef.name)[positions]
            nulls = np.isnat(raw)
            values = np.where(nulls, 0, raw.view(np.int64))
        elif fdef.kind == "bool":
            values = table.col(fdef.name)[positions].astype(np.float64)
            nulls = np.zeros(len(positions), dtype=bool)
        else:
            raw = table.col(fdef.name)[positions]
            nulls = np.isnan(raw)
            values = np.where(nulls, 0.0, raw)
        if item.descending:
            values = -values
        null_key = (~nulls if not item.nulls_last else nulls).astype(np.int8)
        keys.append(values)
        keys.append(null_key)
    order = np.lexsort(keys)
    return positions[order]
