"""The complaint handling activities as a worker runs them, on a real database (both lanes).

Statements are signed with the complaints service's own key, as its RPCs sign them;
forged ones are refused and recorded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.errors import Unavailable
from kernel.fieldcipher import field_cipher
from kernel.signing import ServiceSigner, TrustedKeys, service_signer
from services.complaints.activities import ComplaintsActivities
from services.complaints.app.recording import received_statement
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.main import DEFINITION
from services.complaints.settings import complainant_key_path
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test
from workflows.complaint_contract import (
    ActRecord,
    ActRecorded,
    Closing,
    OpenCase,
    Overdue,
    StatementKind,
    as_statement,
    complaint_statement_body,
    content_digest,
)

NAME, PHONE = "欧阳晓筠", "13975318642"
HANDLER, DISPATCHER = "SCJGJ-008", "ZWFWZX-009"


@dataclass
class Bench:
    service: ServiceUnderTest
    activities: ComplaintsActivities
    signer: ServiceSigner
    clock: list[datetime]

    def case(self, number: str) -> Any:
        with ComplaintsUnitOfWork(self.service.running.engine, write=False) as uow:
            return uow.handling.get(number)

    def rows(self, table: sa.Table, number: str) -> list[Any]:
        with self.service.running.engine.connect() as connection:
            return list(connection.execute(sa.select(table).where(
                table.c.case_number == number)))

    def act(self, kind: StatementKind, number: str, *, official: str = HANDLER,
            department: str = "SCJGJ", roles: tuple[str, ...] = ("complaint_handler",),
            texts: dict[str, str] | None = None, **facts: Any) -> ActRecord:
        texts = texts or {}
        body = complaint_statement_body(
            kind=kind, case_number=number, official_id=official, department_code=department,
            roles=list(roles), system="department-system-scjgj", issued_at=self.clock[0],
            request_id=f"r-{len(self.rows(tables.complaint_events, number))}-{kind}",
            content_sha256=content_digest(**texts) if texts else "", **facts)
        return ActRecord(as_statement(self.signer.sign(body)), texts)

    def dispatcher_act(self, kind: StatementKind, number: str, **facts: Any) -> ActRecord:
        return self.act(kind, number, official=DISPATCHER, department="ZWFWZX",
                        roles=("complaint_dispatcher",), **facts)

    async def record(self, act: ActRecord) -> ActRecorded:
        result: ActRecorded = await ActivityEnvironment().run(self.activities.record_act, act)
        return result

    async def submit(self, external_id: str, *, category: str = "SC-01",
                     platform_system: str = "hotline-12345",
                     received_at: datetime | None = None) -> str:
        """Push a case and open it; ``received_at``: as if it had arrived then."""
        async with self.service.channel(platform_system) as channel:
            response = await complaints_pb2_grpc.ComplaintsServiceStub(channel).SubmitComplaint(
                pb.SubmitComplaintRequest(
                    external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT,
                    category_code=category, content="超市出售过期食品",
                    complainant_name=NAME, complainant_phone=PHONE))
        number: str = response.complaint.case_number
        if received_at is not None:
            with self.service.running.engine.begin() as connection:
                connection.execute(sa.update(tables.complaint_cases).where(
                    tables.complaint_cases.c.case_number == number).values(
                    received_at=received_at))
        with ComplaintsUnitOfWork(self.service.running.engine, write=False) as uow:
            case = uow.handling.get(number)
        assert case is not None
        await ActivityEnvironment().run(self.activities.open_case,
                                        OpenCase(received_statement(self.signer, case)))
        return number


@pytest.fixture
async def bench(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[Bench]:
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir) as service:
        signer = service_signer(pki_dir, "complaints")
        clock = [datetime(2026, 11, 9, 2, 0, tzinfo=UTC)]
        keys = TrustedKeys({"complaints": [signer.public_key]})
        activities = ComplaintsActivities(
            service.running.engine, keys, field_cipher(complainant_key_path(pki_dir)),
            clock=lambda: clock[0])
        yield Bench(service, activities, signer, clock)


async def test_open_sign_for_reply_rate_close_with_deadlines(bench: Bench) -> None:
    # Arrived Monday 9 November 2026, 10:00 in China (the bench's clock): a complaint.
    number = await bench.submit("HL-1", received_at=bench.clock[0])
    opened = bench.case(number)
    assert opened.policy_version == 1
    # Sign-for: four working hours, 10:00-12:00 and 13:30-15:30 (07:30 UTC).
    assert opened.sign_for_due == datetime(2026, 11, 9, 7, 30, tzinfo=UTC)
    # Reply: the end of working time (17:30, 09:30 UTC) 15 working days after the 9th:
    # 10-13, 16-20, 23-27 November and Monday the 30th (no holiday in November).
    assert opened.reply_due == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    signed = await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    assert (signed.stage, signed.sign_for_due) == ("handling", None)
    assert signed.reply_due == opened.reply_due
    replied = await bench.record(bench.act(
        StatementKind.REPLY, number, texts={"reply": f"已查处。联系人{NAME}，电话{PHONE}。"}))
    # The rating window: five working days after the reply's day (10-13 and the 16th).
    assert replied.stage == "replied"
    assert replied.rating_closes == datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
    assert bench.case(number).rating_closes == replied.rating_closes
    [reply] = bench.rows(tables.complaint_replies, number)
    assert NAME in reply.text and PHONE in reply.text
    assert NAME not in reply.published_text and PHONE not in reply.published_text
    # No personal data in the events, whatever the reply said.
    events = json.dumps([tuple(r) for r in bench.rows(tables.complaint_events, number)],
                        ensure_ascii=False, default=str)
    assert NAME not in events and PHONE not in events
    rated = await bench.record(bench.act(
        StatementKind.RATING, number, official="12345", department="", roles=(),
        texts={"comment": ""}, platform_id="12345", level=5))
    case = bench.case(number)
    assert rated.stage == "closed" and case.rating == 5 and case.closed_at is not None


async def test_a_retried_act_records_nothing_twice(bench: Bench) -> None:
    number = await bench.submit("HL-2")
    act = bench.act(StatementKind.SIGN_FOR, number)
    first = await bench.record(act)
    events = len(bench.rows(tables.complaint_events, number))
    again = await bench.record(act)
    assert again == first
    assert len(bench.rows(tables.complaint_events, number)) == events
    # The same case opened again keeps its clock.
    case = bench.case(number)
    clock = await ActivityEnvironment().run(bench.activities.open_case,
                                            OpenCase(received_statement(bench.signer, case)))
    assert (clock.sign_for_due, clock.reply_due) == (case.sign_for_due, case.reply_due)


async def test_a_forged_or_altered_act_is_refused_and_recorded(bench: Bench,
                                                               pki_dir: Path) -> None:
    number = await bench.submit("HL-3")
    other = ServiceSigner("complaints", __import__(
        "cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"]
    ).Ed25519PrivateKey.generate())
    body = complaint_statement_body(
        kind=StatementKind.SIGN_FOR, case_number=number, official_id=HANDLER,
        department_code="SCJGJ", roles=["complaint_handler"], system="rogue",
        issued_at=bench.clock[0])
    with pytest.raises(ApplicationError) as forged:
        await bench.record(ActRecord(as_statement(other.sign(body))))
    assert forged.value.type == "PermissionDenied" and forged.value.non_retryable
    signed_for = await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    assert signed_for.stage == "handling"
    altered = bench.act(StatementKind.REPLY, number, texts={"reply": "答复"})
    altered.texts["reply"] = "另一个答复"
    with pytest.raises(ApplicationError) as refused:
        await bench.record(altered)
    assert refused.value.type == "PermissionDenied"
    assert bench.case(number).status == "handling"
    assert bench.rows(tables.complaint_replies, number) == []
    with bench.service.running.engine.connect() as connection:
        violations = connection.execute(sa.select(sa.func.count()).select_from(
            tables.audit_log).where(
            tables.audit_log.c.action == "violation.refused_statement")).scalar_one()
    assert violations == 2


async def test_wrong_department_or_stage_is_refused_and_changes_nothing(bench: Bench) -> None:
    number = await bench.submit("HL-4")
    with pytest.raises(ApplicationError) as other_department:
        await bench.record(bench.act(StatementKind.SIGN_FOR, number, official="ZJJ-008",
                                     department="ZJJ"))
    assert other_department.value.type == "PermissionDenied"
    with pytest.raises(ApplicationError) as too_early:
        await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复"}))
    assert too_early.value.type == "FailedPrecondition"
    with pytest.raises(ApplicationError) as not_a_dispatcher:
        await bench.record(bench.act(StatementKind.MERGE, number,
                                     primary_case_number="CP-20261109-000009"))
    assert not_a_dispatcher.value.type == "PermissionDenied"
    assert bench.case(number).status == "routed"


async def test_return_then_reassign_and_send_back(bench: Bench) -> None:
    number = await bench.submit("HL-5")
    returned = await bench.record(bench.act(StatementKind.RETURN, number,
                                            texts={"basis": "不属于本部门职责"}))
    assert returned.stage == "returned"
    assert bench.case(number).returned_by == "SCJGJ"
    bench.clock[0] += timedelta(hours=1)
    reassigned = await bench.record(bench.dispatcher_act(
        StatementKind.DISPATCH, number, texts={"basis": "属卫健委职责"}, outcome="reassign",
        target_department="WJW"))
    assert (reassigned.stage, reassigned.department_code) == ("routed", "WJW")
    assert reassigned.sign_for_due is not None
    back = await bench.record(bench.act(StatementKind.RETURN, number, official="WJW-008",
                                        department="WJW", texts={"basis": "也不属于"}))
    assert back.stage == "returned"
    sent_back = await bench.record(bench.dispatcher_act(
        StatementKind.DISPATCH, number, texts={"basis": "应由卫健委办理"}, outcome="send_back",
        target_department="WJW"))
    assert (sent_back.stage, sent_back.department_code) == ("routed", "WJW")
    decided = bench.rows(tables.complaint_returns, number)
    assert [(r.department_code, r.outcome, r.target_department) for r in decided] == [
        ("SCJGJ", "reassign", "WJW"), ("WJW", "send_back", "WJW")]


async def test_co_handlers_contributions_join_the_reply(bench: Bench) -> None:
    number = await bench.submit("HL-6")
    # The center's dispatcher names them (as the workflow's rule says), even before sign-for;
    # the lead's handler cannot.
    with pytest.raises(ApplicationError) as by_handler:
        await bench.record(bench.act(StatementKind.CO_HANDLERS, number, co_handlers=["WJW"]))
    assert by_handler.value.type == "PermissionDenied"
    assert bench.rows(tables.complaint_co_handlers, number) == []
    await bench.record(bench.dispatcher_act(StatementKind.CO_HANDLERS, number,
                                            co_handlers=["WJW"]))
    await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    with pytest.raises(ApplicationError) as waiting:
        await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复"}))
    assert waiting.value.type == "FailedPrecondition"
    await bench.record(bench.act(StatementKind.CONTRIBUTION, number, official="WJW-008",
                                 department="WJW", texts={"contribution": "卫健委已抽检"}))
    await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "市监局已查处"}))
    [reply] = bench.rows(tables.complaint_replies, number)
    assert "市监局已查处" in reply.text and "卫健委已抽检" in reply.text


async def test_a_merged_duplicate_gets_the_primarys_reply(bench: Bench) -> None:
    primary = await bench.submit("HL-7")
    duplicate = await bench.submit("PV-7", platform_system="provincial-complaint-portal")
    merged = await bench.record(bench.dispatcher_act(StatementKind.MERGE, duplicate,
                                                     primary_case_number=primary))
    assert merged.stage == "merged" and bench.case(duplicate).merged_into == primary
    await bench.record(bench.act(StatementKind.SIGN_FOR, primary))
    replied = await bench.record(bench.act(StatementKind.REPLY, primary,
                                           texts={"reply": "已查处"}))
    assert replied.closed_cases == [duplicate]
    assert [r.answered_by for r in bench.rows(tables.complaint_replies, duplicate)] == [primary]
    assert len(bench.rows(tables.complaint_replies, primary)) == 1
    assert bench.case(duplicate).replied_at is not None
    # Each origin gets the reply as an event of its own platform, about its own case.
    for number, platform in ((primary, "12345"), (duplicate, "LNZWFW")):
        events = [(e.platform_id, json.loads(e.payload)["data"])
                  for e in bench.rows(tables.platform_events, number)
                  if e.event_type == "complaint.replied"]
        assert [(p, d["reply"], d["case_number"]) for p, d in events] \
            == [(platform, "已查处", number)]


async def test_extension_granted_then_refused(bench: Bench) -> None:
    number = await bench.submit("HL-8")
    await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    due = bench.case(number).reply_due
    await bench.record(bench.act(StatementKind.EXTENSION_REQUEST, number, days=3,
                                 texts={"basis": "需现场检测"}))
    granted = await bench.record(bench.dispatcher_act(StatementKind.EXTENSION_DECISION, number,
                                                      outcome="granted", days=3))
    assert granted.reply_due is not None and granted.reply_due > due
    assert bench.case(number).extended_days == 3
    bench.clock[0] += timedelta(minutes=1)
    await bench.record(bench.act(StatementKind.EXTENSION_REQUEST, number, days=2,
                                 texts={"basis": "再需两天"}))
    refused = await bench.record(bench.dispatcher_act(StatementKind.EXTENSION_DECISION, number,
                                                      outcome="refused"))
    assert refused.reply_due == granted.reply_due
    with pytest.raises(ApplicationError) as too_long:
        await bench.record(bench.act(StatementKind.EXTENSION_REQUEST, number, days=8,
                                     texts={"basis": "太长"}))
    assert too_long.value.type == "InvalidArgument"


async def test_an_unsatisfied_rating_reopens_once(bench: Bench) -> None:
    number = await bench.submit("HL-9")
    await bench.record(bench.act(StatementKind.SIGN_FOR, number))

    def rating(level: int) -> ActRecord:
        return bench.act(StatementKind.RATING, number, official="12345", department="",
                         roles=(), texts={"comment": "不满意"}, platform_id="12345",
                         level=level)

    await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复一"}))
    reopened = await bench.record(rating(1))
    assert reopened.stage == "handling" and bench.case(number).reopened
    bench.clock[0] += timedelta(minutes=1)
    await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复二"}))
    closed = await bench.record(rating(2))
    assert closed.stage == "closed"


def _snapshot(bench: Bench, number: str) -> list[Any]:
    """What a refused rating must leave as it was."""
    return [bench.rows(table, number) for table in (
        tables.complaint_cases, tables.complaint_events, tables.complaint_replies,
        tables.platform_events)]


async def _replied(bench: Bench, external_id: str) -> str:
    number = await bench.submit(external_id)
    await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复"}))
    return number


async def _rate_over_grpc(bench: Bench, system: str, number: str) -> grpc.StatusCode:
    async with bench.service.channel(system) as channel:
        try:
            await complaints_pb2_grpc.ComplaintsServiceStub(channel).RateComplaint(
                pb.RateComplaintRequest(request_id="late", case_number=number, level=5),
                timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_another_platform_cannot_rate_a_replied_case(bench: Bench) -> None:
    number = await _replied(bench, "HL-11")
    before = _snapshot(bench, number)
    with pytest.raises(ApplicationError) as other_platform:
        await bench.record(bench.act(StatementKind.RATING, number, official="LNZWFW",
                                     department="", roles=(), texts={"comment": ""},
                                     platform_id="LNZWFW", level=1))
    assert other_platform.value.type == "PermissionDenied"
    assert _snapshot(bench, number) == before
    # Over gRPC, the other platform's system is told there is no such case of its own.
    assert await _rate_over_grpc(bench, "provincial-complaint-portal", number) \
        == grpc.StatusCode.NOT_FOUND
    assert _snapshot(bench, number) == before


async def test_a_rating_after_the_window_is_refused_and_changes_nothing(bench: Bench) -> None:
    number = await _replied(bench, "HL-12")
    closes = bench.case(number).rating_closes
    bench.clock[0] = closes + timedelta(seconds=1)
    before = _snapshot(bench, number)
    with pytest.raises(ApplicationError) as late:
        await bench.record(bench.act(StatementKind.RATING, number, official="12345",
                                     department="", roles=(), texts={"comment": ""},
                                     platform_id="12345", level=1))
    assert late.value.type == "FailedPrecondition"
    assert _snapshot(bench, number) == before
    # The RPC reads the real clock: the window (from the bench's November 2026) has closed.
    assert closes < datetime.now(UTC)
    assert await _rate_over_grpc(bench, "hotline-12345", number) \
        == grpc.StatusCode.FAILED_PRECONDITION
    assert _snapshot(bench, number) == before
    with bench.service.running.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(
            tables.handled_requests)).scalar_one() == 0


async def test_overdue_escalates_once_and_a_lapsed_window_closes(bench: Bench) -> None:
    number = await bench.submit("HL-10")
    due = bench.case(number).sign_for_due
    bench.clock[0] = due + timedelta(seconds=1)
    first = await ActivityEnvironment().run(bench.activities.mark_overdue,
                                            Overdue(number, "sign_for", due))
    again = await ActivityEnvironment().run(bench.activities.mark_overdue,
                                            Overdue(number, "sign_for", due))
    assert first.escalations == again.escalations == 1
    assert bench.case(number).sla_state == "overdue"
    await bench.record(bench.act(StatementKind.SIGN_FOR, number))
    await bench.record(bench.act(StatementKind.REPLY, number, texts={"reply": "答复"}))
    # Asked a moment early (the service's clock behind Temporal's): a retryable failure, not
    # a refusal for good that would leave the workflow stuck; nothing closed.
    bench.clock[0] = bench.case(number).rating_closes - timedelta(milliseconds=5)
    with pytest.raises(Unavailable):
        await ActivityEnvironment().run(bench.activities.close_case,
                                        Closing(number, "rating_window_lapsed"))
    assert bench.case(number).status == "replied"
    bench.clock[0] = bench.case(number).rating_closes + timedelta(seconds=1)
    closed = await ActivityEnvironment().run(bench.activities.close_case,
                                             Closing(number, "rating_window_lapsed"))
    assert closed.stage == "closed"


async def test_a_late_opening_counts_the_deadlines_from_the_received_time(bench: Bench) -> None:
    # The outbox defers the starts while a burst of pushes is taken in, and Temporal may be
    # away for days: the case is opened (its workflow's first activity) long after it was
    # received. Its deadlines run from when it was received, as if opened at once.
    received = bench.clock[0]
    bench.clock[0] = received + timedelta(days=3, hours=5)
    number = await bench.submit("HL-LATE", received_at=received)
    opened = bench.case(number)
    assert opened.received_at == received
    assert opened.sign_for_due == datetime(2026, 11, 9, 7, 30, tzinfo=UTC)
    assert opened.reply_due == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    # The opening itself is recorded when it happened.
    [deadlines_set] = [row for row in bench.rows(tables.complaint_events, number)
                       if row.code == "complaint.deadlines_set"]
    assert deadlines_set.at == bench.clock[0]
