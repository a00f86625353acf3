"""Every recorded history of ListingWorkflow still replays on the code that runs it.

A change that breaks one is a change of the workflow's shape: keep the old path behind
``workflow.patched()`` and record a new history (tests/replay/record_listing_history.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.listing import ONE_ACT_PER_REQUEST, REBUILT_FROM_RECORD, ListingWorkflow
from workflows.listing_contract import (
    AUCTION_BID,
    BID,
    CLOSE_LISTING,
    CONCLUDE_AUCTION,
    DECLARE_INTEREST,
    OPEN_LISTING,
    READ_LISTING,
    RECORD_LISTING_STEP,
    ListingAct,
)

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("listing-*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def test_there_is_a_recorded_history() -> None:
    assert HISTORIES


#: Interest declarations, reads of trading's record and bids under a request id used
#: already (with another amount) each recorded history holds.
SHAPES = {"listing-land-r1-auction": (0, 0, 0), "listing-land-r2-auction": (2, 0, 0),
          "listing-land-r3-auction": (2, 1, 0), "listing-land-r3-repeated-auction": (2, 1, 1)}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_the_recorded_listing_went_the_whole_way(path: Path) -> None:
    """It holds what it is kept for: the opening, bids, the close, an auction, the deal."""
    activities: list[str] = []
    updates: list[str] = []
    for event in _history(path).events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities.append(event.activity_task_scheduled_event_attributes
                              .activity_type.name)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            updates.append(event.workflow_execution_update_accepted_event_attributes
                           .accepted_request.input.name)
    # From r2 both bidders ask to keep bidding before the close (two more acts recorded);
    # from r3 the run first reads what trading recorded.
    declared = updates.count(DECLARE_INTEREST)
    read = activities.count(READ_LISTING)
    repeated = updates.count(BID) - 2
    # Each history is kept for its shape: r1 before interest, r2 with it, r3 also rebuilt,
    # r3-repeated with a second content under a request (before one act per request).
    assert (declared, read, repeated) == SHAPES[path.stem], path.stem
    assert activities == [*[READ_LISTING] * read, OPEN_LISTING, RECORD_LISTING_STEP,
                          RECORD_LISTING_STEP, RECORD_LISTING_STEP,
                          *[RECORD_LISTING_STEP] * (declared + repeated),
                          CLOSE_LISTING, RECORD_LISTING_STEP, RECORD_LISTING_STEP,
                          CONCLUDE_AUCTION]
    assert updates == [BID, BID, *[BID] * repeated, *[DECLARE_INTEREST] * declared,
                       AUCTION_BID, AUCTION_BID]
    events = json.loads(path.read_text(encoding="utf-8"))["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_todays_workflow(path: Path) -> None:
    replayer = Replayer(workflows=[ListingWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


def _bodies(path: Path, update: str) -> list[dict[str, object]]:
    """The signed bodies of the updates named ``update`` the history accepted."""
    converter = pydantic_data_converter.payload_converter
    found = []
    for event in _history(path).events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            if accepted.accepted_request.input.name == update:
                (act,) = converter.from_payloads(
                    accepted.accepted_request.input.args.payloads, [ListingAct])
                found.append(act.statement.body)
    return found


def test_the_repeated_request_history_took_a_second_content_under_one_request() -> None:
    """It holds what it is kept for: before ``listing-one-act-per-request`` the run took
    a second bid under BD-0001's first request id, with another amount, and recorded it
    (the replay then goes the old way: no marker of the patch, the activity scheduled)."""
    path = HERE / "listing-land-r3-repeated-auction.json"
    bids = _bodies(path, BID)
    assert [(b["bidder_id"], b["amount_fen"]) for b in bids] == [
        ("BD-0001", 100_000_000), ("BD-0002", 101_000_000), ("BD-0001", 102_000_000)]
    assert bids[0]["request_id"] == bids[2]["request_id"]
    patches = [b"".join(p.data for p in details.payloads)
               for event in _history(path).events
               if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               for details in event.marker_recorded_event_attributes.details.values()]
    assert any(REBUILT_FROM_RECORD.encode() in data for data in patches)
    assert not any(ONE_ACT_PER_REQUEST.encode() in data for data in patches)
