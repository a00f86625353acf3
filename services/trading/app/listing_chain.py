"""Starting each land or property-rights listing's workflow once, through an outbox.

The same as tenders (services/trading/app/tender_chain.py): a published listing is
committed with ``workflow_started`` false, and the ``ListingStarter`` (the kernel's
``WorkflowOutbox``) starts ``listing/<listing no>`` with the signed announcement kept in
the row, once, whenever Temporal answers; a squatter on the id is recorded
(``violation.squatted_workflow``), terminated if it runs, and replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from temporalio.common import SearchAttributePair, TypedSearchAttributes

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
from services.trading.app import listings, tenders
from services.trading.db.repository import TradingUnitOfWork
from workflows import listing_contract
from workflows.approval_contract import as_statement


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


@dataclass
class ListingStarter(WorkflowOutbox):
    """Starts the workflow of every published listing, once, whenever Temporal answers."""

    log_name: ClassVar[str] = "listing"

    reading: Callable[[], TradingUnitOfWork]
    writing: Callable[[], TradingUnitOfWork]
    gateway: WorkflowGateway
    workflow_queue: str = WORKFLOW_TASK_QUEUE
    poll_seconds: float = 2.0
    backoff_seconds: float = 1.0
    answer_within_seconds: float = 2.0
    replacements: int = 3

    def pending(self) -> list[str]:
        return listings.unstarted_listings(uow=self.reading())

    def prepare(self, key: str) -> WorkflowStart:
        stored = listings.announcement_of(uow=self.reading(), listing_no=key)
        listing_input = listing_contract.ListingInput(as_statement(Signed.from_dict(stored)))
        facts = listing_contract.ListingFacts.read(listing_input.announcement.body)
        return WorkflowStart(listing_contract.WORKFLOW_NAME, listing_input,
                             listing_contract.workflow_id(key),
                             listing_search_attributes(facts), listing_summary(facts))

    def mark_started(self, key: str, *, started_at: datetime) -> None:
        listings.mark_workflow_started(uow=self.writing(), listing_no=key, at=started_at)

    def record_squatter(self, key: str, *, run: ExistingRun, why: str,
                        now: datetime) -> None:
        record_squatted_run(self.writing(), system=tenders.TRADING_SYSTEM,
                            subject=f"listing/{key}", run=run, why=why, now=now)

    def squatter_ended(self, key: str) -> str:
        return (f"not the workflow of listing {key}: started by someone other than the "
                "trading service")
