"""The strict statement-field readers every contract uses (workflows/statement_fields.py)."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.statement_fields import StatementFields


class Malformed(ValueError):
    pass


def fields(**body: Any) -> StatementFields:
    return StatementFields(dict(body), Malformed)


def test_missing_fields_read_as_their_empty_values() -> None:
    read = fields()
    assert (read.text("a"), read.number("b"), read.flag("c"), read.texts("d"),
            read.numbers("e")) == ("", 0, False, (), ())


def test_present_fields_read_as_given() -> None:
    read = fields(a="x", b=7, c=True, d=["p", "q"], e=[1, 2])
    assert (read.text("a", required=True), read.number("b"), read.flag("c"),
            read.texts("d"), read.numbers("e")) == ("x", 7, True, ("p", "q"), (1, 2))


@pytest.mark.parametrize(("body", "reader", "message"), [
    ({}, lambda r: r.text("a", required=True), "statement field a is missing or not text"),
    ({"a": ""}, lambda r: r.text("a", required=True), "statement field a is missing"),
    ({"a": 3}, lambda r: r.text("a"), "statement field a is missing or not text"),
    ({"b": True}, lambda r: r.number("b"), "statement field b is not a whole number"),
    ({"b": 1.5}, lambda r: r.number("b"), "statement field b is not a whole number"),
    ({"b": "1"}, lambda r: r.number("b"), "statement field b is not a whole number"),
    ({"c": 1}, lambda r: r.flag("c"), "statement field c is not true or false"),
    ({"d": "pq"}, lambda r: r.texts("d"), "statement field d is not a list of text"),
    ({"d": ["p", 1]}, lambda r: r.texts("d"), "statement field d is not a list of text"),
    ({"e": [1, False]}, lambda r: r.numbers("e"), "is not a list of whole numbers"),
    ({"e": None}, lambda r: r.numbers("e"), "is not a list of whole numbers"),
])
def test_a_wrong_type_is_the_contracts_malformed_naming_the_field(
        body: dict[str, Any], reader: Any, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        reader(StatementFields(body, Malformed))
