"""The intake use cases on a real database, with the clock fixed by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.support import fresh_database_url, sample_caller
from workflows.approval_contract import CaseEvent, Deadlines, SealRequest

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


def _event(number: str, event_id: str, **fields: object) -> CaseEvent:
    return CaseEvent(case_number=number, event_id=event_id, kind=str(fields.pop("kind", "x")),
                     at=MONDAY + timedelta(hours=1), **fields)  # type: ignore[arg-type]


def test_timeline_events_are_recorded_once_and_move_the_case(intake: Intake) -> None:
    number = _submit(intake, _materials(), key="key-0000000000000001").view.case.number
    deadlines = Deadlines(MONDAY + timedelta(days=8), MONDAY + timedelta(days=12),
                          MONDAY + timedelta(days=26), unknown_year=2027)
    event = _event(number, "wf-0001", kind="deadlines.computed", stage="review",
                   deadlines=deadlines, sla_state="on_time", status="under_review")
    audit_before = intake.count("audit_log")
    assert cases.record_case_event(uow=intake.uow(), event=event, now=MONDAY)
    assert not cases.record_case_event(uow=intake.uow(), event=event, now=MONDAY)
    assert intake.count("audit_log") == audit_before + 1
    view, timeline = cases.get_case(uow=intake.uow(), caller=CLERK, case_number=number)
    assert view.case.status == CaseStatus.UNDER_REVIEW
    assert view.case.deadlines is not None
    assert view.case.deadlines.promised_due_at == deadlines.promised_due_at
    assert view.case.calendar_gap_year == 2027
    assert [e.event_id for e in timeline].count("wf-0001") == 1
    assert timeline[-1].deadlines is not None
    with pytest.raises(InvalidArgument):
        cases.record_case_event(uow=intake.uow(), event=_event(number, "wf-0002",
                                                               status="sideways"), now=MONDAY)
    with pytest.raises(NotFound):
        cases.record_case_event(uow=intake.uow(),
                                event=_event("AP-20990101-000001", "wf-0001"), now=MONDAY)


def _seal_request(number: str) -> SealRequest:
    return SealRequest(case_number=number, decision="approved",
                       decided_at=MONDAY + timedelta(days=4), sealed_by="ZWFWZX-001",
                       reviewer_id="SCJGJ-003", signer_id="SCJGJ-006", opinion="符合条件",
                       legal_basis="《食品经营许可管理办法》第十条")


def test_a_certificate_is_issued_once_even_when_sealing_is_retried_at_once(
        intake: Intake) -> None:
    number = _submit(intake, _materials(), key="key-0000000000000001").view.case.number
    key = seal_key(intake.pki_dir)
    receipts = []
    lock = threading.Lock()

    def seal() -> None:
        receipt = seals.seal_decision(uow=intake.uow(), request=_seal_request(number), key=key,
                                      now=MONDAY + timedelta(days=4))
        with lock:
            receipts.append(receipt)

    threads = [threading.Thread(target=seal) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.certificate_number for r in receipts}) == 1
    assert receipts[0].certificate_number == "SY-2026-000001"
    assert intake.count("sealed_decisions") == 1
    assert intake.count("register_entries") == 1
    view, _ = cases.get_case(uow=intake.uow(), caller=CLERK, case_number=number)
    assert view.case.certificate_number == "SY-2026-000001"


def test_only_a_case_in_its_chain_can_be_sealed(intake: Intake) -> None:
    number = _submit(intake, _materials("M01"), key="key-0000000000000001").view.case.number
    with pytest.raises(FailedPrecondition):
        seals.seal_decision(uow=intake.uow(), request=_seal_request(number),
                            key=seal_key(intake.pki_dir), now=MONDAY)
    with pytest.raises(InvalidArgument):
        seals.seal_decision(uow=intake.uow(),
                            request=SealRequest(number, "maybe", MONDAY, "ZWFWZX-001", "", ""),
                            key=seal_key(intake.pki_dir), now=MONDAY)
    assert intake.count("sealed_decisions") == 0
