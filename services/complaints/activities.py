"""Activities the complaints service hosts on its own task queue (govhall-complaints).

Workflows route complaints through these, so a workflow never touches a
database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from services.complaints.app import handlers
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.intake_links import IntakeLinks
from services.complaints.link_activity import LinkActivities
from services.complaints.settings import ComplaintsSettings


@dataclass(frozen=True)
class RouteComplaintInput:
    category_code: str


@dataclass(frozen=True)
class ResponsibleDepartment:
    """Who handles a complaint of the category, and under which rule.

    A case keeps ``rule_version`` so that it can show the rule it was routed
    under after the category is re-pointed.
    """

    category_code: str
    department_code: str
    department_name: str
    rule_version: int


class ComplaintsActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="complaints.route_complaint")
    async def route_complaint(self, request: RouteComplaintInput) -> ResponsibleDepartment:
        # Unknown category or a department gone from the directory fails for good:
        # retrying cannot help, a dispatcher has to act.
        routing = await run_use_case(
            handlers.route_complaint, uow=ComplaintsUnitOfWork(self._engine, write=False),
            category_code=request.category_code)
        return ResponsibleDepartment(
            category_code=routing.category.code, department_code=routing.department.code,
            department_name=routing.department.name, rule_version=routing.category.rule_version)


def activities(engine: Engine, settings: Any) -> Sequence[Callable[..., Any]]:
    return [ComplaintsActivities(engine).route_complaint,
            LinkActivities(engine, intake_lookup(settings)).check_link]


def intake_lookup(settings: ComplaintsSettings) -> IntakeLinks | None:
    """Intake's CheckCaseLink as this service's calling system, or None without intake."""
    if not settings.intake_address:
        return None
    return IntakeLinks(settings.intake_address, pki_dir=settings.pki_dir,
                       system=settings.calling_system)
