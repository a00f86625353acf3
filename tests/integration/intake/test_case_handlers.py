"""The intake use cases on a real database, with the clock fixed by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from kernel.db import make_engine
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from kernel.service import prepare
from services.intake.app import cases, seals
from services.intake.db import tables
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.cases import (
    Applicant,
    CaseStatus,
    Finding,
    Findings,
    IntakeOutcome,
    NoticeKind,
    SubmittedMaterial,
)
from services.intake.keystore import ApplicantCipher, applicant_cipher, seal_key
from services.intake.main import DEFINITION
from services.intake.settings import IntakeSettings
from tests.integration.intake.sealing import taken
from tests.support import fresh_database_url, sample_caller
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Signers
from workflows.approval_contract import (
    DecisionTaken,
    SealReceipt,
    SealRequest,
    Stage,
    StatementFacts,
    StatementKind,
)

ITEM = "012101000007001"  # 食品经营许可（新办）, SCJGJ: M01-M06 required, M07 optional
CLERK = sample_caller("hall-window-system", "SCJGJ-001")
MONDAY = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
APPLICANT = Applicant("person", "张三丰", "110101199003077777", "13800000000")


@dataclass
class Intake:
    engine: Engine
    cipher: ApplicantCipher
    pki_dir: Path

    def uow(self) -> IntakeUnitOfWork:
        return IntakeUnitOfWork(self.engine, cipher=self.cipher)

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(tables.metadata.tables[table])).scalar_one())


@pytest.fixture
def intake(backend: str, tmp_path: Path) -> Iterator[Intake]:
    url = fresh_database_url(backend, "intake", tmp_path)
    pki_dir = tmp_path / "pki"
    prepare(DEFINITION, IntakeSettings(database_url=url, pki_dir=pki_dir))
    engine = make_engine(url)
    yield Intake(engine, applicant_cipher(pki_dir), pki_dir)
    engine.dispose()


def _materials(*missing: str, defective: dict[str, str] | None = None,
               ) -> tuple[SubmittedMaterial, ...]:
    defective = defective or {}
    return tuple(
        SubmittedMaterial(code, code not in missing,
                          (defective[code],) if code in defective else ())
        for code in ("M01", "M02", "M03", "M04", "M05", "M06"))


def _submit(intake: Intake, materials: tuple[SubmittedMaterial, ...], *, key: str,
            now: datetime = MONDAY) -> cases.Submission:
    return cases.submit_application(
        uow=intake.uow(), caller=CLERK, idempotency_key=key, item_code=ITEM,
        applicant=APPLICANT, materials=materials, findings=Findings(Finding.NONE), now=now)


def test_a_supplement_completing_the_materials_accepts_the_case_that_day(
        intake: Intake) -> None:
    first = _submit(intake, _materials("M02", defective={"M05": "未加盖公章"}),
                    key="key-0000000000000001")
    assert first.outcome == IntakeOutcome.CORRECTION_REQUIRED
    notice = first.notice
    assert [i.material_code for i in notice.items] == ["M02", "M05"]
    thursday = MONDAY + timedelta(days=3)
    done = cases.supplement_materials(
        uow=intake.uow(), caller=CLERK, case_number=first.view.case.number,
        idempotency_key="key-0000000000000002",
        materials=(SubmittedMaterial("M02", True), SubmittedMaterial("M05", True)),
        now=thursday)
    assert done.outcome == IntakeOutcome.ACCEPTED
    assert done.view.case.status == CaseStatus.ACCEPTED
    assert done.view.case.accepted_on == date(2026, 3, 5)
    assert done.view.case.accepted_at == thursday
    assert done.view.case.submitted_at == MONDAY
    assert done.receipt is not None and "2026年3月5日" in done.receipt.text
    assert done.correction_notice.number == notice.number
    assert [n.kind for n in done.view.notices] == [NoticeKind.CORRECTION,
                                                   NoticeKind.ACCEPTANCE_RECEIPT]
    assert done.view.case.item_version == 1


def test_an_incomplete_supplement_keeps_the_one_notice_and_says_what_is_outstanding(
        intake: Intake) -> None:
    first = _submit(intake, _materials("M02", "M03"), key="key-0000000000000001")
    number = first.view.case.number
    partial = cases.supplement_materials(
        uow=intake.uow(), caller=CLERK, case_number=number,
        idempotency_key="key-0000000000000002",
        materials=(SubmittedMaterial("M02", True), SubmittedMaterial("M03", True, ("缺页",))),
        now=MONDAY + timedelta(days=1))
    assert partial.outcome == IntakeOutcome.CORRECTION_REQUIRED
    assert partial.view.case.status == CaseStatus.AWAITING_MATERIALS
    assert [i.material_code for i in partial.outstanding] == ["M03"]
    assert "缺页" in partial.outstanding[0].reason
    assert partial.correction_notice == first.notice
    assert partial.receipt is None
    assert intake.count("notices") == 1
    with pytest.raises(InvalidArgument) as unlisted:
        cases.supplement_materials(
            uow=intake.uow(), caller=CLERK, case_number=number,
            idempotency_key="key-0000000000000003",
            materials=(SubmittedMaterial("M01", True),), now=MONDAY + timedelta(days=2))
    assert "M01" in unlisted.value.message
    last = cases.supplement_materials(
        uow=intake.uow(), caller=CLERK, case_number=number,
        idempotency_key="key-0000000000000004",
        materials=(SubmittedMaterial("M03", True),), now=MONDAY + timedelta(days=8))
    assert last.view.case.accepted_on == date(2026, 3, 10)
    with pytest.raises(FailedPrecondition):
        cases.supplement_materials(
            uow=intake.uow(), caller=CLERK, case_number=number,
            idempotency_key="key-0000000000000005",
            materials=(SubmittedMaterial("M03", True),), now=MONDAY + timedelta(days=9))


def test_case_numbers_run_per_china_day(intake: Intake) -> None:
    numbers = [_submit(intake, _materials(), key=f"key-{i:016d}", now=moment).view.case.number
               for i, moment in enumerate([MONDAY, MONDAY + timedelta(hours=1),
                                           datetime(2026, 3, 2, 16, 5, tzinfo=UTC)])]
    assert numbers == ["AP-20260302-000001", "AP-20260302-000002", "AP-20260303-000001"]


def test_the_applicant_is_stored_encrypted_and_kept_out_of_the_audit_log(
        intake: Intake) -> None:
    _submit(intake, _materials(), key="key-0000000000000001")
    with intake.engine.connect() as connection:
        stored = connection.execute(select(tables.cases.c.applicant)).scalar_one()
        audit = " ".join(str(v) for row in connection.execute(select(tables.audit_log))
                         for v in row)
        timeline = " ".join(str(v) for row in connection.execute(select(tables.case_events))
                            for v in row)
    for personal in (APPLICANT.name, APPLICANT.id_number, APPLICANT.phone):
        assert personal not in stored
        assert personal not in audit
        assert personal not in timeline


def test_the_chain_start_and_what_the_applicant_is_told_are_recorded_once(
        intake: Intake, signers: Signers) -> None:
    number = _submit(intake, _materials(), key="key-0000000000000001").view.case.number
    waiting = _submit(intake, _materials("M01"), key="key-0000000000000002").view.case.number
    assert cases.unstarted_cases(uow=intake.uow()) == [number]
    started_at = MONDAY + timedelta(minutes=1)
    assert cases.mark_workflow_started(uow=intake.uow(), case_number=number,
                                       system="govhall-intake", started_at=started_at)
    assert not cases.mark_workflow_started(uow=intake.uow(), case_number=number,
                                           system="govhall-intake", started_at=started_at)
    assert cases.unstarted_cases(uow=intake.uow()) == []
    # What the applicant is told is read from review's signed act, nothing else.
    start = StatementFacts.read(signers.statement(
        StatementKind.PROCEDURE_START, number, REVIEWER, procedure="expert_review").body)
    audit_before = intake.count("audit_log")
    told_at = MONDAY + timedelta(days=1)
    assert cases.notify_applicant(uow=intake.uow(), facts=start, at=told_at, now=MONDAY)
    assert not cases.notify_applicant(uow=intake.uow(), facts=start, at=told_at, now=MONDAY)
    assert intake.count("audit_log") == audit_before + 1
    view, timeline = cases.get_case(uow=intake.uow(), caller=CLERK, case_number=number)
    assert view.case.status == CaseStatus.UNDER_REVIEW and view.case.workflow_started
    assert [e.kind for e in timeline] == [
        "application.submitted", "application.accepted", "workflow.started",
        "applicant.notified"]
    assert timeline[-1].details == {"template": "special_procedure_started",
                                    "procedure": "expert_review"}
    assert timeline[-1].event_id.startswith("notice-")
    with pytest.raises(NotFound):
        cases.notify_applicant(uow=intake.uow(), now=MONDAY, at=told_at,
                               facts=replace(start, case_number="AP-20990101-000001"))
    with pytest.raises(FailedPrecondition):  # nothing to tell of a case not in the chain
        cases.notify_applicant(uow=intake.uow(), now=MONDAY, at=told_at,
                               facts=replace(start, case_number=waiting))
    with pytest.raises(InvalidArgument):  # a decision is no act on the clock
        cases.notify_applicant(uow=intake.uow(), now=MONDAY, at=told_at, facts=replace(
            start, kind=StatementKind.DECISION))
    assert cases.get_case(uow=intake.uow(), caller=CLERK,
                          case_number=waiting)[0].case.status == CaseStatus.AWAITING_MATERIALS


def _seal(intake: Intake, signers: Signers, number: str, *,
          decisions: list[DecisionTaken] | None = None) -> SealReceipt:
    accepted_at = MONDAY  # every case here is accepted on the Monday morning
    step = timedelta(hours=1)
    chain = decisions or [
        taken(signers, number, REVIEWER, Stage.REVIEW, "approve", at=accepted_at + step),
        taken(signers, number, LEADER, Stage.SIGN, "approve", at=accepted_at + 2 * step),
        taken(signers, number, SEALER, Stage.SEAL, "seal", at=accepted_at + 3 * step)]
    return seals.seal_decision(
        uow=intake.uow(), violations=intake.uow, keys=signers.keys, signer=signers.intake,
        request=SealRequest(number, chain), key=seal_key(intake.pki_dir),
        now=MONDAY + timedelta(days=4))


def test_a_certificate_is_issued_once_even_when_sealing_is_retried_at_once(
        intake: Intake, signers: Signers) -> None:
    number = _submit(intake, _materials(), key="key-0000000000000001").view.case.number
    receipts = []
    lock = threading.Lock()

    def seal() -> None:
        receipt = _seal(intake, signers, number)
        with lock:
            receipts.append(receipt)

    threads = [threading.Thread(target=seal) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(receipts) == 6
    assert len({r.certificate_number for r in receipts}) == 1
    assert receipts[0].certificate_number == "SY-2026-000001"
    assert intake.count("sealed_decisions") == 1
    assert intake.count("register_entries") == 1
    view, _ = cases.get_case(uow=intake.uow(), caller=CLERK, case_number=number)
    assert view.case.certificate_number == "SY-2026-000001"
    assert view.case.status == CaseStatus.APPROVED


def test_only_a_case_in_its_chain_can_be_sealed(intake: Intake, signers: Signers) -> None:
    waiting = _submit(intake, _materials("M01"), key="key-0000000000000001").view.case.number
    withdrawn = _submit(intake, _materials("M02"), key="key-0000000000000002").view.case.number
    step = cases.withdraw_application(uow=intake.uow(), caller=CLERK, case_number=withdrawn,
                                      reason="申请人撤回", now=MONDAY + timedelta(hours=1))
    assert step.view is not None and step.view.case.status == CaseStatus.WITHDRAWN
    for number in (waiting, withdrawn):
        with pytest.raises(FailedPrecondition):
            _seal(intake, signers, number)
    with pytest.raises(NotFound):
        _seal(intake, signers, "AP-20990101-000001")
    assert intake.count("sealed_decisions") == 0


def test_a_withdrawal_the_chain_carried_out_closes_the_case_once_and_keeps_the_reason(
        intake: Intake) -> None:
    number = _submit(intake, _materials(), key="key-0000000000000001").view.case.number
    step = cases.withdraw_application(uow=intake.uow(), caller=CLERK, case_number=number,
                                      reason="申请人撤回", now=MONDAY + timedelta(hours=1))
    # An accepted case is withdrawn through its workflow: the clerk is named, nothing done yet.
    assert step.view is None and step.clerk is not None and step.clerk.id == CLERK.official_id
    at = MONDAY + timedelta(hours=2)
    assert cases.record_withdrawal(uow=intake.uow(), case_number=number, stage="review", at=at,
                                   clerk_id=CLERK.official_id, system=CLERK.system, now=at)
    assert not cases.record_withdrawal(uow=intake.uow(), case_number=number, stage="review",
                                       at=at, clerk_id=CLERK.official_id, system=CLERK.system,
                                       now=at)
    view = cases.note_withdrawal(uow=intake.uow(), caller=CLERK, case_number=number,
                                 reason="申请人撤回", now=at)
    assert view.case.status == CaseStatus.WITHDRAWN and view.case.closed_at == at
    assert view.case.withdrawal_reason == "申请人撤回"
    _, timeline = cases.get_case(uow=intake.uow(), caller=CLERK, case_number=number)
    assert [e.kind for e in timeline].count("withdrawn") == 1
    assert "申请人撤回" not in str([(e.details, e.kind) for e in timeline])
    with pytest.raises(FailedPrecondition):
        cases.withdraw_application(uow=intake.uow(), caller=CLERK, case_number=number,
                                   reason="再次撤回", now=at)
