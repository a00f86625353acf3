"""The listing outbox (services/trading/app/listing_chain.py ``ListingStarter``) on its own:
a listing published while Temporal is out of reach is committed and answered, and its
workflow is started once Temporal answers, exactly once; a workflow that took the listing's
id first is a squatter, recorded, terminated and replaced (as the tender starter's,
tests/integration/trading/test_tender_chain.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from govhall.trading.v1 import trading_pb2 as pb
from kernel.temporal import CASE_KIND, CASE_NUMBER
from services.trading import activities
from services.trading.db import tables
from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.integration.trading.listing_venue import Venue, calendar, until
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test
from workflows import listing_contract as lc
from workflows.approval_contract import SignedStatement


def _target(environment: WorkflowEnvironment) -> str:
    return str(environment.client.service_client.config.target_host)


async def _close(venue: Venue) -> None:
    for channel in venue.channels.values():
        await channel.close(None)


def _actions(service: ServiceUnderTest) -> list[str]:
    with service.running.engine.connect() as connection:
        return list(connection.execute(select(tables.audit_log.c.action)).scalars())


async def test_a_listing_published_while_temporal_is_down_is_started_once_by_the_outbox(
        time_skipping: WorkflowEnvironment, backend: str, tmp_path: Path, pki_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activities, "holiday_calendar", lambda settings: calendar())
    prefix = f"l{uuid.uuid4().hex[:10]}-"
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port(), task_queue_prefix=prefix,
                                  tender_start_wait_seconds=0.5) as down:
        venue = Venue(time_skipping, down, {})
        try:
            # Committed and answered, its start pending.
            published = await venue.land()
            assert not published.workflow_started
            number = published.listing_no
            kept = await venue.listing(number)
            assert (kept.stage, kept.workflow_started) == (pb.LISTING_STAGE_LISTING, False)
            # An act cannot reach the listing's workflow: UNAVAILABLE, nothing recorded.
            with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                await venue.bid(number, "0001", published.start_price_fen)
            assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await _close(venue)
    with down.running.engine.connect() as connection:
        assert connection.execute(select(tables.listing_acts)).all() == []
    assert "listing.workflow_started" not in _actions(down)

    # Someone who reached Temporal took the listing's workflow id first.
    squatter = await time_skipping.client.start_workflow(
        lc.WORKFLOW_NAME, lc.ListingInput(SignedStatement({"kind": "x"}, "trading", "", "")),
        id=lc.workflow_id(number), task_queue=f"{prefix}squatters")
    # Restarted with Temporal in reach: the outbox starts the listing's own run, once.
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(time_skipping),
                                  task_queue_prefix=prefix) as up:
        venue = Venue(time_skipping, up, {})
        try:
            started = await until(lambda: venue.listing(number), lambda x: x.workflow_started,
                                  "the outbox started the listing")
        finally:
            await _close(venue)
    assert started.workflow_started
    description = await time_skipping.client.get_workflow_handle(
        lc.workflow_id(number)).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.run_id != squatter.result_run_id
    assert description.typed_search_attributes.get(CASE_NUMBER) == number
    assert description.typed_search_attributes.get(CASE_KIND) == lc.CASE_KIND
    squatted = await time_skipping.client.get_workflow_handle(
        lc.workflow_id(number), run_id=squatter.result_run_id).describe()
    assert squatted.status == WorkflowExecutionStatus.TERMINATED
    actions = _actions(up)
    assert actions.count("violation.squatted_workflow") == 1
    assert actions.count("listing.workflow_started") == 1
    with up.running.engine.connect() as connection:
        squat = connection.execute(select(tables.audit_log.c.subject).where(
            tables.audit_log.c.action == "violation.squatted_workflow")).scalar_one()
    assert squat == f"listing/{number}"

    # Restarted again: the listing's run is not started a second time.
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=_target(time_skipping),
                                  task_queue_prefix=prefix) as again:
        venue = Venue(time_skipping, again, {})
        try:
            assert (await venue.listing(number)).workflow_started
        finally:
            await _close(venue)
    assert _actions(again).count("listing.workflow_started") == 1
    latest = await time_skipping.client.get_workflow_handle(lc.workflow_id(number)).describe()
    assert latest.run_id == description.run_id
