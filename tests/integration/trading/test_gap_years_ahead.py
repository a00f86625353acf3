"""Gap found by the s15 test read: tests/integration/trading/conftest.py's ``years_ahead_known``
gives every trading service the years ahead (``tests.day_setups.schedules_ahead``), but on
1 December 2026 the trading tests tried without it (test_step_clock, test_listings_api)
never reached a year chinese-calendar does not know, and passed; tests/unit/test_day_setups.py
checks the schedules, not that the service is given them. Here a procurement's objection
limit is counted past the year end (from 28 December, when that date is in reach): the
service must know the next year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.trading.test_tenders_api import PROCUREMENT, Calls, _announce, _project
from tests.integration.trading.test_tenders_api import calls as calls
from tests.integration.trading.test_tenders_api import trading as trading


async def test_an_objection_limit_counted_into_the_next_year_is_counted(
        calls: Calls) -> None:
    now = datetime.now(UTC)
    # The documents until 28 December (when that is 15 to 300 days away, else 15 days from
    # now): the objections' seven working days after them end in the next year, which
    # chinese-calendar may not know (2027, as this is written) unless the service is given it.
    december = datetime(now.year, 12, 28, 4, tzinfo=UTC)
    documents_until = (december if timedelta(days=15) <= december - now <= timedelta(days=300)
                       else now + timedelta(days=15))
    project = await _project(calls, PROCUREMENT, 500_000_000)
    tender = await _announce(calls, project.project_no, documents_until=documents_until,
                             period=documents_until - now + timedelta(days=30))
    until = tender.objections_until.ToDatetime(tzinfo=UTC)
    assert until > documents_until
    if documents_until == december:
        assert until.year == now.year + 1
