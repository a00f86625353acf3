"""The trading.read_listing step (services/trading/app/listing_steps.py): a listing's
workflow that starts again reads what trading recorded only with the announcement the
listing was published with, not with another one trading signed for the same number."""

from __future__ import annotations

import asyncio

import pytest

from kernel.errors import PermissionDenied
from kernel.signing import Signed, TrustedKeys, public_keys_dir, service_signer
from services.trading.app import listing_steps
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.listing_venue import Venue, calendar, until
from workflows import listing_contract as lc
from workflows.approval_contract import as_statement


async def test_another_announcement_trading_signed_for_the_listing_is_refused(
        venue: Venue) -> None:
    listing = await venue.land(start=100_000_000, increment=1_000_000)
    number = listing.listing_no
    # The workflow has recorded and published the notice: nothing more happens until opening.
    await until(lambda: venue.feed(number), lambda f: [k for k, _ in f] == ["listing.notice"],
                "the notice published")
    engine = venue.trading.running.engine
    with TradingUnitOfWork(engine) as unit:
        published = Signed.from_dict(unit.listings.announcement(number))
    keys = TrustedKeys.load(public_keys_dir(venue.trading.pki_dir))
    # Validly signed by trading's own key, about the same listing, with a lower start price.
    other = service_signer(venue.trading.pki_dir, "trading").sign(
        published.body | {"start_price_fen": 1_000_000})
    assert keys.verify(other, signer="trading")["listing_no"] == number

    def read(signed: Signed) -> lc.ListingRecorded:
        step = lc.ListingStep(number, as_statement(signed), now)
        return listing_steps.read_listing(uow=lambda: TradingUnitOfWork(engine), keys=keys,
                                          calendar=calendar(), step=step)

    now = await venue.now()
    feed = await venue.feed(number)
    before = await venue.listing(number)
    with pytest.raises(PermissionDenied, match="not the one listing"):
        await asyncio.to_thread(read, other)
    assert await venue.feed(number) == feed
    assert await venue.listing(number) == before
    # The one it was published with is read.
    recorded = await asyncio.to_thread(read, published)
    assert (recorded.listing_no, recorded.announced) == (number, True)
