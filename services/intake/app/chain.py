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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.errors import Unavailable
from kernel.identity import Caller
from kernel.outbox import SQUATTED as SQUATTED
from kernel.outbox import SquattedWorkflowId as SquattedWorkflowId
from kernel.outbox import WorkflowOutbox, WorkflowStart, record_squatted_run
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
def record_squatted_workflow(*, uow: IntakeUnitOfWork, case_number: str, run: ExistingRun,
                             why: str, now: datetime) -> None:
    """Keep, in the audit log, a run someone else started under the case's workflow id.

    Only identifiers: the squatter chose its type, queue and input, which may
    hold anything.
    """
    record_squatted_run(uow, system=INTAKE_SYSTEM, subject=f"case/{case_number}", run=run,
                        why=why, now=now)


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
class ChainStarter(WorkflowOutbox):
    """Starts the workflow of every accepted case, once, whenever Temporal can be reached.

    The machinery is the kernel's ``WorkflowOutbox``; this gives it intake's database.
    """

    log_name: ClassVar[str] = "chain"

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

    def pending(self) -> list[str]:
        return cases.unstarted_cases(uow=self.reading())

    def prepare(self, key: str) -> WorkflowStart:
        case_input: ApprovalInput = cases.approval_input(uow=self.reading(), case_number=key,
                                                         signer=self.signer)
        facts = StatementFacts.read(case_input.acceptance.body)
        return WorkflowStart(WORKFLOW_NAME, case_input, workflow_id(key),
                             search_attributes(facts), summary(facts))

    def mark_started(self, key: str, *, started_at: datetime) -> None:
        cases.mark_workflow_started(uow=self.writing(), case_number=key, system=INTAKE_SYSTEM,
                                    started_at=started_at)

    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        record_squatted_workflow(uow=self.writing(), case_number=key, run=run, why=why,
                                 now=now)

    def squatter_ended(self, key: str) -> str:
        return f"not the approval chain of case {key}: started by someone other than intake"


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
