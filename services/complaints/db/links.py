"""What checking a case's links found, as stored on the case (migrations 0008, 0009)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from services.complaints.db import tables
from services.complaints.domain.metrics import LinkStatus


@dataclass(frozen=True)
class StoredLink:
    """A case's links and what checking them found."""

    case_number: str
    linked_case_number: str
    linked_tender_number: str
    status: LinkStatus
    item_code: str
    department_code: str
    checked_at: datetime | None
    tender_status: LinkStatus = LinkStatus.UNCHECKED
    #: For a tender found: its category of trade ("construction", ...).
    tender_category: str = ""
    #: For a tender found: the tenderer's department.
    tender_department_code: str = ""


class CaseLinks:
    """Repository of the link columns of complaint_cases."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_cases

    def get(self, case_number: str, *, for_update: bool = False) -> StoredLink | None:
        """The case's links; ``for_update`` holds the case's row to the end of the
        transaction (PostgreSQL), so its events are numbered one writer at a time."""
        t = self._t
        query = select(t.c.case_number, t.c.linked_case_number, t.c.linked_tender_number,
                       t.c.link_status, t.c.link_item_code, t.c.link_department_code,
                       t.c.link_checked_at, t.c.tender_link_status, t.c.tender_link_category,
                       t.c.tender_link_department_code).where(t.c.case_number == case_number)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        if row is None:
            return None
        return StoredLink(row.case_number, row.linked_case_number, row.linked_tender_number,
                          LinkStatus(row.link_status), row.link_item_code,
                          row.link_department_code, row.link_checked_at,
                          LinkStatus(row.tender_link_status), row.tender_link_category,
                          row.tender_link_department_code)

    def record(self, case_number: str, *, status: LinkStatus, item_code: str,
               department_code: str, at: datetime,
               tender_status: LinkStatus = LinkStatus.UNCHECKED, tender_category: str = "",
               tender_department_code: str = "") -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.case_number == case_number).values(
                link_status=str(status), link_item_code=item_code,
                link_department_code=department_code, link_checked_at=at,
                tender_link_status=str(tender_status), tender_link_category=tender_category,
                tender_link_department_code=tender_department_code))
