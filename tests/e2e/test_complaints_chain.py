"""The complaints chain end to end: real processes, real Temporal, real certificates.

The complaints service and the workflows worker run as the runner runs them
(tests/e2e/suite.py, ``ChainProcesses``) against the session's Temporal dev
server, in a namespace of their own. The test speaks gRPC through the sample
systems' own certificates, as the platforms (``hotline-12345``, the provincial
portal), the departments' systems and the center's dispatch system do:
submit → the outbox starts ``complaint/<no>`` once → sign-for → co-handlers →
contribution → reply → rating → closed; return and reassignment; an
unsatisfied rating reopening once; a merged duplicate; an extension. Every
refusal on the way is a clear gRPC status and changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from deploy.local.chain_driver import acting
from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.calendar import WorkingCalendar
from kernel.grpcserver import secure_channel
from services.complaints.domain.policy import extended_reply_due
from tests.e2e.suite import ChainProcesses, start_chain, within
from workflows.complaint_contract import (
    CASE_KIND,
    STATUS,
    WORKFLOW_NAME,
    ComplaintResult,
    ComplaintStatusView,
    workflow_id,
)

pytestmark = pytest.mark.e2e

#: How long a test waits for what it waits for (a deadline for waits, not a speed to meet).
TEST_SECONDS = 120
HOTLINE = "hotline-12345"
PORTAL = "provincial-complaint-portal"
DISPATCH = ("complaint-dispatch-system", "ZWFWZX-009")
#: Each department's handling system and its complaint handler.
HANDLERS = {"SCJGJ": ("department-system-scjgj", "SCJGJ-008"),
            "ZJJ": ("department-system-zjj", "ZJJ-008"),
            "WJW": ("department-system-wjw", "WJW-008")}
#: A category each department is routed.
CATEGORY = {"SCJGJ": "SC-01", "ZJJ": "ZF-01", "WJW": "WS-01"}
NAME, PHONE = "欧阳晓筠", "13975318642"


@pytest.fixture(scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[ChainProcesses]:
    processes = await start_chain(tmp_path_factory.mktemp("complaints"),
                                  temporal=temporal_dev_server.client, services=("complaints",))
    try:
        yield processes
    finally:
        await processes.close()


@dataclass
class Desk:
    """The chain as the systems around it reach it."""

    processes: ChainProcesses
    deadline: float

    async def call(self, system: str, rpc: str, request: Any, official: str = "") -> Any:
        """One RPC through ``system``'s certificate (acting for ``official``, if any)."""
        async with secure_channel(self.processes.address("complaints"),
                                  pki_dir=self.processes.pki_dir, system=system) as channel:
            stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
            return await getattr(stub, rpc)(
                request, metadata=acting(official) if official else (), timeout=30)

    async def refused(self, system: str, rpc: str, request: Any,
                      official: str = "") -> tuple[grpc.StatusCode, str]:
        try:
            await self.call(system, rpc, request, official)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
        raise AssertionError(f"{rpc} by {official or system} was accepted")

    async def submit(self, department: str, external_id: str, *,
                     platform: str = HOTLINE,
                     kind: pb.ComplaintKind.ValueType = pb.COMPLAINT_KIND_COMPLAINT,
                     content: str = "超市出售过期食品") -> str:
        response = await self.call(platform, "SubmitComplaint", pb.SubmitComplaintRequest(
            external_id=external_id, kind=kind, category_code=CATEGORY[department],
            content=content, complainant_name=NAME, complainant_phone=PHONE))
        number: str = response.complaint.case_number
        assert response.complaint.department_code == department
        return number

    async def handler(self, department: str, rpc: str, request: Any) -> pb.ComplaintActReceipt:
        system, official = HANDLERS[department]
        receipt: pb.ComplaintActReceipt = (await self.call(system, rpc, request,
                                                           official)).receipt
        return receipt

    async def dispatcher(self, rpc: str, request: Any) -> pb.ComplaintActReceipt:
        receipt: pb.ComplaintActReceipt = (await self.call(*DISPATCH[:1], rpc, request,
                                                           DISPATCH[1])).receipt
        return receipt

    async def rate(self, number: str, level: int,
                   platform: str = HOTLINE) -> pb.ComplaintActReceipt:
        receipt: pb.ComplaintActReceipt = (await self.call(platform, "RateComplaint",
                                                           pb.RateComplaintRequest(
            request_id=_rid(), case_number=number, level=level, comment="满意"))).receipt
        return receipt

    async def get(self, number: str, platform: str = HOTLINE) -> pb.GetComplaintResponse:
        response: pb.GetComplaintResponse = await self.call(
            platform, "GetComplaint", pb.GetComplaintRequest(case_number=number))
        return response

    async def status(self, number: str) -> ComplaintStatusView:
        client = await self.processes.client()
        view: ComplaintStatusView = await client.get_workflow_handle(
            workflow_id(number)).query(STATUS, result_type=ComplaintStatusView)
        return view

    async def started(self, number: str) -> None:
        """Until the outbox has started the case's workflow and the workflow opened it."""
        async def opened() -> bool:
            flags = self.rows("SELECT workflow_started, policy_version FROM complaint_cases "
                              "WHERE case_number = :n", n=number)
            return bool(flags and flags[0][0] and flags[0][1])
        await within(self.deadline, f"{number}'s workflow started and opened the case", opened)

        # The opening activity commits before the workflow takes its result: until then the
        # workflow's view has no dues yet.
        async def taken() -> bool:
            return bool((await self.status(number)).sign_for_due)
        await within(self.deadline, f"{number}'s workflow took the opening", taken)

    async def ended(self, number: str) -> ComplaintResult:
        client = await self.processes.client()
        result: ComplaintResult = await client.get_workflow_handle(
            workflow_id(number), result_type=ComplaintResult).result()
        return result

    async def visible(self, query: str) -> None:
        """Until exactly one workflow matches the visibility ``query`` (search attributes)."""
        client = await self.processes.client()

        async def one() -> bool:
            return len([w async for w in client.list_workflows(query)]) == 1
        await within(self.deadline, f"one workflow where {query}", one)

    def rows(self, sql: str, **parameters: str) -> list[tuple[Any, ...]]:
        engine = self.processes.read_only("complaints")
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql), parameters)]
        finally:
            engine.dispose()

    def snapshot(self, number: str) -> list[tuple[Any, ...]]:
        """What a refusal must leave as it was: the case row, its events, its replies."""
        return [*self.rows("SELECT * FROM complaint_cases WHERE case_number = :n", n=number),
                *self.rows("SELECT sequence, code FROM complaint_events WHERE case_number = :n",
                           n=number),
                *self.rows("SELECT * FROM complaint_replies WHERE case_number = :n", n=number),
                *self.rows("SELECT * FROM complaint_co_handlers WHERE case_number = :n",
                           n=number)]


def _rid() -> str:
    return str(uuid.uuid4())


def _at(stamp: Any) -> datetime:
    moment: datetime = stamp.ToDatetime(tzinfo=datetime.now().astimezone().tzinfo)
    return moment


@pytest.fixture
async def desk(chain: ChainProcesses) -> Desk:
    deadline = time.monotonic() + TEST_SECONDS
    await chain.ensure_running(deadline)
    return Desk(chain, deadline)


async def test_a_complaint_from_submit_through_co_handling_and_reply_to_a_five_star_close(
        desk: Desk) -> None:
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    # One workflow under the case's id, found by its search attributes.
    client = await desk.processes.client()
    found = [w async for w in client.list_workflows(
        f"CaseNumber = '{number}' AND CaseKind = '{CASE_KIND}'")]
    assert [(w.id, w.workflow_type) for w in found] == [(workflow_id(number), WORKFLOW_NAME)]
    view = await desk.status(number)
    assert (view.stage, view.department_code, view.sla_state) == ("routed", "SCJGJ", "on_time")
    assert view.sign_for_due and view.reply_due

    # Refusals before sign-for: another department, a wrong role, an act out of order.
    before = desk.snapshot(number)
    refusals = [
        await desk.refused(*HANDLERS["ZJJ"][:1], "SignForComplaint", pb.SignForComplaintRequest(
            request_id=_rid(), case_number=number), HANDLERS["ZJJ"][1]),
        await desk.refused("department-system-scjgj", "SignForComplaint",
                           pb.SignForComplaintRequest(request_id=_rid(), case_number=number),
                           "SCJGJ-001"),
        await desk.refused(*HANDLERS["SCJGJ"][:1], "ReplyToComplaint",
                           pb.ReplyToComplaintRequest(request_id=_rid(), case_number=number,
                                                      text="已处理"), HANDLERS["SCJGJ"][1]),
        await desk.refused(HOTLINE, "RateComplaint", pb.RateComplaintRequest(
            request_id=_rid(), case_number=number, level=5)),
    ]
    assert [code for code, _ in refusals] == [
        grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.FAILED_PRECONDITION], refusals
    assert desk.snapshot(number) == before

    signed = await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    assert (signed.status, signed.department_code) == (pb.COMPLAINT_STATUS_HANDLING, "SCJGJ")
    # The lead's handler does not name co-handlers: the center's dispatcher does.
    code, _ = await desk.refused(*HANDLERS["SCJGJ"][:1], "SetCoHandlers",
                                 pb.SetCoHandlersRequest(request_id=_rid(), case_number=number,
                                                         department_codes=["ZJJ"]),
                                 HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    co = await desk.dispatcher("SetCoHandlers", pb.SetCoHandlersRequest(
        request_id=_rid(), case_number=number, department_codes=["ZJJ"]))
    assert co.status == pb.COMPLAINT_STATUS_HANDLING
    # The lead cannot reply while a co-handler has not contributed.
    before = desk.snapshot(number)
    code, _ = await desk.refused(*HANDLERS["SCJGJ"][:1], "ReplyToComplaint",
                                 pb.ReplyToComplaintRequest(request_id=_rid(),
                                                            case_number=number, text="答复"),
                                 HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert desk.snapshot(number) == before
    view = await desk.status(number)
    assert (view.co_handlers, view.contributions_pending) == (["ZJJ"], ["ZJJ"])

    await desk.handler("ZJJ", "ContributeToComplaint", pb.ContributeToComplaintRequest(
        request_id=_rid(), case_number=number, text="执法局已现场检查"))
    replied = await desk.handler("SCJGJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="经查属实，已责令下架并立案处罚"))
    assert replied.status == pb.COMPLAINT_STATUS_REPLIED
    got = await desk.get(number)
    assert got.complaint.status == pb.COMPLAINT_STATUS_REPLIED
    assert got.handling.status == pb.COMPLAINT_STATUS_REPLIED
    assert [r.text for r in got.handling.replies] and "已责令下架" in got.handling.replies[0].text
    view = await desk.status(number)
    assert view.stage == "replied" and view.rating_closes

    # Another platform cannot rate it; a rating outside 1..5 is refused by validation.
    code, _ = await desk.refused(PORTAL, "RateComplaint", pb.RateComplaintRequest(
        request_id=_rid(), case_number=number, level=5))
    assert code == grpc.StatusCode.NOT_FOUND
    rated = await desk.rate(number, 5)
    assert rated.status == pb.COMPLAINT_STATUS_CLOSED
    result = await desk.ended(number)
    assert (result.stage, result.reason, result.rating, result.reopened) == (
        "closed", "rated", 5, False)
    await desk.visible(f"CaseNumber = '{number}' AND CaseKind = '{CASE_KIND}' "
                       "AND Stage = 'closed' AND Department = 'SCJGJ'")
    got = await desk.get(number)
    assert (got.complaint.status, got.handling.rating) == (pb.COMPLAINT_STATUS_CLOSED, 5)
    handle = client.get_workflow_handle(workflow_id(number))
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    # Once: one workflow run for the case, one start recorded.
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id(number)}'")]
    assert len(runs) == 1
    started = desk.rows("SELECT count(*) FROM audit_log WHERE action = "
                        "'complaint.workflow_started' AND subject = :s",
                        s=f"complaint/{number}")
    assert started == [(1,)]


async def test_a_returned_case_is_reassigned_and_signed_for_by_the_new_department(
        desk: Desk) -> None:
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    # Handled a while: a co-handler named, an extension asked. A return ends both.
    await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    await desk.dispatcher("SetCoHandlers", pb.SetCoHandlersRequest(
        request_id=_rid(), case_number=number, department_codes=["ZJJ"]))
    await desk.handler("SCJGJ", "RequestComplaintExtension", pb.RequestComplaintExtensionRequest(
        request_id=_rid(), case_number=number, days=3, basis="需协调"))
    returned = await desk.handler("SCJGJ", "ReturnComplaint", pb.ReturnComplaintRequest(
        request_id=_rid(), case_number=number, basis="属于卫健委职责"))
    assert returned.status == pb.COMPLAINT_STATUS_RETURNED
    view = await desk.status(number)
    assert (view.stage, view.co_handlers, view.extension_pending) == ("returned", [], False)
    got = await desk.get(number)
    assert (list(got.handling.co_handlers), got.handling.extension_pending_days) == ([], 0)
    # The old department can no longer act; the handler cannot dispatch.
    before = desk.snapshot(number)
    code, _ = await desk.refused(*HANDLERS["SCJGJ"][:1], "SignForComplaint",
                                 pb.SignForComplaintRequest(request_id=_rid(),
                                                            case_number=number),
                                 HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = await desk.refused(*HANDLERS["WJW"][:1], "SignForComplaint",
                                 pb.SignForComplaintRequest(request_id=_rid(),
                                                            case_number=number),
                                 HANDLERS["WJW"][1])
    assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION)
    assert desk.snapshot(number) == before

    moved = await desk.dispatcher("DispatchComplaint", pb.DispatchComplaintRequest(
        request_id=_rid(), case_number=number, outcome=pb.DISPATCH_OUTCOME_REASSIGN,
        department_code="WJW", basis="改派卫健委"))
    assert (moved.status, moved.department_code) == (pb.COMPLAINT_STATUS_ROUTED, "WJW")
    view = await desk.status(number)
    assert (view.stage, view.department_code) == ("routed", "WJW")
    code, _ = await desk.refused(*HANDLERS["SCJGJ"][:1], "SignForComplaint",
                                 pb.SignForComplaintRequest(request_id=_rid(),
                                                            case_number=number),
                                 HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # WJW returns it too; the dispatcher sends it back: WJW keeps it.
    await desk.handler("WJW", "ReturnComplaint", pb.ReturnComplaintRequest(
        request_id=_rid(), case_number=number, basis="不属于卫健委职责"))
    back = await desk.dispatcher("DispatchComplaint", pb.DispatchComplaintRequest(
        request_id=_rid(), case_number=number, outcome=pb.DISPATCH_OUTCOME_SEND_BACK,
        basis="经审核属于卫健委职责，退回承办"))
    assert (back.status, back.department_code) == (pb.COMPLAINT_STATUS_ROUTED, "WJW")
    request = pb.SignForComplaintRequest(request_id=_rid(), case_number=number)
    signed = await desk.handler("WJW", "SignForComplaint", request)
    assert (signed.status, signed.department_code) == (pb.COMPLAINT_STATUS_HANDLING, "WJW")
    # The same request again gets the same answer and changes nothing; its id for another
    # request is ALREADY_EXISTS.
    before = desk.snapshot(number)
    assert await desk.handler("WJW", "SignForComplaint", request) == signed
    code, _ = await desk.refused(*HANDLERS["WJW"][:1], "ReturnComplaint",
                                 pb.ReturnComplaintRequest(request_id=request.request_id,
                                                           case_number=number, basis="再退"),
                                 HANDLERS["WJW"][1])
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert desk.snapshot(number) == before
    # The new department handles it afresh: its own extension, its own reply.
    await desk.handler("WJW", "RequestComplaintExtension", pb.RequestComplaintExtensionRequest(
        request_id=_rid(), case_number=number, days=2, basis="需抽检"))
    await desk.dispatcher("DecideComplaintExtension", pb.DecideComplaintExtensionRequest(
        request_id=_rid(), case_number=number, decision=pb.EXTENSION_DECISION_REFUSED))
    replied = await desk.handler("WJW", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="卫健委已处理"))
    assert (replied.status, replied.department_code) == (pb.COMPLAINT_STATUS_REPLIED, "WJW")
    got = await desk.get(number)
    assert (got.complaint.department_code, got.handling.status) == (
        "WJW", pb.COMPLAINT_STATUS_REPLIED)
    assert [r.text for r in got.handling.replies] == ["卫健委已处理"]
    await desk.visible(f"CaseNumber = '{number}' AND Department = 'WJW' AND Stage = 'replied'")


async def test_an_unsatisfied_rating_reopens_once_and_the_second_closes(desk: Desk) -> None:
    number = await desk.submit("ZJJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    await desk.handler("ZJJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    first_due = _at((await desk.get(number)).handling.reply_due)
    await desk.handler("ZJJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="已督促整改"))
    reopened = await desk.rate(number, 1)
    assert (reopened.status, reopened.reopened) == (pb.COMPLAINT_STATUS_HANDLING, True)
    # A new reply deadline, counted from the rating (the same day here, so not earlier).
    assert _at(reopened.reply_due) >= first_due
    view = await desk.status(number)
    assert (view.stage, view.reopened) == ("handling", True)
    assert datetime.fromisoformat(view.reply_due) == _at(reopened.reply_due)
    await desk.handler("ZJJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="再次核查并处理"))
    closed = await desk.rate(number, 2)
    assert closed.status == pb.COMPLAINT_STATUS_CLOSED
    result = await desk.ended(number)
    assert (result.stage, result.rating, result.reopened) == ("closed", 2, True)
    got = await desk.get(number)
    assert [r.text for r in got.handling.replies] == ["已督促整改", "再次核查并处理"]
    # Closed: a further rating is refused, nothing changes.
    before = desk.snapshot(number)
    code, _ = await desk.refused(HOTLINE, "RateComplaint", pb.RateComplaintRequest(
        request_id=_rid(), case_number=number, level=1))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert desk.snapshot(number) == before


async def test_a_merged_duplicate_gets_the_primary_s_reply_at_both_origins(
        desk: Desk) -> None:
    primary = await desk.submit("WJW", f"E2E-{uuid.uuid4().hex[:8]}", content="诊所乱收费")
    duplicate = await desk.submit("WJW", f"E2E-{uuid.uuid4().hex[:8]}", platform=PORTAL,
                                  content="诊所乱收费（重复）")
    await desk.started(primary)
    await desk.started(duplicate)
    # Only the dispatcher merges.
    before = desk.snapshot(duplicate)
    code, _ = await desk.refused(*HANDLERS["WJW"][:1], "MergeComplaint",
                                 pb.MergeComplaintRequest(request_id=_rid(),
                                                          case_number=duplicate,
                                                          primary_case_number=primary),
                                 HANDLERS["WJW"][1])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert desk.snapshot(duplicate) == before
    merged = await desk.dispatcher("MergeComplaint", pb.MergeComplaintRequest(
        request_id=_rid(), case_number=duplicate, primary_case_number=primary))
    assert merged.status == pb.COMPLAINT_STATUS_MERGED
    result = await desk.ended(duplicate)
    assert (result.stage, result.reason) == ("merged", "merged")

    async def primary_shows_it() -> bool:
        return duplicate in (await desk.status(primary)).merged_cases
    await within(desk.deadline, "the primary shows its merged duplicate", primary_shows_it)

    await desk.handler("WJW", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=primary))
    await desk.handler("WJW", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=primary, text="已约谈诊所并退还费用"))
    at_primary = await desk.get(primary)
    at_duplicate = await desk.get(duplicate, platform=PORTAL)
    assert [r.text for r in at_primary.handling.replies] == ["已约谈诊所并退还费用"]
    assert [r.text for r in at_duplicate.handling.replies] == ["已约谈诊所并退还费用"]
    assert at_duplicate.handling.merged_into == primary
    # Each origin platform gets the reply as its own event, about its own case, once.
    for platform, number in ((HOTLINE, primary), (PORTAL, duplicate)):
        events = (await desk.call(platform, "ListPlatformEvents",
                                  pb.ListPlatformEventsRequest(page_size=500))).events
        replies = [e for e in events
                   if e.case_number == number and e.event_type == "complaint.replied"]
        assert [e.data["reply"] for e in replies] == ["已约谈诊所并退还费用"], platform
        assert not [e for e in events if e.case_number == (duplicate if platform == HOTLINE
                                                           else primary)]
    # The duplicate's platform sees its own case only.
    code, _ = await desk.refused(PORTAL, "GetComplaint",
                                 pb.GetComplaintRequest(case_number=primary))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_an_extension_requested_and_granted_moves_the_reply_due(desk: Desk) -> None:
    # The operator allows longer extensions than the default ten working days.
    policy = (await desk.call("operator", "GetDeadlinePolicy",
                              pb.GetDeadlinePolicyRequest())).policy
    policy.max_extension_days, policy.basis = 15, "重大复杂诉求可延期至十五个工作日"
    await desk.call("operator", "SetDeadlinePolicy", pb.SetDeadlinePolicyRequest(policy=policy),
                    "ZWFWZX-004")
    number = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    await desk.started(number)
    await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    due = (await desk.status(number)).reply_due
    # Deciding before anything was requested is out of order.
    before = desk.snapshot(number)
    code, _ = await desk.refused(*DISPATCH[:1], "DecideComplaintExtension",
                                 pb.DecideComplaintExtensionRequest(
                                     request_id=_rid(), case_number=number,
                                     decision=pb.EXTENSION_DECISION_GRANTED, days=5),
                                 DISPATCH[1])
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert desk.snapshot(number) == before
    asked = await desk.handler("SCJGJ", "RequestComplaintExtension",
                               pb.RequestComplaintExtensionRequest(
                                   request_id=_rid(), case_number=number, days=12,
                                   basis="需等待检测报告"))
    assert asked.status == pb.COMPLAINT_STATUS_HANDLING
    assert (await desk.status(number)).extension_pending
    # The handler cannot grant its own extension.
    code, _ = await desk.refused(*HANDLERS["SCJGJ"][:1], "DecideComplaintExtension",
                                 pb.DecideComplaintExtensionRequest(
                                     request_id=_rid(), case_number=number,
                                     decision=pb.EXTENSION_DECISION_GRANTED, days=5),
                                 HANDLERS["SCJGJ"][1])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    granted = await desk.dispatcher("DecideComplaintExtension",
                                    pb.DecideComplaintExtensionRequest(
                                        request_id=_rid(), case_number=number,
                                        decision=pb.EXTENSION_DECISION_GRANTED, days=12))
    view = await desk.status(number)
    assert not view.extension_pending
    # Twelve working days on from the old due day, by the service's calendar: from a case
    # received in December that runs into a year the built-in calendar may not know yet.
    assert datetime.fromisoformat(view.reply_due) == extended_reply_due(
        WorkingCalendar(), reply_due=datetime.fromisoformat(due), days=12).at
    assert _at(granted.reply_due) == datetime.fromisoformat(view.reply_due)
    got = await desk.get(number)
    assert (got.handling.extended_days, got.handling.extension_pending_days) == (12, 0)
    assert _at(got.handling.reply_due) == datetime.fromisoformat(view.reply_due)
