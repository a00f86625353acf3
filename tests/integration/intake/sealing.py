"""Sealing decisions in intake's tests: chains signed the way review signs them.

A case is accepted over real gRPC; its decisions are statements signed with
review's key from the run's PKI (tests.unit.workflows.fakes.Signers), and
the real ``intake.seal`` activity seals them, run in temporalio's
ActivityEnvironment against the service's database.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select
from temporalio.testing import ActivityEnvironment

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.signing import ServiceSigner
from services.intake.activities import IntakeActivities
from services.intake.db import tables
from tests.support import ServiceUnderTest, as_official, routed_stub
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Official, Signers
from workflows import approval_contract as c

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

ITEM = "012101000007001"  # 食品经营许可（新办）, SCJGJ: M01-M06 required
CLERK = "SCJGJ-001"
OPINION = "符合条件"
LEGAL_BASIS = "《食品经营许可管理办法》第十条"
PERSON = pb.Applicant(kind=pb.APPLICANT_KIND_PERSON, name="张三丰",
                      id_number="110101199003077777", phone="13800000000")
ORGANISATION = pb.Applicant(kind=pb.APPLICANT_KIND_ORGANISATION,
                            name="沈阳市和平区老边饺子馆有限公司",
                            id_number="91210102MA0XXXXX1K", phone="02488888888")


def routed(service: ServiceUnderTest, default_system: str = "operator") -> Any:
    """Intake's stub whose calls go through the system each official acts through: the
    hall's window system for clerks, a department's own for its officials, the operators'
    console, supervision's; a call naming nobody goes through ``default_system``."""
    return routed_stub(service, intake_pb2_grpc.IntakeServiceStub,
                       pb.DESCRIPTOR.services_by_name["IntakeService"].full_name,
                       default_system=default_system)


def closed_port() -> str:
    """An address nothing listens on: a port bound for a moment, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


def application(applicant: pb.Applicant = PERSON) -> pb.SubmitApplicationRequest:
    """A complete application for the food business permit: accepted at once."""
    return pb.SubmitApplicationRequest(
        idempotency_key=str(uuid.uuid4()), item_code=ITEM, applicant=applicant,
        materials=[pb.SubmittedMaterial(code=f"M0{i}", provided=True) for i in range(1, 7)],
        finding=pb.FINDING_NONE)


def taken(signers: Signers, case_number: str, who: Official, stage: str, outcome: str, *,
          at: datetime, opinion: str = OPINION, legal_basis: str = LEGAL_BASIS,
          signer: ServiceSigner | None = None) -> c.DecisionTaken:
    """A decision as the workflow hands it to the seal: review's statement and its texts."""
    statement = signers.statement(
        c.StatementKind.DECISION, case_number, who, signer=signer, at=at, stage=stage,
        outcome=outcome, content_sha256=c.content_digest(opinion=opinion,
                                                         legal_basis=legal_basis))
    return c.DecisionTaken(stage, outcome, who.official_id, who.on_behalf_of,
                           who.delegation_id, who.system, at, statement, opinion, legal_basis)


@dataclass
class Sealing:
    """The intake service (Temporal out of reach), its database and the signing keys."""

    service: ServiceUnderTest
    engine: Engine
    signers: Signers

    async def accepted_case(self, stub: IntakeServiceAsyncStub,
                            applicant: pb.Applicant = PERSON) -> tuple[str, datetime]:
        """A new accepted case: its number and the instant it was accepted."""
        response = await stub.SubmitApplication(application(applicant),
                                                metadata=as_official(CLERK))
        assert response.outcome == pb.INTAKE_OUTCOME_ACCEPTED
        return str(response.case.case_number), response.case.accepted_at.ToDatetime(UTC)

    def chain(self, case_number: str, accepted_at: datetime, *, review: str = "approve",
              sign: str = "approve") -> list[c.DecisionTaken]:
        """Review, sign and seal by three officials, a millisecond apart, after the acceptance."""
        step = timedelta(milliseconds=1)
        return [
            taken(self.signers, case_number, REVIEWER, c.Stage.REVIEW, review,
                  at=accepted_at + step),
            taken(self.signers, case_number, LEADER, c.Stage.SIGN, sign,
                  at=accepted_at + 2 * step),
            taken(self.signers, case_number, SEALER, c.Stage.SEAL, c.Outcome.SEAL,
                  at=accepted_at + 3 * step)]

    async def seal(self, case_number: str,
                   decisions: list[c.DecisionTaken]) -> c.SealReceipt:
        """What the ``intake.seal`` activity answers (it raises its refusals)."""
        activities = IntakeActivities(self.engine, self.service.settings)
        receipt: c.SealReceipt = await ActivityEnvironment().run(
            activities.seal, c.SealRequest(case_number, decisions))
        return receipt

    async def sealed_case(self, stub: IntakeServiceAsyncStub, applicant: pb.Applicant = PERSON,
                          *, sign: str = "approve") -> tuple[str, c.SealReceipt]:
        number, accepted_at = await self.accepted_case(stub, applicant)
        return number, await self.seal(number, self.chain(number, accepted_at, sign=sign))

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(tables.metadata.tables[table])).scalar_one())

    def violations(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The audit log's violation entries: action, subject and details."""
        log = tables.audit_log
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(log.c.action, log.c.subject, log.c.details)
                .where(log.c.action.like("violation.%")).order_by(log.c.sequence)).all()
        return [(row.action, row.subject, json.loads(row.details)) for row in rows]
