"""The case columns the metrics read (services/complaints/domain/metrics.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from services.complaints.db import tables
from services.complaints.domain.metrics import CaseRecord, LinkStatus


def _record(row: Any) -> CaseRecord:
    return CaseRecord(
        case_number=row.case_number, department_code=row.department_code,
        received_at=row.received_at, status=row.status, sign_for_due=row.sign_for_due,
        signed_for_at=row.signed_for_at, reply_due=row.reply_due,
        first_replied_at=row.first_replied_at, replied_at=row.replied_at,
        closed_at=row.closed_at, rating=row.rating, reopened=bool(row.reopened),
        merged_into=row.merged_into or "", linked_case_number=row.linked_case_number,
        linked_tender_number=row.linked_tender_number,
        link_status=LinkStatus(row.link_status), link_item_code=row.link_item_code,
        link_department_code=row.link_department_code,
        tender_link_status=LinkStatus(row.tender_link_status),
        tender_link_category=row.tender_link_category,
        tender_link_department_code=row.tender_link_department_code)


class CaseRecords:
    """Reads cases by when they were received, for counting (no personal data read)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.complaint_cases

    def received_between(self, start: datetime, end: datetime, *,
                         department_code: str = "") -> list[CaseRecord]:
        """The cases received in ``[start, end)``, of one lead department if given."""
        t = self._t
        query = select(
            t.c.case_number, t.c.department_code, t.c.received_at, t.c.status,
            t.c.sign_for_due, t.c.signed_for_at, t.c.reply_due, t.c.first_replied_at,
            t.c.replied_at, t.c.closed_at, t.c.rating, t.c.reopened, t.c.merged_into,
            t.c.linked_case_number, t.c.linked_tender_number, t.c.link_status,
            t.c.link_item_code, t.c.link_department_code, t.c.tender_link_status,
            t.c.tender_link_category, t.c.tender_link_department_code,
        ).where(t.c.received_at >= start, t.c.received_at < end)
        if department_code:
            query = query.where(t.c.department_code == department_code)
        return [_record(row) for row in self._connection.execute(query.order_by(t.c.case_number))]
