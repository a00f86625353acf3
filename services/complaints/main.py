"""The complaints service process: gRPC server + its activity worker.

``python -m services.complaints.main [prepare|serve|run]``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.fieldcipher import field_cipher
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from services.complaints import activities
from services.complaints.api.servicer import ComplaintsServicer
from services.complaints.app.handlers import load_sample_directory
from services.complaints.db.audit import AUDIT_TRAIL
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.settings import ComplaintsSettings
from services.complaints.settings import complainant_key_path as complainant_key_path


def _register(server: grpc.aio.Server, engine: Engine, settings: Any) -> None:
    audit = AuditTrailService(engine, AUDIT_TRAIL, service=settings.service,
                              pki_dir=settings.pki_dir)
    cipher = field_cipher(complainant_key_path(settings.pki_dir))
    complaints_pb2_grpc.add_ComplaintsServiceServicer_to_server(
        ComplaintsServicer(engine, audit=audit, cipher=cipher), server)


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    return load_sample_directory(uow=ComplaintsUnitOfWork(engine), sample_dir=settings.sample_dir)


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
