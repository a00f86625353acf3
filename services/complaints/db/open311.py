"""What the Open311 façade reads and writes in the complaints database.

The API keys (only their SHA-256) and the case search GeoReport's
``GET requests`` needs. The published reply (``complaint_replies.published_text``)
and the reply deadline (``complaint_cases.reply_due``) belong to case
handling, whose migration may not be applied to every database this code
meets; ``HandlingSchema`` says once, at start-up, whether they are there, and
the reads below leave them out when they are not (no status notes, no
expected time) instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    column,
    delete,
    func,
    insert,
    inspect,
    select,
    table,
)

from kernel.instants import UtcDateTime
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork

#: Case stages GeoReport calls ``closed``; every other stage is ``open``.
CLOSED_STAGES = ("closed", "merged")

#: The reply table case handling keeps (names fixed by the complaints plan).
_replies = table("complaint_replies", column("case_number"), column("sequence"),
                 column("published_text"))


@dataclass(frozen=True)
class HandlingSchema:
    """Which of case handling's tables and columns this database has."""

    replies: bool = False
    reply_due: bool = False

    @classmethod
    def of(cls, engine: Engine) -> HandlingSchema:
        inspector = inspect(engine)
        replies = inspector.has_table("complaint_replies")
        columns = {c["name"] for c in inspector.get_columns("complaint_cases")}
        return cls(replies=replies, reply_due="reply_due" in columns)


@dataclass(frozen=True)
class CaseRecord:
    """A case as the façade shows it: the complainant is not here at all."""

    number: str
    platform_id: str
    external_id: str
    category_code: str
    department_code: str
    content: str
    latitude: float | None
    longitude: float | None
    address: str
    #: The case's stage (``routed``, ``handling``, … ``closed``, ``merged``).
    stage: str
    received_at: datetime
    #: The time of the case's latest event.
    updated_at: datetime
    reply_due: datetime | None
    #: The anonymised reply as published; None before a reply.
    published_reply: str | None

    @property
    def closed(self) -> bool:
        return self.stage in CLOSED_STAGES


class Open311ApiKeys:
    """Repository of the platforms' API key hashes."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.open311_api_keys

    def hashes(self) -> dict[str, str]:
        """Each platform's key hash, by platform id."""
        rows = self._connection.execute(select(self._t.c.platform_id, self._t.c.key_sha256))
        return {r.platform_id: r.key_sha256 for r in rows}

    def platform_of(self, key_sha256: str) -> str | None:
        """The platform whose key hashes to ``key_sha256``, if any."""
        return self._connection.execute(
            select(self._t.c.platform_id).where(self._t.c.key_sha256 == key_sha256)
        ).scalar_one_or_none()

    def replace(self, platform_id: str, key_sha256: str, *, at: datetime) -> None:
        """Make ``key_sha256`` the platform's only key."""
        self._connection.execute(delete(self._t).where(self._t.c.platform_id == platform_id))
        self._connection.execute(insert(self._t).values(
            platform_id=platform_id, key_sha256=key_sha256, created_at=at))


@dataclass(frozen=True)
class CaseSearch:
    """The filters of GeoReport's ``GET requests``; None means no filter."""

    numbers: Sequence[str] | None = None
    category_codes: Sequence[str] | None = None
    received_from: datetime | None = None
    received_until: datetime | None = None
    #: ``{"open"}``, ``{"closed"}`` or both.
    statuses: frozenset[str] | None = None
    limit: int = 1000


class Open311Cases:
    """Repository of cases as the Open311 façade reads them."""

    def __init__(self, connection: Connection, schema: HandlingSchema) -> None:
        self._connection = connection
        self._schema = schema
        self._t = tables.complaint_cases

    def search(self, search: CaseSearch) -> list[CaseRecord]:
        """Cases matching ``search``, newest first, at most ``search.limit``."""
        t = self._t
        query = self._select()
        if search.numbers is not None:
            query = query.where(t.c.case_number.in_(list(search.numbers)))
        if search.category_codes is not None:
            query = query.where(t.c.category_code.in_(list(search.category_codes)))
        if search.received_from is not None:
            query = query.where(t.c.received_at >= search.received_from)
        if search.received_until is not None:
            query = query.where(t.c.received_at <= search.received_until)
        if search.statuses is not None and len(search.statuses) == 1:
            closed = t.c.status.in_(CLOSED_STAGES)
            query = query.where(closed if "closed" in search.statuses else ~closed)
        rows = list(self._connection.execute(
            query.order_by(t.c.received_at.desc(), t.c.case_number.desc()).limit(search.limit)))
        return self._records(rows)

    def of_external_id(self, external_id: str, *, platform_id: str | None) -> list[CaseRecord]:
        """The cases pushed under ``external_id`` (by ``platform_id`` when given)."""
        t = self._t
        query = self._select().where(t.c.external_id == external_id)
        if platform_id is not None:
            query = query.where(t.c.platform_id == platform_id)
        return self._records(list(self._connection.execute(query.order_by(t.c.case_number))))

    def _select(self) -> Select[Any]:
        # reply_due is read by name: case handling's migration adds it to the table, and this
        # module must not depend on the table definition carrying it.
        by_name = self._schema.reply_due and "reply_due" not in self._t.c
        extra: list[Any] = [column("reply_due")] if by_name else []
        return select(self._t, *extra)

    def _records(self, rows: list[Row[Any]]) -> list[CaseRecord]:
        numbers = [r.case_number for r in rows]
        updated = self._updated(numbers)
        replies = self._published_replies(numbers)
        return [CaseRecord(
            number=r.case_number, platform_id=r.platform_id, external_id=r.external_id,
            category_code=r.category_code, department_code=r.department_code,
            content=r.content, latitude=r.latitude, longitude=r.longitude,
            address=r.address or "", stage=r.status, received_at=r.received_at,
            updated_at=max(updated.get(r.case_number, r.received_at), r.received_at),
            reply_due=self._reply_due(r), published_reply=replies.get(r.case_number))
            for r in rows]

    def _reply_due(self, row: Row[Any]) -> datetime | None:
        if not self._schema.reply_due:
            return None
        value = row._mapping["reply_due"]
        if value is None or isinstance(value, datetime):
            return value
        return UtcDateTime().process_result_value(value, self._connection.dialect)

    def _updated(self, numbers: Iterable[str]) -> dict[str, datetime]:
        events = tables.complaint_events
        wanted = list(numbers)
        if not wanted:
            return {}
        rows = self._connection.execute(
            select(events.c.case_number, func.max(events.c.at).label("latest"))
            .where(events.c.case_number.in_(wanted)).group_by(events.c.case_number))
        # max() keeps the column's type: the instants come back as datetimes.
        return {r.case_number: r.latest for r in rows if r.latest is not None}

    def _published_replies(self, numbers: Iterable[str]) -> dict[str, str]:
        """The latest published (anonymised) reply of each case that has one."""
        wanted = list(numbers)
        if not self._schema.replies or not wanted:
            return {}
        rows = self._connection.execute(
            select(_replies.c.case_number, _replies.c.sequence, _replies.c.published_text)
            .where(_replies.c.case_number.in_(wanted))
            .order_by(_replies.c.case_number, _replies.c.sequence))
        # Ordered by sequence: the last one seen for a case is its latest reply.
        return {r.case_number: r.published_text for r in rows if r.published_text}


class Open311UnitOfWork(ComplaintsUnitOfWork):
    """The complaints unit of work with the façade's repositories."""

    api_keys: Open311ApiKeys
    open311: Open311Cases

    def __init__(self, engine: Engine, *, write: bool = True,
                 schema: HandlingSchema | None = None) -> None:
        super().__init__(engine, write=write)
        self._schema = schema or HandlingSchema()

    def bind(self, connection: Connection) -> None:
        super().bind(connection)
        self.api_keys = Open311ApiKeys(connection)
        self.open311 = Open311Cases(connection, self._schema)
