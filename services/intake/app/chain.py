"""Intake's side of the approval chain: start each accepted case's workflow once, withdraw.

**The outbox.** An accepted case is committed with ``workflow_started``
false; that row is the outbox entry. Right after the commit the window's
call tries to start the workflow (``approval/<case number>``, idempotent:
a running one is used as it is, a finished one is never started again); if
Temporal is out of reach the call still answers (the case is accepted, its
start pending), and the ``ChainStarter`` running in the intake process
starts every pending case as soon as Temporal answers again — also after a
crash or kill between the commit and the start, since the flag is only set
once the start succeeded.

**Withdrawal** of a case in the chain is a statement signed by intake for
the window clerk it authenticated, sent to the workflow as an update; the
workflow closes the case here (``record_withdrawal``) and in review.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

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
from kernel.workflow_gateway import WorkflowGateway
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
        started_at = datetime.now(UTC)
        case_input: ApprovalInput = await asyncio.to_thread(
            cases.approval_input, uow=self.reading(), case_number=case_number,
            signer=self.signer)
        facts = StatementFacts.read(case_input.acceptance.body)
        await self.gateway.start(
            WORKFLOW_NAME, case_input, workflow_id=workflow_id(case_number),
            task_queue=self.workflow_queue, search_attributes=search_attributes(facts),
            summary=summary(facts),
            answer_within=self.answer_within_seconds if waiting else None)
        await asyncio.to_thread(cases.mark_workflow_started, uow=self.writing(),
                                case_number=case_number, system="govhall-intake",
                                started_at=started_at)
        log.info("chain.started", case_number=case_number)

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
