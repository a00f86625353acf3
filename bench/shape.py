"""One case's shape in Temporal terms, read from its history, to keep the baselines honest.

The same-shape baseline (bench/baseline.py) must schedule as many
activities as one govhall case, as many of them inside update handlers,
and take as many updates. Each benchmark run checks this on a real case of
each before measuring, so a change to the approval workflow that the
baseline does not follow is reported instead of skewing the ratio.

An activity counts as *in a handler* when it was scheduled after an update
was accepted and completed before that update did: the update waited for
it. An activity scheduled in run after an update that answered at once
completes after that update, so it counts as in run; so does whatever the
first workflow task scheduled (opening the case), even when the first
update arrived early and waited for it. (A run activity scheduled after an
update is accepted and done before that update answers would be
miscounted; the check runs one case alone, decisions one after another,
where each stage's record is scheduled before the next decision is sent.)
Updates are paired by update id: the time-skipping test server leaves the
completion's ``accepted_event_id`` at 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

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


def shape_of(events: Iterable[HistoryEvent]) -> Shape:
    events = list(events)
    kinds = [event.event_type for event in events]
    done: dict[int, int] = {}  # activity's scheduled event id -> its completion's event id
    accepted: dict[str, int] = {}  # update id -> its acceptance's event id
    answered: dict[str, int] = {}  # update id -> its completion's event id
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done[event.activity_task_completed_event_attributes.scheduled_event_id] = \
                event.event_id
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attributes = event.workflow_execution_update_accepted_event_attributes
            update_id = attributes.accepted_request.meta.update_id \
                or attributes.protocol_instance_id
            accepted[update_id] = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            answered[event.workflow_execution_update_completed_event_attributes.meta
                     .update_id] = event.event_id
    updates = [(accepted[u], answered[u]) for u in accepted if u in answered]
    # What the first workflow task scheduled is run's: no handler has run an activity yet.
    tasks = [e.event_id for e in events
             if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    first_task_ends = tasks[1] if len(tasks) > 1 else len(events) + 1
    in_handlers = sum(
        1 for scheduled, completed in done.items()
        if scheduled > first_task_ends and any(
            update_accepted < scheduled and completed < update_answered
            for update_accepted, update_answered in updates))
    return Shape(
        activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        activities_in_handlers=in_handlers,
        updates=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        timers=kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
        search_attribute_upserts=kinds.count(
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        workflow_tasks=len(tasks),
        events=len(kinds))


async def case_shape(client: Client, workflow_id: str) -> Shape:
    """The shape of a finished case (waits for the workflow to end)."""
    handle = client.get_workflow_handle(workflow_id)
    await handle.result()
    return shape_of((await handle.fetch_history()).events)


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
