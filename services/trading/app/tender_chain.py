"""Starting each announced tender's workflow once, through an outbox (as intake's chain).

An announced tender is committed with ``workflow_started`` false: that row is
the outbox entry. Right after the commit the officer's call tries to start
``tender/<tender no>`` with the signed announcement kept in the row; if
Temporal is out of reach the call still answers (the tender is announced, its
start pending), and the ``TenderStarter`` running in the trading process
starts every pending tender as soon as Temporal answers again — also after a
crash between the commit and the start, since the flag is set only once the
start succeeded (or the tender's own run was found).

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
from services.trading.app import tenders
from services.trading.db.repository import TradingUnitOfWork
from workflows.approval_contract import as_statement
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


def not_ours(run: ExistingRun, *, tender_input: TenderInput, workflow_queue: str) -> str:
    """What makes ``run`` another's than the tender's own ('' when it is the tender's)."""
    if run.workflow_type != WORKFLOW_NAME:
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


@dataclass
class TenderStarter:
    """Starts the workflow of every announced tender, once, whenever Temporal answers."""

    reading: Callable[[], TradingUnitOfWork]
    writing: Callable[[], TradingUnitOfWork]
    gateway: WorkflowGateway
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    poll_seconds: float = 2.0
    backoff_seconds: float = 1.0
    answer_within_seconds: float = 2.0
    replacements: int = 3
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

    async def _input(self, tender_no: str) -> TenderInput:
        stored = await asyncio.to_thread(tenders.announcement_of, uow=self.reading(),
                                         tender_no=tender_no)
        return TenderInput(as_statement(Signed.from_dict(stored)))

    async def _start_once(self, tender_no: str, *, waiting: bool) -> None:
        tender_input = await self._input(tender_no)
        facts = TenderFacts.read(tender_input.announcement.body)
        if not await self.gateway.start(
                WORKFLOW_NAME, tender_input, workflow_id=workflow_id(tender_no),
                task_queue=self.workflow_queue, search_attributes=search_attributes(facts),
                summary=summary(facts),
                answer_within=self.answer_within_seconds if waiting else None):
            await self._claim(tender_no, tender_input, facts)
        await asyncio.to_thread(tenders.mark_workflow_started, uow=self.writing(),
                                tender_no=tender_no, at=datetime.now(UTC))
        log.info("tender.started", tender_no=tender_no)

    async def _claim(self, tender_no: str, tender_input: TenderInput,
                     facts: TenderFacts) -> None:
        identifier = workflow_id(tender_no)
        for _ in range(self.replacements):
            run = await self.gateway.existing_run(identifier, TenderInput)
            if run is not None:
                why = not_ours(run, tender_input=tender_input,
                               workflow_queue=self.workflow_queue)
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
                    WORKFLOW_NAME, tender_input, workflow_id=identifier,
                    task_queue=self.workflow_queue, search_attributes=search_attributes(facts),
                    summary=summary(facts), replacing=run is not None):
                return
        raise SquattedWorkflowId(f"the workflow id {identifier} was taken "
                                 f"{self.replacements} times: the outbox tries again")

    def _record_squatter(self, tender_no: str, run: ExistingRun, why: str) -> None:
        with self.writing() as uow:
            uow.audit.append(actor=Actor(tenders.TRADING_SYSTEM), action=SQUATTED,
                             subject=f"tender/{tender_no}", at=datetime.now(UTC),
                             details={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                      "running": run.running, "not_ours": why})
            uow.commit()

    async def start_pending(self) -> int:
        """Start every announced tender without a workflow; how many were started."""
        started = 0
        passed_over: set[str] = set()
        while True:
            pending = [n for n in await asyncio.to_thread(
                tenders.unstarted_tenders, uow=self.reading()) if n not in passed_over]
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
