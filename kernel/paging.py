"""Opaque page tokens: the key of the last row a page returned.

A token comes back from the caller, who can forge one: a key no page ends
on (one holding control characters, which no stored key holds and PostgreSQL
cannot even compare; a number beyond its column) is refused as a token this
service never gave out, not passed to the database.
"""

from __future__ import annotations

import base64
import binascii
import json

from kernel.db import MAX_INTEGER
from kernel.errors import InvalidArgument
from kernel.text import text_fault

DEFAULT_PAGE_SIZE = 50


def page_size(requested: int) -> int:
    return requested or DEFAULT_PAGE_SIZE


def encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def decode_token(token: str) -> str:
    """The key to continue after; '' for the first page."""
    if not token:
        return ""
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token is not a token this service gave out") from exc
    if not isinstance(after, str) or text_fault(after) is not None:
        raise InvalidArgument("page_token is not a token this service gave out")
    return after


def decode_number_token(token: str, *, maximum: int = MAX_INTEGER) -> int:
    """The row id or version a numbered page continues after; 0 for the first page."""
    after = decode_token(token)
    if not after:
        return 0
    if not (after.isascii() and after.isdigit() and len(after) <= len(str(maximum))
            and int(after) <= maximum):
        raise InvalidArgument("page_token is not a token this service gave out")
    return int(after)
