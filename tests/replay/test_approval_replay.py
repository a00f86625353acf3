"""Every recorded history of the approval workflow still replays on the code that runs it.

Two workflow types, two sets of histories:

- ``ApprovalWorkflow`` (type 1, histories ``approval-v1..v3-*``): kept, frozen, in
  workflows/legacy/approval_v1.py. Type 2 changed what the chain trusts and
  which activities it calls, so it is a new workflow type rather than
  ``workflow.patched`` branches through every handler: the new code reads
  as one path, and the old one stays byte-for-byte what ran those cases.
- ``ApprovalWorkflowV2`` (histories ``approval-type2-*``): today's
  workflows/approval.py. A change that breaks one of these is a change of
  the workflow's shape: keep the old path behind ``workflow.patched()`` and
  record a new history (tests/replay/record_histories.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.approval import ApprovalWorkflow
from workflows.approval_contract import MARK_SLA, SlaMark
from workflows.legacy.approval_v1 import ApprovalWorkflow as ApprovalWorkflowV1

HERE = Path(__file__).parent / "histories"
TYPE_1 = sorted(HERE.glob("approval-v*.json"))
TYPE_2 = sorted(HERE.glob("approval-type2-*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def _event_types(path: Path) -> list[str]:
    events: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["events"]
    return [str(e["eventType"]) for e in events]


def test_there_are_recorded_histories_of_both_types() -> None:
    assert len(TYPE_1) >= 2
    assert {p.stem.rsplit("-", 1)[-1] for p in TYPE_2} >= {"approved", "withdrawn", "late"}


@pytest.mark.parametrize("late", [p for p in TYPE_2 if p.stem.endswith("-late")],
                         ids=lambda p: p.stem)
async def test_the_late_history_went_yellow_and_red(late: Path) -> None:
    """Each recorded late case really holds its marks: yellow, then red with its escalation."""
    marks: list[SlaMark] = []
    for event in _history(late).events:
        scheduled = event.activity_task_scheduled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED \
                and scheduled.activity_type.name == MARK_SLA:
            (mark,) = await pydantic_data_converter.decode(scheduled.input.payloads, [SlaMark])
            marks.append(mark)
    assert [(m.sla_state, m.escalations) for m in marks] == [
        ("warning", []), ("breached", ["promised_breach"])]
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" in _event_types(late)


@pytest.mark.parametrize("path", TYPE_1, ids=lambda p: p.stem)
async def test_a_type_1_history_replays_on_the_frozen_workflow(path: Path) -> None:
    replayer = Replayer(workflows=[ApprovalWorkflowV1], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", TYPE_2, ids=lambda p: p.stem)
async def test_a_type_2_history_replays_on_todays_workflow(path: Path) -> None:
    replayer = Replayer(workflows=[ApprovalWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=True)
    assert result.replay_failure is None
