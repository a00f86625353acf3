"""The complaints service's side of the complaint workflow: start each committed case's run once.

**The outbox.** ``SubmitComplaint`` commits the case with
``workflow_started`` false (that row is the outbox entry) and answers at
once: it never waits on Temporal, so a burst of pushes is taken at the
database's pace. The ``ComplaintStarter`` running in the complaints process
starts every pending case's ``ComplaintWorkflow`` (``complaint/<case no>``)
as soon as Temporal answers, and sets the flag only after the start
succeeded (or the run under the id was found to be the case's own): a kill
-9 between the commit and the start leaves the case pending, and the next
process starts it. A submit wakes the starter, so a case is started at once
when Temporal is up, but never on the caller's time.

**The workflow id is the case's**, and case numbers are sequential, so anyone
who reaches Temporal could start a run under the next case's id first. A
start never joins a run it did not make: when the id is held, the run is
read; it is the case's own only if it is a ``ComplaintWorkflow`` on the
workflow queue started with the very RECEIVED statement the service would
start it with (Ed25519 signatures are deterministic, so an equal statement
is the service's own). Anything else is a squatter: recorded as
``violation.squatted_workflow`` in the audit log, terminated if it still
runs, and replaced by the case's own run.

This copies the shape of intake's ``ChainStarter`` (services/intake/app/chain.py)
rather than sharing it: intake's also serves the window's waiting call and
its locks, which complaints does not need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.audit import Actor
from kernel.errors import NotFound, Unavailable
from kernel.signing import ServiceSigner
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    SLA_STATE,
    STAGE,
    WORKFLOW_TASK_QUEUE,
)
from kernel.workflow_gateway import ExistingRun, WorkflowGateway
from services.complaints.app.recording import COMPLAINTS_SYSTEM, received_statement
from services.complaints.db.repository import CaseHandling, ComplaintsUnitOfWork
from workflows.complaint_contract import CASE_KIND as COMPLAINT_KIND
from workflows.complaint_contract import (
    WORKFLOW_NAME,
    ComplaintInput,
    SlaState,
    Stage,
    workflow_id,
)

log = structlog.get_logger("govhall.complaints.flow")

#: What the service records when someone else's run held a case's workflow id.
SQUATTED = "violation.squatted_workflow"


class SquattedWorkflowId(Exception):
    """The case's workflow id was taken again and again by runs that are not the case's."""


def not_ours(run: ExistingRun, *, case_input: ComplaintInput, workflow_queue: str) -> str:
    """What makes ``run`` another's than the case's own ('' when it is the case's own)."""
    if run.workflow_type != WORKFLOW_NAME:
        return "workflow_type"
    if run.task_queue != workflow_queue:
        return "task_queue"
    if run.argument != case_input:
        return "input"
    return ""


def summary(case: CaseHandling) -> str:
    """What the Temporal UI shows: codes only, no personal data."""
    urgent = " urgent" if case.urgent else ""
    return f"Complaint {case.kind}{urgent} {case.category_code} — {case.department_code}"


def search_attributes(case: CaseHandling) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(CASE_NUMBER, case.case_number),
        SearchAttributePair(DEPARTMENT, case.department_code),
        SearchAttributePair(STAGE, str(Stage.ROUTED)),
        SearchAttributePair(SLA_STATE, str(SlaState.ON_TIME)),
        SearchAttributePair(CASE_KIND, COMPLAINT_KIND),
    ])


def unstarted_cases(*, uow: ComplaintsUnitOfWork, limit: int = 200) -> list[str]:
    with uow:
        return uow.handling.unstarted(limit=limit)


def case_to_start(*, uow: ComplaintsUnitOfWork, case_number: str) -> CaseHandling:
    with uow:
        case = uow.handling.get(case_number)
    if case is None:
        raise NotFound(f"complaint case {case_number} does not exist")
    return case


def mark_started(*, uow: ComplaintsUnitOfWork, case_number: str, now: datetime) -> None:
    with uow:
        if uow.handling.mark_started(case_number):
            uow.audit.append(actor=Actor(COMPLAINTS_SYSTEM), action="complaint.workflow_started",
                             subject=f"complaint/{case_number}", at=now,
                             details={"workflow_id": workflow_id(case_number)})
            uow.commit()


def record_squatted_workflow(*, uow: ComplaintsUnitOfWork, case_number: str, run: ExistingRun,
                             why: str, now: datetime) -> None:
    """Keep, in the audit log, a run someone else started under the case's workflow id."""
    with uow:
        uow.audit.append(actor=Actor(COMPLAINTS_SYSTEM), action=SQUATTED,
                         subject=f"complaint/{case_number}", at=now,
                         details={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                  "running": run.running, "not_ours": why})
        uow.commit()


@dataclass
class ComplaintStarter:
    """Starts the workflow of every committed case, once, whenever Temporal can be reached."""

    reading: Callable[[], ComplaintsUnitOfWork]
    writing: Callable[[], ComplaintsUnitOfWork]
    signer: ServiceSigner
    gateway: WorkflowGateway
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    #: Seconds between looks for pending cases (also while Temporal is out of reach).
    poll_seconds: float = 2.0
    #: Seconds to wait after the outbox itself failed (a database outage, a bug).
    backoff_seconds: float = 1.0
    #: Squatters replaced in one attempt before the case is left to the next round.
    replacements: int = 3
    #: Cases started at once: one by one, a burst of pushes outran the outbox (each start
    #: waits on Temporal and on the database's write lock).
    concurrency: int = 16
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def wake(self) -> None:
        """A case was committed: look for pending cases now rather than at the next poll."""
        self._wake.set()

    async def start(self, case_number: str) -> None:
        """Start the case's workflow, or find its own run; Unavailable when Temporal is away."""
        started_at = datetime.now(UTC)
        case = await asyncio.to_thread(case_to_start, uow=self.reading(),
                                       case_number=case_number)
        case_input = ComplaintInput(received_statement(self.signer, case))
        if not await self.gateway.start(
                WORKFLOW_NAME, case_input, workflow_id=workflow_id(case_number),
                task_queue=self.workflow_queue, search_attributes=search_attributes(case),
                summary=summary(case)):
            await self._claim(case, case_input)
        await asyncio.to_thread(mark_started, uow=self.writing(), case_number=case_number,
                                now=started_at)
        log.info("complaint.workflow_started", case_number=case_number)

    async def _claim(self, case: CaseHandling, case_input: ComplaintInput) -> None:
        """The case's workflow id is held: by its own run (done), or by a squatter's."""
        identifier = workflow_id(case.case_number)
        for _ in range(self.replacements):
            run = await self.gateway.existing_run(identifier, ComplaintInput)
            if run is not None:
                why = not_ours(run, case_input=case_input, workflow_queue=self.workflow_queue)
                if not why:
                    log.info("complaint.own_run_found", case_number=case.case_number,
                             running=run.running)
                    return
                await asyncio.to_thread(record_squatted_workflow, uow=self.writing(),
                                        case_number=case.case_number, run=run, why=why,
                                        now=datetime.now(UTC))
                log.warning("complaint.squatted_workflow", case_number=case.case_number,
                            workflow_id=identifier, run_id=run.run_id, not_ours=why,
                            running=run.running)
                if run.running:
                    await self.gateway.terminate(
                        identifier, run_id=run.run_id,
                        reason=f"not the workflow of complaint case {case.case_number}: "
                               "started by someone other than the complaints service")
            if await self.gateway.start(
                    WORKFLOW_NAME, case_input, workflow_id=identifier,
                    task_queue=self.workflow_queue, search_attributes=search_attributes(case),
                    summary=summary(case), replacing=run is not None):
                return
        raise SquattedWorkflowId(
            f"the workflow id {identifier} was taken {self.replacements} times by runs that "
            "are not the case's: the outbox tries again")

    async def start_pending(self) -> int:
        """Start every committed case that has no workflow yet; how many were started.

        The round ends when Temporal is out of reach; a case that fails for another
        reason is logged and passed over until the next round.
        """
        started = 0
        passed_over: set[str] = set()
        while True:
            pending = [number for number in await asyncio.to_thread(
                unstarted_cases, uow=self.reading()) if number not in passed_over]
            if not pending:
                return started
            for at in range(0, len(pending), self.concurrency):
                chunk = pending[at:at + self.concurrency]
                outcomes = await asyncio.gather(*(self.start(number) for number in chunk),
                                                return_exceptions=True)
                away = False
                for case_number, outcome in zip(chunk, outcomes, strict=True):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    if isinstance(outcome, Unavailable):
                        log.warning("complaint.start_pending", case_number=case_number,
                                    reason=outcome.message)
                        away = True
                    elif isinstance(outcome, BaseException):
                        log.error("complaint.start_failed", case_number=case_number,
                                  exc_info=outcome)
                        passed_over.add(case_number)
                    else:
                        started += 1
                if away:
                    return started

    async def run(self) -> None:
        """Until cancelled: start pending cases when woken, or every ``poll_seconds``."""
        while True:
            self._wake.clear()
            try:
                await self.start_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a database outage: keep the outbox alive
                log.exception("complaint.outbox_failed")
                await asyncio.sleep(self.backoff_seconds)
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
