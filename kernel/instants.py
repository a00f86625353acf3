"""Instants in a service's database: one column type for every table, SQLite and PostgreSQL alike.

An instant is stored as text, the same on both databases: UTC, ISO 8601,
always to the microsecond (``2026-01-05T01:02:03.000000+00:00``, 32
characters in a ``VARCHAR(40)``). Fixed width and one offset make text order
time order, so ``<``, ``ORDER BY`` and indexes work on the column as they
would on a timestamp. This is the text intake, trading, complaints and the
audit log already wrote (``isoformat()`` of a UTC instant; rows from before
this type that have no fraction of a second read back the same), so their
columns kept their storage and only the Python side changed.

Writing a naive datetime (or anything else) fails before the statement runs:
a time without its zone is not an instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, String
from sqlalchemy.types import TypeDecorator

#: The width of the stored text; it has room for the fixed 32 characters written.
STORED_LENGTH = 40


def utc_text(instant: datetime) -> str:
    """The stored form of ``instant``: UTC, ISO 8601, to the microsecond."""
    if not isinstance(instant, datetime):
        raise TypeError(f"an instant must be a datetime, not {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant must carry its time zone; naive datetimes are refused")
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def from_utc_text(text: str) -> datetime:
    """The instant a stored text names, in UTC."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"stored instant {text!r} has no time zone")
    return instant.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored as fixed-width UTC ISO 8601 text."""

    impl = String(STORED_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else utc_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"stored instant is {type(value).__name__}, not text")
        return from_utc_text(value)
