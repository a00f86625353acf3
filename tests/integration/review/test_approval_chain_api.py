"""The approval chain end to end: review RPCs → Temporal updates → the real ApprovalWorkflow.

A real Temporal dev server runs the real workflows.approval.ApprovalWorkflow;
the review service runs as its process does, gRPC server and activity worker
on govhall-review, over a real database. Only the intake side is a stand-in
(its activities, by name, on govhall-intake). Each test runs its own cases.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.calendar import WorkingCalendar
from kernel.chinatime import china_date
from services.review.api.approval_chain import RUNNING_APPROVALS
from services.review.db import tables
from services.review.domain.deadlines import end_of_day
from services.review.main import DEFINITION
from tests.integration.review.conftest import Chain
from tests.support import as_official, fresh_database_url, service_under_test

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

T = TypeVar("T")

CLERK = "SCJGJ-001"
REVIEWER = "SCJGJ-003"
OTHER_REVIEWER = "SCJGJ-004"
DEPUTY = "SCJGJ-005"
LEADER = "SCJGJ-006"
FOREIGN_REVIEWER = "ZJJ-003"
SEALER = "ZWFWZX-001"
OPERATOR = "ZWFWZX-004"
#: The case's department's own system; another department's; the center's seal system.
SYSTEM = "department-system-scjgj"
FOREIGN_SYSTEM = "department-system-zjj"
SEAL_SYSTEM = "center-seal-system"

REVIEW, SIGN, SEAL = pb.APPROVAL_STAGE_REVIEW, pb.APPROVAL_STAGE_SIGN, pb.APPROVAL_STAGE_SEAL
APPROVE, REFUSE = pb.DECISION_OUTCOME_APPROVE, pb.DECISION_OUTCOME_REFUSE
SEAL_IT = pb.DECISION_OUTCOME_SEAL


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool],
                     *, seconds: float = 20) -> T:
    """Probe until the answer satisfies ``until``, or fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        answer = await probe()
        if until(answer):
            return answer
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {answer!r} after {seconds} s")
        await asyncio.sleep(0.05)


async def open_task_of(chain: Chain, case_number: str, stage: str) -> None:
    """Wait until the workflow has put the case's stage in the inbox."""
    def probe() -> bool:
        with chain.engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(tables.tasks).where(
                    tables.tasks.c.case_number == case_number, tables.tasks.c.stage == stage,
                    tables.tasks.c.closed_at.is_(None))).scalar_one() == 1

    await eventually(lambda: asyncio.to_thread(probe), bool)


def decide(stub: ReviewServiceAsyncStub, official: str, case_number: str, stage: int,
           outcome: int, *, request_id: str = "") -> Any:
    return stub.DecideCase(pb.DecideCaseRequest(
        case_number=case_number, stage=stage, outcome=outcome,  # type: ignore[arg-type]
        opinion="材料齐全，符合法定条件", legal_basis="《中华人民共和国行政许可法》第三十八条",
        request_id=request_id or str(uuid.uuid4())), metadata=as_official(official))


async def refusal(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), refused.value.details() or ""


def decisions_of(chain: Chain, case_number: str) -> list[dict[str, Any]]:
    with chain.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            select(tables.decisions).where(tables.decisions.c.case_number == case_number)
            .order_by(tables.decisions.c.id))]


def audit_entries(chain: Chain) -> int:
    with chain.engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(tables.audit_log)).scalar_one())


async def test_review_sign_and_seal_complete_the_case(chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = handle.id.removeprefix("approval/")
    async with chain.review.channel(SYSTEM) as channel, \
            chain.review.channel(SEAL_SYSTEM) as seal_channel, \
            chain.review.channel("operator") as console:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        await open_task_of(chain, case_number, "review")
        reviewed = (await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)).receipt
        await open_task_of(chain, case_number, "sign")
        await stub.ClaimTask(pb.ClaimTaskRequest(case_number=case_number, stage=SIGN),
                             metadata=as_official(LEADER))
        signed = (await decide(stub, LEADER, case_number, SIGN, APPROVE)).receipt
        await open_task_of(chain, case_number, "seal")
        sealed = (await decide(review_pb2_grpc.ReviewServiceStub(seal_channel), SEALER,
                               case_number, SEAL, SEAL_IT)).receipt
        result = await handle.result()
        progress = await stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                              metadata=as_official(REVIEWER))
        audit = (await review_pb2_grpc.ReviewServiceStub(console).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    assert (reviewed.stage, reviewed.outcome, reviewed.next_stage) == (REVIEW, APPROVE, SIGN)
    assert (signed.next_stage, sealed.next_stage) == (SEAL, pb.APPROVAL_STAGE_COMPLETED)
    assert sealed.certificate_number.startswith("SY-2026-")
    assert reviewed.certificate_number == signed.certificate_number == ""
    assert result.outcome == "approved"
    assert result.certificate_number == sealed.certificate_number
    seal = chain.intake.seals[case_number]
    assert (seal.decision, seal.reviewer_id, seal.signer_id, seal.sealed_by) == (
        "approved", REVIEWER, LEADER, SEALER)
    assert [(d["stage"], d["outcome"], d["official_id"], d["system"])
            for d in decisions_of(chain, case_number)] == [
        ("review", "approve", REVIEWER, SYSTEM), ("sign", "approve", LEADER, SYSTEM),
        ("seal", "seal", SEALER, SEAL_SYSTEM)]
    with chain.engine.connect() as connection:
        tasks = {r.stage: r for r in connection.execute(
            select(tables.tasks).where(tables.tasks.c.case_number == case_number))}
    assert {stage: (t.closed_by, t.claimed_by, t.outcome) for stage, t in tasks.items()} == {
        "review": (REVIEWER, REVIEWER, "approve"), "sign": (LEADER, LEADER, "approve"),
        "seal": (SEALER, SEALER, "seal")}
    assert (progress.stage, progress.outcome, progress.certificate_number) == (
        pb.APPROVAL_STAGE_COMPLETED, "approved", sealed.certificate_number)
    assert [(d.step, d.official_id) for d in progress.decisions] == [
        ("review", REVIEWER), ("sign", LEADER), ("seal", SEALER)]
    assert progress.deadlines.HasField("promised_due_at")
    assert audit.intact


async def test_refused_decisions_get_their_status_and_record_nothing(chain: Chain) -> None:
    # The reviewer took the application in at the window: they may not review it too.
    handle = await chain.start_case(clerk_id=REVIEWER)
    case_number = handle.id.removeprefix("approval/")
    await open_task_of(chain, case_number, "review")
    entries_before = audit_entries(chain)
    async with chain.review.channel(SYSTEM) as channel, \
            chain.review.channel(FOREIGN_SYSTEM) as foreign_channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        foreign = review_pb2_grpc.ReviewServiceStub(foreign_channel)
        refused = {
            "wrong department": await refusal(
                decide(foreign, FOREIGN_REVIEWER, case_number, REVIEW, APPROVE)),
            "another department's official through this one's system": await refusal(
                decide(stub, FOREIGN_REVIEWER, case_number, REVIEW, APPROVE)),
            "wrong role": await refusal(decide(stub, LEADER, case_number, REVIEW, APPROVE)),
            "wrong stage": await refusal(decide(stub, LEADER, case_number, SIGN, APPROVE)),
            "same official twice": await refusal(
                decide(stub, REVIEWER, case_number, REVIEW, APPROVE)),
            "seal at review": await refusal(
                decide(stub, OTHER_REVIEWER, case_number, REVIEW, SEAL_IT)),
            "unknown case": await refusal(
                decide(stub, OTHER_REVIEWER, "AP-20260101-999999", REVIEW, APPROVE)),
            "unknown official": await refusal(
                decide(stub, "ABC-999", case_number, REVIEW, APPROVE)),
            "no request id": await refusal(stub.DecideCase(pb.DecideCaseRequest(
                case_number=case_number, stage=REVIEW, outcome=APPROVE),
                metadata=as_official(OTHER_REVIEWER))),
            "opinion too long": await refusal(stub.DecideCase(pb.DecideCaseRequest(
                case_number=case_number, stage=REVIEW, outcome=APPROVE, opinion="意" * 2001,
                request_id=str(uuid.uuid4())), metadata=as_official(OTHER_REVIEWER))),
        }
        await stub.ClaimTask(pb.ClaimTaskRequest(case_number=case_number, stage=REVIEW),
                             metadata=as_official(OTHER_REVIEWER))
        refused["claimed by another"] = await refusal(
            decide(stub, "SCJGJ-005", case_number, REVIEW, APPROVE))
        entries_after_refusals = audit_entries(chain)
        progress = await stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                              metadata=as_official(REVIEWER))
        accepted = (await decide(stub, OTHER_REVIEWER, case_number, REVIEW, APPROVE)).receipt
    assert {label: code for label, (code, _) in refused.items()} == {
        "wrong department": grpc.StatusCode.PERMISSION_DENIED,
        "another department's official through this one's system":
            grpc.StatusCode.PERMISSION_DENIED,
        "wrong role": grpc.StatusCode.PERMISSION_DENIED,
        "wrong stage": grpc.StatusCode.FAILED_PRECONDITION,
        "same official twice": grpc.StatusCode.PERMISSION_DENIED,
        "seal at review": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown case": grpc.StatusCode.NOT_FOUND,
        "unknown official": grpc.StatusCode.PERMISSION_DENIED,
        "no request id": grpc.StatusCode.INVALID_ARGUMENT,
        "opinion too long": grpc.StatusCode.INVALID_ARGUMENT,
        "claimed by another": grpc.StatusCode.FAILED_PRECONDITION,
    }
    assert "decided by SCJGJ, not by ZJJ" in refused["wrong department"][1]
    assert f"system {SYSTEM} may not speak for official {FOREIGN_REVIEWER}" in refused[
        "another department's official through this one's system"][1]
    assert "one person acts once" in refused["same official twice"][1]
    assert "AP-20260101-999999 is unknown" in refused["unknown case"][1]
    assert "claimed by SCJGJ-004" in refused["claimed by another"][1]
    # Only the claim was recorded; the refused decisions left nothing behind.
    assert entries_after_refusals == entries_before + 1
    assert progress.stage == REVIEW and len(progress.decisions) == 0
    assert accepted.next_stage == SIGN
    assert [d["official_id"] for d in decisions_of(chain, case_number)] == [OTHER_REVIEWER]


async def test_a_replayed_decision_returns_the_same_receipt_and_records_once(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = handle.id.removeprefix("approval/")
    review_request, seal_request = str(uuid.uuid4()), str(uuid.uuid4())
    async with chain.review.channel(SYSTEM) as channel, \
            chain.review.channel(SEAL_SYSTEM) as seal_channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        seal_stub = review_pb2_grpc.ReviewServiceStub(seal_channel)
        await open_task_of(chain, case_number, "review")
        first = await decide(stub, REVIEWER, case_number, REVIEW, REFUSE,
                             request_id=review_request)
        replayed = await decide(stub, REVIEWER, case_number, REVIEW, REFUSE,
                                request_id=review_request)
        second_decision = await refusal(decide(stub, OTHER_REVIEWER, case_number, REVIEW,
                                               APPROVE))
        await open_task_of(chain, case_number, "seal")
        sealed = await decide(seal_stub, SEALER, case_number, SEAL, SEAL_IT,
                              request_id=seal_request)
        await handle.result()
        sealed_again = await decide(seal_stub, SEALER, case_number, SEAL, SEAL_IT,
                                    request_id=seal_request)
        reviewed_again = await decide(stub, REVIEWER, case_number, REVIEW, REFUSE,
                                      request_id=review_request)
        finished = await refusal(decide(seal_stub, "ZWFWZX-002", case_number, SEAL, SEAL_IT))
    assert replayed == first == reviewed_again
    assert first.receipt.next_stage == SEAL  # a refusal at review goes straight to the seal
    assert sealed_again == sealed
    assert sealed.receipt.certificate_number
    assert second_decision[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert finished == (grpc.StatusCode.FAILED_PRECONDITION, f"case {case_number} is finished")
    assert [d["stage"] for d in decisions_of(chain, case_number)] == ["review", "seal"]
    assert chain.intake.seals[case_number].decision == "refused"


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_a_deputy_signs_for_the_leader_and_the_delegation_is_recorded(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = handle.id.removeprefix("approval/")
    async with chain.review.channel(SYSTEM) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(pb.GrantDelegationRequest(
            deputy_id=DEPUTY, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=1)))),
            metadata=as_official(LEADER))).delegation
        await open_task_of(chain, case_number, "review")
        await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)
        await open_task_of(chain, case_number, "sign")
        inbox = await stub.ListInbox(pb.ListInboxRequest(stage=SIGN),
                                     metadata=as_official(DEPUTY))
        signed = (await decide(stub, DEPUTY, case_number, SIGN, APPROVE)).receipt
        progress = await stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                              metadata=as_official(DEPUTY))
    assert case_number in [t.case_number for t in inbox.tasks]
    assert signed.next_stage == SEAL
    sign = decisions_of(chain, case_number)[-1]
    assert (sign["stage"], sign["official_id"], sign["on_behalf_of"], sign["delegation_id"]) == (
        "sign", DEPUTY, LEADER, str(granted.id))
    recorded = progress.decisions[-1]
    assert (recorded.official_id, recorded.on_behalf_of, recorded.delegation_id) == (
        DEPUTY, LEADER, str(granted.id))
    with chain.engine.connect() as connection:
        audit = connection.execute(select(tables.audit_log).where(
            tables.audit_log.c.action == "decision.recorded")
            .order_by(tables.audit_log.c.sequence.desc()).limit(1)).one()
    assert json.loads(audit.details)["on_behalf_of"] == LEADER


def _working_days_between(earlier: Timestamp, later: Timestamp) -> int:
    def day(stamp: Timestamp) -> date:
        return china_date(stamp.ToDatetime(tzinfo=UTC))
    return WorkingCalendar().working_days_between(day(earlier), day(later))


async def test_special_procedures_pause_the_clock_and_a_leader_extends_it_once(
        chain: Chain) -> None:
    handle = await chain.start_case(accepted_on="2026-09-29", promised=5, legal=20,
                                    procedures=["expert_review"])
    case_number = handle.id.removeprefix("approval/")
    start = pb.StartSpecialProcedureRequest(
        case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
        note="组织专家评审", request_id=str(uuid.uuid4()))
    extension_id = str(uuid.uuid4())
    extend = pb.ExtendTimeLimitRequest(case_number=case_number, days=5, reason="需现场核查",
                                       request_id=extension_id)
    async with chain.review.channel(SYSTEM) as channel, \
            chain.review.channel(FOREIGN_SYSTEM) as foreign_channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        foreign = review_pb2_grpc.ReviewServiceStub(foreign_channel)
        await open_task_of(chain, case_number, "review")
        paused = (await stub.StartSpecialProcedure(start, metadata=as_official(REVIEWER))).change
        paused_again = (await stub.StartSpecialProcedure(
            start, metadata=as_official(REVIEWER))).change
        while_paused = await stub.GetCaseProgress(
            pb.GetCaseProgressRequest(case_number=case_number), metadata=as_official(REVIEWER))
        refused = {
            "decision while paused": await refusal(
                decide(stub, REVIEWER, case_number, REVIEW, APPROVE)),
            "procedure not allowed": await refusal(stub.StartSpecialProcedure(
                pb.StartSpecialProcedureRequest(
                    case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_HEARING,
                    request_id=str(uuid.uuid4())), metadata=as_official(REVIEWER))),
            "by another department": await refusal(foreign.EndSpecialProcedure(
                pb.EndSpecialProcedureRequest(
                    case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
                    request_id=str(uuid.uuid4())), metadata=as_official(FOREIGN_REVIEWER))),
        }
        resumed = (await stub.EndSpecialProcedure(pb.EndSpecialProcedureRequest(
            case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
            request_id=str(uuid.uuid4())), metadata=as_official(REVIEWER))).change
        refused["extension by a reviewer"] = await refusal(
            stub.ExtendTimeLimit(extend, metadata=as_official(REVIEWER)))
        refused["extension of eleven days"] = await refusal(stub.ExtendTimeLimit(
            pb.ExtendTimeLimitRequest(case_number=case_number, days=11, reason="久",
                                      request_id=str(uuid.uuid4())),
            metadata=as_official(LEADER)))
        refused["extension without reason"] = await refusal(stub.ExtendTimeLimit(
            pb.ExtendTimeLimitRequest(case_number=case_number, days=3, reason="  ",
                                      request_id=str(uuid.uuid4())),
            metadata=as_official(LEADER)))
        extended = (await stub.ExtendTimeLimit(extend, metadata=as_official(LEADER))).change
        extended_again = (await stub.ExtendTimeLimit(extend, metadata=as_official(LEADER))).change
        refused["a second extension"] = await refusal(stub.ExtendTimeLimit(
            pb.ExtendTimeLimitRequest(case_number=case_number, days=2, reason="再延",
                                      request_id=str(uuid.uuid4())),
            metadata=as_official(LEADER)))
        progress = await stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                              metadata=as_official(LEADER))
    assert paused.sla_state == pb.SLA_STATE_PAUSED
    assert paused_again == paused
    assert (while_paused.sla_state, while_paused.paused_for) == (
        pb.SLA_STATE_PAUSED, pb.SPECIAL_PROCEDURE_EXPERT_REVIEW)
    assert {label: code for label, (code, _) in refused.items()} == {
        "decision while paused": grpc.StatusCode.FAILED_PRECONDITION,
        "procedure not allowed": grpc.StatusCode.FAILED_PRECONDITION,
        "by another department": grpc.StatusCode.PERMISSION_DENIED,
        "extension by a reviewer": grpc.StatusCode.PERMISSION_DENIED,
        "extension of eleven days": grpc.StatusCode.INVALID_ARGUMENT,
        "extension without reason": grpc.StatusCode.INVALID_ARGUMENT,
        "a second extension": grpc.StatusCode.FAILED_PRECONDITION,
    }
    assert resumed.sla_state != pb.SLA_STATE_PAUSED
    assert extended_again == extended
    assert _working_days_between(resumed.deadlines.legal_due_at,
                                 extended.deadlines.legal_due_at) == 5
    assert extended.deadlines.promised_due_at == resumed.deadlines.promised_due_at
    assert (progress.extension_days, progress.paused_for) == (5, pb.SPECIAL_PROCEDURE_UNSPECIFIED)
    assert [(d["stage"], d["outcome"], d["official_id"], d["opinion"])
            for d in decisions_of(chain, case_number)] == [
        ("extension", "extend_5", LEADER, "需现场核查")]
    with chain.engine.connect() as connection:
        actions = [r.action for r in connection.execute(
            select(tables.audit_log).where(
                tables.audit_log.c.subject == f"case/{case_number}")
            .order_by(tables.audit_log.c.sequence))]
    assert actions.count("case.start_special_procedure") == 1
    assert actions.count("case.end_special_procedure") == 1


async def test_loading_a_holiday_schedule_recomputes_running_cases(chain: Chain) -> None:
    # Ten working days from 21 December 2026 run into 2027, which nobody has loaded yet.
    handle = await chain.start_case(accepted_on="2026-12-21", promised=10, legal=20)
    case_number = handle.id.removeprefix("approval/")
    client = chain.client
    async with chain.review.channel("operator") as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        await open_task_of(chain, case_number, "review")
        before = await stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                            metadata=as_official(OPERATOR))

        async def listed() -> list[str]:
            return [w.id async for w in client.list_workflows(
                f"{RUNNING_APPROVALS} AND WorkflowId = '{handle.id}'")]

        await eventually(listed, bool)
        loaded = await stub.LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR))
        after = await eventually(
            lambda: stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                         metadata=as_official(OPERATOR)),
            lambda progress: progress.calendar_gap_year == 0)
    assert before.calendar_gap_year == 2027
    assert before.deadlines.unknown_year == 2027
    # Provisional: Friday 1 January taken as a working day.
    assert before.deadlines.promised_due_at.ToDatetime(tzinfo=UTC) == end_of_day(
        date(2027, 1, 4))
    assert loaded.cases_recomputing >= 1
    assert after.deadlines.promised_due_at.ToDatetime(tzinfo=UTC) == end_of_day(
        date(2027, 1, 5))
    assert after.deadlines.unknown_year == 0


async def test_progress_is_read_by_the_cases_department_supervision_and_operators_only(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = handle.id.removeprefix("approval/")
    await open_task_of(chain, case_number, "review")
    request = pb.GetCaseProgressRequest(case_number=case_number)
    readers = {
        "its reviewer": (SYSTEM, REVIEWER),
        "its leader": (SYSTEM, LEADER),
        "a supervisor": ("supervision-system", "JJZ-001"),
        "an operator": ("operator", OPERATOR),
        "a reviewer of another department": (FOREIGN_SYSTEM, FOREIGN_REVIEWER),
        "a trading officer of the center": ("operator", "ZWFWZX-007"),
        "a seal custodian": (SEAL_SYSTEM, SEALER),
        "a window clerk of its department": ("hall-window-system", CLERK),
        "nobody": (SYSTEM, ""),
    }
    outcomes: dict[str, grpc.StatusCode] = {}
    details: dict[str, str] = {}
    for label, (system, official) in readers.items():
        async with chain.review.channel(system) as channel:
            try:
                progress = await review_pb2_grpc.ReviewServiceStub(channel).GetCaseProgress(
                    request, metadata=as_official(official) if official else ())
                outcomes[label] = grpc.StatusCode.OK
                assert progress.case_number == case_number
            except grpc.aio.AioRpcError as error:
                outcomes[label], details[label] = error.code(), error.details() or ""
    assert outcomes == {
        "its reviewer": grpc.StatusCode.OK,
        "its leader": grpc.StatusCode.OK,
        "a supervisor": grpc.StatusCode.OK,
        "an operator": grpc.StatusCode.OK,
        "a reviewer of another department": grpc.StatusCode.PERMISSION_DENIED,
        "a trading officer of the center": grpc.StatusCode.PERMISSION_DENIED,
        "a seal custodian": grpc.StatusCode.PERMISSION_DENIED,
        "a window clerk of its department": grpc.StatusCode.PERMISSION_DENIED,
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
    }
    assert "it is read by officials of SCJGJ" in details["a reviewer of another department"]
    assert "may not call govhall.review.v1.ReviewService/GetCaseProgress" in details[
        "a seal custodian"]


async def test_progress_of_an_unknown_case_is_not_found(chain: Chain) -> None:
    async with chain.review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        code, details = await refusal(stub.GetCaseProgress(
            pb.GetCaseProgressRequest(case_number="AP-20260101-999999"),
            metadata=as_official(OPERATOR)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "AP-20260101-999999 is unknown" in details


async def test_without_temporal_the_calls_are_unavailable_and_may_be_repeated(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    url = fresh_database_url(backend, "review", tmp_path)
    async with (
        service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                           temporal_address="127.0.0.1:9") as review,
        review.channel() as channel,
        review.channel(SYSTEM) as department,
    ):
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        load = await refusal(stub.LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR)))
        decision = await refusal(decide(review_pb2_grpc.ReviewServiceStub(department), REVIEWER,
                                        "AP-20260101-000001", REVIEW, APPROVE))
        listed = await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())
    assert load[0] == decision[0] == grpc.StatusCode.UNAVAILABLE
    # The schedule was stored before the cases were to be told; loading it again tells them.
    assert 2027 in [s.year for s in listed.schedules]

