"""The venue's trading service again, on the venue's database, with Temporal out of reach:
what a service answers by itself, with nothing it could send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.trading.main import DEFINITION
from tests.integration.intake.sealing import closed_port
from tests.support import ServiceUnderTest, service_under_test


@asynccontextmanager
async def cut_off(trading: ServiceUnderTest) -> AsyncIterator[ServiceUnderTest]:
    """A second trading service on ``trading``'s database and keys, whose Temporal is a
    closed port."""
    async with service_under_test(DEFINITION, database_url=trading.settings.database_url,
                                  pki_dir=trading.pki_dir, temporal_address=closed_port(),
                                  tender_start_wait_seconds=0.5,
                                  workflow_call_timeout_seconds=5) as service:
        yield service
