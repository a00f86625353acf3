"""Pushes taken in together (group commit): each answered on its own, none spoiling the others.

The batches are built here, directly on the service's real database, so what one batch
holds is certain; the last test pushes concurrently over gRPC, as a burst does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.db import make_engine
from kernel.errors import AlreadyExists, InvalidArgument, PermissionDenied
from kernel.fieldcipher import FieldCipher, field_cipher
from kernel.identity import Caller
from services.complaints.api.servicer import submission_from_proto
from services.complaints.app import cases
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.main import complainant_key_path
from tests.support import ServiceUnderTest

HOTLINE = Caller("hotline-12345")
PORTAL = Caller("provincial-complaint-portal")


def _push(external_id: str, caller: Caller = HOTLINE, **changes: Any) -> cases.Push:
    fields: dict[str, Any] = {
        "external_id": external_id, "kind": pb.COMPLAINT_KIND_COMPLAINT,
        "category_code": "SC-01", "content": f"早餐店使用过期食材（{external_id}）。",
        "complainant_name": "测试群众", "complainant_phone": "199-0000-0001"}
    return cases.Push(caller, submission_from_proto(
        pb.SubmitComplaintRequest(**(fields | changes))))


class Database:
    def __init__(self, service: ServiceUnderTest) -> None:
        self.engine = make_engine(service.settings.resolved_database_url())
        self.cipher: FieldCipher = field_cipher(complainant_key_path(service.pki_dir))

    def writing(self) -> ComplaintsUnitOfWork:
        return ComplaintsUnitOfWork(self.engine)

    def submit(self, pushes: list[cases.Push]) -> list[cases.Submitted | Exception]:
        return cases.submit_complaints(uow=self.writing, cipher=self.cipher, pushes=pushes,
                                       now=datetime.now(UTC))

    def cases(self) -> list[tuple[str, str]]:
        with self.engine.connect() as connection:
            return [(r.platform_id, r.external_id) for r in connection.execute(
                sa.select(tables.complaint_cases).order_by(
                    tables.complaint_cases.c.case_number))]

    def audited(self) -> list[str]:
        with self.engine.connect() as connection:
            return [r.subject for r in connection.execute(
                sa.select(tables.audit_log).where(
                    tables.audit_log.c.action == "complaint.submitted")
                .order_by(tables.audit_log.c.sequence))]


@pytest.fixture
def database(complaints: ServiceUnderTest) -> Any:
    database = Database(complaints)
    yield database
    database.engine.dispose()


def _numbers(answers: list[cases.Submitted | Exception]) -> list[str]:
    return [a.view.complaint.number for a in answers if isinstance(a, cases.Submitted)]


async def test_a_refused_push_in_a_batch_writes_nothing_and_the_others_commit(
        database: Database, complaints: ServiceUnderTest) -> None:
    answers = database.submit([
        _push("GC-1"), _push("GC-2", category_code="NO-SUCH"), _push("GC-3", PORTAL),
        _push("GC-4", Caller("operator")), _push("GC-5")])
    assert isinstance(answers[1], InvalidArgument)
    assert isinstance(answers[3], PermissionDenied)
    taken = [answers[0], answers[2], answers[4]]
    assert all(isinstance(a, cases.Submitted) and not a.replayed for a in taken)
    assert database.cases() == [("12345", "GC-1"), ("LNZWFW", "GC-3"), ("12345", "GC-5")]
    # One running number each, in order, with no gap for the refused ones.
    numbers = _numbers(taken)
    assert [int(n[-6:]) for n in numbers] == [1, 2, 3]
    assert database.audited() == [f"complaint/{n}" for n in numbers]
    async with complaints.channel("operator") as channel:
        verified = await complaints_pb2_grpc.ComplaintsServiceStub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())
    assert verified.verification.intact, verified.verification.reason


async def test_two_identical_pushes_in_one_batch_make_one_case(database: Database) -> None:
    first, again = database.submit([_push("GC-1"), _push("GC-1")])
    assert isinstance(first, cases.Submitted) and isinstance(again, cases.Submitted)
    assert not first.replayed and again.replayed
    assert first.view.complaint.number == again.view.complaint.number
    assert database.cases() == [("12345", "GC-1")]


async def test_other_content_under_an_external_id_of_the_same_batch_is_already_exists(
        database: Database) -> None:
    first, other = database.submit([_push("GC-1"), _push("GC-1", content="另一件事。")])
    assert isinstance(first, cases.Submitted) and not first.replayed
    assert isinstance(other, AlreadyExists)
    assert database.cases() == [("12345", "GC-1")]


async def test_a_re_push_of_a_committed_case_in_a_batch_is_replayed(
        database: Database) -> None:
    [earlier] = database.submit([_push("GC-1")])
    again, new = database.submit([_push("GC-1"), _push("GC-2")])
    assert isinstance(earlier, cases.Submitted) and isinstance(again, cases.Submitted)
    assert again.replayed and again.view.complaint.number == earlier.view.complaint.number
    assert isinstance(new, cases.Submitted) and not new.replayed
    assert database.cases() == [("12345", "GC-1"), ("12345", "GC-2")]


async def test_a_batch_that_fails_as_a_whole_is_taken_push_by_push(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in one push's writing (here: its sealing) fails only that push."""
    sealing = cases.seal_complainant

    def seal(cipher: FieldCipher, complainant: Any, *, number: str) -> str:
        if complainant.phone == "199-9999-9999":
            raise RuntimeError("this push cannot be sealed")
        return sealing(cipher, complainant, number=number)

    monkeypatch.setattr(cases, "seal_complainant", seal)
    answers = database.submit([_push("GC-1"), _push("GC-2", complainant_phone="199-9999-9999"),
                               _push("GC-3")])
    assert isinstance(answers[1], RuntimeError)
    assert all(isinstance(answers[at], cases.Submitted) for at in (0, 2))
    assert database.cases() == [("12345", "GC-1"), ("12345", "GC-3")]
    assert len(database.audited()) == 2


async def test_a_concurrent_burst_over_grpc_answers_every_push_once(
        complaints: ServiceUnderTest, database: Database) -> None:
    """Many calls in flight at once share transactions; each still gets its own answer."""
    requests = [pb.SubmitComplaintRequest(
        external_id=f"GC-{n % 40}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code="NO-SUCH" if n % 40 == 7 else "SC-01", content=f"第{n % 40}件。",
        complainant_name="测试群众", complainant_phone="199-0000-0001") for n in range(120)]
    async with complaints.channel("hotline-12345") as channel:
        stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        answers = await asyncio.gather(*(stub.SubmitComplaint(r) for r in requests),
                                       return_exceptions=True)
    refused = [a for a, r in zip(answers, requests, strict=True) if r.category_code == "NO-SUCH"]
    assert len(refused) == 3 and all(isinstance(a, Exception) for a in refused)
    taken = [a for a in answers if isinstance(a, pb.SubmitComplaintResponse)]
    assert len(taken) == 117
    assert sum(not a.replayed for a in taken) == 39
    numbers = {a.complaint.external_id: a.complaint.case_number for a in taken}
    assert all(numbers[a.complaint.external_id] == a.complaint.case_number for a in taken)
    assert len(database.cases()) == 39
