"""Inboxes, claims and escalations over real gRPC and mTLS, on a real database.

No workflow runs here: tasks are put in place through review's repository
(each at its own due time), escalations with the review use cases the
approval workflow's activities run (services/review/app/chain.py), on
statements signed as intake and review sign them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import insert, select

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.pki import client_pair, issue
from kernel.systems import CallingSystem, DepartmentRole, RegistryUnitOfWork
from services.review.app import chain
from services.review.db import tables
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.tasks import Task
from tests.integration.review.conftest import sign_acceptance
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, routed_stub
from tests.unit.workflows.fakes import Official, Signers
from workflows import approval_contract as c

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

REVIEWER = "SCJGJ-003"
OTHER_REVIEWER = "SCJGJ-004"
DEPUTY = "SCJGJ-007"
LEADER = "SCJGJ-006"
SEALER = "ZWFWZX-001"
SUPERVISOR = "JJZ-001"
OPERATOR = "ZWFWZX-004"
TRADING_OFFICER = "ZWFWZX-007"
#: SCJGJ's own system: its reviewers and leaders call through it.
SCJGJ = "department-system-scjgj"
REVIEW_SERVICE = pb.DESCRIPTOR.services_by_name["ReviewService"].full_name
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


def routed(review: ServiceUnderTest) -> Any:
    """Review's stub whose calls go through the system each official acts through (SCJGJ's
    for its reviewers and leaders, the center's seal system, supervision's, the console)."""
    return routed_stub(review, review_pb2_grpc.ReviewServiceStub,
                       REVIEW_SERVICE, default_system=SCJGJ)


def _open_tasks(review: ServiceUnderTest) -> None:
    with ReviewUnitOfWork(review.running.engine) as uow:
        for case_number, stage, department, role, days in TASKS:
            uow.tasks.add(Task(case_number=case_number, stage=stage, department_code=department,
                               role=role, item_code=ITEM, due_at=DUE + timedelta(days=days),
                               opened_at=DUE - timedelta(days=5)))
        uow.commit()


async def _inbox(stub: ReviewServiceAsyncStub, official: str,
                 **filters: object) -> list[str]:
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
    _open_tasks(review)
    async with routed(review) as stub:
        reviewer = await _inbox(stub, REVIEWER)
        leader = await _inbox(stub, LEADER)
        sealer = await _inbox(stub, SEALER)
        supervisor = await _inbox(stub, SUPERVISOR)
        supervisor_scjgj = await _inbox(stub, SUPERVISOR, department_code="SCJGJ")
        operator_review = await _inbox(stub, OPERATOR, stage=pb.APPROVAL_STAGE_REVIEW)
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
    _open_tasks(review)
    async with routed(review) as stub:
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
        bad_token = await _refusal(stub.ListInbox(
            pb.ListInboxRequest(page_token="bm90IGEgdG9rZW4="), metadata=as_official(REVIEWER)))
    assert seen == [CASE_D, CASE_E, CASE_C, CASE_A, CASE_B, CASE_F]
    assert pages == 3
    assert bad_token == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_inbox_one_has_no_part_in_is_refused(review: ServiceUnderTest) -> None:
    _open_tasks(review)
    async with routed(review) as stub:
        codes = {
            "other department": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(department_code="FGW"), metadata=as_official(REVIEWER))),
            "other stage": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_SIGN),
                metadata=as_official(REVIEWER))),
            "no official": await _refusal(stub.ListInbox(pb.ListInboxRequest())),
            "unknown department": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(department_code="NOPE"), metadata=as_official(SUPERVISOR))),
            "finished stage": await _refusal(stub.ListInbox(
                pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_COMPLETED),
                metadata=as_official(SUPERVISOR))),
        }
    async with review.channel(SCJGJ) as channel:
        codes["supervisor through a department's system"] = await _refusal(
            review_pb2_grpc.ReviewServiceStub(channel).ListInbox(
                pb.ListInboxRequest(), metadata=as_official(SUPERVISOR)))
    assert codes == {
        "other department": grpc.StatusCode.PERMISSION_DENIED,
        "other stage": grpc.StatusCode.PERMISSION_DENIED,
        "no official": grpc.StatusCode.UNAUTHENTICATED,
        "unknown department": grpc.StatusCode.NOT_FOUND,
        "finished stage": grpc.StatusCode.INVALID_ARGUMENT,
        "supervisor through a department's system": grpc.StatusCode.PERMISSION_DENIED,
    }


async def test_a_claim_is_one_officials_and_filters_follow_it(review: ServiceUnderTest) -> None:
    _open_tasks(review)
    claim_a = pb.ClaimTaskRequest(case_number=CASE_A, stage=pb.APPROVAL_STAGE_REVIEW)
    async with routed(review) as stub:
        claimed = await stub.ClaimTask(claim_a, metadata=as_official(REVIEWER))
        again = await stub.ClaimTask(claim_a, metadata=as_official(REVIEWER))
        conflict = await _refusal(stub.ClaimTask(claim_a, metadata=as_official(OTHER_REVIEWER)))
        mine = await _inbox(stub, REVIEWER, claimed=pb.CLAIM_FILTER_MINE)
        unclaimed = await _inbox(stub, OTHER_REVIEWER, claimed=pb.CLAIM_FILTER_UNCLAIMED)
        everything = await _inbox(stub, OTHER_REVIEWER, claimed=pb.CLAIM_FILTER_ALL)
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert claimed.task.claimed_by == REVIEWER
    assert claimed.task.HasField("claimed_at")
    assert again.task == claimed.task
    assert conflict == grpc.StatusCode.FAILED_PRECONDITION
    assert mine == [CASE_A]
    assert unclaimed == [CASE_C, CASE_B]
    assert everything == [CASE_C, CASE_A, CASE_B]
    # The loads of the directory and the registry, one claim.
    assert audit.intact and audit.entries == SAMPLE_AUDIT_ENTRIES + 1
    assert _claims(review)[CASE_A] == REVIEWER


async def test_a_claim_needs_the_role_in_the_deciding_department(
        review: ServiceUnderTest) -> None:
    _open_tasks(review)
    async with routed(review) as stub:

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
    _open_tasks(review)
    with ReviewUnitOfWork(review.running.engine) as uow:
        task = uow.tasks.get(CASE_C, "review", for_update=True)
        assert task is not None
        uow.tasks.save(replace(task, closed_at=DUE, closed_by=OTHER_REVIEWER, outcome="approve"))
        uow.commit()
    async with routed(review) as stub:
        inbox = await _inbox(stub, REVIEWER)
        refused = await _refusal(stub.ClaimTask(
            pb.ClaimTaskRequest(case_number=CASE_C, stage=pb.APPROVAL_STAGE_REVIEW),
            metadata=as_official(REVIEWER)))
    assert inbox == [CASE_A, CASE_B]
    assert refused == grpc.StatusCode.FAILED_PRECONDITION


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_the_departments_other_leader_claims_for_the_leader_under_a_delegation(
        review: ServiceUnderTest) -> None:
    _open_tasks(review)
    async with routed(review) as stub:
        in_own_right = await _inbox(stub, DEPUTY)
        granted = await stub.GrantDelegation(pb.GrantDelegationRequest(
            deputy_id=DEPUTY, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=2)))),
            metadata=as_official(LEADER))
        sign_inbox = await _inbox(stub, DEPUTY, stage=pb.APPROVAL_STAGE_SIGN)
        claimed = await stub.ClaimTask(
            pb.ClaimTaskRequest(case_number=CASE_D, stage=pb.APPROVAL_STAGE_SIGN),
            metadata=as_official(DEPUTY))
        reviewer_after = await _refusal(stub.ListInbox(
            pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_SIGN),
            metadata=as_official(OTHER_REVIEWER)))
    # A deputy is a leader of the department: the same sign tasks, now taken for the leader.
    assert in_own_right == sign_inbox == [CASE_D]
    assert claimed.task.claimed_by == DEPUTY
    assert reviewer_after == grpc.StatusCode.PERMISSION_DENIED
    with review.running.engine.connect() as connection:
        last = connection.execute(select(tables.audit_log).order_by(
            tables.audit_log.c.sequence.desc()).limit(1)).one()
    assert (last.action, last.official_id) == ("task.claimed", DEPUTY)
    assert json.loads(last.details) == {"stage": "sign", "on_behalf_of": LEADER,
                                        "delegation": str(granted.delegation.id)}


def _breached(review: ServiceUnderTest, signers: Signers, case_number: str, department: str,
              kinds: list[str]) -> None:
    """A case opened in review and escalated, as the workflow's activities do it."""
    def uow() -> ReviewUnitOfWork:
        return ReviewUnitOfWork(review.running.engine)

    acceptance = sign_acceptance(signers, case_number, accepted_at=DUE - timedelta(days=10),
                                 clerk_id=f"{department}-001", department_code=department)
    chain.open_case(uow=uow, keys=signers.keys, request=c.DeadlinesRequest(
        acceptance, stage=c.Stage.REVIEW, at=DUE - timedelta(days=10)),
        event_key=f"{case_number}/open", now=DUE - timedelta(days=10))
    chain.mark_sla(uow=uow, keys=signers.keys, mark=c.SlaMark(
        case_number, department, c.Stage.REVIEW, c.SlaState.BREACHED, DUE, kinds, DUE, DUE),
        event_key=f"{case_number}/{kinds}", now=DUE)


def _withdrawn(review: ServiceUnderTest, signers: Signers, case_number: str,
               clerk: Official) -> None:
    chain.close_case(uow=lambda: ReviewUnitOfWork(review.running.engine), keys=signers.keys,
                     closing=c.CaseClosing(case_number, c.Stage.REVIEW, "withdrawn", DUE,
                                           signers.withdrawal(case_number, clerk).statement),
                     now=DUE + timedelta(hours=1))


async def test_supervisors_and_operators_list_escalations(
        review: ServiceUnderTest, signers: Signers) -> None:
    case_1, case_2 = "AP-20261120-000001", "AP-20261120-000002"
    _breached(review, signers, case_1, "SCJGJ", ["promised_breach"])
    _breached(review, signers, case_2, "FGW", ["promised_breach"])
    _breached(review, signers, case_1, "SCJGJ", ["legal_breach"])
    _withdrawn(review, signers, case_2, Official("FGW-001", "FGW", ("window_clerk",)))
    async with routed(review) as stub:
        everything = await stub.ListEscalations(pb.ListEscalationsRequest(),
                                                metadata=as_official(SUPERVISOR))
        open_only = await stub.ListEscalations(pb.ListEscalationsRequest(open_only=True),
                                               metadata=as_official(OPERATOR))
        fgw = await stub.ListEscalations(pb.ListEscalationsRequest(department_code="FGW"),
                                         metadata=as_official(SUPERVISOR))
        first_page = await stub.ListEscalations(pb.ListEscalationsRequest(page_size=2),
                                                metadata=as_official(SUPERVISOR))
        second_page = await stub.ListEscalations(
            pb.ListEscalationsRequest(page_size=2, page_token=first_page.next_page_token),
            metadata=as_official(SUPERVISOR))
        reviewer = await _refusal(stub.ListEscalations(pb.ListEscalationsRequest(),
                                                       metadata=as_official(REVIEWER)))
        # The operators' console speaks for the center's trading officers, who hold
        # neither oversight role.
        trading_officer = await _refusal(stub.ListEscalations(
            pb.ListEscalationsRequest(), metadata=as_official(TRADING_OFFICER)))
    assert [(e.case_number, e.kind) for e in everything.escalations] == [
        (case_1, pb.ESCALATION_KIND_PROMISED_BREACH),
        (case_2, pb.ESCALATION_KIND_PROMISED_BREACH),
        (case_1, pb.ESCALATION_KIND_LEGAL_BREACH)]
    # The withdrawal closed the FGW case's escalation.
    assert everything.escalations[1].HasField("closed_at")
    assert not everything.escalations[0].HasField("closed_at")
    assert [e.case_number for e in open_only.escalations] == [case_1, case_1]
    assert [e.case_number for e in fgw.escalations] == [case_2]
    assert [e.id for e in [*first_page.escalations, *second_page.escalations]] == [
        e.id for e in everything.escalations]
    assert second_page.next_page_token == ""
    assert everything.escalations[0].stage == pb.APPROVAL_STAGE_REVIEW
    assert everything.escalations[0].due_at.ToDatetime(tzinfo=UTC) == DUE
    assert reviewer == trading_officer == grpc.StatusCode.PERMISSION_DENIED


async def test_a_deputy_signs_only_through_a_system_that_speaks_for_leaders(
        review: ServiceUnderTest) -> None:
    """A leader's signature held by delegation goes only through a system that may speak for
    leaders of the department: through a system of its reviewers only, a deputy who is both
    reviewer and leader acts as a reviewer, delegation or not."""
    _open_tasks(review)
    both = "SCJGJ-099"
    with review.running.engine.begin() as connection:
        connection.execute(insert(tables.officials), [{
            "id": both, "name": "审批科长", "department_code": "SCJGJ",
            "roles": json.dumps(["reviewer", "leader"])}])
    reviewers_only = "scjgj-review-desk"
    pair = client_pair(review.pki_dir, reviewers_only)
    if not pair.cert.exists():
        issue(review.pki_dir, pair, common_name=reviewers_only, server=False)
    with RegistryUnitOfWork(review.running.engine) as uow:
        uow.systems.put(CallingSystem(
            reviewers_only, rpcs=frozenset({f"{REVIEW_SERVICE}/ListInbox",
                                            f"{REVIEW_SERVICE}/ClaimTask"}),
            speaks_for=frozenset({DepartmentRole("SCJGJ", "reviewer")})),
            at=datetime.now(UTC), by=OPERATOR)
        uow.commit()
    review.running.registry.invalidate()
    async with review.channel(SCJGJ) as channel:
        await review_pb2_grpc.ReviewServiceStub(channel).GrantDelegation(
            pb.GrantDelegationRequest(deputy_id=both, reason="出差", period=pb.DelegationPeriod(
                valid_until=_ts(datetime.now(UTC) + timedelta(days=2)))),
            metadata=as_official(LEADER))
    sign = pb.ClaimTaskRequest(case_number=CASE_D, stage=pb.APPROVAL_STAGE_SIGN)
    async with review.channel(reviewers_only) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        review_tasks = await stub.ListInbox(pb.ListInboxRequest(stage=pb.APPROVAL_STAGE_REVIEW),
                                            metadata=as_official(both))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ClaimTask(sign, metadata=as_official(both))
    async with review.channel(SCJGJ) as channel:
        claimed = await review_pb2_grpc.ReviewServiceStub(channel).ClaimTask(
            sign, metadata=as_official(both))
    assert [t.case_number for t in review_tasks.tasks] == [CASE_C, CASE_A, CASE_B]
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"official {both} does not hold the role leader" in (refused.value.details() or "")
    # Through the department's own system the same deputy signs for the leader.
    assert claimed.task.claimed_by == both
