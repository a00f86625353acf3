"""Activities the review service hosts on its own task queue (govhall-review).

Workflows compute deadlines in working days and look up officials through
these, so workflow code stays deterministic and never touches a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from kernel.errors import InvalidArgument, NotFound
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork


@dataclass(frozen=True)
class DeadlineRequest:
    """Count ``working_days`` working days after ``start`` (``start`` itself not counted)."""

    start: date
    working_days: int


@dataclass(frozen=True)
class DeadlineResult:
    """The due date, or, when a year on the way has no schedule, that year and why.

    A workflow flags ``year_unknown`` to the operators instead of guessing.
    """

    due_date: date | None
    year_unknown: bool = False
    unknown_year: int = 0
    message: str = ""


@dataclass(frozen=True)
class OfficialLookup:
    official_id: str


@dataclass(frozen=True)
class OfficialRoles:
    """What a workflow needs of an official to keep the duties of one case apart."""

    official_id: str
    department_code: str
    roles: list[str]


class ReviewActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _reading(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine, write=False)

    @activity.defn(name="review.compute_deadline")
    async def compute_deadline(self, request: DeadlineRequest) -> DeadlineResult:
        try:
            deadline = await asyncio.to_thread(
                handlers.compute_deadline, uow=self._reading(), start=request.start,
                working_days=request.working_days)
        except InvalidArgument as error:
            raise ApplicationError(error.message, type="InvalidArgument",
                                   non_retryable=True) from error
        return DeadlineResult(due_date=deadline.due_date,
                              year_unknown=bool(deadline.unknown_year),
                              unknown_year=deadline.unknown_year, message=deadline.message)

    @activity.defn(name="review.official_roles")
    async def official_roles(self, lookup: OfficialLookup) -> OfficialRoles:
        try:
            official = await asyncio.to_thread(
                handlers.find_official, uow=self._reading(), official_id=lookup.official_id)
        except NotFound as error:
            raise ApplicationError(error.message, type="NotFound", non_retryable=True) from error
        return OfficialRoles(official_id=official.id, department_code=official.department_code,
                             roles=sorted(official.roles))


def activities(engine: Engine, _settings: Any) -> Sequence[Callable[..., Any]]:
    hosted = ReviewActivities(engine)
    return [hosted.compute_deadline, hosted.official_roles]
