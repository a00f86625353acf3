"""Starting each announced tender's workflow once, through an outbox (as intake's chain).

An announced tender is committed with ``workflow_started`` false: that row is
the outbox entry. Right after the commit the officer's call tries to start
``tender/<tender no>`` with the signed announcement kept in the row; if
Temporal is out of reach the call still answers (the tender is announced, its
start pending), and the ``TenderStarter`` running in the trading process
starts every pending tender as soon as Temporal answers again — also after a
crash between the commit and the start, since the flag is set only once the
start succeeded (or the tender's own run was found).

The same machinery starts each land or property-rights listing's workflow
(``listing/<listing no>``): a ``TenderStarter`` is made for one ``OutboxKind``
(``TENDERS``, the default, or ``LISTINGS``), which names the workflow, its
input and where its outbox rows are.

A start never joins a run it did not make: when the id is held, the run is
the tender's own only if it is a ``TenderWorkflow`` on the workflows' queue
started with the very announcement kept here (Ed25519 signatures are
deterministic). Anything else is a squatter: recorded in the audit log
(``violation.squatted_workflow``), terminated if it runs, and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.audit import Actor
from kernel.errors import Unavailable
from kernel.signing import Signed
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    SLA_STATE,
    STAGE,
    WORKFLOW_TASK_QUEUE,
)
from kernel.workflow_gateway import ExistingRun, WorkflowGateway
from services.trading.app import listings, tenders
from services.trading.db.repository import TradingUnitOfWork
from workflows import listing_contract
from workflows.approval_contract import SignedStatement, as_statement
from workflows.tender_contract import CASE_KIND as TENDER_KIND
from workflows.tender_contract import (
    WORKFLOW_NAME,
    Stage,
    TenderFacts,
    TenderInput,
    workflow_id,
)

log = structlog.get_logger("govhall.trading.tenders")

SQUATTED = "violation.squatted_workflow"


class SquattedWorkflowId(Exception):
    """The tender's workflow id was taken again and again by runs not the tender's."""


def not_ours(run: ExistingRun, *, tender_input: Any, workflow_queue: str,
             workflow_name: str = WORKFLOW_NAME) -> str:
    """What makes ``run`` another's than the trade's own ('' when it is the trade's)."""
    if run.workflow_type != workflow_name:
        return "workflow_type"
    if run.task_queue != workflow_queue:
        return "task_queue"
    if run.argument != tender_input:
        return "input"
    return ""


def summary(facts: TenderFacts) -> str:
    """What the Temporal UI shows: codes only, no names, no bid content."""
    entry = f" ({facts.entry_code})" if facts.entry_code else ""
    return (f"Tender {facts.tender_no} — {facts.category}{entry}, project {facts.project_no}, "
            f"{facts.tenderer_department}")


def search_attributes(facts: TenderFacts) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(CASE_NUMBER, facts.tender_no),
        SearchAttributePair(DEPARTMENT, facts.tenderer_department or facts.department_code),
        SearchAttributePair(STAGE, str(Stage.BIDDING)),
        SearchAttributePair(SLA_STATE, "on_time"),
        SearchAttributePair(CASE_KIND, TENDER_KIND),
    ])


def listing_summary(facts: listing_contract.ListingFacts) -> str:
    """What the Temporal UI shows of a listing: codes only."""
    entry = f" ({facts.entry_code})" if facts.entry_code else ""
    return (f"Listing {facts.listing_no} — {facts.category}{entry}, project "
            f"{facts.project_no}, {facts.owner_department}")


def listing_search_attributes(facts: listing_contract.ListingFacts) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(CASE_NUMBER, facts.listing_no),
        SearchAttributePair(DEPARTMENT, facts.owner_department or facts.department_code),
        SearchAttributePair(STAGE, "listing"),
        SearchAttributePair(SLA_STATE, "on_time"),
        SearchAttributePair(CASE_KIND, listing_contract.CASE_KIND),
    ])


@dataclass(frozen=True)
class OutboxKind:
    """One kind of trade whose workflow the starter starts from its signed announcement."""

    noun: str
    workflow_name: str
    input_type: type[Any]
    workflow_id: Callable[[str], str]
    unstarted: Callable[[TradingUnitOfWork], list[str]]
    announcement_of: Callable[[TradingUnitOfWork, str], dict[str, object]]
    mark_started: Callable[[TradingUnitOfWork, str, datetime], None]
    make_input: Callable[[SignedStatement], Any]
    #: The static summary and the search attributes, from the announcement's body.
    summary: Callable[[dict[str, Any]], str]
    search_attributes: Callable[[dict[str, Any]], TypedSearchAttributes]


TENDERS = OutboxKind(
    "tender", WORKFLOW_NAME, TenderInput, workflow_id,
    lambda uow: tenders.unstarted_tenders(uow=uow),
    lambda uow, no: tenders.announcement_of(uow=uow, tender_no=no),
    lambda uow, no, at: tenders.mark_workflow_started(uow=uow, tender_no=no, at=at),
    TenderInput, lambda body: summary(TenderFacts.read(body)),
    lambda body: search_attributes(TenderFacts.read(body)))

LISTINGS = OutboxKind(
    "listing", listing_contract.WORKFLOW_NAME, listing_contract.ListingInput,
    listing_contract.workflow_id,
    lambda uow: listings.unstarted_listings(uow=uow),
    lambda uow, no: listings.announcement_of(uow=uow, listing_no=no),
    lambda uow, no, at: listings.mark_workflow_started(uow=uow, listing_no=no, at=at),
    listing_contract.ListingInput,
    lambda body: listing_summary(listing_contract.ListingFacts.read(body)),
    lambda body: listing_search_attributes(listing_contract.ListingFacts.read(body)))


@dataclass
class TenderStarter:
    """Starts the workflow of every announced tender (or listing: ``kind``), once,
    whenever Temporal answers."""

    reading: Callable[[], TradingUnitOfWork]
    writing: Callable[[], TradingUnitOfWork]
    gateway: WorkflowGateway
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    poll_seconds: float = 2.0
    backoff_seconds: float = 1.0
    answer_within_seconds: float = 2.0
    replacements: int = 3
    kind: OutboxKind = TENDERS
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False, repr=False)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, tender_no: str,
                             within: float | None) -> AsyncIterator[None]:
        lock = self._locks.setdefault(tender_no, asyncio.Lock())
        try:
            async with asyncio.timeout(within):
                await lock.acquire()
        except TimeoutError as error:
            raise Unavailable(f"the workflow of tender {tender_no} is being started") \
                from error
        try:
            yield
        finally:
            lock.release()
            if not lock.locked():
                self._locks.pop(tender_no, None)

    async def start(self, tender_no: str, *, waiting: bool = False) -> bool:
        """Start the tender's workflow now; False (it stays pending) when it cannot be."""
        try:
            async with self._one_at_a_time(
                    tender_no, self.answer_within_seconds if waiting else None):
                await self._start_once(tender_no, waiting=waiting)
        except Unavailable as error:
            log.warning("tender.start_pending", tender_no=tender_no, reason=error.message)
            return False
        except Exception:
            log.exception("tender.start_failed", tender_no=tender_no)
            return False
        return True

    async def _input(self, tender_no: str) -> Any:
        stored = await asyncio.to_thread(self.kind.announcement_of, self.reading(), tender_no)
        return self.kind.make_input(as_statement(Signed.from_dict(stored)))

    async def _start_once(self, tender_no: str, *, waiting: bool) -> None:
        tender_input = await self._input(tender_no)
        body = tender_input.announcement.body
        if not await self.gateway.start(
                self.kind.workflow_name, tender_input,
                workflow_id=self.kind.workflow_id(tender_no), task_queue=self.workflow_queue,
                search_attributes=self.kind.search_attributes(body),
                summary=self.kind.summary(body),
                answer_within=self.answer_within_seconds if waiting else None):
            await self._claim(tender_no, tender_input, body)
        await asyncio.to_thread(self.kind.mark_started, self.writing(), tender_no,
                                datetime.now(UTC))
        log.info(f"{self.kind.noun}.started", tender_no=tender_no)

    async def _claim(self, tender_no: str, tender_input: Any, body: dict[str, Any]) -> None:
        identifier = self.kind.workflow_id(tender_no)
        for _ in range(self.replacements):
            run = await self.gateway.existing_run(identifier, self.kind.input_type)
            if run is not None:
                why = not_ours(run, tender_input=tender_input,
                               workflow_queue=self.workflow_queue,
                               workflow_name=self.kind.workflow_name)
                if not why:
                    return
                await asyncio.to_thread(self._record_squatter, tender_no, run, why)
                log.warning("tender.squatted_workflow", tender_no=tender_no,
                            run_id=run.run_id, not_ours=why, running=run.running)
                if run.running:
                    await self.gateway.terminate(
                        identifier, run_id=run.run_id,
                        reason=f"not the workflow of tender {tender_no}: started by someone "
                               "other than the trading service")
            if await self.gateway.start(
                    self.kind.workflow_name, tender_input, workflow_id=identifier,
                    task_queue=self.workflow_queue,
                    search_attributes=self.kind.search_attributes(body),
                    summary=self.kind.summary(body), replacing=run is not None):
                return
        raise SquattedWorkflowId(f"the workflow id {identifier} was taken "
                                 f"{self.replacements} times: the outbox tries again")

    def _record_squatter(self, tender_no: str, run: ExistingRun, why: str) -> None:
        with self.writing() as uow:
            uow.audit.append(actor=Actor(tenders.TRADING_SYSTEM), action=SQUATTED,
                             subject=f"{self.kind.noun}/{tender_no}", at=datetime.now(UTC),
                             details={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                      "running": run.running, "not_ours": why})
            uow.commit()

    async def start_pending(self) -> int:
        """Start every announced tender without a workflow; how many were started."""
        started = 0
        passed_over: set[str] = set()
        while True:
            pending = [n for n in await asyncio.to_thread(
                self.kind.unstarted, self.reading()) if n not in passed_over]
            if not pending:
                return started
            for tender_no in pending:
                try:
                    async with self._one_at_a_time(tender_no, None):
                        await self._start_once(tender_no, waiting=False)
                except Unavailable as error:
                    log.warning("tender.start_pending", tender_no=tender_no,
                                reason=error.message)
                    return started
                except Exception:
                    log.exception("tender.start_failed", tender_no=tender_no)
                    passed_over.add(tender_no)
                    continue
                started += 1

    async def run(self) -> None:
        """Until cancelled: start pending tenders every ``poll_seconds``."""
        while True:
            try:
                await self.start_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tender.outbox_failed")
                await asyncio.sleep(self.backoff_seconds)
            await asyncio.sleep(self.poll_seconds)
