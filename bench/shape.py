"""One case's shape in Temporal terms, read from its history, to keep the baselines honest.

The same-shape baseline (bench/baseline.py) must schedule as many
activities as one govhall case, as many of them inside update handlers,
and take as many updates. Each benchmark run checks this on a real case of
each before measuring, so a change to the approval workflow that the
baseline does not follow is reported instead of skewing the ratio.

Counts come from the case's history. Where each activity was scheduled (in
run, or inside an update's handler) a history does not say, and event
order cannot tell it: govhall's run loop records the stages one after
another, so a record can be scheduled after the next update was accepted
and finish before that update answers, exactly as an activity the handler
waits for. So the history is replayed with the workflow's own code and an
interceptor that asks, for each activity it starts, whether it runs in an
update handler (``workflow.current_update_info()``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DefaultFailureConverter
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from bench.baseline import Expected


@dataclass(frozen=True)
class Shape:
    activities: int
    activities_in_handlers: int
    updates: int
    timers: int
    search_attribute_upserts: int
    workflow_tasks: int
    events: int

    @property
    def activities_in_run(self) -> int:
        return self.activities - self.activities_in_handlers

    def describe(self) -> str:
        return (f"{self.activities} activities ({self.activities_in_run} in run, "
                f"{self.activities_in_handlers} in update handlers), {self.updates} updates, "
                f"{self.workflow_tasks} workflow tasks, {self.timers} timers, "
                f"{self.search_attribute_upserts} search-attribute upserts, "
                f"{self.events} history events")


def shape_of(events: Iterable[HistoryEvent], *, activities_in_handlers: int) -> Shape:
    """The shape counted from the events, with where the activities ran found by replay."""
    kinds = [event.event_type for event in events]
    return Shape(
        activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        activities_in_handlers=activities_in_handlers,
        updates=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        timers=kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
        search_attribute_upserts=kinds.count(
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        workflow_tasks=kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        events=len(kinds))


class ActivityPlaces(Interceptor):
    """Notes, for each activity a workflow starts, whether an update handler started it."""

    def __init__(self) -> None:
        #: One entry per activity started, in order: True when inside an update handler.
        self.in_handler: list[bool] = []

    def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        noted = self.in_handler

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                noted.append(workflow.current_update_info() is not None)
                return super().start_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


async def activities_in_handlers(client: Client, history: WorkflowHistory,
                                 workflows: Sequence[type]) -> int:
    """How many of the history's activities an update handler started, found by replay.

    ``workflows`` must hold the workflow class that made the history, as the
    worker that ran it had it; a history it cannot replay raises.
    """
    places = ActivityPlaces()
    # The client's converter decrypts the history's payloads; failures stay readable here
    # (govhall's converter encrypts their messages for Temporal, and this replay is local).
    converter = dataclasses.replace(client.data_converter,
                                    failure_converter_class=DefaultFailureConverter)
    replayer = Replayer(workflows=workflows, interceptors=[places], data_converter=converter,
                        workflow_runner=UnsandboxedWorkflowRunner())
    await replayer.replay_workflow(history)
    return sum(places.in_handler)


async def case_shape(client: Client, workflow_id: str, workflows: Sequence[type]) -> Shape:
    """The shape of a finished case (waits for the workflow to end)."""
    handle = client.get_workflow_handle(workflow_id)
    await handle.result()
    history = await handle.fetch_history()
    return shape_of(history.events,
                    activities_in_handlers=await activities_in_handlers(client, history,
                                                                        workflows))


def _differences(wanted: Mapping[str, int], seen: Mapping[str, int], wanted_name: str,
                 seen_name: str) -> str:
    return "; ".join(f"{name}: {wanted_name} {wanted[name]}, {seen_name} {seen[name]}"
                     for name in wanted if wanted[name] != seen[name])


def _counted(shape: Shape | Expected) -> dict[str, int]:
    return {"activities": shape.activities,
            "activities in handlers": shape.activities_in_handlers,
            "updates": shape.updates}


def mismatch(govhall: Shape, baseline: Shape) -> str:
    """What the baseline lacks or has too much of; empty when its shape is govhall's."""
    return _differences(_counted(govhall), _counted(baseline), "govhall", "baseline")


def unexpected(expected: Expected, seen: Shape) -> str:
    """Where a baseline's real history differs from what its docstring counts; empty if not."""
    return _differences(_counted(expected), _counted(seen), "counted", "ran")
