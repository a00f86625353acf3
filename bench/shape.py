"""One case's shape in Temporal terms, read from its history, to keep the baseline honest.

The baseline (bench/baseline.py) must schedule as many activities and take
as many updates as one govhall case. Each benchmark run checks this on a
real case of each before measuring, so a change to the approval workflow
that the baseline does not follow is reported instead of skewing the ratio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client


@dataclass(frozen=True)
class Shape:
    activities: int
    updates: int
    timers: int
    search_attribute_upserts: int
    workflow_tasks: int
    events: int

    def describe(self) -> str:
        return (f"{self.activities} activities, {self.updates} updates, "
                f"{self.workflow_tasks} workflow tasks, {self.timers} timers, "
                f"{self.search_attribute_upserts} search-attribute upserts, "
                f"{self.events} history events")


def shape_of(events: Iterable[HistoryEvent]) -> Shape:
    counted = [event.event_type for event in events]
    return Shape(
        activities=counted.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        updates=counted.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        timers=counted.count(EventType.EVENT_TYPE_TIMER_STARTED),
        search_attribute_upserts=counted.count(
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        workflow_tasks=counted.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        events=len(counted))


async def case_shape(client: Client, workflow_id: str) -> Shape:
    """The shape of a finished case (waits for the workflow to end)."""
    handle = client.get_workflow_handle(workflow_id)
    await handle.result()
    return shape_of((await handle.fetch_history()).events)


def mismatch(govhall: Shape, baseline: Shape) -> str:
    """What the baseline lacks or has too much of; empty when its shape is govhall's."""
    differences = [f"{name}: govhall {mine}, baseline {theirs}"
                   for name, mine, theirs in (("activities", govhall.activities,
                                               baseline.activities),
                                              ("updates", govhall.updates, baseline.updates))
                   if mine != theirs]
    return "; ".join(differences)
