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

The machinery (rounds, bounded concurrency, squatters, letting a burst of
pushes pass first) is the kernel's ``WorkflowOutbox`` (kernel/outbox.py),
shared with intake's ``ChainStarter`` and trading's ``TenderStarter``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.audit import Actor
from kernel.errors import NotFound
from kernel.outbox import SQUATTED as SQUATTED
from kernel.outbox import SquattedWorkflowId as SquattedWorkflowId
from kernel.outbox import WorkflowOutbox, WorkflowStart, record_squatted_run
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
    record_squatted_run(uow, system=COMPLAINTS_SYSTEM, subject=f"complaint/{case_number}",
                        run=run, why=why, now=now)


@dataclass
class ComplaintStarter(WorkflowOutbox):
    """Starts the workflow of every committed case, once, whenever Temporal can be reached."""

    log_name: ClassVar[str] = "complaint"
    started_event: ClassVar[str] = "complaint.workflow_started"

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
    #: Seconds since intake last took a push in: under a burst the starts wait for it
    #: (up to ``most_deferral_seconds``), since they compete with it for the database.
    intake_quiet: Callable[[], float] | None = None

    def pending(self) -> list[str]:
        return unstarted_cases(uow=self.reading())

    def prepare(self, key: str) -> WorkflowStart:
        case = case_to_start(uow=self.reading(), case_number=key)
        return WorkflowStart(WORKFLOW_NAME, ComplaintInput(received_statement(self.signer, case)),
                             workflow_id(key), search_attributes(case), summary(case))

    def mark_started(self, key: str, *, started_at: datetime) -> None:
        mark_started(uow=self.writing(), case_number=key, now=started_at)

    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        record_squatted_workflow(uow=self.writing(), case_number=key, run=run, why=why,
                                 now=now)

    def squatter_ended(self, key: str) -> str:
        return (f"not the workflow of complaint case {key}: started by someone other than "
                "the complaints service")
