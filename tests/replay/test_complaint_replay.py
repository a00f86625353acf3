"""Every recorded history of ComplaintWorkflow still replays on the code that runs it.

A change that breaks one is a change of the workflow's shape: keep the old
path behind ``workflow.patched()`` and record a new history
(tests/replay/record_complaint_history.py). The workflow verifies its start
statement on replay too, so the replay trusts the public key kept beside
the histories (the one that signed them; its private key was never kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

import kernel.signing
from kernel.signing import TrustedKeys, trust_in_workflows
from workflows.complaint import ComplaintWorkflow
from workflows.complaint_contract import (
    DEADLINES_CHANGED,
    MARK_OVERDUE,
    READ_DUES,
    RECORD_ACT,
    Overdue,
)

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("complaint-*.json"))
#: The whole-way case (escalated sign-for, every act, reopened, closed).
CLOSED = sorted(HERE.glob("complaint-*-closed.json"))
#: The case whose reply due the service recomputed and signalled (deadlines_changed).
DEADLINES = sorted(HERE.glob("complaint-*-deadlines-changed.json"))
KEYS = HERE / "complaint-keys"


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
    assert CLOSED and DEADLINES
    assert list((KEYS / "complaints").glob("*.pub"))
    assert not list(KEYS.rglob("*.key"))


async def _overdue(path: Path) -> list[Overdue]:
    """The escalations the history asked the service to mark, in order."""
    overdue: list[Overdue] = []
    for event in _history(path).events:
        scheduled = event.activity_task_scheduled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED \
                and scheduled.activity_type.name == MARK_OVERDUE:
            (mark,) = await pydantic_data_converter.decode(scheduled.input.payloads, [Overdue])
            overdue.append(mark)
    return overdue


@pytest.mark.parametrize("path", DEADLINES, ids=lambda p: p.stem)
async def test_the_recorded_signal_moved_the_reply_escalation(path: Path) -> None:
    """It holds what it is kept for: the deadlines_changed signal, the dues read after it,
    the reply escalated once, at the due read (not the first one), and the completion."""
    names = []
    for event in _history(path).events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            names.append(event.workflow_execution_signaled_event_attributes.signal_name)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
    assert DEADLINES_CHANGED in names
    assert READ_DUES in names[names.index(DEADLINES_CHANGED):]
    assert names.count(READ_DUES) == 1
    overdue = await _overdue(path)
    assert [o.what for o in overdue] == ["reply"]
    first_reply_due = None
    for event in _history(path).events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            (result,) = await pydantic_data_converter.decode(
                event.activity_task_completed_event_attributes.result.payloads, [Any])
            if isinstance(result, dict) and result.get("reply_due") and \
                    result.get("stage") == "handling":
                first_reply_due = first_reply_due or result["reply_due"]
    assert first_reply_due is not None
    assert overdue[0].due > datetime.fromisoformat(first_reply_due)
    events = json.loads(path.read_text(encoding="utf-8"))["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


@pytest.mark.parametrize("path", CLOSED, ids=lambda p: p.stem)
async def test_the_recorded_case_went_the_whole_way(path: Path) -> None:
    """It holds what it is kept for: an escalation, every act, the completion."""
    overdue: list[Overdue] = []
    acts = 0
    for event in _history(path).events:
        scheduled = event.activity_task_scheduled_event_attributes
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        if scheduled.activity_type.name == MARK_OVERDUE:
            (mark,) = await pydantic_data_converter.decode(scheduled.input.payloads, [Overdue])
            overdue.append(mark)
        acts += scheduled.activity_type.name == RECORD_ACT
    assert [o.what for o in overdue] == ["sign_for"]
    assert acts == 9
    events = json.loads(path.read_text(encoding="utf-8"))["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_todays_workflow(
        path: Path, recorded_keys: None) -> None:
    replayer = Replayer(workflows=[ComplaintWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=True)
    assert result.replay_failure is None
