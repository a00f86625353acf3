"""Forged page tokens: keys no page ends on are refused before they reach a database."""

from __future__ import annotations

import pytest

from kernel.db import MAX_INTEGER
from kernel.errors import InvalidArgument
from kernel.paging import decode_number_token, decode_token, encode_token


@pytest.mark.parametrize("key", ["a\x00b", "\x00", "\x1b[2J", "SCJGJ\x7f", "\u0085"])
def test_a_key_holding_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token(encode_token(key))


@pytest.mark.parametrize("key", ["012101000007001", "SCJGJ-003", "食品经营许可", "a\tb"])
def test_ordinary_keys_round_trip(key: str) -> None:
    assert decode_token(encode_token(key)) == key


@pytest.mark.parametrize(("key", "number"), [("", 0), ("1", 1), (str(MAX_INTEGER), MAX_INTEGER)])
def test_numbered_pages_continue_after_their_number(key: str, number: int) -> None:
    assert decode_number_token(encode_token(key) if key else "") == number


@pytest.mark.parametrize("key", [
    str(MAX_INTEGER + 1), "9223372036854775807", "9" * 40, "-1", "1e9", "٣", "1 ", " ", "x",
])
def test_a_number_beyond_the_column_or_not_a_number_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_number_token(encode_token(key))
