"""Land listings and property-rights listings (DESIGN.md §2, issue #9 item 6): the rules and
their timing, as a pure state machine. No I/O: every step takes the instant it happens at
and returns the listing's next state, or raises a ``kernel.errors`` refusal that changes
nothing.

Land (挂牌出让, after the Ministry's rules on tender, auction and listing of state-owned
construction land):

- the notice is published at least ``LAND_NOTICE_DAYS`` calendar days before the listing
  opens (by the dates in China);
- the listing lasts at least ``LAND_LISTING_WORKING_DAYS`` working days, counting the
  opening day and the closing day (kernel.calendar: holidays skipped, make-up working days
  counted);
- qualified bidders bid while it is open: the first bid at the start price or above it, each
  later bid above the current price, always by whole multiples of the set increment;
- at the close the venue asks who still wants to bid: two or more → an auction
  (现场竞价) from the current price, which ends when no higher bid comes within the set
  interval; otherwise the highest bid wins if it reaches the reserve price (if one is set),
  and the listing fails if there is no bid or it does not.

Property rights (产权转让, after the rules on state-owned enterprise asset transactions):

- the disclosure lasts at least ``DISCLOSURE_WORKING_DAYS`` working days, counted the same
  way;
- buyers register while it is open; at the close: no buyer → extended by at least
  ``EXTENSION_WORKING_DAYS`` working days (up to the announced number of extensions) or
  failed; one qualified buyer → a transfer by agreement at the reserve price or above;
  several → an auction from the reserve price, as for land.

Amounts are whole fen (分), positive and at most ``MAX_AMOUNT``.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from kernel.calendar import WorkingCalendar
from kernel.chinatime import china_date
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)

LAND_NOTICE_DAYS = 20
LAND_LISTING_WORKING_DAYS = 10
DISCLOSURE_WORKING_DAYS = 20
EXTENSION_WORKING_DAYS = 5
MAX_EXTENSIONS = 12
#: With one buyer, the agreement is recorded within this many working days (by default).
AGREEMENT_WORKING_DAYS = 5
MAX_AGREEMENT_WORKING_DAYS = 20
#: 10^14 fen = one trillion yuan (as tenders): anything above is a typing error, not a
#: price. It also keeps every amount a safe integer of the RFC 8785 statements it is
#: signed in (at most 2^53 - 1); above that the signing itself would fail.
MAX_AMOUNT = 10**14
MIN_AUCTION_INTERVAL = timedelta(seconds=30)
MAX_AUCTION_INTERVAL = timedelta(hours=1)
#: A listing is announced at most this far ahead of its close.
MAX_LISTING_SPAN = timedelta(days=366)


class ListingState(StrEnum):
    #: Land: announced or open for bids. Property rights: the disclosure is running.
    LISTING = "listing"
    #: Property rights: one qualified buyer at the close, the agreement is awaited.
    AGREEMENT = "agreement"
    AUCTION = "auction"
    SOLD = "sold"
    FAILED = "failed"


class DealMethod(StrEnum):
    LISTING = "listing"
    AUCTION = "auction"
    AGREEMENT = "agreement"


class FailureReason(StrEnum):
    NO_BID = "no_bid"
    BELOW_RESERVE = "below_reserve"
    NO_BUYER = "no_buyer"
    NO_AUCTION_BID = "no_auction_bid"
    #: Property rights: the one buyer's agreement was not recorded by its deadline.
    NO_AGREEMENT = "no_agreement"


@dataclass(frozen=True)
class Bid:
    bidder_id: str
    amount: int
    at: datetime


@dataclass(frozen=True)
class Deal:
    buyer_id: str
    price: int
    method: DealMethod
    at: datetime


# --- Timing -------------------------------------------------------------------------------------


def working_days_in(calendar: WorkingCalendar, first: date, last: date) -> int:
    """The working days from ``first`` through ``last``, both counted."""
    return calendar.working_days_between(first - timedelta(days=1), last)


def earliest_close(calendar: WorkingCalendar, first: date, working_days: int) -> date:
    """The first date on which a period opened on ``first`` has lasted ``working_days``
    working days, ``first`` counted."""
    return calendar.add_working_days(first - timedelta(days=1), working_days)


def earliest_land_opening(notice_published: date) -> date:
    return notice_published + timedelta(days=LAND_NOTICE_DAYS)


# --- Amounts and increments -----------------------------------------------------------------


def _amount_fault(amount: int) -> str | None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        return "must be a whole number of fen"
    if amount <= 0:
        return "must be positive"
    if amount > MAX_AMOUNT:
        return f"must be at most {MAX_AMOUNT} fen"
    return None


def _check_amount(amount: int, name: str = "amount") -> None:
    fault = _amount_fault(amount)
    if fault:
        raise InvalidArgument(f"{name} {fault}", violations=[FieldViolation(name, fault)])


def check_amount(amount: int, name: str = "amount") -> None:
    """INVALID_ARGUMENT unless ``amount`` is a whole, positive, sane number of fen."""
    _check_amount(amount, name)


def _check_raise(amount: int, *, price: int, has_leader: bool, increment: int) -> None:
    """A bid at ``price`` + k × ``increment``: k ≥ 1 above a standing bid, k ≥ 0 for the
    first bid (at the start price or above)."""
    _check_amount(amount)
    lowest = price + increment if has_leader else price
    if amount < lowest:
        raise FailedPrecondition(
            f"a bid must be at least {lowest} fen now (the current price {price} fen"
            + (f" plus the increment {increment} fen)" if has_leader else ")"),
            violations=[FieldViolation("amount", f"at least {lowest}")])
    if (amount - price) % increment:
        raise InvalidArgument(
            f"a bid rises above {price} fen in whole steps of {increment} fen",
            violations=[FieldViolation("amount", f"{price} + a multiple of {increment}")])


# --- Auction --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Auction:
    """A live auction: it ends when no higher bid comes within ``interval`` of the last bid
    (or of its start, when nobody has bid yet)."""

    participants: frozenset[str]
    price: int
    increment: int
    interval: timedelta
    started_at: datetime
    #: Who holds ``price``: the listing's leader carried into the auction, or an auction bid.
    leader: str | None = None
    bids: tuple[Bid, ...] = ()

    @property
    def deadline(self) -> datetime:
        last = self.bids[-1].at if self.bids else self.started_at
        return last + self.interval

    def is_over(self, now: datetime) -> bool:
        return now >= self.deadline

    def bid(self, bidder_id: str, amount: int, at: datetime) -> Auction:
        if bidder_id not in self.participants:
            raise PermissionDenied(
                f"bidder {bidder_id} did not ask to bid at the close and is not in this auction")
        last = self.bids[-1].at if self.bids else self.started_at
        if at < last:
            raise FailedPrecondition(
                f"a bid at {at.isoformat()} comes before the last step ({last.isoformat()})")
        if self.is_over(at):
            raise FailedPrecondition(
                f"the auction ended at {self.deadline.isoformat()}: no higher bid came within "
                f"{int(self.interval.total_seconds())} s")
        if bidder_id == self.leader:
            raise FailedPrecondition(f"bidder {bidder_id} already holds the highest bid")
        _check_raise(amount, price=self.price, has_leader=self.leader is not None,
                     increment=self.increment)
        return replace(self, price=amount, leader=bidder_id,
                       bids=(*self.bids, Bid(bidder_id, amount, at)))


def _check_interval(interval: timedelta, problems: list[FieldViolation]) -> None:
    if not MIN_AUCTION_INTERVAL <= interval <= MAX_AUCTION_INTERVAL:
        problems.append(FieldViolation(
            "auction_interval", f"must be {int(MIN_AUCTION_INTERVAL.total_seconds())} s to "
            f"{int(MAX_AUCTION_INTERVAL.total_seconds())} s"))


def _check_amounts(problems: list[FieldViolation], **amounts: int | None) -> None:
    for name, amount in amounts.items():
        if amount is None:
            continue
        fault = _amount_fault(amount)
        if fault:
            problems.append(FieldViolation(name, fault))


def _aware(problems: list[FieldViolation], **instants: datetime) -> bool:
    naive = [n for n, v in instants.items() if v.tzinfo is None or v.utcoffset() is None]
    problems.extend(FieldViolation(n, "must carry its time zone") for n in naive)
    return not naive


def _refuse(what: str, problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(
            f"{what}: " + "; ".join(f"{p.field} {p.description}" for p in problems),
            violations=problems)


def _check_id(value: str, name: str) -> None:
    if not value or value != value.strip() or not value.isprintable():
        raise InvalidArgument(f"{name} must be non-blank printable text",
                              violations=[FieldViolation(name, "non-blank printable text")])


# --- Land -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandListingSpec:
    listing_number: str
    notice_published_at: datetime
    opens_at: datetime
    closes_at: datetime
    start_price: int
    increment: int
    auction_interval: timedelta
    #: The reserve price (底价); None when the listing has none.
    reserve_price: int | None = None


def check_land_spec(spec: LandListingSpec, calendar: WorkingCalendar) -> None:
    problems: list[FieldViolation] = []
    if not spec.listing_number or spec.listing_number != spec.listing_number.strip():
        problems.append(FieldViolation("listing_number", "must not be blank"))
    _check_amounts(problems, start_price=spec.start_price, increment=spec.increment,
                   reserve_price=spec.reserve_price)
    if (spec.reserve_price is not None and _amount_fault(spec.start_price) is None
            and _amount_fault(spec.reserve_price) is None
            and spec.reserve_price < spec.start_price):
        problems.append(FieldViolation("reserve_price", "must not be below the start price"))
    _check_interval(spec.auction_interval, problems)
    if _aware(problems, notice_published_at=spec.notice_published_at, opens_at=spec.opens_at,
              closes_at=spec.closes_at):
        published, opens = china_date(spec.notice_published_at), china_date(spec.opens_at)
        if opens < earliest_land_opening(published):
            problems.append(FieldViolation(
                "opens_at", f"the notice must be published at least {LAND_NOTICE_DAYS} days "
                f"before the listing opens: with the notice on {published.isoformat()} the "
                f"listing opens on {earliest_land_opening(published).isoformat()} or later"))
        if spec.closes_at - spec.notice_published_at > MAX_LISTING_SPAN:
            problems.append(FieldViolation(
                "closes_at", f"must be within {MAX_LISTING_SPAN.days} days of the notice"))
        elif spec.closes_at <= spec.opens_at:
            problems.append(FieldViolation("closes_at", "must come after opens_at"))
        else:
            first_close = earliest_close(calendar, opens, LAND_LISTING_WORKING_DAYS)
            if china_date(spec.closes_at) < first_close:
                problems.append(FieldViolation(
                    "closes_at", f"a listing lasts at least {LAND_LISTING_WORKING_DAYS} "
                    f"working days: opened on {opens.isoformat()} it closes on "
                    f"{first_close.isoformat()} or later"))
    _refuse(f"land listing {spec.listing_number} cannot be announced", problems)


@dataclass(frozen=True)
class LandListing:
    spec: LandListingSpec
    state: ListingState = ListingState.LISTING
    qualified: frozenset[str] = frozenset()
    bids: tuple[Bid, ...] = ()
    auction: Auction | None = None
    deal: Deal | None = None
    failure: FailureReason | None = None
    #: The bidders who asked, before the close, to keep bidding at it (art. 19).
    interested: frozenset[str] = frozenset()

    @property
    def leader(self) -> Bid | None:
        return self.bids[-1] if self.bids else None

    @property
    def current_price(self) -> int:
        return self.bids[-1].amount if self.bids else self.spec.start_price

    def _require(self, state: ListingState, doing: str) -> None:
        if self.state != state:
            raise FailedPrecondition(
                f"land listing {self.spec.listing_number} is {self.state.value}: cannot {doing}")

    def qualify(self, bidder_id: str, at: datetime) -> LandListing:
        """A bidder admitted to bid (deposit paid, qualification checked by the venue)."""
        _check_id(bidder_id, "bidder_id")
        self._require(ListingState.LISTING, "qualify a bidder")
        if not self.spec.notice_published_at <= at < self.spec.closes_at:
            raise FailedPrecondition(
                "bidders qualify between the notice and the close of the listing")
        if bidder_id in self.qualified:
            raise AlreadyExists(f"bidder {bidder_id} is already qualified")
        return replace(self, qualified=self.qualified | {bidder_id})

    def bid(self, bidder_id: str, amount: int, at: datetime) -> LandListing:
        self._require(ListingState.LISTING, "take a listing bid")
        if bidder_id not in self.qualified:
            raise PermissionDenied(f"bidder {bidder_id} is not qualified for this listing")
        if at < self.spec.opens_at:
            raise FailedPrecondition(
                f"the listing opens at {self.spec.opens_at.isoformat()}")
        if at >= self.spec.closes_at:
            raise FailedPrecondition(
                f"the listing closed at {self.spec.closes_at.isoformat()}")
        if self.bids and at < self.bids[-1].at:
            raise FailedPrecondition("a bid cannot come before the last bid")
        leader = self.leader
        if leader is not None and leader.bidder_id == bidder_id:
            raise FailedPrecondition(f"bidder {bidder_id} already holds the highest bid")
        _check_raise(amount, price=self.current_price, has_leader=leader is not None,
                     increment=self.spec.increment)
        return replace(self, bids=(*self.bids, Bid(bidder_id, amount, at)))

    def declare_interest(self, bidder_id: str, at: datetime) -> LandListing:
        """A bidder who bid on this listing asks, before the close, to keep bidding at it
        (招拍挂规定 art. 19): once, while the listing is open."""
        _check_id(bidder_id, "bidder_id")
        self._require(ListingState.LISTING, "take a request to keep bidding")
        if not any(b.bidder_id == bidder_id for b in self.bids):
            raise PermissionDenied(
                f"bidder {bidder_id} has not bid on this listing: only a bidder who bid may "
                "ask to keep bidding at the close")
        if at < self.spec.opens_at:
            raise FailedPrecondition(f"the listing opens at {self.spec.opens_at.isoformat()}")
        if at >= self.spec.closes_at:
            raise FailedPrecondition(
                f"the listing closed at {self.spec.closes_at.isoformat()}: a request to keep "
                "bidding comes before the close")
        if bidder_id in self.interested:
            raise AlreadyExists(f"bidder {bidder_id} already asked to keep bidding")
        return replace(self, interested=self.interested | {bidder_id})

    def close(self, at: datetime, *, still_bidding: Set[str]) -> LandListing:
        """The close: ``still_bidding`` are the qualified bidders who ask to bid on (the
        bidders who declared their interest, ``interested``)."""
        self._require(ListingState.LISTING, "close")
        if at < self.spec.closes_at:
            raise FailedPrecondition(
                f"the listing closes at {self.spec.closes_at.isoformat()}, not before")
        unknown = sorted(set(still_bidding) - self.qualified)
        if unknown:
            raise InvalidArgument(
                f"not qualified for this listing, so cannot bid on: {', '.join(unknown)}",
                violations=[FieldViolation("still_bidding", "qualified bidders only")])
        if len(still_bidding) >= 2:
            leader = self.leader
            return replace(self, state=ListingState.AUCTION, auction=Auction(
                participants=frozenset(still_bidding), price=self.current_price,
                increment=self.spec.increment, interval=self.spec.auction_interval,
                started_at=at, leader=leader.bidder_id if leader else None))
        return self._settle(self.leader, DealMethod.LISTING, at)

    def auction_bid(self, bidder_id: str, amount: int, at: datetime) -> LandListing:
        self._require(ListingState.AUCTION, "take an auction bid")
        assert self.auction is not None
        return replace(self, auction=self.auction.bid(bidder_id, amount, at))

    def conclude(self, at: datetime) -> LandListing:
        """The auction's end, once no higher bid came within the interval."""
        self._require(ListingState.AUCTION, "conclude an auction")
        assert self.auction is not None
        if not self.auction.is_over(at):
            raise FailedPrecondition(
                f"the auction runs until {self.auction.deadline.isoformat()} unless a "
                "higher bid comes")
        if self.auction.bids:
            return self._settle(self.auction.bids[-1], DealMethod.AUCTION, at)
        return self._settle(self.leader, DealMethod.LISTING, at)

    def _settle(self, best: Bid | None, method: DealMethod, at: datetime) -> LandListing:
        if best is None:
            return replace(self, state=ListingState.FAILED, failure=FailureReason.NO_BID)
        reserve = self.spec.reserve_price
        if reserve is not None and best.amount < reserve:
            return replace(self, state=ListingState.FAILED, failure=FailureReason.BELOW_RESERVE)
        return replace(self, state=ListingState.SOLD,
                       deal=Deal(best.bidder_id, best.amount, method, at))


def announce_land(spec: LandListingSpec, calendar: WorkingCalendar) -> LandListing:
    check_land_spec(spec, calendar)
    return LandListing(spec)


# --- Property rights ----------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyListingSpec:
    listing_number: str
    opens_at: datetime
    closes_at: datetime
    reserve_price: int
    increment: int
    auction_interval: timedelta
    #: How many extensions the disclosure announces when no buyer comes (0: none).
    max_extensions: int = 0
    #: With one buyer at the close, the agreement is recorded within this many working
    #: days or the listing fails (0: no deadline, the disclosures announced before it).
    agreement_working_days: int = 0


def check_property_spec(spec: PropertyListingSpec, calendar: WorkingCalendar) -> None:
    problems: list[FieldViolation] = []
    if not spec.listing_number or spec.listing_number != spec.listing_number.strip():
        problems.append(FieldViolation("listing_number", "must not be blank"))
    _check_amounts(problems, reserve_price=spec.reserve_price, increment=spec.increment)
    _check_interval(spec.auction_interval, problems)
    if not 0 <= spec.max_extensions <= MAX_EXTENSIONS:
        problems.append(FieldViolation("max_extensions", f"must be 0 to {MAX_EXTENSIONS}"))
    if not 0 <= spec.agreement_working_days <= MAX_AGREEMENT_WORKING_DAYS:
        problems.append(FieldViolation(
            "agreement_working_days",
            f"must be 0 (no deadline) or 1 to {MAX_AGREEMENT_WORKING_DAYS}"))
    if _aware(problems, opens_at=spec.opens_at, closes_at=spec.closes_at):
        if spec.closes_at - spec.opens_at > MAX_LISTING_SPAN:
            problems.append(FieldViolation(
                "closes_at", f"must be within {MAX_LISTING_SPAN.days} days of opens_at"))
        elif spec.closes_at <= spec.opens_at:
            problems.append(FieldViolation("closes_at", "must come after opens_at"))
        else:
            opens = china_date(spec.opens_at)
            first_close = earliest_close(calendar, opens, DISCLOSURE_WORKING_DAYS)
            if china_date(spec.closes_at) < first_close:
                problems.append(FieldViolation(
                    "closes_at", f"a disclosure lasts at least {DISCLOSURE_WORKING_DAYS} "
                    f"working days: opened on {opens.isoformat()} it closes on "
                    f"{first_close.isoformat()} or later"))
    _refuse(f"property-rights listing {spec.listing_number} cannot be disclosed", problems)


@dataclass(frozen=True)
class PropertyListing:
    spec: PropertyListingSpec
    #: The current close: the announced one, moved by each extension.
    closes_at: datetime
    state: ListingState = ListingState.LISTING
    buyers: frozenset[str] = frozenset()
    extensions: tuple[datetime, ...] = field(default=())
    auction: Auction | None = None
    deal: Deal | None = None
    failure: FailureReason | None = None
    #: With one buyer at the close: the agreement is recorded before this instant.
    agreement_due: datetime | None = None

    def _require(self, state: ListingState, doing: str) -> None:
        if self.state != state:
            raise FailedPrecondition(
                f"property-rights listing {self.spec.listing_number} is {self.state.value}: "
                f"cannot {doing}")

    def register_buyer(self, buyer_id: str, at: datetime) -> PropertyListing:
        """A qualified buyer (intent registered, deposit paid) during the disclosure."""
        _check_id(buyer_id, "buyer_id")
        self._require(ListingState.LISTING, "register a buyer")
        if not self.spec.opens_at <= at < self.closes_at:
            raise FailedPrecondition(
                f"buyers register while the disclosure runs, from "
                f"{self.spec.opens_at.isoformat()} until {self.closes_at.isoformat()}")
        if buyer_id in self.buyers:
            raise AlreadyExists(f"buyer {buyer_id} is already registered")
        return replace(self, buyers=self.buyers | {buyer_id})

    def close(self, at: datetime, calendar: WorkingCalendar, *,
              extend_to: datetime | None = None,
              agreement_due: datetime | None = None) -> PropertyListing:
        """The close of the disclosure (or of its extension). With no buyer, ``extend_to``
        extends it (≥ ``EXTENSION_WORKING_DAYS`` working days after the current close);
        without it, the listing fails."""
        self._require(ListingState.LISTING, "close the disclosure")
        if at < self.closes_at:
            raise FailedPrecondition(
                f"the disclosure runs until {self.closes_at.isoformat()}, not before")
        if extend_to is not None:
            return self._extend(extend_to, calendar)
        if not self.buyers:
            return replace(self, state=ListingState.FAILED, failure=FailureReason.NO_BUYER)
        if len(self.buyers) == 1:
            return replace(self, state=ListingState.AGREEMENT, agreement_due=agreement_due)
        return replace(self, state=ListingState.AUCTION, auction=Auction(
            participants=self.buyers, price=self.spec.reserve_price,
            increment=self.spec.increment, interval=self.spec.auction_interval, started_at=at))

    def _extend(self, extend_to: datetime, calendar: WorkingCalendar) -> PropertyListing:
        if self.buyers:
            raise FailedPrecondition(
                f"{len(self.buyers)} buyer(s) registered: a disclosure is extended only when "
                "no buyer came")
        if len(self.extensions) >= self.spec.max_extensions:
            raise FailedPrecondition(
                f"the disclosure announced {self.spec.max_extensions} extension(s), all used")
        if extend_to.tzinfo is None or extend_to.utcoffset() is None:
            raise InvalidArgument("extend_to must carry its time zone",
                                  violations=[FieldViolation("extend_to", "time zone")])
        current = china_date(self.closes_at)
        first = calendar.add_working_days(current, EXTENSION_WORKING_DAYS)
        if china_date(extend_to) < first:
            raise InvalidArgument(
                f"an extension lasts at least {EXTENSION_WORKING_DAYS} working days: from the "
                f"close on {current.isoformat()} it runs to {first.isoformat()} or later",
                violations=[FieldViolation("extend_to", f"{first.isoformat()} or later")])
        if extend_to - self.closes_at > MAX_LISTING_SPAN:
            raise InvalidArgument(
                f"an extension ends within {MAX_LISTING_SPAN.days} days",
                violations=[FieldViolation("extend_to", "too far ahead")])
        return replace(self, closes_at=extend_to, extensions=(*self.extensions, extend_to))

    def agree(self, buyer_id: str, price: int, at: datetime) -> PropertyListing:
        """The transfer by agreement with the one qualified buyer, at the reserve or above."""
        self._require(ListingState.AGREEMENT, "record an agreement")
        if buyer_id not in self.buyers:
            raise PermissionDenied(f"{buyer_id} is not the qualified buyer of this listing")
        if self.agreement_due is not None and at >= self.agreement_due:
            raise FailedPrecondition(
                f"the agreement was due before {self.agreement_due.isoformat()}: the listing "
                "fails")
        _check_amount(price, "price")
        if price < self.spec.reserve_price:
            raise InvalidArgument(
                f"the agreed price must be at least the reserve price "
                f"{self.spec.reserve_price} fen",
                violations=[FieldViolation("price", f"at least {self.spec.reserve_price}")])
        return replace(self, state=ListingState.SOLD,
                       deal=Deal(buyer_id, price, DealMethod.AGREEMENT, at))

    def expire_agreement(self, at: datetime) -> PropertyListing:
        """No agreement by its deadline: the listing fails."""
        self._require(ListingState.AGREEMENT, "let the agreement lapse")
        if self.agreement_due is None:
            raise FailedPrecondition("this disclosure announced no deadline for the agreement")
        if at < self.agreement_due:
            raise FailedPrecondition(
                f"the agreement may be recorded until {self.agreement_due.isoformat()}")
        return replace(self, state=ListingState.FAILED, failure=FailureReason.NO_AGREEMENT)

    def auction_bid(self, bidder_id: str, amount: int, at: datetime) -> PropertyListing:
        self._require(ListingState.AUCTION, "take an auction bid")
        assert self.auction is not None
        return replace(self, auction=self.auction.bid(bidder_id, amount, at))

    def conclude(self, at: datetime) -> PropertyListing:
        self._require(ListingState.AUCTION, "conclude an auction")
        assert self.auction is not None
        if not self.auction.is_over(at):
            raise FailedPrecondition(
                f"the auction runs until {self.auction.deadline.isoformat()} unless a "
                "higher bid comes")
        if not self.auction.bids:
            return replace(self, state=ListingState.FAILED,
                           failure=FailureReason.NO_AUCTION_BID)
        best = self.auction.bids[-1]
        return replace(self, state=ListingState.SOLD,
                       deal=Deal(best.bidder_id, best.amount, DealMethod.AUCTION, at))


def disclose_property(spec: PropertyListingSpec, calendar: WorkingCalendar) -> PropertyListing:
    check_property_spec(spec, calendar)
    return PropertyListing(spec, closes_at=spec.closes_at)


# --- As the venue records them --------------------------------------------------------------


@dataclass(frozen=True)
class ListingRecord:
    """A listing as the trading database keeps it: its terms are in its signed
    announcement; what happened since is in its acts and steps."""

    listing_no: str
    project_no: str
    category: str
    stage: str
    published_at: datetime
    opens_at: datetime
    closes_at: datetime
    workflow_started: bool
    entry_code: str = ""
    buyer_id: str = ""
    deal_price_fen: int = 0
    deal_method: str = ""
    failure: str = ""
    concluded_at: datetime | None = None


@dataclass(frozen=True)
class ListingAct:
    """A recorded listing bid, buyer or auction bid."""

    kind: str
    bidder_id: str
    amount_fen: int
    at: datetime
