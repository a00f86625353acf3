"""The review service process: gRPC server + its activity worker.

``python -m services.review.main [prepare|serve|run]``
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from sqlalchemy import Engine

from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import TemporalSecurity, connect_with
from kernel.workflow_gateway import WorkflowGateway
from services.review import activities
from services.review.api.servicer import ReviewServicer
from services.review.app.decisions import Chain
from services.review.app.handlers import load_sample_directory
from services.review.db.audit import AUDIT_TRAIL
from services.review.db.repository import ReviewUnitOfWork
from services.review.settings import ReviewSettings


def _register(server: grpc.aio.Server, engine: Engine, settings: ServiceSettings) -> None:
    assert isinstance(settings, ReviewSettings)  # DEFINITION.settings_type
    # The client is made on first use, so the service starts while Temporal is down.
    # Keys and TLS files are read now, so a bad one stops the start at once.
    security = TemporalSecurity.from_settings(settings)
    gateway = WorkflowGateway(
        lambda: connect_with(settings, security=security),
        call_timeout=timedelta(seconds=settings.workflow_call_timeout_seconds))
    chain = Chain(reading=lambda: ReviewUnitOfWork(engine, write=False),
                  writing=lambda: ReviewUnitOfWork(engine),
                  signer=service_signer(settings.pki_dir, "review"), gateway=gateway,
                  keys=settings.trusted_keys())
    audit = AuditTrailService(engine, AUDIT_TRAIL, service=settings.service,
                              pki_dir=settings.pki_dir)
    review_pb2_grpc.add_ReviewServiceServicer_to_server(
        ReviewServicer(engine, chain, audit=audit), server)


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    # Made (and its public key published) before anyone needs to verify what review signs.
    service_signer(settings.pki_dir, "review")
    return load_sample_directory(uow=ReviewUnitOfWork(engine), sample_dir=settings.sample_dir,
                                 now=datetime.now(UTC))


DEFINITION = ServiceDefinition(
    name="review",
    settings_type=ReviewSettings,
    migrations_dir=Path(__file__).parent / "db" / "migrations",
    service_names=[review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name],
    register=_register,
    activities=activities.activities,
    load_sample=_load_sample,
    audit_trail=AUDIT_TRAIL,
)

if __name__ == "__main__":
    main(DEFINITION)
