"""Applications over real gRPC and mTLS: art. 32 outcomes, idempotency, bad input, privacy.

Temporal is out of reach here (a closed port): accepted cases stay accepted
with their workflow not yet started; test_chain_start.py covers the workflow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import create_engine, func, select

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from services.intake.db import tables
from services.intake.main import DEFINITION
from tests.support import (
    SAMPLE_AUDIT_ENTRIES,
    ServiceUnderTest,
    as_official,
    field_violations,
    fresh_database_url,
    register_system,
    service_under_test,
)

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

ITEM = "012101000007001"  # 食品经营许可（新办）, SCJGJ: M01-M06 required, M07 optional
CLERK = "SCJGJ-001"
OTHER_CLERK = "FGW-001"
REVIEWER = "SCJGJ-003"
LEADER = "SCJGJ-006"
WINDOW = "hall-window-system"
SCJGJ_SYSTEM = "department-system-scjgj"
UNREACHABLE_TEMPORAL = "127.0.0.1:1"
APPLICANT = pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name="张三丰",
                         id_number="110101199003077777", phone="13800000000")


@pytest.fixture
async def intake(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=UNREACHABLE_TEMPORAL) as service:
        yield service


def _key() -> str:
    return str(uuid.uuid4())


def _materials(*missing: str, defects: dict[str, list[str]] | None = None,
               fixed: tuple[str, ...] = ()) -> list[pb.SubmittedMaterial]:
    defects = defects or {}
    return [pb.SubmittedMaterial(code=code, provided=code not in missing,
                                 defects=defects.get(code, []), fixed_on_spot=code in fixed)
            for code in ("M01", "M02", "M03", "M04", "M05", "M06")]


def _request(**fields: object) -> pb.SubmitApplicationRequest:
    values: dict[str, object] = {"idempotency_key": _key(), "item_code": ITEM,
                                 "applicant": APPLICANT, "materials": _materials(),
                                 "finding": pb.FINDING_NONE}
    values.update(fields)
    return pb.SubmitApplicationRequest(**values)  # type: ignore[arg-type]


def _counts(intake: ServiceUnderTest) -> tuple[int, int]:
    engine = create_engine(intake.settings.resolved_database_url())
    with engine.connect() as connection:
        counted = tuple(int(connection.execute(select(func.count()).select_from(t)).scalar_one())
                        for t in (tables.cases, tables.audit_log))
    engine.dispose()
    return counted[0], counted[1]


async def _submit(stub: IntakeServiceAsyncStub, request: pb.SubmitApplicationRequest,
                  official: str = CLERK) -> pb.SubmitApplicationResponse:
    response: pb.SubmitApplicationResponse = await stub.SubmitApplication(
        request, metadata=as_official(official))
    return response


async def test_complete_materials_are_accepted_with_a_receipt(intake: ServiceUnderTest) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        response = await _submit(stub, _request(materials=_materials(
            defects={"M04": ["日期笔误"]}, fixed=("M04",))))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=response.case.case_number),
                                  metadata=as_official(CLERK))
    case = response.case
    assert response.outcome == pb.INTAKE_OUTCOME_ACCEPTED
    assert case.status == pb.CASE_STATUS_ACCEPTED
    assert case.case_number.startswith("AP-") and case.case_number.endswith("-000001")
    assert case.accepted_on == response.notice.issued_on
    assert response.notice.kind == pb.NOTICE_KIND_ACCEPTANCE_RECEIPT
    assert case.case_number in response.notice.text
    assert case.item_version == 1 and case.department_code == "SCJGJ"
    assert case.workflow_id == f"approval/{case.case_number}"
    assert not case.workflow_started  # Temporal is out of reach: the case waits for it
    fixed = next(m for m in read.case.materials if m.code == "M04")
    assert fixed.fixed_on_spot and list(fixed.defects) == ["日期笔误"] and not fixed.outstanding
    assert [e.kind for e in read.timeline] == ["application.submitted", "application.accepted"]
    assert read.timeline[0].details["fixed_on_the_spot"] == "M04"
    assert read.timeline[0].official_id == CLERK


async def test_missing_and_defective_materials_get_one_notice_listing_them_all(
        intake: ServiceUnderTest) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        materials = [m for m in _materials("M02", defects={"M05": ["未加盖公章"]})
                     if m.code != "M06"]
        response = await _submit(stub, _request(materials=materials))
        number = response.case.case_number
        partial = await stub.SupplementMaterials(pb.SupplementMaterialsRequest(
            case_number=number, idempotency_key=_key(),
            materials=[pb.SubmittedMaterial(code="M02", provided=True)]),
            metadata=as_official(CLERK))
        done = await stub.SupplementMaterials(pb.SupplementMaterialsRequest(
            case_number=number, idempotency_key=_key(),
            materials=[pb.SubmittedMaterial(code="M05", provided=True),
                       pb.SubmittedMaterial(code="M06", provided=True)]),
            metadata=as_official(CLERK))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert response.outcome == pb.INTAKE_OUTCOME_CORRECTION_REQUIRED
    assert response.case.status == pb.CASE_STATUS_AWAITING_MATERIALS
    notice = response.notice
    assert notice.kind == pb.NOTICE_KIND_CORRECTION
    assert [(i.material_code, i.reason) for i in notice.items] == [
        ("M02", "未提交"), ("M05", "存在缺陷：未加盖公章"), ("M06", "未提交")]
    assert partial.outcome == pb.INTAKE_OUTCOME_CORRECTION_REQUIRED
    assert [i.material_code for i in partial.outstanding] == ["M05", "M06"]
    assert partial.correction_notice == notice
    assert done.outcome == pb.INTAKE_OUTCOME_ACCEPTED
    assert done.receipt.kind == pb.NOTICE_KIND_ACCEPTANCE_RECEIPT
    assert [n.kind for n in read.case.notices] == [pb.NOTICE_KIND_CORRECTION,
                                                   pb.NOTICE_KIND_ACCEPTANCE_RECEIPT]
    assert read.case.accepted_on == done.receipt.issued_on


@pytest.mark.parametrize(("fields", "outcome", "status", "kind", "words"), [
    ({"finding": pb.FINDING_NOT_SUBJECT_TO_PERMIT, "explanation": "仅销售预包装食品，备案即可"},
     pb.INTAKE_OUTCOME_NOT_SUBJECT_TO_PERMIT, pb.CASE_STATUS_NOT_SUBJECT_TO_PERMIT,
     pb.NOTICE_KIND_NOT_SUBJECT_TO_PERMIT, ["仅销售预包装食品"]),
    ({"finding": pb.FINDING_OUTSIDE_AUTHORITY, "competent_authority": "辽宁省药品监督管理局"},
     pb.INTAKE_OUTCOME_OUTSIDE_AUTHORITY, pb.CASE_STATUS_OUTSIDE_AUTHORITY,
     pb.NOTICE_KIND_OUTSIDE_AUTHORITY, ["辽宁省药品监督管理局"]),
    ({"finding": pb.FINDING_REFUSED, "refusal_reasons": ["申请人隐瞒有关情况"]},
     pb.INTAKE_OUTCOME_REFUSED, pb.CASE_STATUS_NOT_ACCEPTED, pb.NOTICE_KIND_REFUSAL,
     ["申请人隐瞒有关情况", "60日内", "行政复议", "6个月内", "行政诉讼"]),
])
async def test_cases_closed_at_the_window_get_their_written_notice(
        intake: ServiceUnderTest, fields: dict[str, object], outcome: int, status: int,
        kind: int, words: list[str]) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        response = await _submit(stub, _request(**fields))
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await stub.WithdrawApplication(pb.WithdrawApplicationRequest(
                case_number=response.case.case_number), metadata=as_official(CLERK))
    assert response.outcome == outcome
    assert response.case.status == status
    assert response.case.HasField("closed_at")
    assert response.notice.kind == kind
    for word in words:
        assert word in response.notice.text
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_retried_submit_returns_the_same_case_even_ten_at_once(
        intake: ServiceUnderTest) -> None:
    request = _request(materials=_materials("M03"))
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        responses = await asyncio.gather(*(_submit(stub, request) for _ in range(10)))
        again = await _submit(stub, request)
        changed = pb.SubmitApplicationRequest()
        changed.CopyFrom(request)
        changed.applicant.phone = "13900000000"
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await _submit(stub, changed)
    async with intake.channel("operator") as channel:
        audit = (await intake_pb2_grpc.IntakeServiceStub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    assert {r.case.case_number for r in [*responses, again]} == {responses[0].case.case_number}
    assert {r.outcome for r in responses} == {pb.INTAKE_OUTCOME_CORRECTION_REQUIRED}
    assert {r.notice.notice_number for r in responses} == {responses[0].notice.notice_number}
    assert sum(not r.replayed for r in responses) == 1
    assert again.replayed
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _counts(intake)[0] == 1
    assert audit.intact and audit.entries == SAMPLE_AUDIT_ENTRIES + 1  # and the one submission


async def test_bad_submissions_are_refused_and_change_nothing(intake: ServiceUnderTest) -> None:
    outcomes: dict[str, tuple[grpc.StatusCode, list[str]]] = {}
    duplicate = [*_materials(), pb.SubmittedMaterial(code="M01", provided=True)]
    unknown = [*_materials(), pb.SubmittedMaterial(code="M42", provided=True)]
    cases = {
        "unknown item": (_request(item_code="019999999999999"), CLERK),
        "duplicate material": (_request(materials=duplicate), CLERK),
        "unknown material": (_request(materials=unknown), CLERK),
        "huge name": (_request(applicant=pb.Applicant(
            kind=pb.APPLICANT_KIND_PERSON, name="张" * 10_000,
            id_number="110101199003077777")), CLERK),
        "too many defects": (_request(materials=[pb.SubmittedMaterial(
            code="M01", provided=True, defects=["x"] * 11)]), CLERK),
        "bad key": (_request(idempotency_key="short"), CLERK),
        "no finding": (_request(finding=pb.FINDING_UNSPECIFIED), CLERK),
        "refusal without reasons": (_request(finding=pb.FINDING_REFUSED), CLERK),
        "defects of a material not provided": (_request(materials=[pb.SubmittedMaterial(
            code="M01", provided=False, defects=["破损"])]), CLERK),
        "no official": (_request(), ""),
        "wrong role": (_request(), REVIEWER),
        "clerk of another department": (_request(), OTHER_CLERK),
    }
    before = _counts(intake)
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        for label, (request, official) in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SubmitApplication(
                    request, metadata=as_official(official) if official else ())
            outcomes[label] = (refused.value.code(), field_violations(refused.value))
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert {k: v[0] for k, v in outcomes.items()} == {
        "unknown item": grpc.StatusCode.NOT_FOUND,
        "duplicate material": invalid,
        "unknown material": invalid,
        "huge name": invalid,
        "too many defects": invalid,
        "bad key": invalid,
        "no finding": invalid,
        "refusal without reasons": invalid,
        "defects of a material not provided": invalid,
        "no official": grpc.StatusCode.UNAUTHENTICATED,
        "wrong role": grpc.StatusCode.PERMISSION_DENIED,
        "clerk of another department": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert "applicant.name" in outcomes["huge name"][1]
    assert "materials" in outcomes["unknown material"][1]
    assert _counts(intake) == before


async def test_a_supplement_outside_the_notice_or_for_another_case_changes_nothing(
        intake: ServiceUnderTest) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        waiting = await _submit(stub, _request(materials=_materials("M02")))
        accepted = await _submit(stub, _request())
        before = _counts(intake)
        refused = {}
        for label, number, code, official in (
                ("not in the notice", waiting.case.case_number, "M01", CLERK),
                ("unknown material", waiting.case.case_number, "M99", CLERK),
                ("case accepted", accepted.case.case_number, "M02", CLERK),
                ("unknown case", "AP-20000101-000001", "M02", CLERK),
                ("other department", waiting.case.case_number, "M02", OTHER_CLERK)):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.SupplementMaterials(pb.SupplementMaterialsRequest(
                    case_number=number, idempotency_key=_key(),
                    materials=[pb.SubmittedMaterial(code=code, provided=True)]),
                    metadata=as_official(official))
            refused[label] = error.value.code()
        after = await stub.GetCase(pb.GetCaseRequest(case_number=waiting.case.case_number))
    assert refused == {
        "not in the notice": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown material": grpc.StatusCode.INVALID_ARGUMENT,
        "case accepted": grpc.StatusCode.FAILED_PRECONDITION,
        "unknown case": grpc.StatusCode.NOT_FOUND,
        "other department": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert _counts(intake) == before
    assert after.case.status == pb.CASE_STATUS_AWAITING_MATERIALS


async def test_the_applicant_is_shown_to_the_cases_department_only(
        intake: ServiceUnderTest) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request())).case.case_number
    request = pb.GetCaseRequest(case_number=number)
    readers = {
        "the clerk, at the window": (WINDOW, CLERK),
        "its reviewer, through its department's system": (SCJGJ_SYSTEM, REVIEWER),
        "its leader, through its department's system": (SCJGJ_SYSTEM, LEADER),
        "a clerk of another department": (WINDOW, OTHER_CLERK),
        "a reviewer of another department": ("department-system-zjj", "ZJJ-003"),
        "an operator of the center": ("operator", "ZWFWZX-004"),
        "a supervisor": ("supervision-system", "JJZ-001"),
        "no official": (WINDOW, ""),
    }
    read: dict[str, pb.Case] = {}
    for label, (system, official) in readers.items():
        async with intake.channel(system) as channel:
            read[label] = (await intake_pb2_grpc.IntakeServiceStub(channel).GetCase(
                request, metadata=as_official(official) if official else ())).case
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as impersonated:
            await stub.GetCase(request, metadata=as_official(REVIEWER))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetCase(pb.GetCaseRequest(case_number="AP-20000101-000001"))
    shown = {label for label, case in read.items() if not case.applicant_masked}
    assert shown == {"the clerk, at the window", "its reviewer, through its department's system",
                     "its leader, through its department's system"}
    masked = pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name="张*")
    for label, case in read.items():
        assert case.applicant == (APPLICANT if label in shown else masked), label
    # The window system may not speak for the department's reviewer at all.
    assert impersonated.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "system hall-window-system may not speak for official SCJGJ-003" in (
        impersonated.value.details() or "")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


#: A front desk of the department's own that speaks for its clerks and its reviewers: the
#: withdrawal's own rule (a window clerk of the case's department) is what refuses a
#: reviewer through it, not the registry.
FRONT_DESK = "scjgj-front-desk"


def _front_desk(intake: ServiceUnderTest) -> str:
    return register_system(
        intake, FRONT_DESK, rpcs=["govhall.intake.v1.IntakeService/WithdrawApplication"],
        speaks_for=[("SCJGJ", "window_clerk"), ("SCJGJ", "reviewer")])


async def test_withdrawing_a_case_awaiting_materials_closes_it(intake: ServiceUnderTest) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        number = (await _submit(stub, _request(materials=_materials("M01")))).case.case_number
        request = pb.WithdrawApplicationRequest(case_number=number, reason="申请人撤回")
        async with intake.channel(_front_desk(intake)) as desk:
            with pytest.raises(grpc.aio.AioRpcError) as by_reviewer:
                await intake_pb2_grpc.IntakeServiceStub(desk).WithdrawApplication(
                    request, metadata=as_official(REVIEWER))
        withdrawn = await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.WithdrawApplication(request, metadata=as_official(CLERK))
        read = await stub.GetCase(pb.GetCaseRequest(case_number=number))
    assert by_reviewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert by_reviewer.value.details() == (
        f"official {REVIEWER} does not hold the role window_clerk")
    assert withdrawn.case.status == pb.CASE_STATUS_WITHDRAWN
    assert withdrawn.case.withdrawal_reason == "申请人撤回"
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert read.timeline[-1].kind == "application.withdrawn"
    assert read.case.HasField("closed_at")


async def test_personal_data_stays_out_of_logs_and_the_audit_log(
        intake: ServiceUnderTest, capfd: pytest.CaptureFixture[str]) -> None:
    async with intake.channel(WINDOW) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        await _submit(stub, _request(materials=_materials("M01")))
        accepted = await _submit(stub, _request())
        with pytest.raises(grpc.aio.AioRpcError) as unknown_item:
            await _submit(stub, _request(item_code="019999999999999"))
        with pytest.raises(grpc.aio.AioRpcError) as long_name:
            await _submit(stub, _request(applicant=pb.Applicant(
                kind=pb.APPLICANT_KIND_PERSON, name="张三丰" * 50,
                id_number="110101199003077777", phone="13800000000")))
        await stub.GetCase(pb.GetCaseRequest(case_number=accepted.case.case_number),
                           metadata=as_official(CLERK))
    logged = "".join(capfd.readouterr())
    # Each refused where it should be, so its log line is the one checked below.
    assert unknown_item.value.code() == grpc.StatusCode.NOT_FOUND
    assert long_name.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(long_name.value) == ["applicant.name"]
    # The workflow start was postponed (Temporal is unreachable) and said so, by case number.
    assert accepted.case.case_number in logged
    for personal in (APPLICANT.name, APPLICANT.id_number, APPLICANT.phone):
        assert personal not in logged
    engine = create_engine(intake.settings.resolved_database_url())
    with engine.connect() as connection:
        audit = " ".join(str(v) for row in connection.execute(select(tables.audit_log))
                         for v in row)
        stored = " ".join(connection.execute(select(tables.cases.c.applicant)).scalars())
    engine.dispose()
    for personal in (APPLICANT.name, APPLICANT.id_number, APPLICANT.phone):
        assert personal not in audit
        assert personal not in stored
