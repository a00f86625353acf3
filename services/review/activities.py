"""Activities the review service hosts on its own task queue (govhall-review).

The approval workflow opens a case, records each decided stage, recomputes
deadlines, marks SLA changes and closes withdrawn cases through these; each
is one use case of services/review/app/chain.py in one transaction, and may
be retried: a repeat records nothing new. Every one verifies the signed
statements it acts on with review's trusted keys. A refusal, or input the
database cannot store, fails for good (kernel.activities.run_use_case).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from kernel.settings import ServiceSettings
from kernel.signing import TrustedKeys
from services.review.app import chain
from services.review.db.repository import ReviewUnitOfWork
from workflows.approval_contract import (
    CLOSE_CASE,
    MARK_SLA,
    OPEN_CASE,
    RECOMPUTE_CASE_DEADLINES,
    RECORD_TRANSITION,
    CaseClosing,
    Deadlines,
    DeadlinesRequest,
    SlaMark,
    Transition,
)


def _event_key() -> str:
    """Stable across retries of one activity, unique within the workflow run."""
    info = activity.info()
    return f"{info.workflow_run_id or ''}/{info.activity_id}"


class ReviewActivities:
    def __init__(self, engine: Engine, keys: TrustedKeys,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._keys = keys
        self._clock = clock

    def _writing(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine)

    @activity.defn(name=OPEN_CASE)
    async def open_case(self, request: DeadlinesRequest) -> Deadlines:
        key, now = _event_key(), self._clock()
        return await run_use_case(
            chain.open_case, uow=self._writing, keys=self._keys, request=request,
            event_key=key, now=now)

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, transition: Transition) -> None:
        now = self._clock()
        await run_use_case(
            chain.record_transition, uow=self._writing, keys=self._keys,
            transition=transition, now=now)

    @activity.defn(name=RECOMPUTE_CASE_DEADLINES)
    async def recompute_deadlines(self, request: DeadlinesRequest) -> Deadlines:
        key, now = _event_key(), self._clock()
        return await run_use_case(
            chain.recompute_deadlines, uow=self._writing, keys=self._keys, request=request,
            event_key=key, now=now)

    @activity.defn(name=MARK_SLA)
    async def mark_sla(self, mark: SlaMark) -> None:
        key, now = _event_key(), self._clock()
        await run_use_case(
            chain.mark_sla, uow=self._writing, keys=self._keys, mark=mark, event_key=key, now=now)

    @activity.defn(name=CLOSE_CASE)
    async def close_case(self, closing: CaseClosing) -> None:
        now = self._clock()
        await run_use_case(
            chain.close_case, uow=self._writing, keys=self._keys, closing=closing, now=now)


def activities(engine: Engine, settings: ServiceSettings) -> Sequence[Callable[..., Any]]:
    hosted = ReviewActivities(engine, settings.trusted_keys())
    return [hosted.open_case, hosted.record_transition, hosted.recompute_deadlines,
            hosted.mark_sla, hosted.close_case]
