"""Activities the intake service hosts on its own task queue (govhall-intake).

Workflows read the catalogue through these, so a workflow never touches a
database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from kernel.errors import NotFound
from services.intake.app import handlers
from services.intake.db.repository import IntakeUnitOfWork


@dataclass(frozen=True)
class ApprovalItemLookup:
    code: str
    #: 0 for the current version.
    version: int = 0


@dataclass(frozen=True)
class ApprovalItemTerms:
    """What a case needs of its item: who decides and within which limits."""

    code: str
    version: int
    name: str
    department_code: str
    legal_limit_days: int
    promised_limit_days: int
    special_procedures: list[str]
    required_materials: list[str]


class IntakeActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="intake.approval_item_terms")
    async def approval_item_terms(self, lookup: ApprovalItemLookup) -> ApprovalItemTerms:
        try:
            item, _ = await asyncio.to_thread(
                handlers.get_approval_item, uow=IntakeUnitOfWork(self._engine, write=False),
                code=lookup.code, version=lookup.version)
        except NotFound as error:
            raise ApplicationError(error.message, type="NotFound", non_retryable=True) from error
        return ApprovalItemTerms(
            code=item.code, version=item.version, name=item.name,
            department_code=item.department_code, legal_limit_days=item.legal_limit_days,
            promised_limit_days=item.promised_limit_days,
            special_procedures=list(item.special_procedures),
            required_materials=[m.code for m in item.required_materials])


def activities(engine: Engine, _settings: Any) -> Sequence[Callable[..., Any]]:
    return [IntakeActivities(engine).approval_item_terms]
