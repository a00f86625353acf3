"""Activities the intake service hosts on its own task queue (govhall-intake).

Workflows read the catalogue, write a case's timeline, record what the
applicant is told and have decisions sealed through these, so a workflow
never touches a database. A business failure is an ApplicationError of the
kernel error's name, not retried (kernel.activities).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from kernel.settings import ServiceSettings
from services.intake.app import cases, handlers, seals
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.keystore import applicant_cipher, seal_key
from workflows.approval_contract import (
    NOTIFY_APPLICANT,
    RECORD_CASE_EVENT,
    SEAL_DECISION,
    ApplicantNotice,
    CaseEvent,
    SealReceipt,
    SealRequest,
)


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
    def __init__(self, engine: Engine, settings: ServiceSettings) -> None:
        self._engine = engine
        self._cipher = applicant_cipher(settings.pki_dir)
        self._seal_key = seal_key(settings.pki_dir)

    def _writing(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine, cipher=self._cipher)

    @activity.defn(name="intake.approval_item_terms")
    async def approval_item_terms(self, lookup: ApprovalItemLookup) -> ApprovalItemTerms:
        item, _ = await run_use_case(
            handlers.get_approval_item, uow=IntakeUnitOfWork(self._engine, write=False),
            code=lookup.code, version=lookup.version)
        return ApprovalItemTerms(
            code=item.code, version=item.version, name=item.name,
            department_code=item.department_code, legal_limit_days=item.legal_limit_days,
            promised_limit_days=item.promised_limit_days,
            special_procedures=list(item.special_procedures),
            required_materials=[m.code for m in item.required_materials])

    @activity.defn(name=RECORD_CASE_EVENT)
    async def record_case_event(self, event: CaseEvent) -> None:
        """Add an event to the case's timeline, once, and update the case's standing."""
        await run_use_case(cases.record_case_event, uow=self._writing(), event=event,
                           now=datetime.now(UTC))

    @activity.defn(name=NOTIFY_APPLICANT)
    async def notify_applicant(self, notice: ApplicantNotice) -> None:
        """Record on the timeline that the applicant is told; sending is not done here."""
        await run_use_case(cases.notify_applicant, uow=self._writing(), notice=notice,
                           now=datetime.now(UTC))

    @activity.defn(name=SEAL_DECISION)
    async def seal_decision(self, request: SealRequest) -> SealReceipt:
        """Seal the case's decision with the center's key; once per case."""
        return await run_use_case(seals.seal_decision, uow=self._writing(), request=request,
                                  key=self._seal_key, now=datetime.now(UTC))


def activities(engine: Engine, settings: ServiceSettings) -> Sequence[Callable[..., Any]]:
    hosted = IntakeActivities(engine, settings)
    return [hosted.approval_item_terms, hosted.record_case_event, hosted.notify_applicant,
            hosted.seal_decision]
