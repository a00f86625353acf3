"""Every recorded history of TenderWorkflow still replays on the code that runs it.

A change that breaks one is a change of the workflow's shape: keep the old
path behind ``workflow.patched()`` and record a new history
(tests/replay/record_tender_history.py). The histories are stored with their
payloads decoded, so the replay uses the plain converter; the workflow
verifies every statement on replay too, so the replay trusts the public key
kept beside the histories (the one that signed them; its private key was
never kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

import kernel.signing
from kernel.signing import TrustedKeys, trust_in_workflows
from workflows.tender import ONE_ACT_PER_REQUEST, TenderWorkflow
from workflows.tender_contract import (
    AMEND,
    CLOSE_BIDDING,
    CLOSE_DECRYPTION,
    OPEN_TENDER,
    RECORD_TENDER_STEP,
    OfficialAct,
)

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("tender-*.json"))
KEYS = HERE / "tender-keys"


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


@pytest.fixture
def recorded_keys() -> Iterator[None]:
    """The workflows trust the key that signed the recorded statements, for this test."""
    before = kernel.signing._workflow_keys
    trust_in_workflows(TrustedKeys.load(KEYS))
    yield
    kernel.signing._workflow_keys = before


def test_there_is_a_recorded_history_with_its_key() -> None:
    assert HISTORIES
    assert list((KEYS / "trading").glob("*.pub"))
    assert not list(KEYS.rglob("*.key"))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_the_recorded_tender_went_the_whole_way(path: Path) -> None:
    """It holds what it is kept for: opened, decrypted, every act, the contract."""
    activities = [event.activity_task_scheduled_event_attributes.activity_type.name
                  for event in _history(path).events
                  if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert activities[:1] == [OPEN_TENDER]
    assert CLOSE_BIDDING in activities and CLOSE_DECRYPTION in activities
    # Amendment, objection, answer, committee, 15 sheets, award, contract (and in
    # r1-repeated a second amendment under the first one's request id).
    repeated = 1 if path.stem.endswith("-repeated-contracted") else 0
    assert activities.count(RECORD_TENDER_STEP) == 21 + repeated
    events = json.loads(path.read_text(encoding="utf-8"))["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_todays_workflow(
        path: Path, recorded_keys: None) -> None:
    replayer = Replayer(workflows=[TenderWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_the_repeated_request_history_took_a_second_content_under_one_request() -> None:
    """It holds what it is kept for: before ``tender-one-act-per-request`` the run took a
    second amendment under the first one's request id, with another content (the replay
    then goes the old way: no marker of the patch, the activity scheduled)."""
    path = HERE / "tender-r1-repeated-contracted.json"
    converter = pydantic_data_converter.payload_converter
    amendments: list[dict[str, object]] = []
    patches: list[bytes] = []
    for event in _history(path).events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            if accepted.accepted_request.input.name == AMEND:
                (act,) = converter.from_payloads(
                    accepted.accepted_request.input.args.payloads, [OfficialAct])
                amendments.append(act.statement.body)
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            patches.extend(b"".join(p.data for p in details.payloads) for details
                           in event.marker_recorded_event_attributes.details.values())
    assert len(amendments) == 2
    assert amendments[0]["request_id"] == amendments[1]["request_id"]
    assert amendments[0]["content_sha256"] != amendments[1]["content_sha256"]
    assert not any(ONE_ACT_PER_REQUEST.encode() in data for data in patches)
