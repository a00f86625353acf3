"""Activities the intake service hosts on its own task queue (govhall-intake).

The approval workflow has intake seal a decision (from the chain's signed
statements, verified here), close a case withdrawn through the chain, and
record what the applicant is told. A refusal is an ApplicationError of the
kernel error's name, not retried (kernel.activities).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case
from kernel.errors import PermissionDenied
from kernel.settings import ServiceSettings
from kernel.signing import BadSignature, TrustedKeys, service_signer
from services.intake.app import cases, seals
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.keystore import applicant_cipher, seal_key
from workflows.approval_contract import (
    NOTIFY_APPLICANT,
    RECORD_WITHDRAWAL,
    SEAL_DECISION,
    ApplicantNotice,
    SealReceipt,
    SealRequest,
    StatementFacts,
    StatementKind,
    WithdrawalRecord,
    check_case_number,
    verified_facts,
)


class IntakeActivities:
    def __init__(self, engine: Engine, settings: ServiceSettings,
                 keys: TrustedKeys | None = None) -> None:
        self._engine = engine
        self._cipher = applicant_cipher(settings.pki_dir)
        self._seal_key = seal_key(settings.pki_dir)
        self._signer = service_signer(settings.pki_dir, "intake")
        self._keys = keys or settings.trusted_keys()

    def _writing(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self._engine, cipher=self._cipher)

    @activity.defn(name=SEAL_DECISION)
    async def seal(self, request: SealRequest) -> SealReceipt:
        """Seal the case's decision with the center's key, once, from its verified chain."""
        return await run_use_case(
            seals.seal_decision, uow=self._writing(), violations=self._writing,
            keys=self._keys, signer=self._signer, request=request, key=self._seal_key,
            now=datetime.now(UTC))

    @activity.defn(name=RECORD_WITHDRAWAL)
    async def record_withdrawal(self, record: WithdrawalRecord) -> None:
        """Close a case the chain withdrew, on the window's own signed statement."""
        now = datetime.now(UTC)

        def close() -> bool:
            check_case_number(record.case_number)
            try:
                facts = verified_facts(self._keys, record.statement, StatementKind.WITHDRAWAL)
                if facts.case_number != record.case_number:
                    raise BadSignature(f"the statement is about case {facts.case_number}")
            except (BadSignature, StatementFacts.Malformed) as error:
                seals.record_violation(uow=self._writing(), case_number=record.case_number,
                                       what="withdrawal", reason=str(error), now=now)
                raise PermissionDenied(f"case {record.case_number} was not withdrawn: the "
                                       "withdrawal is not one intake signed") from error
            return cases.record_withdrawal(
                uow=self._writing(), case_number=record.case_number, stage=record.stage,
                at=record.at, clerk_id=facts.official_id, system=facts.system, now=now)

        await run_use_case(close)

    @activity.defn(name=NOTIFY_APPLICANT)
    async def notify_applicant(self, notice: ApplicantNotice) -> None:
        """Record on the timeline that the applicant is told of a signed act on the case's
        clock; the notice is read from review's statement, verified here. Sending is not
        done here."""
        now = datetime.now(UTC)

        def tell() -> bool:
            check_case_number(notice.case_number)
            facts = self._verified_clock_act(notice)
            return cases.notify_applicant(uow=self._writing(), facts=facts, at=notice.at,
                                          now=now)

        await run_use_case(tell)

    def _verified_clock_act(self, notice: ApplicantNotice) -> StatementFacts:
        now = datetime.now(UTC)
        statement = notice.statement
        try:
            if statement is None:
                raise BadSignature("a notice without the act it tells of")
            kind = StatementKind(str(statement.body.get("kind", "")))
            if kind not in cases.NOTICE_KINDS:
                raise BadSignature(f"a {kind} statement tells the applicant nothing")
            facts = verified_facts(self._keys, statement, kind)
            if facts.case_number != notice.case_number:
                raise BadSignature(f"the statement is about case {facts.case_number}")
        except (BadSignature, ValueError) as error:
            seals.record_violation(uow=self._writing(), case_number=notice.case_number,
                                   what="notice", reason=str(error), now=now)
            raise PermissionDenied(f"nothing was told on case {notice.case_number}: the "
                                   "notice rests on no act review signed") from error
        return facts


def activities(engine: Engine, settings: ServiceSettings) -> Sequence[Callable[..., Any]]:
    hosted = IntakeActivities(engine, settings)
    return [hosted.seal, hosted.record_withdrawal, hosted.notify_applicant]
