"""Land and property-rights listings (services/trading/domain/listings.py), no I/O.

Dates are counted by hand on China's 2026 schedule (the built-in one): the Mid-autumn
holiday Fri 25 – Sun 27 September, with Sun 20 September a make-up working day; National
Day Thu 1 – Wed 7 October, with Sat 10 October a make-up working day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from kernel.calendar import WorkingCalendar, YearSchedule
from kernel.chinatime import CHINA
from kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from services.trading.domain.listings import (
    MAX_AMOUNT,
    Auction,
    DealMethod,
    FailureReason,
    LandListing,
    LandListingSpec,
    ListingState,
    PropertyListing,
    PropertyListingSpec,
    announce_land,
    disclose_property,
    earliest_close,
    working_days_in,
)

CALENDAR = WorkingCalendar()
INTERVAL = timedelta(minutes=5)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHINA)


# --- Counting working days ----------------------------------------------------------------------


def test_a_period_counts_its_first_and_last_day_across_a_holiday_and_a_makeup_day() -> None:
    # Mon 28 Sep: 28, 29, 30 Sep; 8, 9 Oct; Sat 10 Oct (make-up); 12, 13, 14, 15 Oct.
    assert earliest_close(CALENDAR, date(2026, 9, 28), 10) == date(2026, 10, 15)
    assert working_days_in(CALENDAR, date(2026, 9, 28), date(2026, 10, 15)) == 10
    assert working_days_in(CALENDAR, date(2026, 9, 28), date(2026, 10, 14)) == 9
    # Opened on a holiday (Sat 26 Sep), the first day does not count: still 15 October.
    assert earliest_close(CALENDAR, date(2026, 9, 26), 10) == date(2026, 10, 15)
    assert working_days_in(CALENDAR, date(2026, 9, 26), date(2026, 10, 15)) == 10
    # Without the make-up Saturday the tenth working day would be Fri 16 October.
    without_makeup = WorkingCalendar.with_schedules([YearSchedule(
        2026, holidays=frozenset({date(2026, 9, 25), *(date(2026, 10, d) for d in range(1, 8))}),
        makeup_workdays=frozenset())])
    assert earliest_close(without_makeup, date(2026, 9, 28), 10) == date(2026, 10, 16)


def test_twenty_working_days_from_mid_september() -> None:
    # Mon 14 Sep: 14–18 (5), Sun 20 (6), 21–24 (10), 28–30 (13), 8, 9 Oct (15),
    # Sat 10 Oct (16), 12–15 Oct (20).
    assert earliest_close(CALENDAR, date(2026, 9, 14), 20) == date(2026, 10, 15)
    # Mon 31 Aug: 31 Aug – 4 Sep (5), 7–11 (10), 14–18 (15), Sun 20 (16), 21–24 (20).
    assert earliest_close(CALENDAR, date(2026, 8, 31), 20) == date(2026, 9, 24)


# --- Land: announcement --------------------------------------------------------------------------


def land_spec(**changes: object) -> LandListingSpec:
    values: dict[str, object] = {
        "listing_number": "LD-2026-0007",
        "notice_published_at": at(date(2026, 9, 8), 9),
        "opens_at": at(date(2026, 9, 28), 9),
        "closes_at": at(date(2026, 10, 15), 15),
        "start_price": 100_000_000, "increment": 1_000_000,
        "auction_interval": INTERVAL, "reserve_price": None}
    return LandListingSpec(**(values | changes))  # type: ignore[arg-type]


def test_a_land_listing_with_twenty_days_notice_and_ten_working_days_is_announced() -> None:
    listing = announce_land(land_spec(), CALENDAR)
    assert listing.state == ListingState.LISTING
    assert listing.current_price == 100_000_000


def test_the_notice_must_come_twenty_calendar_days_before_the_opening_by_china_dates() -> None:
    # 23:30 in Beijing on 8 September is still the 8th: 20 days before the 28th.
    announce_land(land_spec(notice_published_at=at(date(2026, 9, 8), 23, 30)), CALENDAR)
    # 16:30 UTC on the 8th is 00:30 on the 9th in Beijing: 19 days, refused.
    with pytest.raises(InvalidArgument, match="opens on 2026-09-29 or later") as refused:
        announce_land(land_spec(notice_published_at=datetime(2026, 9, 8, 16, 30, tzinfo=UTC)),
                      CALENDAR)
    assert [v.field for v in refused.value.violations] == ["opens_at"]


def test_a_listing_shorter_than_ten_working_days_is_refused_naming_the_first_close() -> None:
    with pytest.raises(InvalidArgument, match="closes on 2026-10-15 or later") as refused:
        announce_land(land_spec(closes_at=at(date(2026, 10, 14), 23)), CALENDAR)
    assert [v.field for v in refused.value.violations] == ["closes_at"]
    # Ten weekdays, but the National Day week is not working days.
    with pytest.raises(InvalidArgument):
        announce_land(land_spec(closes_at=at(date(2026, 10, 9), 15)), CALENDAR)


@pytest.mark.parametrize(("changes", "field"), [
    ({"start_price": 0}, "start_price"),
    ({"start_price": -5}, "start_price"),
    ({"start_price": MAX_AMOUNT + 1}, "start_price"),
    ({"increment": 0}, "increment"),
    ({"reserve_price": 99_000_000}, "reserve_price"),
    ({"auction_interval": timedelta(seconds=1)}, "auction_interval"),
    ({"auction_interval": timedelta(hours=2)}, "auction_interval"),
    ({"listing_number": " "}, "listing_number"),
    ({"closes_at": at(date(2026, 9, 27))}, "closes_at"),
    ({"closes_at": at(date(2027, 10, 1))}, "closes_at"),
    ({"opens_at": datetime(2026, 9, 28, 9)}, "opens_at"),
])
def test_bad_land_announcements_are_refused_by_field(changes: dict[str, object],
                                                      field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        announce_land(land_spec(**changes), CALENDAR)
    assert field in [v.field for v in refused.value.violations]


# --- Land: bidding -----------------------------------------------------------------------------

A, B, C = "BIDDER-A", "BIDDER-B", "BIDDER-C"


def qualified(*bidders: str, **changes: object) -> LandListing:
    listing = announce_land(land_spec(**changes), CALENDAR)
    for bidder in bidders:
        listing = listing.qualify(bidder, at(date(2026, 9, 20)))
    return listing


def test_bids_rise_by_whole_increments_above_the_current_price() -> None:
    listing = qualified(A, B)
    day = date(2026, 9, 29)
    listing = listing.bid(A, 100_000_000, at(day))  # the first bid may be the start price
    with pytest.raises(FailedPrecondition, match="at least 101000000"):
        listing.bid(B, 100_000_000, at(day, 11))
    with pytest.raises(InvalidArgument, match="whole steps of 1000000"):
        listing.bid(B, 101_500_000, at(day, 11))
    listing = listing.bid(B, 103_000_000, at(day, 11))
    assert listing.current_price == 103_000_000
    assert listing.leader is not None and listing.leader.bidder_id == B
    with pytest.raises(FailedPrecondition, match="already holds"):
        listing.bid(B, 104_000_000, at(day, 12))


def test_the_first_bid_must_reach_the_start_price_in_steps() -> None:
    listing = qualified(A)
    with pytest.raises(FailedPrecondition, match="at least 100000000"):
        listing.bid(A, 99_000_000, at(date(2026, 9, 29)))
    with pytest.raises(InvalidArgument):
        listing.bid(A, 100_000_001, at(date(2026, 9, 29)))
    assert listing.bid(A, 102_000_000, at(date(2026, 9, 29))).current_price == 102_000_000


@pytest.mark.parametrize("amount", [0, -1_000_000, MAX_AMOUNT + 1_000_000, True])
def test_negative_zero_or_absurd_amounts_are_invalid(amount: int) -> None:
    with pytest.raises(InvalidArgument):
        qualified(A).bid(A, amount, at(date(2026, 9, 29)))


def test_bids_only_while_the_listing_is_open_and_only_from_qualified_bidders() -> None:
    listing = qualified(A)
    with pytest.raises(PermissionDenied):
        listing.bid(B, 100_000_000, at(date(2026, 9, 29)))
    with pytest.raises(FailedPrecondition, match="opens at"):
        listing.bid(A, 100_000_000, at(date(2026, 9, 28), 8, 59))
    with pytest.raises(FailedPrecondition, match="closed at"):
        listing.bid(A, 100_000_000, at(date(2026, 10, 15), 15))
    listing.bid(A, 100_000_000, at(date(2026, 10, 15), 14, 59))


def test_qualification_runs_from_the_notice_to_the_close_once_a_bidder() -> None:
    listing = qualified(A)
    with pytest.raises(AlreadyExists):
        listing.qualify(A, at(date(2026, 9, 21)))
    with pytest.raises(FailedPrecondition):
        listing.qualify(B, at(date(2026, 9, 7)))
    with pytest.raises(FailedPrecondition):
        listing.qualify(B, at(date(2026, 10, 15), 15))
    with pytest.raises(InvalidArgument):
        listing.qualify(" ", at(date(2026, 9, 21)))


# --- Land: the close ---------------------------------------------------------------------------

CLOSE = at(date(2026, 10, 15), 15)


def test_one_bidder_at_the_close_wins_at_its_bid() -> None:
    listing = qualified(A, B).bid(A, 100_000_000, at(date(2026, 10, 8)))
    with pytest.raises(FailedPrecondition, match="not before"):
        listing.close(CLOSE - timedelta(seconds=1), still_bidding={A})
    closed = listing.close(CLOSE, still_bidding={A})
    assert closed.state == ListingState.SOLD
    assert closed.deal is not None
    assert (closed.deal.buyer_id, closed.deal.price, closed.deal.method) == (
        A, 100_000_000, DealMethod.LISTING)
    with pytest.raises(FailedPrecondition, match="is sold"):
        closed.bid(B, 110_000_000, CLOSE)


def test_no_bid_or_a_bid_below_the_reserve_fails_the_listing() -> None:
    closed = qualified(A).close(CLOSE, still_bidding=set())
    assert (closed.state, closed.failure) == (ListingState.FAILED, FailureReason.NO_BID)
    reserved = qualified(A, reserve_price=105_000_000).bid(A, 104_000_000, at(date(2026, 10, 9)))
    closed = reserved.close(CLOSE, still_bidding={A})
    assert (closed.state, closed.failure) == (ListingState.FAILED, FailureReason.BELOW_RESERVE)
    reached = qualified(A, reserve_price=105_000_000).bid(A, 105_000_000, at(date(2026, 10, 9)))
    assert reached.close(CLOSE, still_bidding=set()).state == ListingState.SOLD


def test_only_qualified_bidders_may_ask_to_bid_on() -> None:
    with pytest.raises(InvalidArgument, match=C):
        qualified(A, B).close(CLOSE, still_bidding={A, C})


def test_two_still_bidding_at_the_close_go_to_an_auction_ending_after_a_quiet_interval() -> None:
    listing = (qualified(A, B, C)
               .bid(A, 100_000_000, at(date(2026, 10, 8)))
               .bid(B, 101_000_000, at(date(2026, 10, 12))))
    auctioned = listing.close(CLOSE, still_bidding={A, C})
    assert auctioned.state == ListingState.AUCTION
    auction = auctioned.auction
    assert auction is not None
    # The auction starts from the listing's price; B's bid stands but B is not in it.
    assert (auction.price, auction.leader, auction.deadline) == (
        101_000_000, B, CLOSE + INTERVAL)
    with pytest.raises(PermissionDenied):
        auctioned.auction_bid(B, 102_000_000, CLOSE + timedelta(minutes=1))
    with pytest.raises(FailedPrecondition, match="at least 102000000"):
        auctioned.auction_bid(A, 101_000_000, CLOSE + timedelta(minutes=1))
    step = auctioned.auction_bid(A, 102_000_000, CLOSE + timedelta(minutes=4))
    # Each higher bid restarts the interval.
    assert step.auction is not None
    assert step.auction.deadline == CLOSE + timedelta(minutes=9)
    step = step.auction_bid(C, 105_000_000, CLOSE + timedelta(minutes=8, seconds=59))
    with pytest.raises(FailedPrecondition, match="runs until"):
        step.conclude(CLOSE + timedelta(minutes=13, seconds=58))
    with pytest.raises(FailedPrecondition, match="auction ended"):
        step.auction_bid(A, 106_000_000, CLOSE + timedelta(minutes=13, seconds=59))
    done = step.conclude(CLOSE + timedelta(minutes=13, seconds=59))
    assert done.deal is not None
    assert (done.state, done.deal.buyer_id, done.deal.price, done.deal.method) == (
        ListingState.SOLD, C, 105_000_000, DealMethod.AUCTION)
    with pytest.raises(FailedPrecondition, match="is sold"):
        done.auction_bid(A, 106_000_000, CLOSE + timedelta(minutes=14))


def test_an_auction_without_a_higher_bid_leaves_the_listing_leader_the_winner() -> None:
    listing = qualified(A, B).bid(A, 100_000_000, at(date(2026, 10, 8)))
    auctioned = listing.close(CLOSE, still_bidding={A, B})
    assert auctioned.auction is not None
    done = auctioned.conclude(auctioned.auction.deadline)
    assert done.deal is not None
    assert (done.deal.buyer_id, done.deal.price, done.deal.method) == (
        A, 100_000_000, DealMethod.LISTING)
    nobody = qualified(A, B).close(CLOSE, still_bidding={A, B})
    assert nobody.auction is not None
    assert nobody.conclude(nobody.auction.deadline).failure == FailureReason.NO_BID


def test_an_auction_bid_out_of_order_in_time_is_refused() -> None:
    auction = Auction(participants=frozenset({A, B}), price=100, increment=10,
                      interval=INTERVAL, started_at=CLOSE)
    auction = auction.bid(A, 100, CLOSE + timedelta(minutes=2))
    with pytest.raises(FailedPrecondition, match="before the last step"):
        auction.bid(B, 110, CLOSE + timedelta(minutes=1))


# --- Property rights ---------------------------------------------------------------------------

X, Y, Z = "BUYER-X", "BUYER-Y", "BUYER-Z"
P_OPENS = at(date(2026, 9, 14), 9)
P_CLOSES = at(date(2026, 10, 15), 17)


def property_spec(**changes: object) -> PropertyListingSpec:
    values: dict[str, object] = {
        "listing_number": "PR-2026-0003", "opens_at": P_OPENS, "closes_at": P_CLOSES,
        "reserve_price": 50_000_000, "increment": 500_000, "auction_interval": INTERVAL,
        "max_extensions": 2}
    return PropertyListingSpec(**(values | changes))  # type: ignore[arg-type]


def with_buyers(*buyers: str, **changes: object) -> PropertyListing:
    listing = disclose_property(property_spec(**changes), CALENDAR)
    for buyer in buyers:
        listing = listing.register_buyer(buyer, at(date(2026, 9, 21)))
    return listing


def test_a_disclosure_of_twenty_working_days_is_accepted_and_a_shorter_one_refused() -> None:
    assert disclose_property(property_spec(), CALENDAR).closes_at == P_CLOSES
    with pytest.raises(InvalidArgument, match="closes on 2026-10-15 or later"):
        disclose_property(property_spec(closes_at=at(date(2026, 10, 14), 23, 59)), CALENDAR)


@pytest.mark.parametrize(("changes", "field"), [
    ({"reserve_price": 0}, "reserve_price"),
    ({"increment": -1}, "increment"),
    ({"max_extensions": -1}, "max_extensions"),
    ({"max_extensions": 13}, "max_extensions"),
    ({"auction_interval": timedelta(0)}, "auction_interval"),
    ({"closes_at": P_OPENS}, "closes_at"),
    ({"closes_at": datetime(2026, 10, 15, 17)}, "closes_at"),
])
def test_bad_disclosures_are_refused_by_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        disclose_property(property_spec(**changes), CALENDAR)
    assert field in [v.field for v in refused.value.violations]


def test_buyers_register_once_while_the_disclosure_runs() -> None:
    listing = with_buyers(X)
    with pytest.raises(AlreadyExists):
        listing.register_buyer(X, at(date(2026, 9, 22)))
    with pytest.raises(FailedPrecondition):
        listing.register_buyer(Y, P_OPENS - timedelta(seconds=1))
    with pytest.raises(FailedPrecondition):
        listing.register_buyer(Y, P_CLOSES)
    with pytest.raises(FailedPrecondition, match="not before"):
        listing.close(P_CLOSES - timedelta(seconds=1), CALENDAR)


def test_one_buyer_makes_an_agreement_at_the_reserve_price_or_above() -> None:
    closed = with_buyers(X).close(P_CLOSES, CALENDAR)
    assert closed.state == ListingState.AGREEMENT
    with pytest.raises(PermissionDenied):
        closed.agree(Y, 50_000_000, P_CLOSES + timedelta(days=1))
    with pytest.raises(InvalidArgument, match="reserve price 50000000"):
        closed.agree(X, 49_999_999, P_CLOSES + timedelta(days=1))
    with pytest.raises(InvalidArgument):
        closed.agree(X, -1, P_CLOSES + timedelta(days=1))
    agreed = closed.agree(X, 50_000_000, P_CLOSES + timedelta(days=1))
    assert agreed.deal is not None
    assert (agreed.state, agreed.deal.buyer_id, agreed.deal.price, agreed.deal.method) == (
        ListingState.SOLD, X, 50_000_000, DealMethod.AGREEMENT)
    with pytest.raises(FailedPrecondition):
        closed.auction_bid(X, 50_000_000, P_CLOSES + timedelta(days=1))


def test_several_buyers_go_to_an_auction_from_the_reserve_price() -> None:
    closed = with_buyers(X, Y, Z).close(P_CLOSES, CALENDAR)
    assert closed.state == ListingState.AUCTION
    with pytest.raises(FailedPrecondition):
        closed.agree(X, 60_000_000, P_CLOSES)
    with pytest.raises(FailedPrecondition, match="at least 50000000"):
        closed.auction_bid(X, 49_500_000, P_CLOSES + timedelta(minutes=1))
    step = closed.auction_bid(X, 50_000_000, P_CLOSES + timedelta(minutes=1))
    step = step.auction_bid(Y, 51_000_000, P_CLOSES + timedelta(minutes=2))
    with pytest.raises(PermissionDenied):
        step.auction_bid("BUYER-Q", 52_000_000, P_CLOSES + timedelta(minutes=3))
    assert step.auction is not None
    done = step.conclude(step.auction.deadline)
    assert done.deal is not None
    assert (done.deal.buyer_id, done.deal.price, done.deal.method) == (
        Y, 51_000_000, DealMethod.AUCTION)
    silent = closed.conclude(P_CLOSES + INTERVAL)
    assert (silent.state, silent.failure) == (ListingState.FAILED, FailureReason.NO_AUCTION_BID)


def test_no_buyer_extends_the_disclosure_by_five_working_days_across_national_day() -> None:
    # Opened Mon 31 Aug, 20 working days reach Thu 24 Sep; it closes Wed 30 Sep.
    closes = at(date(2026, 9, 30), 17)
    listing = disclose_property(property_spec(opens_at=at(date(2026, 8, 31), 9),
                                              closes_at=closes), CALENDAR)
    # Five working days after 30 Sep: 8, 9 Oct, Sat 10 Oct (make-up), 12, 13 Oct.
    with pytest.raises(InvalidArgument, match="runs to 2026-10-13 or later"):
        listing.close(closes, CALENDAR, extend_to=at(date(2026, 10, 12), 23))
    extended = listing.close(closes, CALENDAR, extend_to=at(date(2026, 10, 13), 17))
    assert (extended.state, extended.closes_at) == (
        ListingState.LISTING, at(date(2026, 10, 13), 17))
    # A buyer may now register in the extension; the close moved with it.
    with pytest.raises(FailedPrecondition, match="not before"):
        extended.close(at(date(2026, 10, 13), 16), CALENDAR)
    bought = extended.register_buyer(X, at(date(2026, 10, 9))).close(
        at(date(2026, 10, 13), 17), CALENDAR)
    assert bought.state == ListingState.AGREEMENT


def test_extensions_only_without_a_buyer_and_up_to_the_announced_number() -> None:
    with pytest.raises(FailedPrecondition, match="only when no buyer"):
        with_buyers(X).close(P_CLOSES, CALENDAR, extend_to=at(date(2026, 10, 22), 17))
    listing = with_buyers()
    first = listing.close(P_CLOSES, CALENDAR, extend_to=at(date(2026, 10, 22), 17))
    second = first.close(at(date(2026, 10, 22), 17), CALENDAR,
                         extend_to=at(date(2026, 10, 29), 17))
    assert second.extensions == (at(date(2026, 10, 22), 17), at(date(2026, 10, 29), 17))
    with pytest.raises(FailedPrecondition, match="all used"):
        second.close(at(date(2026, 10, 29), 17), CALENDAR, extend_to=at(date(2026, 11, 5), 17))
    failed = second.close(at(date(2026, 10, 29), 17), CALENDAR)
    assert (failed.state, failed.failure) == (ListingState.FAILED, FailureReason.NO_BUYER)
    none_announced = with_buyers(max_extensions=0)
    with pytest.raises(FailedPrecondition, match="0 extension"):
        none_announced.close(P_CLOSES, CALENDAR, extend_to=at(date(2026, 10, 22), 17))


def test_a_refused_step_changes_nothing() -> None:
    listing = qualified(A, B).bid(A, 100_000_000, at(date(2026, 10, 8)))
    before = replace(listing)
    with pytest.raises(FailedPrecondition):
        listing.bid(B, 100_000_000, at(date(2026, 10, 9)))
    assert listing == before


# --- Who keeps bidding at the close (art. 19) and the agreement's deadline ---------------------


def test_only_a_bidder_who_bid_asks_to_keep_bidding_once_while_the_listing_is_open() -> None:
    listing = qualified(A, B).bid(A, 100_000_000, at(date(2026, 9, 29)))
    with pytest.raises(PermissionDenied, match="has not bid"):
        listing.declare_interest(B, at(date(2026, 9, 30)))
    asked = listing.declare_interest(A, at(date(2026, 9, 30)))
    assert asked.interested == {A}
    with pytest.raises(AlreadyExists):
        asked.declare_interest(A, at(date(2026, 10, 8)))
    with pytest.raises(FailedPrecondition, match="before the close"):
        listing.declare_interest(A, at(date(2026, 10, 15), 15))


def test_the_close_goes_to_auction_only_among_the_bidders_who_asked() -> None:
    listing = (qualified(A, B).bid(A, 100_000_000, at(date(2026, 9, 29)))
               .bid(B, 101_000_000, at(date(2026, 9, 30))))
    close = at(date(2026, 10, 15), 15)
    one = listing.declare_interest(A, at(date(2026, 10, 8)))
    settled = one.close(close, still_bidding=one.interested)
    assert settled.state == ListingState.SOLD and settled.deal is not None
    assert (settled.deal.buyer_id, settled.deal.method) == (B, DealMethod.LISTING)
    both = one.declare_interest(B, at(date(2026, 10, 9)))
    auction = both.close(close, still_bidding=both.interested)
    assert auction.state == ListingState.AUCTION and auction.auction is not None
    assert auction.auction.participants == {A, B}


def test_the_agreement_is_due_by_its_deadline_then_the_listing_fails() -> None:
    due = P_CLOSES + timedelta(days=7)
    closed = with_buyers(X, agreement_working_days=5).close(P_CLOSES, CALENDAR,
                                                            agreement_due=due)
    assert closed.agreement_due == due
    with pytest.raises(FailedPrecondition, match="until"):
        closed.expire_agreement(due - timedelta(seconds=1))
    with pytest.raises(FailedPrecondition, match="was due"):
        closed.agree(X, 50_000_000, due)
    failed = closed.expire_agreement(due)
    assert (failed.state, failed.failure) == (ListingState.FAILED, FailureReason.NO_AGREEMENT)
    assert closed.agree(X, 50_000_000, due - timedelta(seconds=1)).state == ListingState.SOLD
    # A disclosure announced before the deadline existed has none.
    with pytest.raises(FailedPrecondition):
        with_buyers(X).close(P_CLOSES, CALENDAR).expire_agreement(due)


def test_the_agreement_deadline_is_bounded() -> None:
    with pytest.raises(InvalidArgument, match="agreement_working_days") as refused:
        disclose_property(property_spec(agreement_working_days=21), CALENDAR)
    # 0 is accepted (the disclosures announced before the deadline existed have none).
    assert [v.description for v in refused.value.violations] == [
        "must be 0 (no deadline) or 1 to 20"]
    disclose_property(property_spec(agreement_working_days=0), CALENDAR)
