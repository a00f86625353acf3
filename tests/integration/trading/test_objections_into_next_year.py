"""A procurement's objection limit counted past the year end (from 28 December, when that
date is in reach) is counted on the next year's calendar, which chinese-calendar may not
know: every trading service under test is given the years ahead
(tests/integration/trading/conftest.py ``years_ahead_known``)."""

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
