"""The activity that checks a complaint's link (``complaints.check_link``).

The complaint workflow runs it once at the start; it never blocks the case:
while intake or trading cannot be reached it fails as retryable (Temporal tries again
under the workflow's retry policy), and whatever it finds is only counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case, translated_failures
from services.complaints.app import links
from services.complaints.db.repository import ComplaintsUnitOfWork
from workflows.complaint_contract import CHECK_LINK, LinkCheck, LinkChecked


class LinkActivities:
    def __init__(self, engine: Engine, lookup: links.IntakeLookup | None, *,
                 tender_lookup: links.TradingLookup | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._lookup = lookup
        self._tender_lookup = tender_lookup
        self._clock = clock

    @activity.defn(name=CHECK_LINK)
    async def check_link(self, request: LinkCheck) -> LinkChecked:
        stored = await run_use_case(
            links.links_of, uow=ComplaintsUnitOfWork(self._engine, write=False),
            case_number=request.case_number)
        answer = None
        if stored.linked_case_number and self._lookup is not None:
            with translated_failures():
                answer = await self._lookup(stored.linked_case_number)
        tender_answer = None
        if stored.linked_tender_number and self._tender_lookup is not None:
            with translated_failures():
                tender_answer = await self._tender_lookup(stored.linked_tender_number)
        outcome = await run_use_case(
            links.record_link_check, uow=ComplaintsUnitOfWork(self._engine),
            case_number=request.case_number, answer=answer, tender_answer=tender_answer,
            now=self._clock())
        return LinkChecked(kind=outcome.kind, found=outcome.found, detail=outcome.detail)
