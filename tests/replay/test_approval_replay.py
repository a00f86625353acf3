"""Every recorded history of ApprovalWorkflow still replays on today's code.

A change that breaks one of these is a change of the workflow's shape: keep
the old path behind workflow.patched() and record a new history.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.approval import ApprovalWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("approval-*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 2


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=[ApprovalWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
