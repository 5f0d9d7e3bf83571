"""A SOQL subset: tokenizer and recursive-descent parser.

Grammar::

    query      := SELECT select_list FROM ident [WHERE or_expr]
                  [ORDER BY order_item ("," order_item)*] [LIMIT int] [OFFSET int]
    select_list:= COUNT "(" [ident] ")" | field ("," field)*
    or_expr    := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | "(" or_expr ")" | condition
    condition  := field op value | field [NOT] IN "(" value ("," value)* ")"
                  | field LIKE string
    order_item := field [ASC|DESC] [NULLS (FIRST|LAST)]

Like Salesforce, AND and OR may not be mixed at one nesting level without
parentheses (``a AND b OR c`` is MALFORMED_QUERY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .timefmt import parse_iso


class SoqlError(Exception):
    """A query Salesforce would reject: ``error_code`` plus a Salesforce-style message."""

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _locate(query: str, offset: int) -> tuple[int, int]:
    line = query.count("\n", 0, offset) + 1
    column = offset - (query.rfind("\n", 0, offset) + 1) + 1
    return line, column


def error_at(query: str, offset: int, error_code: str, detail: str) -> SoqlError:
    """Build a SoqlError whose message points at ``offset`` like Salesforce does."""
    line, column = _locate(query, offset)
    text_line = query.split("\n")[line - 1] if query else ""
    caret = " " * (column - 1) + "^"
    message = f"\n{text_line}\n{caret}\nERROR at Row:{line}:Column:{column}\n{detail}"
    return SoqlError(error_code, message)


@dataclass(frozen=True)
class Token:
    kind: str  # STRING NUMBER DATETIME DATE IDENT OP LPAREN RPAREN COMMA COLON EOF
    text: str
    pos: int
    value: Any = None


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?|-?\.\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<colon>:)
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


def _unescape(body: str, query: str, pos: int) -> str:
    out = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in ("%", "_"):
                out.append("\\" + nxt)  # kept for LIKE, where \% and \_ are literal
            else:
                raise error_at(query, pos + i + 1, "MALFORMED_QUERY", "Invalid string literal")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def tokenize(query: str) -> list[Token]:
    """Split a SOQL string into tokens; raise SoqlError on an unknown character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN_RE.match(query, pos)
        if not match:
            raise error_at(query, pos, "MALFORMED_QUERY", f"unexpected token: '{query[pos]}'")
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "string":
            tokens.append(Token("STRING", text, pos, _unescape(text[1:-1], query, pos + 1)))
        elif kind == "datetime":
            value = parse_iso(text, require_tz=True)
            if value is None:
                raise error_at(
                    query,
                    pos,
                    "MALFORMED_QUERY",
                    f"line 1:{pos} no viable alternative at character '{text}'",
                )
            tokens.append(Token("DATETIME", text, pos, value))
        elif kind == "date":
            value = parse_iso(text)
            if value is None:
                raise error_at(query, pos, "MALFORMED_QUERY", f"unexpected token: '{text}'")
            tokens.append(Token("DATE", text, pos, value))
        elif kind == "number":
            tokens.append(Token("NUMBER", text, pos, float(text)))
        elif kind != "ws":
            tokens.append(Token(kind.upper(), text, pos))
        pos = match.end()
    tokens.append(Token("EOF", "", len(query)))
    return tokens


# --- AST ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    """A value: kind is string, number, boolean, null, date, datetime or relative."""

    kind: str
    value: Any
    pos: int
    text: str = ""
    # relative date literals (TODAY, LAST_N_DAYS:n): name and n
    relative: tuple[str, int] | None = None


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >= LIKE
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    operands: tuple[Expr, ...]


Expr = Comparison | InList | Not | BoolOp


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    """A parsed SELECT statement."""

    text: str
    fields: list[FieldRef]
    sobject: str
    sobject_pos: int
    where: Expr | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    count: bool = False  # SELECT COUNT()
    count_field: FieldRef | None = None  # SELECT COUNT(Id)


RELATIVE_DATES = ("TODAY", "YESTERDAY", "TOMORROW")
RELATIVE_DATES_N = ("LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO")
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "ORDER",
    "BY",
    "LIMIT",
    "OFFSET",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "NULL",
    "TRUE",
    "FALSE",
    "COUNT",
}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.text.upper() in words

    def fail(self, token: Token | None = None, detail: str | None = None) -> SoqlError:
        token = token or self.tok
        if detail is None:
            shown = "<EOF>" if token.kind == "EOF" else token.text
            detail = f"unexpected token: {shown if token.kind == 'EOF' else repr(shown)}"
        return error_at(self.text, token.pos, "MALFORMED_QUERY", detail)

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.fail()
        return self.advance()

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail()
        return self.advance()

    # grammar
    def query(self) -> Query:
        if not self.is_kw("SELECT"):
            raise self.fail()
        self.advance()
        fields: list[FieldRef] = []
        count = False
        count_field = None
        if self.is_kw("COUNT") and self.tokens[self.i + 1].kind == "LPAREN":
            self.advance()
            self.advance()
            if self.tok.kind == "IDENT":
                count_field = self.field_ref()
            else:
                count = True
            self.expect("RPAREN")
        else:
            fields.append(self.field_ref())
            while self.tok.kind == "COMMA":
                self.advance()
                fields.append(self.field_ref())
        self.expect_kw("FROM")
        obj = self.expect("IDENT")
        query = Query(self.text, fields, obj.text, obj.pos, count=count, count_field=count_field)
        if self.is_kw("WHERE"):
            self.advance()
            query.where = self.or_expr()
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            query.order_by.append(self.order_item())
            while self.tok.kind == "COMMA":
                self.advance()
                query.order_by.append(self.order_item())
        if self.is_kw("LIMIT"):
            self.advance()
            query.limit = self.int_value()
        if self.is_kw("OFFSET"):
            self.advance()
            query.offset = self.int_value()
        if self.tok.kind != "EOF":
            raise self.fail()
        return query

    def int_value(self) -> int:
        token = self.expect("NUMBER")
        if "." in token.text or token.value < 0:
            raise self.fail(token)
        return int(token.value)

    def field_ref(self) -> FieldRef:
        token = self.tok
        if token.kind != "IDENT" or token.text.upper() in _KEYWORDS - {"FIRST", "LAST"}:
            raise self.fail()
        self.advance()
        return FieldRef(token.text, token.pos)

    def order_item(self) -> OrderItem:
        ref = self.field_ref()
        descending = False
        if self.is_kw("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        nulls_last = descending  # Salesforce default: ASC NULLS FIRST, DESC NULLS LAST
        if self.is_kw("NULLS"):
            self.advance()
            if not self.is_kw("FIRST", "LAST"):
                raise self.fail()
            nulls_last = self.advance().text.upper() == "LAST"
        return OrderItem(ref, descending, nulls_last)

    def or_expr(self) -> Expr:
        first = self.and_expr()
        if not self.is_kw("OR"):
            return first
        operands = [first]
        while self.is_kw("OR"):
            self.advance()
            operands.append(self.and_expr())
        if self.is_kw("AND"):
            raise self.fail()
        return BoolOp("OR", tuple(operands))

    def and_expr(self) -> Expr:
        first = self.unary()
        if not self.is_kw("AND"):
            return first
        operands = [first]
        while self.is_kw("AND"):
            self.advance()
            operands.append(self.unary())
        if self.is_kw("OR"):
            # Salesforce refuses to guess precedence between AND and OR.
            raise self.fail()
        return BoolOp("AND", tuple(operands))

    def unary(self) -> Expr:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        if self.tok.kind == "LPAREN":
            self.advance()
            inner = self.or_expr()
            self.expect("RPAREN")
            return inner
        return self.condition()

    def condition(self) -> Expr:
        ref = self.field_ref()
        if self.is_kw("NOT"):
            self.advance()
            self.expect_kw("IN")
            return InList(ref, self.value_list(), negated=True)
        if self.is_kw("IN"):
            self.advance()
            return InList(ref, self.value_list(), negated=False)
        if self.is_kw("LIKE"):
            self.advance()
            token = self.tok
            value = self.value()
            if value.kind != "string":
                raise self.fail(token)
            return Comparison(ref, "LIKE", value)
        if self.tok.kind != "OP":
            raise self.fail()
        op = self.advance().text
        if op == "<>":
            op = "!="
        return Comparison(ref, op, self.value())

    def value_list(self) -> tuple[Literal, ...]:
        self.expect("LPAREN")
        values = [self.value()]
        while self.tok.kind == "COMMA":
            self.advance()
            values.append(self.value())
        self.expect("RPAREN")
        return tuple(values)

    def value(self) -> Literal:
        token = self.tok
        if token.kind == "STRING":
            self.advance()
            return Literal("string", token.value, token.pos, token.text)
        if token.kind == "NUMBER":
            self.advance()
            return Literal("number", token.value, token.pos, token.text)
        if token.kind == "DATETIME":
            self.advance()
            return Literal("datetime", token.value, token.pos, token.text)
        if token.kind == "DATE":
            self.advance()
            return Literal("date", token.value, token.pos, token.text)
        if token.kind == "IDENT":
            word = token.text.upper()
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", token.pos, token.text)
            if word == "NULL":
                self.advance()
                return Literal("null", None, token.pos, token.text)
            if word in RELATIVE_DATES:
                self.advance()
                return Literal("relative", None, token.pos, token.text, (word, 0))
            if word in RELATIVE_DATES_N:
                self.advance()
                self.expect("COLON")
                n_token = self.tok
                n = self.int_value()
                del n_token
                return Literal("relative", None, token.pos, token.text, (word, n))
        raise self.fail()


def parse(text: str) -> Query:
    """Parse a SOQL query.

    Args:
        text: the query string.

    Returns:
        The parsed `Query`.

    Raises:
        SoqlError: MALFORMED_QUERY with a Salesforce-style message.
    """
    return _Parser(text).query()


def relative_range(name: str, n: int, today: np.datetime64) -> tuple[np.datetime64, np.datetime64]:
    """Return the half-open UTC range ``[start, end)`` a relative date literal covers.

    Args:
        name: TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS, NEXT_N_DAYS or N_DAYS_AGO.
        n: the day count for the ``_N_`` forms.
        today: midnight UTC of the current day (``datetime64[ns]``).
    """
    day = np.timedelta64(1, "D")
    if name == "TODAY":
        return today, today + day
    if name == "YESTERDAY":
        return today - day, today
    if name == "TOMORROW":
        return today + day, today + 2 * day
    if name == "LAST_N_DAYS":
        return today - n * day, today + day
    if name == "NEXT_N_DAYS":
        return today + day, today + (n + 1) * day
    if name == "N_DAYS_AGO":
        return today - n * day, today - (n - 1) * day
    raise ValueError(name)
