"""The complaints service process: gRPC server + its activity worker.

``python -m services.complaints.main [prepare|serve|run]``
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.fieldcipher import FieldCipher, field_cipher
from kernel.groupcommit import GroupCommit
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import TemporalSecurity, connect_with
from kernel.workflow_gateway import WorkflowGateway
from services.complaints import activities
from services.complaints.api.servicer import ComplaintsServicer
from services.complaints.app.cases import Push, Submitted, group_intake
from services.complaints.app.deadlines import DeadlineRecompute
from services.complaints.app.desk import Desk
from services.complaints.app.flow import ComplaintStarter
from services.complaints.app.handlers import load_sample_directory
from services.complaints.db.audit import AUDIT_TRAIL
from services.complaints.db.open311 import Open311UnitOfWork
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.open311.keys import ensure_platform_keys
from services.complaints.open311.server import Open311Server
from services.complaints.settings import ComplaintsSettings, complainant_key_path

__all__ = ["DEFINITION", "complainant_key_path"]


def _register(server: grpc.aio.Server, engine: Engine,
              settings: Any) -> list[Coroutine[Any, Any, None]]:
    audit = AuditTrailService(engine, AUDIT_TRAIL, service=settings.service,
                              pki_dir=settings.pki_dir)
    cipher = field_cipher(complainant_key_path(settings.pki_dir))
    # The client is made on first use, so the service starts while Temporal is down; keys
    # and TLS files are read now, so a bad one stops the start at once.
    security = TemporalSecurity.from_settings(settings)
    gateway = WorkflowGateway(
        lambda: connect_with(settings, security=security),
        call_timeout=timedelta(seconds=settings.workflow_call_timeout_seconds))
    signer = service_signer(settings.pki_dir, "complaints")
    # Concurrent pushes share transactions; under a burst of them the outbox waits for
    # intake to be quiet (a few seconds at most) before its starts go ahead.
    intake = group_intake(writing=lambda: ComplaintsUnitOfWork(engine), cipher=cipher)
    starter = ComplaintStarter(
        reading=lambda: ComplaintsUnitOfWork(engine, write=False),
        writing=lambda: ComplaintsUnitOfWork(engine), signer=signer, gateway=gateway,
        workflow_queue=settings.workflow_task_queue, intake_quiet=intake.quiet_seconds,
        poll_seconds=(settings.outbox_poll_seconds if isinstance(settings, ComplaintsSettings)
                      else ComplaintStarter.poll_seconds))
    handling = Desk(reading=lambda: ComplaintsUnitOfWork(engine, write=False),
                    writing=lambda: ComplaintsUnitOfWork(engine), signer=signer,
                    gateway=gateway, cipher=cipher)
    complaints_pb2_grpc.add_ComplaintsServiceServicer_to_server(
        ComplaintsServicer(engine, audit=audit, cipher=cipher, desk=handling,
                           starter=starter, intake=intake,
                           webhook_allow_loopback=settings.webhook_allow_loopback), server)
    # The outbox: every committed case gets its workflow, whenever Temporal answers.
    running = [starter.run()]
    # Cases whose deadlines guessed a year: recomputed once review knows it, workflows told.
    if isinstance(settings, ComplaintsSettings):
        recompute = DeadlineRecompute(
            reading=lambda: ComplaintsUnitOfWork(engine, write=False),
            writing=lambda: ComplaintsUnitOfWork(engine),
            schedules=activities.holiday_schedules(settings), gateway=gateway,
            interval_seconds=settings.deadline_recompute_seconds)
        running.append(recompute.run())
    if settings.open311_enabled:
        # Posts share the gRPC pushes' group commit: one writer, batches of both; a new
        # case posted wakes the outbox, as a gRPC submit does.
        running.append(open311_server(engine, settings, cipher=cipher, intake=intake,
                                      wake=starter.wake).run())
    return running


def open311_server(engine: Engine, settings: ComplaintsSettings, *, cipher: FieldCipher,
                   intake: GroupCommit[Push, Submitted] | None = None,
                   wake: Callable[[], None] | None = None) -> Open311Server:
    """The Open311 façade as the complaints process runs it: its host, its port, the
    center's server certificate, the process's intake group commit, the outbox's ``wake``."""
    return Open311Server(engine, cipher=cipher, host=settings.host,
                         port=settings.open311_port, pki_dir=settings.pki_dir,
                         grace_seconds=settings.shutdown_grace_seconds, intake=intake,
                         wake=wake)


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    # The complaints signing key exists before the first case.
    service_signer(settings.pki_dir, "complaints")
    loaded = load_sample_directory(uow=ComplaintsUnitOfWork(engine),
                                   sample_dir=settings.sample_dir)
    if isinstance(settings, ComplaintsSettings) and settings.open311_write_api_keys:
        ensure_platform_keys(uow=Open311UnitOfWork(engine),
                             key_file=settings.resolved_open311_api_keys_file(),
                             now=datetime.now(UTC))
    return loaded


DEFINITION = ServiceDefinition(
    name="complaints",
    settings_type=ComplaintsSettings,
    migrations_dir=Path(__file__).parent / "db" / "migrations",
    service_names=[complaints_pb2.DESCRIPTOR.services_by_name["ComplaintsService"].full_name],
    register=_register,
    activities=activities.activities,
    load_sample=_load_sample,
    audit_trail=AUDIT_TRAIL,
)

if __name__ == "__main__":
    main(DEFINITION)
