"""Intake's side of the approval chain: start each accepted case's workflow once, withdraw.

**The outbox.** An accepted case is committed with ``workflow_started``
false; that row is the outbox entry. Right after the commit the window's
call tries to start the workflow (``approval/<case number>``, once: the
case's own run, running or finished, is never started again); if
Temporal is out of reach the call still answers (the case is accepted, its
start pending), and the ``ChainStarter`` running in the intake process
starts every pending case as soon as Temporal answers again — also after a
crash or kill between the commit and the start, since the flag is only set
once the start succeeded.

**The workflow id is the case's.** Case numbers are sequential, so anyone
who reaches Temporal can start a workflow under the next case's id first. A
start therefore never joins a run it did not make: when the id is held
(running or closed), intake reads that run; it is the case's own only if it
is an ``ApprovalWorkflowV2`` on intake's workflow queue started with the
very acceptance intake would start it with (intake's Ed25519 signature is
deterministic, so an equal statement is intake's own), and is then simply
noted as started — a case never gets a second genuine run. Anything else is
a squatter: recorded as ``violation.squatted_workflow`` in intake's audit
log, terminated if it still runs, and replaced by the case's own run.

**Withdrawal** of a case in the chain is a statement signed by intake for
the window clerk it authenticated, sent to the workflow as an update; the
workflow closes the case here (``record_withdrawal``) and in review.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.audit import Actor
from kernel.errors import Unavailable
from kernel.identity import Caller
from kernel.signing import ServiceSigner
from kernel.temporal import (
    CASE_KIND,
    CASE_NUMBER,
    DEPARTMENT,
    ITEM_CODE,
    SLA_STATE,
    STAGE,
    WORKFLOW_TASK_QUEUE,
)
from kernel.workflow_gateway import ExistingRun, WorkflowGateway
from services.intake.app import cases
from services.intake.app.cases import CaseView
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import CaseStatus
from workflows.approval_contract import CASE_KIND as APPROVAL_KIND
from workflows.approval_contract import (
    WITHDRAW,
    WORKFLOW_NAME,
    ApprovalInput,
    ChangeReceipt,
    SlaState,
    Stage,
    StatementFacts,
    StatementKind,
    Withdrawal,
    as_statement,
    statement_body,
    workflow_id,
)

log = structlog.get_logger("govhall.intake.chain")

#: Who starts the case's workflow, in intake's audit log.
INTAKE_SYSTEM = "govhall-intake"
#: What intake records when someone else's run held a case's workflow id.
SQUATTED = "violation.squatted_workflow"


class SquattedWorkflowId(Exception):
    """The case's workflow id was taken again and again by runs that are not the case's."""


def not_ours(run: ExistingRun, *, case_input: ApprovalInput, workflow_queue: str) -> str:
    """What makes ``run`` another's than the case's own ('' when it is the case's own)."""
    if run.workflow_type != WORKFLOW_NAME:
        return "workflow_type"
    if run.task_queue != workflow_queue:
        return "task_queue"
    if run.argument != case_input:
        return "input"
    return ""


def record_squatted_workflow(*, uow: IntakeUnitOfWork, case_number: str, run: ExistingRun,
                             why: str, now: datetime) -> None:
    """Keep, in the audit log, a run someone else started under the case's workflow id.

    Only identifiers: the squatter chose its type, queue and input, which may
    hold anything.
    """
    with uow:
        uow.audit.append(actor=Actor(INTAKE_SYSTEM), action=SQUATTED,
                         subject=f"case/{case_number}", at=now,
                         details={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                  "running": run.running, "not_ours": why})
        uow.commit()


def summary(facts: StatementFacts) -> str:
    """What the Temporal UI shows for the workflow: codes and the item, no personal data."""
    return f"Approval {facts.item_code} {facts.item_name} — {facts.department_code}"


def search_attributes(facts: StatementFacts) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(CASE_NUMBER, facts.case_number),
        SearchAttributePair(ITEM_CODE, facts.item_code),
        SearchAttributePair(DEPARTMENT, facts.department_code),
        SearchAttributePair(STAGE, str(Stage.REVIEW)),
        SearchAttributePair(SLA_STATE, str(SlaState.ON_TIME)),
        SearchAttributePair(CASE_KIND, APPROVAL_KIND),
    ])


@dataclass
class _Starting:
    """One case being started: its lock, and how many hold it or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class ChainStarter:
    """Starts the workflow of every accepted case, once, whenever Temporal can be reached."""

    reading: Callable[[], IntakeUnitOfWork]
    writing: Callable[[], IntakeUnitOfWork]
    signer: ServiceSigner
    gateway: WorkflowGateway
    #: The task queue of the workflows (``govhall-workflows``).
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    #: Seconds between looks for pending cases (also while Temporal is out of reach).
    poll_seconds: float = 2.0
    #: Seconds to wait after the outbox itself failed (a database outage, a bug).
    backoff_seconds: float = 1.0
    #: Seconds a window's call waits for the start before it answers "pending".
    answer_within_seconds: float = 2.0
    #: Squatters replaced in one attempt before the case is left to the next round.
    replacements: int = 3
    #: The cases being started now, each with its lock.
    _starting: dict[str, _Starting] = field(default_factory=dict, init=False, repr=False)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, case_number: str,
                             within: float | None) -> AsyncIterator[None]:
        """The window's call and the outbox may start the same case at once: one after the
        other, so a squatter is recorded and replaced once, not by both. A caller that
        waits for the answer waits ``within`` seconds at most (then the start is pending)."""
        starting = self._starting.setdefault(case_number, _Starting())
        starting.users += 1
        try:
            try:
                async with asyncio.timeout(within):
                    await starting.lock.acquire()
            except TimeoutError as error:
                raise Unavailable(f"the workflow of case {case_number} is being started "
                                  "by the outbox") from error
            try:
                yield
            finally:
                starting.lock.release()
        finally:
            starting.users -= 1
            if not starting.users:
                del self._starting[case_number]

    async def start(self, case_number: str, *, waiting: bool = False) -> bool:
        """Start the case's workflow now; False (it stays pending) when Temporal is out of reach.

        ``waiting``: a caller waits for the answer, so give up after
        ``answer_within_seconds`` and leave the start to the outbox.
        """
        try:
            await self._start(case_number, waiting=waiting)
        except Unavailable as error:
            log.warning("chain.start_pending", case_number=case_number, reason=error.message)
            return False
        except Exception:
            # The case is committed either way: whatever went wrong, the outbox tries
            # again, and a window's call still gets its answer (accepted, start pending).
            log.exception("chain.start_failed", case_number=case_number)
            return False
        return True

    async def _start(self, case_number: str, *, waiting: bool) -> None:
        async with self._one_at_a_time(
                case_number, self.answer_within_seconds if waiting else None):
            await self._start_once(case_number, waiting=waiting)

    async def _start_once(self, case_number: str, *, waiting: bool) -> None:
        started_at = datetime.now(UTC)
        case_input: ApprovalInput = await asyncio.to_thread(
            cases.approval_input, uow=self.reading(), case_number=case_number,
            signer=self.signer)
        facts = StatementFacts.read(case_input.acceptance.body)
        if not await self.gateway.start(
                WORKFLOW_NAME, case_input, workflow_id=workflow_id(case_number),
                task_queue=self.workflow_queue, search_attributes=search_attributes(facts),
                summary=summary(facts),
                answer_within=self.answer_within_seconds if waiting else None):
            await self._claim(case_number, case_input, facts)
        await asyncio.to_thread(cases.mark_workflow_started, uow=self.writing(),
                                case_number=case_number, system=INTAKE_SYSTEM,
                                started_at=started_at)
        log.info("chain.started", case_number=case_number)

    async def _claim(self, case_number: str, case_input: ApprovalInput,
                     facts: StatementFacts) -> None:
        """The case's workflow id is held: by its own run (done), or by a squatter's.

        A squatter's run is recorded, ended if it runs, and the case's own run
        started in its place; should yet another take the id meanwhile, again.
        """
        identifier = workflow_id(case_number)
        for _ in range(self.replacements):
            # None: the run is gone since (its history was deleted), so start afresh.
            run = await self.gateway.existing_run(identifier, ApprovalInput)
            if run is not None:
                why = not_ours(run, case_input=case_input, workflow_queue=self.workflow_queue)
                if not why:
                    log.info("chain.own_run_found", case_number=case_number,
                             running=run.running)
                    return
                await asyncio.to_thread(record_squatted_workflow, uow=self.writing(),
                                        case_number=case_number, run=run, why=why,
                                        now=datetime.now(UTC))
                log.warning("chain.squatted_workflow", case_number=case_number,
                            workflow_id=identifier, run_id=run.run_id, not_ours=why,
                            running=run.running)
                if run.running:
                    await self.gateway.terminate(
                        identifier, run_id=run.run_id,
                        reason=f"not the approval chain of case {case_number}: "
                               "started by someone other than intake")
            if await self.gateway.start(
                    WORKFLOW_NAME, case_input, workflow_id=identifier,
                    task_queue=self.workflow_queue, search_attributes=search_attributes(facts),
                    summary=summary(facts), replacing=run is not None):
                return
        raise SquattedWorkflowId(
            f"the workflow id {identifier} was taken {self.replacements} times by runs that "
            "are not the case's: the outbox tries again")

    async def start_pending(self) -> int:
        """Start every accepted case that has no workflow yet; how many were started.

        The round ends when Temporal is out of reach. A case that fails for
        another reason (a bug) is logged and passed over until the next round,
        so it never holds up the cases behind it.
        """
        started = 0
        passed_over: set[str] = set()
        while True:
            pending = [number for number in await asyncio.to_thread(
                cases.unstarted_cases, uow=self.reading()) if number not in passed_over]
            if not pending:
                return started
            for case_number in pending:
                try:
                    await self._start(case_number, waiting=False)
                except Unavailable as error:
                    log.warning("chain.start_pending", case_number=case_number,
                                reason=error.message)
                    return started
                except Exception:
                    log.exception("chain.start_failed", case_number=case_number)
                    passed_over.add(case_number)
                    continue
                started += 1

    async def run(self) -> None:
        """Until cancelled: start pending cases every ``poll_seconds``.

        A round ends at the first start Temporal does not take, so an outage
        costs one attempt a round, not a tight loop of them.
        """
        while True:
            try:
                await self.start_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a database outage: keep the outbox alive
                log.exception("chain.outbox_failed")
                await asyncio.sleep(self.backoff_seconds)
            await asyncio.sleep(self.poll_seconds)


async def withdraw(starter: ChainStarter, *, caller: Caller, case_number: str, reason: str,
                   now: datetime) -> CaseView:
    """The applicant withdraws, through the window: closed here, or through the chain."""
    step = await asyncio.to_thread(
        cases.withdraw_application, uow=starter.writing(), caller=caller,
        case_number=case_number, reason=reason, now=now)
    if step.view is not None:
        return step.view
    assert step.clerk is not None and step.case is not None
    if not step.case.workflow_started and not await starter.start(case_number, waiting=True):
        raise Unavailable(f"the approval chain of case {case_number} cannot be reached now: "
                          "try again later")
    clerk = step.clerk
    statement = as_statement(starter.signer.sign(statement_body(
        kind=StatementKind.WITHDRAWAL, case_number=case_number, official_id=clerk.id,
        department_code=clerk.department_code, roles=sorted(clerk.roles),
        system=caller.system, issued_at=now)))
    # One withdrawal per case: a repeat finds the first one's answer.
    await starter.gateway.update(workflow_id(case_number), WITHDRAW, Withdrawal(statement),
                                 update_id=f"{WITHDRAW}/{case_number}",
                                 result_type=ChangeReceipt)
    # The reason is free text: it stays in the intake database, out of the workflow.
    return await asyncio.to_thread(cases.note_withdrawal, uow=starter.writing(), caller=caller,
                                   case_number=case_number, reason=reason, now=now)



async def with_chain(starter: ChainStarter, view: CaseView) -> CaseView:
    """``view``, its workflow started now if the case is accepted and it was not yet."""
    case = view.case
    if case.status != CaseStatus.ACCEPTED or case.workflow_started:
        return view
    if not await starter.start(case.number, waiting=True):
        return view  # accepted and committed; the outbox starts it
    return replace(view, case=replace(case, workflow_started=True,
                                      status=CaseStatus.UNDER_REVIEW))


async def submit_application(starter: ChainStarter, **submission: Any) -> cases.Submission:
    """An application at the window (art. 32); an accepted case goes to the chain."""
    done = await asyncio.to_thread(cases.submit_application, uow=starter.writing(),
                                   **submission)
    return replace(done, view=await with_chain(starter, done.view))


async def supplement_materials(starter: ChainStarter, **supplement: Any) -> cases.Supplement:
    """Materials after a correction notice; a case they complete goes to the chain."""
    done = await asyncio.to_thread(cases.supplement_materials, uow=starter.writing(),
                                   **supplement)
    return replace(done, view=await with_chain(starter, done.view))
