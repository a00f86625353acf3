"""Projects, tenders and listings are numbered by the day in China, as approval and
complaint cases are: from 16:00 UTC it is the next day in China (no daylight saving)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernel.calendar import WorkingCalendar
from kernel.signing import service_signer
from services.trading.app import listings, tenders
from services.trading.db.repository import TradingUnitOfWork
from tests.day_setups import schedules_ahead
from tests.support import ServiceUnderTest, sample_caller
from workflows.listing_contract import LAND

OFFICER = sample_caller("trading-platform", "ZWFWZX-007")


def _numbers(trading: ServiceUnderTest, pki_dir: Path, now: datetime) -> list[str]:
    engine = trading.running.engine
    calendar = WorkingCalendar.with_schedules(schedules_ahead(now.date()))
    signer = service_signer(pki_dir, "trading")

    def project(category: str) -> str:
        return tenders.register_project(
            uow=TradingUnitOfWork(engine), caller=OFFICER, request_id=str(uuid.uuid4()),
            category=category, title="浑南新区地块", estimated_value_fen=900_000_000,
            funding_source="public", department_code="JYJ", now=now).project_no

    built = project("construction")
    tender = tenders.announce_tender(
        uow=TradingUnitOfWork(engine), signer=signer, calendar=calendar, caller=OFFICER,
        request_id=str(uuid.uuid4()), project_no=built,
        bid_deadline=now + timedelta(days=21), documents_until=None, decryption_window=None,
        now=now)
    listing = listings.publish_land_listing(
        uow=TradingUnitOfWork(engine), signer=signer, calendar=calendar, caller=OFFICER,
        request_id=str(uuid.uuid4()), project_no=project(LAND),
        opens_at=now + timedelta(days=21), closes_at=now + timedelta(days=40),
        start_price_fen=100_000_000, increment_fen=1_000_000, reserve_price_fen=0,
        auction_interval=timedelta(seconds=300), now=now)
    return [built, tender.tender_no, listing.listing_no]


def test_a_number_takes_the_day_in_china(trading: ServiceUnderTest, pki_dir: Path) -> None:
    late = _numbers(trading, pki_dir, datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC))
    next_day = _numbers(trading, pki_dir, datetime(2026, 12, 1, 16, 0, tzinfo=UTC))
    new_year = _numbers(trading, pki_dir, datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert [n[:12] for n in late] == ["PJ-20261201-", "TD-20261201-", "LS-20261201-"]
    assert [n[:12] for n in next_day] == ["PJ-20261202-", "TD-20261202-", "LS-20261202-"]
    assert [n[:12] for n in new_year] == ["PJ-20270101-", "TD-20270101-", "LS-20270101-"]
