"""The intake service process: gRPC server + its activity worker.

``python -m services.intake.main [prepare|serve|run]``
"""

from __future__ import annotations

from pathlib import Path

import grpc
from sqlalchemy import Engine

from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from services.intake import activities
from services.intake.api.servicer import IntakeServicer
from services.intake.app.handlers import load_sample_directory
from services.intake.db.audit import AUDIT_TRAIL
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.keystore import applicant_cipher, seal_key
from services.intake.settings import IntakeSettings


def _register(server: grpc.aio.Server, engine: Engine, settings: ServiceSettings) -> None:
    servicer = IntakeServicer(engine, settings)
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)
    servicer.resume_unstarted_chains()


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    # The center's seal and the applicant-data key exist before the first case.
    seal_key(settings.pki_dir)
    applicant_cipher(settings.pki_dir)
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
