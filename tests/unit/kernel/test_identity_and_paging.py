from __future__ import annotations

import pytest

from kernel.errors import InvalidArgument, PermissionDenied, Unauthenticated
from kernel.identity import Caller, caller_from
from kernel.paging import decode_token, encode_token


def test_the_system_is_the_certificate_common_name() -> None:
    caller = caller_from([b"hotline-12345"], {"x-govhall-official": "ZWFWZX-011"})
    assert caller == Caller("hotline-12345", "ZWFWZX-011")


def test_no_certificate_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        caller_from([], {})


def test_a_malformed_official_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="x-govhall-official"):
        caller_from([b"operator"], {"x-govhall-official": "'; DROP TABLE officials; --"})


def test_page_tokens_round_trip_and_refuse_forgeries() -> None:
    assert decode_token(encode_token("012101000001000")) == "012101000001000"
    assert decode_token("") == ""
    for forged in ("%%%", "e30=", "eyJhZnRlciI6IDF9"):  # junk, {}, {"after": 1}
        with pytest.raises(InvalidArgument):
            decode_token(forged)


def test_permission_denied_is_not_unauthenticated() -> None:
    assert not issubclass(PermissionDenied, Unauthenticated)
