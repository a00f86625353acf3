"""The trading service under test, and who calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.trading.main import DEFINITION
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test

#: Trading officers of the center (ZWFWZX) in deploy/sample/staff.json.
TRADING_OFFICER = "ZWFWZX-007"
OTHER_TRADING_OFFICER = "ZWFWZX-008"
#: A window clerk: a real official, but not a trading officer.
WINDOW_CLERK = "FGW-001"


@pytest.fixture
async def trading(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir) as service:
        yield service


# The listing venue (trading over gRPC, its activities, the ListingWorkflow, time skipping).
from tests.integration.trading.listing_venue import venue  # noqa: E402, F401
