"""The trading service under test, and who calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.calendar import WorkingCalendar
from kernel.chinatime import china_date
from services.trading import activities
from services.trading.main import DEFINITION
from tests.day_setups import schedules_ahead
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test

#: Trading officers of the center (ZWFWZX) in deploy/sample/staff.json.
TRADING_OFFICER = "ZWFWZX-007"
OTHER_TRADING_OFFICER = "ZWFWZX-008"
#: A window clerk: a real official, but not a trading officer.
WINDOW_CLERK = "FGW-001"


@pytest.fixture(autouse=True)
def years_ahead_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trading service of these tests knows this year and the next two, as when
    operators have loaded their schedules: a listing's 20 working days or a procurement's
    objection limit started in December end in a year chinese-calendar does not know, and
    without review to read its schedule from, the test would fail or pass by its day."""
    ahead = schedules_ahead(china_date(datetime.now(UTC)))
    monkeypatch.setattr(activities, "holiday_calendar",
                        lambda settings: WorkingCalendar.with_schedules(ahead))


@pytest.fixture
async def trading(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "trading", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir) as service:
        yield service


# The listing venue (trading over gRPC, its activities, the ListingWorkflow, time skipping).
from tests.integration.trading.listing_venue import venue  # noqa: E402, F401
