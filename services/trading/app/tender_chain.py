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
(``violation.squatted_workflow``), terminated if it runs, and replaced. The
machinery is the kernel's ``WorkflowOutbox`` (kernel/outbox.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import structlog
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.outbox import SQUATTED as SQUATTED
from kernel.outbox import SquattedWorkflowId as SquattedWorkflowId
from kernel.outbox import WorkflowOutbox, WorkflowStart, record_squatted_run
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
class TenderStarter(WorkflowOutbox):
    """Starts the workflow of every announced tender, once, whenever Temporal answers.

    The machinery is the kernel's ``WorkflowOutbox``; this gives it trading's database.
    """

    log_name: ClassVar[str] = "tender"

    reading: Callable[[], TradingUnitOfWork]
    writing: Callable[[], TradingUnitOfWork]
    gateway: WorkflowGateway
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    poll_seconds: float = 2.0
    backoff_seconds: float = 1.0
    answer_within_seconds: float = 2.0
    replacements: int = 3

    def pending(self) -> list[str]:
        return tenders.unstarted_tenders(uow=self.reading())

    def prepare(self, key: str) -> WorkflowStart:
        stored = tenders.announcement_of(uow=self.reading(), tender_no=key)
        tender_input = TenderInput(as_statement(Signed.from_dict(stored)))
        facts = TenderFacts.read(tender_input.announcement.body)
        return WorkflowStart(WORKFLOW_NAME, tender_input, workflow_id(key),
                             search_attributes(facts), summary(facts))

    def mark_started(self, key: str, *, started_at: datetime) -> None:
        tenders.mark_workflow_started(uow=self.writing(), tender_no=key, at=started_at)

    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        record_squatted_run(self.writing(), system=tenders.TRADING_SYSTEM,
                            subject=f"tender/{key}", run=run, why=why, now=now)

    def squatter_ended(self, key: str) -> str:
        return (f"not the workflow of tender {key}: started by someone other than the "
                "trading service")
