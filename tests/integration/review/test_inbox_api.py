"""Inboxes, claims and escalations over real gRPC and mTLS, on a real database.

Tasks and escalations are put in place with the review activities, as the
approval workflow does; no workflow runs here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.pki import client_pair, issue
from kernel.systems import CallingSystem, DepartmentRole, RegistryUnitOfWork
from services.review.activities import ReviewActivities
from services.review.db import tables
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, system_for
from workflows import approval_contract as c

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

REVIEWER = "SCJGJ-003"
OTHER_REVIEWER = "SCJGJ-004"
DEPUTY = "SCJGJ-005"
LEADER = "SCJGJ-006"
SEALER = "ZWFWZX-001"
SUPERVISOR = "JJZ-001"
OPERATOR = "ZWFWZX-004"
TRADING_OFFICER = "ZWFWZX-007"
#: SCJGJ's own system: its reviewers and leaders call through it.
SCJGJ = "department-system-scjgj"
INBOX = "govhall.review.v1.ReviewService/ListInbox"
ITEM = "012101000001000"
DUE = datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC)
CASE_A, CASE_B, CASE_C, CASE_D, CASE_E, CASE_F = (f"AP-20261126-{n:06d}" for n in range(1, 7))

#: (case, stage, deciding department, role, days after DUE)
TASKS = [
    (CASE_B, "review", "SCJGJ", "reviewer", 2),
    (CASE_A, "review", "SCJGJ", "reviewer", 2),
    (CASE_C, "review", "SCJGJ", "reviewer", 1),
    (CASE_D, "sign", "SCJGJ", "leader", 0),
    (CASE_E, "review", "FGW", "reviewer", 0),
    (CASE_F, "seal", "ZWFWZX", "seal_custodian", 3),
]


async def _open_tasks(review: ServiceUnderTest) -> ReviewActivities:
    hosted = ReviewActivities(review.running.engine)
    for case_number, stage, department, role, days in TASKS:
        await ActivityEnvironment().run(hosted.open_task, c.TaskOpening(
            case_number, stage, department, role, ITEM, DUE + timedelta(days=days)))
    return hosted


async def _inbox(review: ServiceUnderTest, official: str,
                 **filters: object) -> list[str]:
    """The official's inbox, read through the sample system that speaks for them."""
    async with review.channel(system_for(INBOX, official)) as channel:
        stub: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
        response = await stub.ListInbox(pb.ListInboxRequest(**filters),  # type: ignore[arg-type]
                                        metadata=as_official(official))
    return [t.case_number for t in response.tasks]


async def _refusal(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code()


def _claims(review: ServiceUnderTest) -> dict[str, str]:
    with review.running.engine.connect() as connection:
        rows = connection.execute(select(tables.tasks.c.case_number, tables.tasks.c.claimed_by))
        return {r.case_number: r.claimed_by for r in rows}


async def test_each_official_sees_their_stages_in_due_order(review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    reviewer = await _inbox(review, REVIEWER)
    leader = await _inbox(review, LEADER)
    sealer = await _inbox(review, SEALER)
    supervisor = await _inbox(review, SUPERVISOR)
    supervisor_scjgj = await _inbox(review, SUPERVISOR, department_code="SCJGJ")
    operator_review = await _inbox(review, OPERATOR, stage=pb.APPROVAL_STAGE_REVIEW)
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        first = await stub.ListInbox(pb.ListInboxRequest(), metadata=as_official(REVIEWER))
    # Same due time: by case number. The FGW task is not a SCJGJ reviewer's.
    assert reviewer == [CASE_C, CASE_A, CASE_B]
    assert leader == [CASE_D]
    assert sealer == [CASE_F]
    assert supervisor == [CASE_D, CASE_E, CASE_C, CASE_A, CASE_B, CASE_F]
    assert supervisor_scjgj == [CASE_D, CASE_C, CASE_A, CASE_B]
    assert operator_review == [CASE_E, CASE_C, CASE_A, CASE_B]
    task = first.tasks[0]
    assert (task.stage, task.department_code, task.item_code, task.claimed_by) == (
        pb.APPROVAL_STAGE_REVIEW, "SCJGJ", ITEM, "")
    assert task.due_at.ToDatetime(tzinfo=UTC) == DUE + timedelta(days=1)
    assert not task.HasField("closed_at")


async def test_the_inbox_pages_without_losing_or_repeating_a_task(
        review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    async with review.channel("supervision-system") as channel, \
            review.channel(SCJGJ) as department:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await stub.ListInbox(pb.ListInboxRequest(page_size=2, page_token=token),
                                        metadata=as_official(SUPERVISOR))
            seen += [t.case_number for t in page.tasks]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        bad_token = await _refusal(review_pb2_grpc.ReviewServiceStub(department).ListInbox(
            pb.ListInboxRequest(page_token="bm90IGEgdG9rZW4="), metadata=as_official(REVIEWER)))
    assert seen == [CASE_D, CASE_E, CASE_C, CASE_A, CASE_B, CASE_F]
    assert pages == 3
    assert bad_token == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_inbox_one_has_no_part_in_is_refused(review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    async with review.channel(SCJGJ) as channel, \
            review.channel("supervision-system") as supervision:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        desk = review_pb2_grpc.ReviewServiceStub(supervision)
        codes = {
            "other department": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(department_code="FGW"), metadata=as_official(REVIEWER))),
            "other stage": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_SIGN),
                metadata=as_official(REVIEWER))),
            "no official": await _refusal(stub.ListInbox(pb.ListInboxRequest())),
            "unknown department": await _refusal(desk.ListInbox(
                pb.ListInboxRequest(department_code="NOPE"), metadata=as_official(SUPERVISOR))),
            "finished stage": await _refusal(desk.ListInbox(
                pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_COMPLETED),
                metadata=as_official(SUPERVISOR))),
            "supervisor through a department's system": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(), metadata=as_official(SUPERVISOR))),
        }
    assert codes == {
        "other department": grpc.StatusCode.PERMISSION_DENIED,
        "other stage": grpc.StatusCode.PERMISSION_DENIED,
        "no official": grpc.StatusCode.UNAUTHENTICATED,
        "unknown department": grpc.StatusCode.NOT_FOUND,
        "finished stage": grpc.StatusCode.INVALID_ARGUMENT,
        "supervisor through a department's system": grpc.StatusCode.PERMISSION_DENIED,
    }


async def test_a_claim_is_one_officials_and_filters_follow_it(review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    claim_a = pb.ClaimTaskRequest(case_number=CASE_A, stage=pb.APPROVAL_STAGE_REVIEW)
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        claimed = await stub.ClaimTask(claim_a, metadata=as_official(REVIEWER))
        again = await stub.ClaimTask(claim_a, metadata=as_official(REVIEWER))
        conflict = await _refusal(stub.ClaimTask(claim_a, metadata=as_official(OTHER_REVIEWER)))
    mine = await _inbox(review, REVIEWER, claimed=pb.CLAIM_FILTER_MINE)
    unclaimed = await _inbox(review, OTHER_REVIEWER, claimed=pb.CLAIM_FILTER_UNCLAIMED)
    everything = await _inbox(review, OTHER_REVIEWER, claimed=pb.CLAIM_FILTER_ALL)
    async with review.channel("operator") as channel:
        audit = (await review_pb2_grpc.ReviewServiceStub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    assert claimed.task.claimed_by == REVIEWER
    assert claimed.task.HasField("claimed_at")
    assert again.task == claimed.task
    assert conflict == grpc.StatusCode.FAILED_PRECONDITION
    assert mine == [CASE_A]
    assert unclaimed == [CASE_C, CASE_B]
    assert everything == [CASE_C, CASE_A, CASE_B]
    # The load of the directory, six openings, one claim.
    assert audit.intact and audit.entries == SAMPLE_AUDIT_ENTRIES + 7
    assert _claims(review)[CASE_A] == REVIEWER


async def test_a_claim_needs_the_role_in_the_deciding_department(
        review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)

        async def claim(case_number: str, stage: int, official: str) -> grpc.StatusCode:
            return await _refusal(stub.ClaimTask(
                pb.ClaimTaskRequest(case_number=case_number, stage=stage),  # type: ignore[arg-type]
                metadata=as_official(official)))

        codes = {
            "leader at review": await claim(CASE_A, pb.APPROVAL_STAGE_REVIEW, LEADER),
            "other department": await claim(CASE_E, pb.APPROVAL_STAGE_REVIEW, REVIEWER),
            "reviewer at seal": await claim(CASE_F, pb.APPROVAL_STAGE_SEAL, REVIEWER),
            "no such task": await claim(CASE_A, pb.APPROVAL_STAGE_SIGN, LEADER),
            "supervisor": await claim(CASE_D, pb.APPROVAL_STAGE_SIGN, SUPERVISOR),
            "bad case number": await claim("AP-2026-1", pb.APPROVAL_STAGE_REVIEW, REVIEWER),
        }
    assert codes == {
        "leader at review": grpc.StatusCode.PERMISSION_DENIED,
        "other department": grpc.StatusCode.PERMISSION_DENIED,
        "reviewer at seal": grpc.StatusCode.PERMISSION_DENIED,
        "no such task": grpc.StatusCode.NOT_FOUND,
        "supervisor": grpc.StatusCode.PERMISSION_DENIED,
        "bad case number": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert set(_claims(review).values()) == {""}


async def test_a_closed_task_leaves_the_inbox_and_cannot_be_claimed(
        review: ServiceUnderTest) -> None:
    hosted = await _open_tasks(review)
    await ActivityEnvironment().run(
        hosted.close_task, c.TaskClosing(CASE_C, "review", OTHER_REVIEWER, "approve"))
    inbox = await _inbox(review, REVIEWER)
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        refused = await _refusal(stub.ClaimTask(
            pb.ClaimTaskRequest(case_number=CASE_C, stage=pb.APPROVAL_STAGE_REVIEW),
            metadata=as_official(REVIEWER)))
    assert inbox == [CASE_A, CASE_B]
    assert refused == grpc.StatusCode.FAILED_PRECONDITION


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_a_deputy_takes_the_leaders_sign_tasks_under_a_delegation(
        review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        before = await _refusal(stub.ListInbox(
            pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_SIGN), metadata=as_official(DEPUTY)))
        granted = await stub.GrantDelegation(pb.GrantDelegationRequest(
            deputy_id=DEPUTY, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=2)))),
            metadata=as_official(LEADER))
        sign_inbox = await _inbox(review, DEPUTY, stage=pb.APPROVAL_STAGE_SIGN)
        whole_inbox = await _inbox(review, DEPUTY)
        claimed = await stub.ClaimTask(
            pb.ClaimTaskRequest(case_number=CASE_D, stage=pb.APPROVAL_STAGE_SIGN),
            metadata=as_official(DEPUTY))
    assert before == grpc.StatusCode.PERMISSION_DENIED
    assert sign_inbox == [CASE_D]
    assert whole_inbox == [CASE_D, CASE_C, CASE_A, CASE_B]
    assert claimed.task.claimed_by == DEPUTY
    with review.running.engine.connect() as connection:
        last = connection.execute(select(tables.audit_log).order_by(
            tables.audit_log.c.sequence.desc()).limit(1)).one()
    assert (last.action, last.official_id) == ("task.claimed", DEPUTY)
    assert json.loads(last.details) == {"stage": "sign", "on_behalf_of": LEADER,
                                        "delegation": str(granted.delegation.id)}


async def test_supervisors_and_operators_list_escalations(review: ServiceUnderTest) -> None:
    hosted = ReviewActivities(review.running.engine)
    run = ActivityEnvironment().run
    await run(hosted.open_escalation,
              c.EscalationOpening("AP-1", "SCJGJ", "review", "promised_breach", DUE))
    await run(hosted.open_escalation,
              c.EscalationOpening("AP-2", "FGW", "sign", "promised_breach", DUE))
    await run(hosted.open_escalation,
              c.EscalationOpening("AP-1", "SCJGJ", "review", "legal_breach", DUE))
    await run(hosted.close_task, c.TaskClosing("AP-2", "seal", SEALER, "seal"))
    async with review.channel("supervision-system") as channel, \
            review.channel("operator") as console:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        operators = review_pb2_grpc.ReviewServiceStub(console)
        everything = await stub.ListEscalations(pb.ListEscalationsRequest(),
                                                metadata=as_official(SUPERVISOR))
        open_only = await operators.ListEscalations(pb.ListEscalationsRequest(open_only=True),
                                                    metadata=as_official(OPERATOR))
        fgw = await stub.ListEscalations(pb.ListEscalationsRequest(department_code="FGW"),
                                         metadata=as_official(SUPERVISOR))
        first_page = await stub.ListEscalations(pb.ListEscalationsRequest(page_size=2),
                                                metadata=as_official(SUPERVISOR))
        second_page = await stub.ListEscalations(
            pb.ListEscalationsRequest(page_size=2, page_token=first_page.next_page_token),
            metadata=as_official(SUPERVISOR))
        # The operators' console speaks for the center's trading officers, who hold
        # neither oversight role.
        trading_officer = await _refusal(operators.ListEscalations(
            pb.ListEscalationsRequest(), metadata=as_official(TRADING_OFFICER)))
    assert [(e.case_number, e.kind) for e in everything.escalations] == [
        ("AP-1", pb.ESCALATION_KIND_PROMISED_BREACH),
        ("AP-2", pb.ESCALATION_KIND_PROMISED_BREACH),
        ("AP-1", pb.ESCALATION_KIND_LEGAL_BREACH)]
    assert everything.escalations[1].HasField("closed_at")
    assert not everything.escalations[0].HasField("closed_at")
    assert [e.case_number for e in open_only.escalations] == ["AP-1", "AP-1"]
    assert [e.case_number for e in fgw.escalations] == ["AP-2"]
    assert [e.id for e in [*first_page.escalations, *second_page.escalations]] == [
        e.id for e in everything.escalations]
    assert second_page.next_page_token == ""
    assert everything.escalations[0].stage == pb.APPROVAL_STAGE_REVIEW
    assert everything.escalations[0].due_at.ToDatetime(tzinfo=UTC) == DUE
    assert trading_officer == grpc.StatusCode.PERMISSION_DENIED


async def test_a_deputy_signs_only_through_a_system_that_speaks_for_leaders(
        review: ServiceUnderTest) -> None:
    await _open_tasks(review)
    # A system of SCJGJ's reviewers only: the deputy is one, and holds the leader's
    # delegation, but this system may not carry a leader's signature.
    reviewers_only = "scjgj-review-desk"
    pair = client_pair(review.pki_dir, reviewers_only)
    if not pair.cert.exists():
        issue(review.pki_dir, pair, common_name=reviewers_only, server=False)
    with RegistryUnitOfWork(review.running.engine) as uow:
        uow.systems.put(CallingSystem(
            reviewers_only, rpcs=frozenset({INBOX, "govhall.review.v1.ReviewService/ClaimTask"}),
            speaks_for=frozenset({DepartmentRole("SCJGJ", "reviewer")})),
            at=datetime.now(UTC), by=OPERATOR)
        uow.commit()
    review.running.registry.invalidate()
    async with review.channel(SCJGJ) as channel:
        await review_pb2_grpc.ReviewServiceStub(channel).GrantDelegation(
            pb.GrantDelegationRequest(deputy_id=DEPUTY, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=2)))),
            metadata=as_official(LEADER))
    sign = pb.ClaimTaskRequest(case_number=CASE_D, stage=pb.APPROVAL_STAGE_SIGN)
    async with review.channel(reviewers_only) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        review_tasks = await stub.ListInbox(pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_REVIEW),
                                            metadata=as_official(DEPUTY))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ClaimTask(sign, metadata=as_official(DEPUTY))
    assert [t.case_number for t in review_tasks.tasks] == [CASE_C, CASE_A, CASE_B]
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == (
        f"system {reviewers_only} may not speak for a leader of SCJGJ")
    assert _claims(review)[CASE_D] == ""
