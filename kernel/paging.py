"""Opaque page tokens: the key of the last row a page returned."""

from __future__ import annotations

import base64
import binascii
import json

from kernel.errors import InvalidArgument

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
    if not isinstance(after, str):
        raise InvalidArgument("page_token is not a token this service gave out")
    return after
