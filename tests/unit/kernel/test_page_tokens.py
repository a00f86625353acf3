"""Forged page tokens: keys no page ends on are refused before they reach a database."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from kernel.db import MAX_INTEGER
from kernel.errors import InvalidArgument
from kernel.paging import after_number, after_text, decode_token, encode_token


def _forged(content: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(content).encode()).decode()


@pytest.mark.parametrize("key", ["a\x00b", "\x00", "\x1b[2J", "SCJGJ\x7f", "\u0085"])
def test_a_key_holding_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        after_text(encode_token(key))


@pytest.mark.parametrize("key", ["\x00", "AP\x1b", "review\x7f"])
def test_a_composite_key_holding_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token(_forged({"after": ["2026-01-05T01:00:00.000000+00:00", key, "review"]}),
                     (datetime, str, str))


@pytest.mark.parametrize("key", ["012101000007001", "SCJGJ-003", "食品经营许可", "a\tb"])
def test_ordinary_keys_round_trip(key: str) -> None:
    assert after_text(encode_token(key)) == key


@pytest.mark.parametrize(("token", "number"), [
    ("", 0), (encode_token(1), 1), (encode_token(MAX_INTEGER), MAX_INTEGER),
])
def test_numbered_pages_continue_after_their_number(token: str, number: int) -> None:
    assert after_number(token) == number


@pytest.mark.parametrize("key", [
    MAX_INTEGER + 1, 9223372036854775807, int("9" * 40), -1, 1e9, "٣", "1 ", " ", "x", "1",
])
def test_a_number_beyond_the_column_or_not_a_number_is_refused(key: object) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        after_number(_forged({"after": [key]}))


def test_a_wider_column_takes_a_wider_number() -> None:
    assert after_number(encode_token(MAX_INTEGER + 1), maximum=2**63 - 1) == MAX_INTEGER + 1


@pytest.mark.parametrize("due", [
    "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
])
def test_an_instant_with_no_utc_equivalent_is_refused(due: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token(_forged({"after": [due, "AP-20260105-000001", "review"]}),
                     (datetime, str, str))


def _raw_token(content: str) -> str:
    return base64.urlsafe_b64encode(content.encode("utf-8")).decode("ascii")


@pytest.mark.parametrize("content", [
    # JSON escapes of lone surrogates: Python strings no database driver can encode.
    '{"after":["\\ud800"]}', '{"after":["LS-\\udfff"]}',
    # Nested deeper than the parser goes.
    '{"after":' + "[" * 100_000 + "]" * 100_000 + "}",
])
def test_a_token_no_database_could_take_is_refused_as_not_ours(content: str) -> None:
    with pytest.raises(InvalidArgument):
        after_text(_raw_token(content))
    with pytest.raises(InvalidArgument):
        decode_token(_raw_token(content), (str, str))
