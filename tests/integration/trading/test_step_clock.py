"""A clock-driven listing step is taken at Temporal's clock, not at the instant its caller
gives: a workflow of someone who reaches Temporal schedules ``expire_agreement`` on trading's
queue with an instant past the agreement's deadline right after the close. Trading refuses
it (the step is ahead of the attempt's scheduled time), and the listing still awaits its
agreement days before the deadline (attack M2 of stop 14)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from govhall.trading.v1 import trading_pb2 as pb
from kernel.signing import Signed
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue
from tests.integration.trading.listing_venue import venue as venue
from tests.integration.trading.rogue_listing import RogueListingStep
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


async def test_a_rogue_step_cannot_expire_the_agreement_before_its_deadline(
        venue: Venue) -> None:
    listing = await venue.property(reserve=50_000_000, extensions=0, agreement_days=5)
    number = listing.listing_no
    await venue.register(number, "0004")
    tz = (await venue.now()).tzinfo
    await venue.skip_to(listing.closes_at.ToDatetime().replace(tzinfo=tz)
                        + timedelta(seconds=1))
    awaiting = await venue.until_stage(number, pb.LISTING_STAGE_AGREEMENT)
    due = awaiting.agreement_due.ToDatetime().replace(tzinfo=tz)
    assert due - await venue.now() > timedelta(days=4)

    with TradingUnitOfWork(venue.trading.running.engine, write=False) as unit:
        announcement = as_statement(Signed.from_dict(unit.listings.announcement(number)))
    client = venue.env.client
    prefix = venue.trading.settings.task_queue_prefix
    async with Worker(client, task_queue=f"{prefix}rogue", workflows=[RogueListingStep],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(
            RogueListingStep.run,
            args=[lc.EXPIRE_AGREEMENT, f"{prefix}trading",
                  lc.ListingStep(number, announcement, due + timedelta(minutes=1),
                                 "agreement_expired")],
            id=f"rogue-{uuid.uuid4()}", task_queue=f"{prefix}rogue")
        with venue.env.auto_time_skipping_disabled(), \
                pytest.raises(WorkflowFailureError) as refused:
            await asyncio.wait_for(handle.result(), 60)
    # Refused at once, for good: FailedPrecondition naming Temporal's clock, not retried.
    cause = refused.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "FailedPrecondition" and cause.cause.non_retryable
    assert "ahead of Temporal's clock" in cause.cause.message
    # Days before the deadline, the listing must still await the agreement.
    after = await venue.listing(number)
    # (Time skipping did not reach the deadline meanwhile: the genuine run did not fail it.)
    assert await venue.now() < due - timedelta(days=3)
    assert after.stage == pb.LISTING_STAGE_AGREEMENT, (
        f"listing {number} is {pb.ListingStage.Name(after.stage)} "
        f"({after.failure_reason}) days before its agreement deadline")
