"""The trading service process: gRPC server + its activity worker.

``python -m services.trading.main [prepare|serve|run]``
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import Engine

from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.service import ServiceDefinition, main
from kernel.settings import ServiceSettings
from kernel.signing import service_signer
from kernel.temporal import TemporalSecurity, connect_with
from kernel.workflow_gateway import WorkflowGateway
from services.trading import activities
from services.trading.api.servicer import TradingServicer
from services.trading.app.draws import close_at_deadlines
from services.trading.app.handlers import load_sample_directory
from services.trading.app.listing_chain import ListingStarter
from services.trading.app.tender_chain import TenderStarter
from services.trading.app.tenders import load_sample_bidders
from services.trading.db.audit import AUDIT_TRAIL
from services.trading.db.repository import TradingUnitOfWork
from services.trading.settings import TradingSettings


def _register(server: grpc.aio.Server, engine: Engine,
              settings: Any) -> list[Coroutine[Any, Any, None]]:
    assert isinstance(settings, TradingSettings)  # DEFINITION.settings_type
    audit = AuditTrailService(engine, AUDIT_TRAIL, service=settings.service,
                              pki_dir=settings.pki_dir)
    signer = service_signer(settings.pki_dir, settings.service)
    # The client is made on first use, so the service starts while Temporal is down.
    security = TemporalSecurity.from_settings(settings)
    gateway = WorkflowGateway(
        lambda: connect_with(settings, security=security),
        call_timeout=timedelta(seconds=settings.workflow_call_timeout_seconds))
    starter = TenderStarter(reading=lambda: TradingUnitOfWork(engine, write=False),
                            writing=lambda: TradingUnitOfWork(engine), gateway=gateway,
                            workflow_queue=settings.workflow_task_queue,
                            answer_within_seconds=settings.tender_start_wait_seconds)
    # Each listing's workflow, through its own outbox, by the same machinery.
    listing_starter = ListingStarter(reading=lambda: TradingUnitOfWork(engine, write=False),
                                     writing=lambda: TradingUnitOfWork(engine),
                                     gateway=gateway,
                                     workflow_queue=settings.workflow_task_queue,
                                     answer_within_seconds=settings.tender_start_wait_seconds)
    servicer = TradingServicer(engine, audit=audit, signer=signer, starter=starter,
                               calendar=activities.holiday_calendar(settings),
                               listing_starter=listing_starter,
                               watch_poll_seconds=settings.watch_poll_seconds)
    trading_pb2_grpc.add_TradingServiceServicer_to_server(servicer, server)
    # Draws whose witnesses did not all reveal are closed at their published deadline;
    # every announced tender gets its workflow, whenever Temporal answers (the outbox).
    return [close_at_deadlines(unit=lambda: TradingUnitOfWork(engine), signer=signer,
                               service=settings.service,
                               poll_seconds=settings.draw_close_poll_seconds),
            starter.run(), listing_starter.run(),
            # Open WatchTrades streams end when the service stops.
            servicer.streams_open()]


def _load_sample(engine: Engine, settings: ServiceSettings) -> bool:
    # Trading's signing key exists before the first statement it signs is checked.
    service_signer(settings.pki_dir, settings.service)
    loaded = load_sample_directory(uow=TradingUnitOfWork(engine),
                                   sample_dir=settings.sample_dir)
    # The bidders directory and the experts' systems came later: a database loaded before
    # them gets them on their own.
    return load_sample_bidders(uow=TradingUnitOfWork(engine),
                               sample_dir=settings.sample_dir) or loaded


DEFINITION = ServiceDefinition(
    name="trading",
    settings_type=TradingSettings,
    migrations_dir=Path(__file__).parent / "db" / "migrations",
    service_names=[trading_pb2.DESCRIPTOR.services_by_name["TradingService"].full_name],
    register=_register,
    activities=activities.activities,
    load_sample=_load_sample,
    audit_trail=AUDIT_TRAIL,
)

if __name__ == "__main__":
    main(DEFINITION)
