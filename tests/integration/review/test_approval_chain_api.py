"""The approval chain through review's RPCs: DecideCase → signed statement → the real workflow.

The real ApprovalWorkflowV2 runs on the time-skipping test server (the
holiday-schedule test on the dev server, which lists running workflows);
the review service runs as its process does, gRPC server and activity
worker on its own task queue, over a real database. Intake is a stand-in
that signs acceptances and seals only a chain review signed (conftest).
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
from kernel.calendar import BUILT_IN_YEARS, WorkingCalendar
from kernel.chinatime import china_date
from services.review.app import handlers
from services.review.app.decisions import RUNNING_APPROVALS
from services.review.db import tables
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.deadlines import end_of_day
from services.review.main import DEFINITION
from tests.integration.review.conftest import Chain
from tests.support import (
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    routed_stub,
    sample_caller,
    service_under_test,
)

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

T = TypeVar("T")

CLERK = "SCJGJ-001"
REVIEWER = "SCJGJ-003"
OTHER_REVIEWER = "SCJGJ-004"
THIRD_REVIEWER = "SCJGJ-005"
LEADER = "SCJGJ-006"
OTHER_LEADER = "SCJGJ-007"
FOREIGN_REVIEWER = "ZJJ-003"
SEALER = "ZWFWZX-001"
OPERATOR = "ZWFWZX-004"
SUPERVISOR = "JJZ-001"
#: The case's department's own system, and the center's seal system (the seal goes through it).
SYSTEM = "department-system-scjgj"
SEAL_SYSTEM = "center-seal-system"
FOREIGN_SYSTEM = "department-system-zjj"

REVIEW, SIGN, SEAL = pb.APPROVAL_STAGE_REVIEW, pb.APPROVAL_STAGE_SIGN, pb.APPROVAL_STAGE_SEAL
APPROVE, REFUSE = pb.DECISION_OUTCOME_APPROVE, pb.DECISION_OUTCOME_REFUSE
SEAL_IT = pb.DECISION_OUTCOME_SEAL


def routed(service: ServiceUnderTest) -> Any:
    """Review's stub whose calls go through the system each official acts through: the
    department's for its reviewers and leaders, the center's seal system for the seal,
    supervision's and the operators' consoles for theirs."""
    return routed_stub(service, review_pb2_grpc.ReviewServiceStub,
                       pb.DESCRIPTOR.services_by_name["ReviewService"].full_name,
                       default_system=SYSTEM)


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


def case_of(handle: Any) -> str:
    return str(handle.id).removeprefix("approval/")


def open_tasks(chain: Chain, case_number: str) -> list[str]:
    with chain.engine.connect() as connection:
        return [r.stage for r in connection.execute(
            select(tables.tasks).where(tables.tasks.c.case_number == case_number,
                                       tables.tasks.c.closed_at.is_(None)))]


async def open_task_of(chain: Chain, case_number: str, stage: str) -> None:
    """Wait until the workflow has put the case's stage, and only it, in the inbox."""
    await eventually(lambda: asyncio.to_thread(open_tasks, chain, case_number),
                     lambda stages: stages == [stage])


def decide(stub: ReviewServiceAsyncStub, official: str, case_number: str, stage: int,
           outcome: int, *, request_id: str = "", opinion: str = "材料齐全，符合法定条件",
           ) -> Any:
    return stub.DecideCase(pb.DecideCaseRequest(
        case_number=case_number, stage=stage, outcome=outcome,  # type: ignore[arg-type]
        opinion=opinion, legal_basis="《中华人民共和国行政许可法》第三十八条",
        request_id=request_id or str(uuid.uuid4())), metadata=as_official(official))


def progress_of(stub: ReviewServiceAsyncStub, case_number: str,
                official: str = OPERATOR) -> Any:
    return stub.GetCaseProgress(pb.GetCaseProgressRequest(case_number=case_number),
                                metadata=as_official(official))


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


def handled_requests(chain: Chain) -> list[str]:
    with chain.engine.connect() as connection:
        return [r.request_id for r in connection.execute(select(tables.handled_requests))]


def timeline_kinds(progress: Any) -> list[str]:
    return [e.kind for e in progress.timeline]


async def completed(chain: Chain, case_number: str) -> Any:
    """The case's progress once review recorded its end."""
    async with routed(chain.review) as stub:
        return await eventually(lambda: progress_of(stub, case_number),
                                lambda p: p.stage == pb.APPROVAL_STAGE_COMPLETED)


async def test_review_sign_and_seal_complete_the_case(chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = case_of(handle)
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        reviewed = (await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)).receipt
        await open_task_of(chain, case_number, "sign")
        await stub.ClaimTask(pb.ClaimTaskRequest(case_number=case_number, stage=SIGN),
                             metadata=as_official(LEADER))
        signed = (await decide(stub, LEADER, case_number, SIGN, APPROVE)).receipt
        await open_task_of(chain, case_number, "seal")
        sealed = (await decide(stub, SEALER, case_number, SEAL, SEAL_IT)).receipt
        result = await handle.result()
        progress = await completed(chain, case_number)
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert (reviewed.stage, reviewed.outcome, reviewed.next_stage) == (REVIEW, APPROVE, SIGN)
    assert (signed.next_stage, sealed.next_stage) == (SEAL, pb.APPROVAL_STAGE_COMPLETED)
    assert sealed.certificate_number == chain.intake.receipts[case_number].certificate_number
    assert reviewed.certificate_number == signed.certificate_number == ""
    assert (result.outcome, result.certificate_number) == ("approved", sealed.certificate_number)
    # Intake sealed from the statements review signed, each naming its official.
    seal = chain.intake.seals[case_number]
    assert [(d.stage, d.official_id, d.statement.signer) for d in seal.decisions] == [
        ("review", REVIEWER, "review"), ("sign", LEADER, "review"), ("seal", SEALER, "review")]
    assert [(d["stage"], d["outcome"], d["official_id"], d["system"])
            for d in decisions_of(chain, case_number)] == [
        ("review", "approve", REVIEWER, SYSTEM), ("sign", "approve", LEADER, SYSTEM),
        ("seal", "seal", SEALER, SEAL_SYSTEM)]
    assert json.loads(decisions_of(chain, case_number)[0]["statement"])["signer"] == "review"
    with chain.engine.connect() as connection:
        tasks = {r.stage: r for r in connection.execute(
            select(tables.tasks).where(tables.tasks.c.case_number == case_number))}
    assert {stage: (t.closed_by, t.claimed_by, t.outcome) for stage, t in tasks.items()} == {
        "review": (REVIEWER, REVIEWER, "approve"), "sign": (LEADER, LEADER, "approve"),
        "seal": (SEALER, SEALER, "seal")}
    assert (progress.outcome, progress.certificate_number) == (
        "approved", sealed.certificate_number)
    assert [(d.step, d.official_id) for d in progress.decisions] == [
        ("review", REVIEWER), ("sign", LEADER), ("seal", SEALER)]
    assert timeline_kinds(progress) == [
        "chain.started", "deadlines.computed", "review.decided", "sign.decided",
        "seal.decided"]
    assert progress.timeline[-1].details["certificate_number"] == sealed.certificate_number
    assert progress.deadlines.HasField("promised_due_at")
    assert audit.intact


async def test_refused_decisions_get_their_status_and_record_nothing(chain: Chain) -> None:
    # The reviewer took the application in at the window: they may not review it too.
    handle = await chain.start_case(clerk_id=REVIEWER)
    case_number = case_of(handle)
    await open_task_of(chain, case_number, "review")
    entries_before = audit_entries(chain)
    async with routed(chain.review) as stub:
        refused = {
            "wrong department": await refusal(
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
            decide(stub, THIRD_REVIEWER, case_number, REVIEW, APPROVE))
        entries_after_refusals = audit_entries(chain)
        requests_after_refusals = handled_requests(chain)
        progress = await progress_of(stub, case_number)
        accepted = (await decide(stub, OTHER_REVIEWER, case_number, REVIEW, APPROVE)).receipt
    assert {label: code for label, (code, _) in refused.items()} == {
        "wrong department": grpc.StatusCode.PERMISSION_DENIED,
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
    assert "one person acts once" in refused["same official twice"][1]
    assert "AP-20260101-999999 is unknown" in refused["unknown case"][1]
    assert "claimed by SCJGJ-004" in refused["claimed by another"][1]
    # Only the claim was recorded; the refused decisions left nothing behind, not even
    # their request ids.
    assert entries_after_refusals == entries_before + 1
    assert requests_after_refusals == []
    assert progress.stage == REVIEW and len(progress.decisions) == 0
    assert timeline_kinds(progress) == ["chain.started", "deadlines.computed"]
    assert accepted.next_stage == SIGN
    await open_task_of(chain, case_number, "sign")
    assert [d["official_id"] for d in decisions_of(chain, case_number)] == [OTHER_REVIEWER]


async def test_a_request_id_is_answered_once_and_never_for_another_request(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = case_of(handle)
    reviewed_id, freed_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        first = await decide(stub, REVIEWER, case_number, REVIEW, APPROVE,
                             request_id=reviewed_id)
        again = await decide(stub, REVIEWER, case_number, REVIEW, APPROVE,
                             request_id=reviewed_id)
        await open_task_of(chain, case_number, "sign")
        entries = audit_entries(chain)
        reused = {
            "another outcome": await refusal(decide(
                stub, REVIEWER, case_number, REVIEW, REFUSE, request_id=reviewed_id)),
            "another opinion": await refusal(decide(
                stub, REVIEWER, case_number, REVIEW, APPROVE, request_id=reviewed_id,
                opinion="另一意见")),
            "another official": await refusal(decide(
                stub, OTHER_REVIEWER, case_number, REVIEW, APPROVE, request_id=reviewed_id)),
            "another stage": await refusal(decide(
                stub, LEADER, case_number, SIGN, APPROVE, request_id=reviewed_id)),
        }
        entries_after_reuse = audit_entries(chain)
        stage_after_reuse = (await progress_of(stub, case_number)).stage
        # A refused request leaves its id free for the request that is right.
        wrong = await refusal(decide(stub, LEADER, case_number, REVIEW, APPROVE,
                                     request_id=freed_id))
        signed = await decide(stub, LEADER, case_number, SIGN, APPROVE, request_id=freed_id)
        after_sign = await decide(stub, REVIEWER, case_number, REVIEW, APPROVE,
                                  request_id=reviewed_id)
        await open_task_of(chain, case_number, "seal")
        await decide(stub, SEALER, case_number, SEAL, SEAL_IT)
        await completed(chain, case_number)
        after_the_end = await decide(stub, REVIEWER, case_number, REVIEW, APPROVE,
                                     request_id=reviewed_id)
        signed_after_the_end = await decide(stub, LEADER, case_number, SIGN, APPROVE,
                                            request_id=freed_id)
        late = await refusal(decide(stub, "ZWFWZX-002", case_number, SEAL, SEAL_IT))
    assert first.receipt.next_stage == SIGN
    assert again == after_sign == after_the_end == first
    assert signed_after_the_end == signed
    assert {label: code for label, (code, _) in reused.items()} == {
        label: grpc.StatusCode.ALREADY_EXISTS for label in reused}
    assert "was used for another request" in reused["another outcome"][1]
    assert entries_after_reuse == entries
    assert stage_after_reuse == SIGN
    assert wrong[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert signed.receipt.next_stage == SEAL
    # A new request on a finished case is refused, and the case says so.
    assert late == (grpc.StatusCode.FAILED_PRECONDITION,
                    f"the seal of case {case_number} was decided already")
    assert [(d["stage"], d["outcome"]) for d in decisions_of(chain, case_number)] == [
        ("review", "approve"), ("sign", "approve"), ("seal", "seal")]


async def test_a_request_refused_inside_the_workflow_leaves_its_id_to_another_request(
        chain: Chain) -> None:
    """The seal is refused by intake inside the workflow's handler, after the update was
    accepted: Temporal keeps that update's failure under its id. The same request id with
    another request must reach the workflow, not be answered with that failure."""
    handle = await chain.start_case()
    case_number = case_of(handle)
    seal_id = str(uuid.uuid4())
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)
        await open_task_of(chain, case_number, "sign")
        await decide(stub, LEADER, case_number, SIGN, APPROVE)
        await open_task_of(chain, case_number, "seal")
        chain.intake.refuse_seal = "the seal key is being rotated: try again shortly"
        refused = await refusal(decide(stub, SEALER, case_number, SEAL, SEAL_IT,
                                       request_id=seal_id, opinion="同意"))
        ids_after_refusal = handled_requests(chain)
        chain.intake.refuse_seal = ""
        sealed = (await decide(stub, SEALER, case_number, SEAL, SEAL_IT, request_id=seal_id,
                               opinion="同意，盖章")).receipt
        result = await handle.result()
        await completed(chain, case_number)
    assert refused == (grpc.StatusCode.FAILED_PRECONDITION,
                       "the seal key is being rotated: try again shortly")
    assert seal_id not in ids_after_refusal
    assert sealed.certificate_number == chain.intake.receipts[case_number].certificate_number
    assert (result.outcome, result.certificate_number) == ("approved", sealed.certificate_number)
    assert [(d["stage"], d["opinion"]) for d in decisions_of(chain, case_number)] == [
        ("review", "材料齐全，符合法定条件"), ("sign", "材料齐全，符合法定条件"),
        ("seal", "同意，盖章")]


@pytest.mark.parametrize(("leader_outcome", "decision"), [(REFUSE, "refused"),
                                                          (APPROVE, "approved")])
async def test_a_reviewers_refusal_goes_to_the_leader_whose_outcome_is_sealed(
        chain: Chain, leader_outcome: int, decision: str) -> None:
    handle = await chain.start_case()
    case_number = case_of(handle)
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        refused = (await decide(stub, REVIEWER, case_number, REVIEW, REFUSE)).receipt
        await open_task_of(chain, case_number, "sign")
        progress = await eventually(lambda: progress_of(stub, case_number),
                                    lambda p: "review.decided" in timeline_kinds(p))
        seal_at_once = await refusal(decide(stub, SEALER, case_number, SEAL, SEAL_IT))
        nothing_sealed = dict(chain.intake.seals)
        signed = (await decide(stub, LEADER, case_number, SIGN, leader_outcome)).receipt
        await open_task_of(chain, case_number, "seal")
        sealed = (await decide(stub, SEALER, case_number, SEAL, SEAL_IT)).receipt
        result = await handle.result()
        final = await completed(chain, case_number)
    assert refused.next_stage == SIGN
    assert (progress.stage, progress.waiting_for) == (SIGN, "a leader of SCJGJ")
    assert seal_at_once[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert nothing_sealed == {}
    assert signed.next_stage == SEAL
    assert sealed.certificate_number
    # The leader's outcome is the decision; intake read it from the signed chain.
    assert chain.intake.receipts[case_number].decision == decision
    assert (result.outcome, final.outcome) == (decision, decision)
    assert [(d["stage"], d["outcome"]) for d in decisions_of(chain, case_number)] == [
        ("review", "refuse"), ("sign", "approve" if leader_outcome == APPROVE else "refuse"),
        ("seal", "seal")]


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_the_departments_other_leader_signs_for_the_leader_under_a_delegation(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = case_of(handle)
    async with routed(chain.review) as stub:
        granted = (await stub.GrantDelegation(pb.GrantDelegationRequest(
            deputy_id=OTHER_LEADER, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=1)))),
            metadata=as_official(LEADER))).delegation
        await open_task_of(chain, case_number, "review")
        await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)
        await open_task_of(chain, case_number, "sign")
        signed = (await decide(stub, OTHER_LEADER, case_number, SIGN, APPROVE)).receipt
        # The leader the deputy signed for has acted on the case through the deputy.
        await open_task_of(chain, case_number, "seal")
        progress = await eventually(lambda: progress_of(stub, case_number),
                                    lambda p: "sign.decided" in timeline_kinds(p))
    assert signed.next_stage == SEAL
    sign = decisions_of(chain, case_number)[-1]
    assert (sign["stage"], sign["official_id"], sign["on_behalf_of"], sign["delegation_id"]) == (
        "sign", OTHER_LEADER, LEADER, str(granted.id))
    statement = json.loads(sign["statement"])
    assert (statement["signer"], statement["body"]["on_behalf_of"]) == ("review", LEADER)
    recorded = progress.decisions[-1]
    assert (recorded.official_id, recorded.on_behalf_of, recorded.delegation_id) == (
        OTHER_LEADER, LEADER, str(granted.id))
    event = progress.timeline[-1]
    assert (event.kind, event.official_id, event.details["on_behalf_of"]) == (
        "sign.decided", OTHER_LEADER, LEADER)
    with chain.engine.connect() as connection:
        audit = connection.execute(select(tables.audit_log).where(
            tables.audit_log.c.action == "decision.recorded")
            .order_by(tables.audit_log.c.sequence.desc()).limit(1)).one()
    assert audit.official_id == OTHER_LEADER
    assert json.loads(audit.details)["on_behalf_of"] == LEADER


async def test_progress_is_read_from_reviews_database_by_whom_it_concerns(
        chain: Chain) -> None:
    handle = await chain.start_case()
    case_number = case_of(handle)
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        await decide(stub, REVIEWER, case_number, REVIEW, APPROVE)
        await eventually(lambda: progress_of(stub, case_number),
                         lambda p: "review.decided" in timeline_kinds(p))
        readers = {who: await progress_of(stub, case_number, who)
                   for who in (OTHER_REVIEWER, SUPERVISOR, OPERATOR)}
        # The window and the seal systems may not ask (the registry of calling systems).
        refused = {who: await refusal(progress_of(stub, case_number, who))
                   for who in (FOREIGN_REVIEWER, SEALER, CLERK)}
        nobody = await refusal(stub.GetCaseProgress(
            pb.GetCaseProgressRequest(case_number=case_number)))
    # A second review process on the same database, its Temporal out of reach.
    async with (
        service_under_test(DEFINITION, database_url=chain.review.settings.database_url,
                           pki_dir=chain.review.pki_dir, temporal_address="127.0.0.1:9"
                           ) as cut_off,
        routed(cut_off) as cut_off_stub,
    ):
        offline = await progress_of(cut_off_stub, case_number, SUPERVISOR)
    progress = readers[OPERATOR]
    assert all(p == progress for p in readers.values())
    assert offline == progress
    assert (progress.case_number, progress.department_code, progress.item_code) == (
        case_number, "SCJGJ", "012101000001000")
    assert (progress.stage, progress.sla_state) == (SIGN, pb.SLA_STATE_ON_TIME)
    assert progress.waiting_for == "a leader of SCJGJ"
    assert [(d.step, d.outcome, d.official_id) for d in progress.decisions] == [
        ("review", "approve", REVIEWER)]
    assert progress.decisions[0].opinion == "材料齐全，符合法定条件"
    assert timeline_kinds(progress) == ["chain.started", "deadlines.computed", "review.decided"]
    started, computed, reviewed = progress.timeline
    assert (started.official_id, started.details["status"]) == (CLERK, "under_review")
    assert computed.details["promised_due_at"] == progress.deadlines.promised_due_at.ToDatetime(
        tzinfo=UTC).isoformat()
    assert (reviewed.stage, reviewed.official_id, reviewed.details["next_stage"]) == (
        REVIEW, REVIEWER, "sign")
    assert len({e.event_id for e in progress.timeline}) == 3
    assert {who: code for who, (code, _) in refused.items()} == {
        FOREIGN_REVIEWER: grpc.StatusCode.PERMISSION_DENIED,
        SEALER: grpc.StatusCode.PERMISSION_DENIED,
        CLERK: grpc.StatusCode.PERMISSION_DENIED}
    assert "it is read by officials of SCJGJ" in refused[FOREIGN_REVIEWER][1]
    assert nobody[0] == grpc.StatusCode.UNAUTHENTICATED


def _know_the_years_ahead(chain: Chain, today: date) -> WorkingCalendar:
    """Load plain schedules (weekends only) for the years the built-in calendar lacks.

    So that deadlines within the next year are known whatever day the test runs.
    """
    for year in (today.year, today.year + 1):
        if year not in BUILT_IN_YEARS:
            handlers.load_holiday_schedule(
                uow=ReviewUnitOfWork(chain.engine), caller=sample_caller("operator", OPERATOR),
                year=year, holidays=[], makeup_workdays=[], now=datetime.now(UTC))
    return handlers.working_calendar(uow=ReviewUnitOfWork(chain.engine, write=False))


async def test_special_procedures_pause_the_clock_and_a_leader_extends_it_once(
        chain: Chain) -> None:
    calendar = _know_the_years_ahead(chain, china_date(datetime.now(UTC)))
    handle = await chain.start_case(promised=5, legal=20, procedures=["expert_review"])
    case_number = case_of(handle)
    start = pb.StartSpecialProcedureRequest(
        case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
        note="组织专家评审", request_id=str(uuid.uuid4()))
    extension_id = str(uuid.uuid4())
    extend = pb.ExtendTimeLimitRequest(case_number=case_number, days=5, reason="需现场核查",
                                       request_id=extension_id)
    async with routed(chain.review) as stub:
        await open_task_of(chain, case_number, "review")
        opened = await progress_of(stub, case_number)
        paused_on = china_date(datetime.now(UTC))
        paused = (await stub.StartSpecialProcedure(start, metadata=as_official(REVIEWER))).change
        paused_again = (await stub.StartSpecialProcedure(
            start, metadata=as_official(REVIEWER))).change
        while_paused = await eventually(lambda: progress_of(stub, case_number),
                                        lambda p: p.sla_state == pb.SLA_STATE_PAUSED)
        refused = {
            "decision while paused": await refusal(
                decide(stub, REVIEWER, case_number, REVIEW, APPROVE)),
            "procedure not allowed": await refusal(stub.StartSpecialProcedure(
                pb.StartSpecialProcedureRequest(
                    case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_HEARING,
                    request_id=str(uuid.uuid4())), metadata=as_official(REVIEWER))),
            "by another department": await refusal(stub.EndSpecialProcedure(
                pb.EndSpecialProcedureRequest(
                    case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
                    request_id=str(uuid.uuid4())), metadata=as_official(FOREIGN_REVIEWER))),
        }
        resumed = (await stub.EndSpecialProcedure(pb.EndSpecialProcedureRequest(
            case_number=case_number, procedure=pb.SPECIAL_PROCEDURE_EXPERT_REVIEW,
            request_id=str(uuid.uuid4())), metadata=as_official(REVIEWER))).change
        resumed_on = china_date(datetime.now(UTC))
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
        progress = await eventually(lambda: progress_of(stub, case_number),
                                    lambda p: "time_limit.extended" in timeline_kinds(p))
    assert opened.sla_state == pb.SLA_STATE_ON_TIME
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
    def day(stamp: Timestamp) -> date:
        return china_date(stamp.ToDatetime(tzinfo=UTC))

    # Paused and resumed within the day: the case runs on time again, deadlines as before.
    assert resumed.sla_state == pb.SLA_STATE_ON_TIME
    if paused_on == resumed_on:
        assert resumed.deadlines.promised_due_at == opened.deadlines.promised_due_at
    else:
        # China's midnight fell while paused (or just before): the clock stood still at most
        # on the day it resumed, if a working day (services/review/domain/deadlines.py).
        moved = calendar.working_days_between(day(opened.deadlines.promised_due_at),
                                              day(resumed.deadlines.promised_due_at))
        assert resumed.deadlines.promised_due_at >= opened.deadlines.promised_due_at
        assert moved <= calendar.working_days_between(paused_on, resumed_on)
    assert extended_again == extended

    assert calendar.working_days_between(day(resumed.deadlines.legal_due_at),
                                         day(extended.deadlines.legal_due_at)) == 5
    assert extended.deadlines.promised_due_at == resumed.deadlines.promised_due_at
    assert (progress.extension_days, progress.paused_for) == (5, pb.SPECIAL_PROCEDURE_UNSPECIFIED)
    assert progress.sla_state == pb.SLA_STATE_ON_TIME
    assert progress.deadlines.legal_due_at == extended.deadlines.legal_due_at
    assert [(d["stage"], d["outcome"], d["official_id"], d["opinion"])
            for d in decisions_of(chain, case_number)] == [
        ("extension", "extend_5", LEADER, "需现场核查")]
    assert [k for k in timeline_kinds(progress) if k not in ("deadlines.computed",)] == [
        "chain.started", "clock.paused", "clock.resumed", "sla.on_time", "time_limit.extended"]
    assert [n.template for n in chain.intake.notices] == [
        "special_procedure_started", "special_procedure_ended", "time_limit_extended"]
    with chain.engine.connect() as connection:
        actions = [r.action for r in connection.execute(
            select(tables.audit_log).where(
                tables.audit_log.c.subject == f"case/{case_number}")
            .order_by(tables.audit_log.c.sequence))]
    assert actions.count("case.special_procedure_started") == 1
    assert actions.count("case.special_procedure_ended") == 1


def review_task_due(chain: Chain, case_number: str) -> datetime:
    with chain.engine.connect() as connection:
        due: datetime = connection.execute(select(tables.tasks.c.due_at).where(
            tables.tasks.c.case_number == case_number,
            tables.tasks.c.stage == "review")).scalar_one()
    return due.astimezone(UTC)


async def test_loading_a_holiday_schedule_recomputes_running_cases(
        chain_on_dev_server: Chain) -> None:
    chain = chain_on_dev_server
    # Accepted Wednesday 23 December 2026: ten working days run into 2027, which nobody has
    # loaded yet, and so does the review's own limit (eight working days).
    handle = await chain.start_case(accepted_on="2026-12-23", promised=10, legal=20)
    case_number = case_of(handle)
    client = chain.client
    async with chain.review.channel("operator") as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        await open_task_of(chain, case_number, "review")
        before = await progress_of(stub, case_number)
        review_due_before = review_task_due(chain, case_number)

        async def listed() -> list[str]:
            return [w.id async for w in client.list_workflows(
                f"{RUNNING_APPROVALS} AND WorkflowId = '{handle.id}'")]

        await eventually(listed, bool)
        loaded = await stub.LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR))
        after = await eventually(lambda: progress_of(stub, case_number),
                                 lambda progress: progress.calendar_gap_year == 0)
    assert before.calendar_gap_year == 2027
    assert before.deadlines.unknown_year == 2027
    # Provisional: Friday 1 January taken as a working day.
    assert before.deadlines.promised_due_at.ToDatetime(tzinfo=UTC) == end_of_day(
        date(2027, 1, 6))
    assert review_due_before == end_of_day(date(2027, 1, 4))
    assert loaded.cases_recomputing >= 1
    assert after.deadlines.promised_due_at.ToDatetime(tzinfo=UTC) == end_of_day(
        date(2027, 1, 7))
    assert after.deadlines.unknown_year == 0
    recomputed = after.timeline[-1]
    assert (recomputed.kind, recomputed.details["reason"]) == (
        "deadlines.computed", "holiday schedule 2027 loaded")
    # The open review task follows the new deadlines: New Year's Day is a holiday now.
    assert review_task_due(chain, case_number) == end_of_day(date(2027, 1, 5))


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
        code, details = await refusal(progress_of(stub, "AP-20260101-999999"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "AP-20260101-999999 is unknown" in details


async def test_without_temporal_the_calls_are_unavailable_and_may_be_repeated(
        backend: str, tmp_path: Path, pki_dir: Path) -> None:
    url = fresh_database_url(backend, "review", tmp_path)
    request_id = str(uuid.uuid4())
    async with (
        service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                           temporal_address="127.0.0.1:9") as review,
        routed(review) as stub,
    ):
        load = await refusal(stub.LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR)))
        decision = await refusal(decide(stub, REVIEWER, "AP-20260101-000001", REVIEW, APPROVE,
                                        request_id=request_id))
        repeated = await refusal(decide(stub, REVIEWER, "AP-20260101-000001", REVIEW, APPROVE,
                                        request_id=request_id))
        other = await refusal(decide(stub, REVIEWER, "AP-20260101-000001", REVIEW, REFUSE,
                                     request_id=request_id))
        listed = await stub.ListHolidaySchedules(pb.ListHolidaySchedulesRequest())
    assert load[0] == decision[0] == repeated[0] == grpc.StatusCode.UNAVAILABLE
    # The decision may have been taken: its id is kept for the same request only.
    assert other[0] == grpc.StatusCode.ALREADY_EXISTS
    # The schedule was stored before the cases were to be told; loading it again tells them.
    assert 2027 in [s.year for s in listed.schedules]
