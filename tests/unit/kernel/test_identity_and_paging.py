from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from kernel.chinatime import CHINA
from kernel.errors import InvalidArgument, PermissionDenied, Unauthenticated
from kernel.identity import Caller, caller_from
from kernel.paging import (
    MAX_KEY_NUMBER,
    after_number,
    after_text,
    decode_token,
    encode_token,
    rows_to_fetch,
    take_page,
)


def test_the_system_is_the_certificate_common_name() -> None:
    caller = caller_from([b"hotline-12345"], {"x-govhall-official": "ZWFWZX-011"})
    assert caller == Caller("hotline-12345", "ZWFWZX-011")


def test_no_certificate_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        caller_from([], {})


def test_a_malformed_official_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="x-govhall-official"):
        caller_from([b"operator"], {"x-govhall-official": "'; DROP TABLE officials; --"})


def _forged(content: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(content).encode()).decode()


def test_page_tokens_round_trip_each_kind_of_key() -> None:
    due = datetime(2026, 1, 5, 9, 0, tzinfo=CHINA)
    assert after_text(encode_token("012101000001000")) == "012101000001000"
    assert after_number(encode_token(42)) == 42
    assert decode_token(encode_token(due, "AP-20260105-000001", "review"),
                        (datetime, str, str)) == (due, "AP-20260105-000001", "review")
    assert after_text("") == "" and after_number("") == 0
    assert decode_token("", (datetime, str, str)) is None


@pytest.mark.parametrize("forged", [
    "%%%", "e30=", _forged({"after": 1}), _forged({"after": ["x", "y"]}),
    _forged({"after": [True]}), _forged({"after": [-1]}), _forged({"after": [MAX_KEY_NUMBER + 1]}),
    _forged({"after": ["12"]}), _forged({"before": [1]}), "4pyT",
])
def test_a_number_token_refuses_anything_but_one_id(forged: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        after_number(forged)


@pytest.mark.parametrize("forged", [
    _forged({"after": ["2026-01-05T09:00:00", "AP", "review"]}),  # no time zone
    _forged({"after": ["yesterday", "AP", "review"]}),
    _forged({"after": ["2026-01-05T01:00:00.000000+00:00", 1, "review"]}),
    _forged({"after": "2026-01-05T01:00:00.000000+00:00"}),
])
def test_a_composite_token_refuses_parts_of_the_wrong_kind(forged: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_token(forged, (datetime, str, str))


def test_a_page_of_limit_plus_one_rows_says_where_the_next_begins() -> None:
    rows = [f"code-{n}" for n in range(4)]
    page = take_page(rows[:rows_to_fetch(3)], 3, key=lambda r: (r,))
    assert page.items == rows[:3]
    assert after_text(page.next_page_token) == "code-2"
    last = take_page(rows[3:], 3, key=lambda r: (r,))
    assert last.items == ["code-3"] and last.next_page_token == ""
    exact = take_page(rows[:3], 3, key=lambda r: (r,))
    assert exact.items == rows[:3] and exact.next_page_token == ""


def test_a_page_keys_instants_in_utc() -> None:
    moments = [datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=h) for h in range(3)]
    page = take_page(moments, 2, key=lambda m: (m.astimezone(CHINA),))
    assert decode_token(page.next_page_token, (datetime,)) == (moments[1],)


def test_fetching_more_than_one_extra_row_is_a_bug_not_a_page() -> None:
    with pytest.raises(ValueError, match="one more"):
        take_page(list(range(10)), 3, key=lambda n: (n,))


def test_permission_denied_is_not_unauthenticated() -> None:
    assert not issubclass(PermissionDenied, Unauthenticated)
