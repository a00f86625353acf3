"""The intake service process: gRPC server + its activity worker.

``python -m services.intake.main [prepare|serve|run]``
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import TemporalSecurity, connect_with
from kernel.workflow_gateway import WorkflowGateway
from services.intake import activities
from services.intake.api.servicer import IntakeServicer
from services.intake.app.chain import ChainStarter
from services.intake.app.handlers import load_sample_directory
from services.intake.db.audit import AUDIT_TRAIL
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.keystore import applicant_cipher, seal_key
from services.intake.settings import IntakeSettings


def _register(server: grpc.aio.Server, engine: Engine,
              settings: ServiceSettings) -> list[Coroutine[Any, Any, None]]:
    assert isinstance(settings, IntakeSettings)  # DEFINITION.settings_type
    cipher = applicant_cipher(settings.pki_dir)
    # The client is made on first use, so the service starts while Temporal is down; keys
    # and TLS files are read now, so a bad one stops the start at once.
    security = TemporalSecurity.from_settings(settings)
    gateway = WorkflowGateway(
        lambda: connect_with(settings, security=security),
        call_timeout=timedelta(seconds=settings.workflow_call_timeout_seconds))
    starter = ChainStarter(
        reading=lambda: IntakeUnitOfWork(engine, write=False, cipher=cipher),
        writing=lambda: IntakeUnitOfWork(engine, cipher=cipher),
        signer=service_signer(settings.pki_dir, "intake"), gateway=gateway,
        workflow_queue=settings.workflow_task_queue)
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(
        IntakeServicer(engine, settings, starter=starter), server)
    # The outbox: every accepted case gets its workflow, whenever Temporal answers.
    return [starter.run()]


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    # The center's seal, the applicant-data key and intake's signing key exist before
    # the first case.
    seal_key(settings.pki_dir)
    applicant_cipher(settings.pki_dir)
    service_signer(settings.pki_dir, "intake")
    return load_sample_directory(uow=IntakeUnitOfWork(engine), sample_dir=settings.sample_dir)


DEFINITION = ServiceDefinition(
    name="intake",
    settings_type=IntakeSettings,
    migrations_dir=Path(__file__).parent / "db" / "migrations",
    service_names=[intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name],
    register=_register,
    activities=activities.activities,
    load_sample=_load_sample,
    audit_trail=AUDIT_TRAIL,
)

if __name__ == "__main__":
    main(DEFINITION)
