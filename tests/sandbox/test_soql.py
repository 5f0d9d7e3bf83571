"""SOQL tokenizer/parser unit tests and evaluation semantics."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.sandbox.soql import (
    BoolOp,
    Comparison,
    InList,
    Not,
    SoqlError,
    parse,
    relative_range,
    tokenize,
)


def test_select_from_where_order_limit_offset() -> None:
    q = parse(
        "select Id, Name from Lead where Status = 'Open' order by CreatedDate desc nulls "
        "last, Id limit 50 offset 10"
    )
    assert [f.name for f in q.fields] == ["Id", "Name"]
    assert q.sobject == "Lead"
    assert isinstance(q.where, Comparison) and q.where.value.value == "Open"
    assert q.order_by[0].descending and q.order_by[0].nulls_last
    assert not q.order_by[1].descending and not q.order_by[1].nulls_last
    assert (q.limit, q.offset) == (50, 10)


def test_default_nulls_follow_direction() -> None:
    q = parse("SELECT Id FROM Lead ORDER BY Name DESC, Email")
    assert q.order_by[0].nulls_last and not q.order_by[1].nulls_last


def test_precedence_parentheses_and_not() -> None:
    q = parse("SELECT Id FROM Lead WHERE (A = 1 AND B = 2) OR NOT C = 3")
    assert isinstance(q.where, BoolOp) and q.where.op == "OR"
    left, right = q.where.operands
    assert isinstance(left, BoolOp) and left.op == "AND"
    assert isinstance(right, Not)
    q = parse("SELECT Id FROM Lead WHERE A = 1 AND (B = 2 OR C = 3) AND D = 4")
    assert q.where.op == "AND" and len(q.where.operands) == 3
    assert q.where.operands[1].op == "OR"


def test_mixing_and_or_without_parentheses_is_rejected() -> None:
    with pytest.raises(SoqlError) as err:
        parse("SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3")
    assert err.value.error_code == "MALFORMED_QUERY"
    assert "unexpected token: 'OR'" in err.value.message
    assert "Row:1:Column:43" in err.value.message


def test_literals() -> None:
    q = parse(
        "SELECT Id FROM Lead WHERE Name = 'O\\'Brien' AND N = -1.5 AND B = TRUE AND X = null "
        "AND D = 2026-01-31 AND T1 = 2026-01-31T10:00:00Z AND T2 = 2026-01-31T12:00:00+02:00 "
        "AND T3 = 2026-01-31T10:00:00.000+0000 AND R = LAST_N_DAYS:7 AND S = TODAY"
    )
    values = {c.field.name: c.value for c in q.where.operands}
    assert values["Name"].value == "O'Brien"
    assert values["N"].value == -1.5
    assert values["B"].value is True and values["B"].kind == "boolean"
    assert values["X"].kind == "null"
    assert values["D"].kind == "date"
    ten = np.datetime64("2026-01-31T10:00:00", "ns")
    assert values["T1"].value == ten == values["T2"].value == values["T3"].value
    assert values["R"].relative == ("LAST_N_DAYS", 7)
    assert values["S"].relative == ("TODAY", 0)


def test_in_not_in_like() -> None:
    q = parse(
        "SELECT Id FROM Lead WHERE Id IN ('a', 'b') AND Status NOT IN ('x') "
        "AND Email LIKE '%@acme.com'"
    )
    a, b, c = q.where.operands
    assert isinstance(a, InList) and not a.negated and len(a.values) == 2
    assert isinstance(b, InList) and b.negated
    assert isinstance(c, Comparison) and c.op == "LIKE"


def test_count_forms() -> None:
    assert parse("SELECT COUNT() FROM Lead").count
    assert parse("SELECT COUNT(Id) FROM Lead").count_field.name == "Id"


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT FROM Lead",
        "SELECT Id FROM",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Name = 'unterminated",
        "SELECT Id FROM Lead LIMIT -1",
        "SELECT Id FROM Lead WHERE CreatedDate > 2026-01-31T10:00:00",  # datetime needs a zone
        "SELECT Id FROM Lead ORDER BY",
        "SELECT Id FROM Lead WHERE Name LIKE 5",
        "UPDATE Lead SET Name = 'x'",
    ],
)
def test_malformed(bad: str) -> None:
    with pytest.raises(SoqlError) as err:
        parse(bad)
    assert err.value.error_code == "MALFORMED_QUERY"
    assert err.value.message.startswith("\n") and "ERROR at Row:1:Column:" in err.value.message


def test_tokenizer_positions() -> None:
    tokens = tokenize("SELECT Id\nFROM Lead")
    assert [t.kind for t in tokens] == ["IDENT", "IDENT", "IDENT", "IDENT", "EOF"]
    assert tokens[2].pos == 10


def test_relative_ranges() -> None:
    today = np.datetime64("2026-06-01", "ns")
    day = np.timedelta64(1, "D")
    assert relative_range("TODAY", 0, today) == (today, today + day)
    assert relative_range("LAST_N_DAYS", 7, today) == (today - 7 * day, today + day)
    assert relative_range("YESTERDAY", 0, today) == (today - day, today)


def test_evaluation_semantics(sandbox) -> None:
    org = sandbox.salesforce
    total = org.query("SELECT COUNT() FROM Lead")["totalSize"]
    with_phone = org.query("SELECT COUNT() FROM Lead WHERE Phone != null")["totalSize"]
    without = org.query("SELECT COUNT() FROM Lead WHERE Phone = null")["totalSize"]
    assert with_phone + without == total and without > 0
    # Text comparisons are case-insensitive, as in Salesforce.
    upper = org.query("SELECT COUNT() FROM Lead WHERE Status = 'OPEN - NOT CONTACTED'")
    lower = org.query("SELECT COUNT() FROM Lead WHERE Status = 'open - not contacted'")
    assert upper["totalSize"] == lower["totalSize"] > 0
    # != includes nulls, like Salesforce.
    not_arm = org.query("SELECT COUNT() FROM Lead WHERE Experiment_Arm__c != 'x'")
    assert not_arm["totalSize"] == total
    like = org.query("SELECT Email FROM Lead WHERE Email LIKE 'lead1%' LIMIT 5")
    assert all(r["Email"].startswith("lead1") for r in like["records"])
    # NOT binds tighter than AND; parentheses group.
    a = org.query(
        "SELECT COUNT() FROM Lead WHERE NOT IsConverted = true AND HasOptedOutOfEmail = false"
    )["totalSize"]
    b = org.query(
        "SELECT COUNT() FROM Lead WHERE (NOT IsConverted = true) AND (HasOptedOutOfEmail = false)"
    )["totalSize"]
    assert a == b


def test_type_checked_literals(sandbox) -> None:
    org = sandbox.salesforce
    for soql, code in [
        ("SELECT Id FROM Lead WHERE CreatedDate > '2026-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE CreatedDate > 2026-01-01", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Id, id FROM Lead", "MALFORMED_QUERY"),
    ]:
        with pytest.raises(SoqlError) as err:
            org.query(soql)
        assert err.value.error_code == code, soql
    with pytest.raises(SoqlError) as err:
        org.query("SELECT Id, Nope FROM Lead")
    assert "No such column 'Nope' on entity 'Lead'" in err.value.message


def test_id_filters_use_positions_and_accept_15_char_ids(sandbox) -> None:
    org = sandbox.salesforce
    ids = [org.id_for("Lead", 5 + 3 * k) for k in (1, 2, 3)]
    one = org.query(f"SELECT Id FROM Lead WHERE Id = '{ids[0][:15]}'")["records"]
    assert [r["Id"] for r in one] == ids[:1]
    listed = org.query(
        f"SELECT Id FROM Lead WHERE Id IN ('{ids[1]}', '{ids[2]}', "
        "'00Q000000000000AAA') ORDER BY Id DESC"
    )["records"]
    assert [r["Id"] for r in listed] == [ids[2], ids[1]]
    total = org.query("SELECT COUNT() FROM Lead")["totalSize"]
    others = org.query(f"SELECT COUNT() FROM Lead WHERE Id != '{ids[0]}'")["totalSize"]
    assert others == total - 1
    owner = org.query(f"SELECT OwnerId FROM Lead WHERE Id = '{ids[0]}'")["records"][0]["OwnerId"]
    owned = org.query(f"SELECT COUNT() FROM Lead WHERE OwnerId = '{owner[:15]}'")["totalSize"]
    assert owned > 1
