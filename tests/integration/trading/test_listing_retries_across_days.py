"""A listing's publication retried after its answer was lost, on a later day: the rules
that read the clock (a land notice 20 days before the opening, a disclosure of 20 working
days) are for a new listing only, so the retry is answered with the listing it published,
however close the opening or the close has come since (found by the s16 attack, by
reading). The use cases are called with their clock, on the service's own database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from kernel.calendar import WorkingCalendar
from kernel.chinatime import CHINA, china_date
from kernel.errors import FailedPrecondition, InvalidArgument
from kernel.signing import service_signer
from services.trading.app import listings, tenders
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain import listings as rules
from tests.day_setups import schedules_ahead
from tests.support import ServiceUnderTest, sample_caller
from workflows.listing_contract import LAND, PROPERTY_RIGHTS

OFFICER = sample_caller("trading-platform", "ZWFWZX-007")
#: Noon in China on a Tuesday; the retry comes the next day.
PUBLISHED = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
RETRIED = PUBLISHED + timedelta(days=1)


def _units(trading: ServiceUnderTest) -> TradingUnitOfWork:
    return TradingUnitOfWork(trading.running.engine)


def _project(trading: ServiceUnderTest, category: str) -> str:
    return tenders.register_project(
        uow=_units(trading), caller=OFFICER, request_id=str(uuid.uuid4()), category=category,
        title="浑南新区地块", estimated_value_fen=900_000_000, funding_source="public",
        department_code="JYJ", now=PUBLISHED).project_no


def test_a_land_listing_retried_the_next_day_is_answered(
        trading: ServiceUnderTest, pki_dir: Path) -> None:
    calendar = WorkingCalendar.with_schedules(schedules_ahead(PUBLISHED.date()))
    signer = service_signer(pki_dir, "trading")
    project_no, request_id = _project(trading, LAND), str(uuid.uuid4())

    def publish(now: datetime, request: str = request_id,
                project: str = project_no) -> rules.ListingRecord:
        # Opens exactly 20 days after the first day: the notice rule's bound.
        return listings.publish_land_listing(
            uow=_units(trading), signer=signer, calendar=calendar, caller=OFFICER,
            request_id=request, project_no=project,
            opens_at=PUBLISHED + timedelta(days=20), closes_at=PUBLISHED + timedelta(days=40),
            start_price_fen=100_000_000, increment_fen=1_000_000, reserve_price_fen=0,
            auction_interval=timedelta(seconds=300), now=now)

    first = publish(PUBLISHED)
    assert publish(RETRIED).listing_no == first.listing_no
    # A new request the next day is held to the rule.
    with pytest.raises((FailedPrecondition, InvalidArgument), match="at least 20 days"):
        publish(RETRIED, str(uuid.uuid4()), _project(trading, LAND))


def test_a_disclosure_retried_the_next_day_is_answered(
        trading: ServiceUnderTest, pki_dir: Path) -> None:
    calendar = WorkingCalendar.with_schedules(schedules_ahead(PUBLISHED.date()))
    signer = service_signer(pki_dir, "trading")
    project_no, request_id = _project(trading, PROPERTY_RIGHTS), str(uuid.uuid4())
    # Closes on the first day the disclosure rule allows from the first day: its bound.
    first_close = rules.earliest_close(calendar, china_date(PUBLISHED),
                                       rules.DISCLOSURE_WORKING_DAYS)
    closes = datetime.combine(first_close, time(10), tzinfo=CHINA)

    def disclose(now: datetime, request: str = request_id,
                 project: str = project_no) -> rules.ListingRecord:
        return listings.disclose_property(
            uow=_units(trading), signer=signer, calendar=calendar, caller=OFFICER,
            request_id=request, project_no=project, closes_at=closes,
            reserve_price_fen=50_000_000, increment_fen=500_000,
            auction_interval=timedelta(seconds=300), max_extensions=1, now=now)

    first = disclose(PUBLISHED)
    assert disclose(RETRIED).listing_no == first.listing_no
    with pytest.raises((FailedPrecondition, InvalidArgument), match="20 working days"):
        disclose(RETRIED, str(uuid.uuid4()), _project(trading, PROPERTY_RIGHTS))
