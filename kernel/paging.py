"""Keyset pages: opaque page tokens holding the key of the last row a page returned.

A listing fetches ``rows_to_fetch(size)`` rows after the key its token names
(``decode_token``), in key order; ``take_page`` keeps ``size`` of them and,
when the extra row shows that more follow, writes the last kept row's key
into the next page's token. A key is a tuple of text, whole numbers and
instants; a token that does not decode to the shape the listing expects is
INVALID_ARGUMENT, never an error further down.

A token comes back from the caller, who can forge one: a key no page ends
on (text holding control characters, which no stored key holds and PostgreSQL
cannot even compare; a number beyond its column; an instant with no UTC
equivalent) is refused as a token this service never gave out, not passed to
the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from kernel.db import MAX_INTEGER
from kernel.errors import InvalidArgument
from kernel.instants import from_utc_text, utc_text
from kernel.text import text_fault

DEFAULT_PAGE_SIZE = 50
#: The largest whole number a key may hold: a signed 64-bit column's.
MAX_KEY_NUMBER = 2**63 - 1
NOT_OURS = "page_token is not a token this service gave out"

KeyPart = str | int | datetime
T = TypeVar("T")
A = TypeVar("A", str, int, datetime)
B = TypeVar("B", str, int, datetime)
C = TypeVar("C", str, int, datetime)


def page_size(requested: int) -> int:
    """The page size asked for, or the default when none was."""
    return requested or DEFAULT_PAGE_SIZE


def rows_to_fetch(size: int) -> int:
    """One row more than a page holds: its presence says another page follows."""
    return size + 1


def encode_token(*key: KeyPart) -> str:
    """The opaque token of the page after the row whose key is ``key``."""
    parts = [utc_text(part) if isinstance(part, datetime) else part for part in key]
    content = json.dumps({"after": parts}, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(content.encode("utf-8")).decode("ascii")


def _part(value: Any, kind: type[KeyPart]) -> KeyPart:
    if kind is datetime and isinstance(value, str):
        return from_utc_text(value)
    if kind is int and type(value) is int and 0 <= value <= MAX_KEY_NUMBER:
        return value
    if kind is str and isinstance(value, str) and text_fault(value) is None:
        value.encode("utf-8")  # a lone surrogate (a JSON escape) is no text: UnicodeError
        return value
    raise ValueError(f"not a {kind.__name__}")


@overload
def decode_token(token: str, shape: tuple[type[A]]) -> tuple[A] | None: ...
@overload
def decode_token(token: str, shape: tuple[type[A], type[B]]) -> tuple[A, B] | None: ...
@overload
def decode_token(token: str,
                 shape: tuple[type[A], type[B], type[C]]) -> tuple[A, B, C] | None: ...
def decode_token(token: str, shape: tuple[type[Any], ...]) -> tuple[KeyPart, ...] | None:
    """The key a token continues after, its parts of the types in ``shape``; None: first page."""
    if not token:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["after"]
        if not isinstance(parts, list) or len(parts) != len(shape):
            raise ValueError("wrong shape")
        return tuple(_part(value, kind) for value, kind in zip(parts, shape, strict=True))
    except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError,
            OverflowError, RecursionError) as error:
        raise InvalidArgument(NOT_OURS) from error


def after_text(token: str) -> str:
    """The text key a token continues after; '' (before every key) for the first page."""
    key = decode_token(token, (str,))
    return key[0] if key else ""


def after_number(token: str, *, maximum: int = MAX_INTEGER) -> int:
    """The numeric key a token continues after; 0 (before every id) for the first page.

    ``maximum`` is the largest value the key's column holds (an ``Integer``
    column's by default); no row has a larger key, and PostgreSQL refuses to
    compare such a column with one.
    """
    key = decode_token(token, (int,))
    if key and key[0] > maximum:
        raise InvalidArgument(NOT_OURS)
    return key[0] if key else 0


@dataclass(frozen=True)
class Page(Generic[T]):
    """The rows of one page and the token of the next ('' on the last page)."""

    items: list[T]
    next_page_token: str


def take_page(rows: Sequence[T], size: int,
              key: Callable[[T], tuple[KeyPart, ...]]) -> Page[T]:
    """A page of ``size`` from ``rows``, fetched with ``limit=rows_to_fetch(size)``."""
    if len(rows) > rows_to_fetch(size):
        raise ValueError(f"fetched {len(rows)} rows for a page of {size}: fetch one more, "
                         "not more than that")
    items = list(rows[:size])
    more = len(rows) > size
    return Page(items, encode_token(*key(items[-1])) if more else "")
