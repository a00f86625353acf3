"""What the listing workflow and the trading service agree on.

The listing workflow (workflows/listing.py) runs one land listing (挂牌出让) or
property-rights listing (产权转让) from its notice or disclosure to its deal or
failure; the trading service hosts the activities it calls and sends it the
acts of bidders, buyers and officials as updates. As for tenders, Temporal
carries the work, not the authority: every act enters as a statement the
trading service signed after it authenticated the caller (the bidder's own
system, the trading officer), and the trading activity that records the step
verifies the signature again. The deal itself is signed by trading when it
records it.

Nothing here is personal: a listing is known by its number, a bidder or buyer
by its code, an official by id; amounts are whole fen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from kernel.calendar import WorkingCalendar
from kernel.signing import BadSignature, Signed, TrustedKeys
from services.trading.domain import listings as rules
from workflows.approval_contract import SignedStatement, iso_instant
from workflows.statement_fields import StatementFields
from workflows.tender_contract import parse_instant

#: The workflow type.
WORKFLOW_NAME = "ListingWorkflow"
CASE_KIND = "listing"
#: Every statement of a listing is signed by the trading service.
SIGNER = "trading"
TRADING = "trading"

LISTING_NUMBER_SHAPE = re.compile(r"^LS-[0-9]{8}-[0-9]{6}$")
LAND = "land"
PROPERTY_RIGHTS = "property_rights"


def workflow_id(listing_no: str) -> str:
    return f"listing/{listing_no}"


class StatementKind(StrEnum):
    #: Land: the notice. Property rights: the disclosure.
    ANNOUNCEMENT = "listing_announcement"
    #: A land bidder's bid while the listing is open, from its own system.
    BID = "listing_bid"
    #: A property-rights buyer registered during the disclosure, from its own system.
    BUYER = "listing_buyer"
    #: A bid in the auction after the close.
    AUCTION_BID = "listing_auction_bid"
    #: The officer's record of a transfer by agreement with the one buyer.
    AGREEMENT = "listing_agreement"
    #: A land bidder who bid asks, before the close, to keep bidding at it (art. 19).
    INTEREST = "listing_auction_interest"


# Update and query names.
BID = "bid"
REGISTER_BUYER = "register_buyer"
AUCTION_BID = "auction_bid"
AGREE = "agree"
DECLARE_INTEREST = "declare_interest"
STATUS = "status"

# Activity names, on the trading service's task queue.
#: The notice or disclosure recorded and published (once).
OPEN_LISTING = "trading.open_listing"
#: One act recorded (a bid, a buyer, an auction bid, the agreement) and published where the
#: public must see it; or a step of the clock (the listing opened).
RECORD_LISTING_STEP = "trading.record_listing_step"
#: The close: trading decides from what it recorded (auction, deal, agreement awaited,
#: extension, failure) and publishes it.
CLOSE_LISTING = "trading.close_listing"
#: The auction's quiet interval passed: trading concludes it (deal or failure).
CONCLUDE_AUCTION = "trading.conclude_auction"
#: The agreement's deadline passed without it: trading fails the listing (once).
EXPIRE_AGREEMENT = "trading.expire_agreement"
#: What trading recorded of the listing, for a run that starts again to rebuild from.
READ_LISTING = "trading.read_listing"


@dataclass(frozen=True)
class ListingFacts:
    """What a listing statement's body says, read strictly; ``Malformed`` when unreadable."""

    kind: str
    listing_no: str
    official_id: str
    system: str
    issued_at: str
    request_id: str = ""
    department_code: str = ""
    #: Announcement: what is listed and its terms.
    category: str = ""
    project_no: str = ""
    entry_code: str = ""
    owner_department: str = ""
    opens_at: str = ""
    closes_at: str = ""
    start_price_fen: int = 0
    increment_fen: int = 0
    reserve_price_fen: int = 0
    auction_interval_seconds: int = 0
    max_extensions: int = 0
    #: Property rights: the working days the agreement with one buyer is awaited (0: none).
    agreement_working_days: int = 0
    #: A bid, a buyer, the agreement.
    bidder_id: str = ""
    amount_fen: int = 0

    class Malformed(ValueError):
        pass

    @classmethod
    def read(cls, body: dict[str, Any]) -> ListingFacts:
        fields = StatementFields(body, cls.Malformed)
        text, number = fields.text, fields.number

        kind = text("kind", required=True)
        if kind not in set(StatementKind):
            raise cls.Malformed(f"{kind!r} is not a kind of listing statement")
        listing_no = text("listing_no", required=True)
        if not LISTING_NUMBER_SHAPE.fullmatch(listing_no):
            raise cls.Malformed("statement field listing_no is not a listing number")
        facts = cls(
            kind=kind, listing_no=listing_no, official_id=text("official_id"),
            system=text("system", required=True), issued_at=text("issued_at", required=True),
            request_id=text("request_id"), department_code=text("department_code"),
            category=text("category"), project_no=text("project_no"),
            entry_code=text("entry_code"), owner_department=text("owner_department"),
            opens_at=text("opens_at"), closes_at=text("closes_at"),
            start_price_fen=number("start_price_fen"), increment_fen=number("increment_fen"),
            reserve_price_fen=number("reserve_price_fen"),
            auction_interval_seconds=number("auction_interval_seconds"),
            max_extensions=number("max_extensions"),
            agreement_working_days=number("agreement_working_days"),
            bidder_id=text("bidder_id"),
            amount_fen=number("amount_fen"))
        for instant in ("issued_at", "opens_at", "closes_at"):
            value = getattr(facts, instant)
            if value:
                try:
                    parse_instant(value)
                except ValueError as error:
                    raise cls.Malformed(f"statement field {instant} is not an instant") \
                        from error
        if kind == StatementKind.ANNOUNCEMENT and (
                facts.category not in (LAND, PROPERTY_RIGHTS)
                or not facts.opens_at or not facts.closes_at):
            raise cls.Malformed("an announcement names its category, opening and close")
        return facts

    @property
    def issued(self) -> datetime:
        return parse_instant(self.issued_at)

    def instant(self, name: str) -> datetime:
        value: str = getattr(self, name)
        return parse_instant(value)


def verified_facts(keys: TrustedKeys, statement: SignedStatement,
                   kind: StatementKind) -> ListingFacts:
    """The facts of ``statement`` if trading signed it and it is a ``kind``.

    Raises BadSignature for a signature that does not hold or the wrong signer,
    and ListingFacts.Malformed for a body that cannot be read.
    """
    keys.verify(Signed(statement.body, statement.signer, statement.key_id,
                       statement.signature), signer=SIGNER)
    facts = ListingFacts.read(statement.body)
    if facts.kind != kind:
        raise BadSignature(f"a {facts.kind} statement was given as a {kind}")
    return facts


Listing = rules.LandListing | rules.PropertyListing


def spec_of(facts: ListingFacts) -> rules.LandListingSpec | rules.PropertyListingSpec:
    """The listing's terms as its signed announcement states them (the rules' own
    types: services/trading/domain/listings.py is pure, so the workflow keeps a copy)."""
    interval = timedelta(seconds=facts.auction_interval_seconds)
    if facts.category == LAND:
        return rules.LandListingSpec(
            facts.listing_no, facts.issued, facts.instant("opens_at"),
            facts.instant("closes_at"), facts.start_price_fen, facts.increment_fen, interval,
            facts.reserve_price_fen or None)
    return rules.PropertyListingSpec(
        facts.listing_no, facts.instant("opens_at"), facts.instant("closes_at"),
        facts.reserve_price_fen, facts.increment_fen, interval, facts.max_extensions,
        facts.agreement_working_days)


def fresh_listing(facts: ListingFacts) -> Listing:
    """The listing as announced, before anything happened."""
    spec = spec_of(facts)
    if isinstance(spec, rules.LandListingSpec):
        return rules.LandListing(spec)
    return rules.PropertyListing(spec, closes_at=spec.closes_at)


@dataclass
class RecordedAct:
    """A bid, buyer, request to keep bidding or auction bid as trading recorded it."""

    kind: str
    bidder_id: str
    amount_fen: int
    at: datetime


@dataclass
class ListingRecorded:
    """What trading recorded of a listing: a run that starts again (terminated and started
    with its input, or reset) rebuilds its copy from it, not from the announcement alone."""

    listing_no: str
    stage: str
    #: The announcement and the opening were recorded and published.
    announced: bool = False
    opened: bool = False
    #: The close as it stands and the extensions (property rights).
    closes_at: datetime | None = None
    extensions: list[datetime] = field(default_factory=list)
    #: The last close recorded (the auction's start, or the agreement awaited).
    closed_at: datetime | None = None
    agreement_due: datetime | None = None
    acts: list[RecordedAct] = field(default_factory=list)
    #: A finished listing: its result.
    buyer_id: str = ""
    price_fen: int = 0
    method: str = ""
    failure: str = ""


def replayed(facts: ListingFacts, recorded: ListingRecorded,
             calendar: WorkingCalendar | None = None) -> Listing:
    """The listing its announcement and what trading recorded make, by the rules (trading
    rebuilds it to decide each step; a run started again rebuilds its copy)."""
    listing = fresh_listing(facts)
    if (isinstance(listing, rules.PropertyListing) and recorded.extensions
            and recorded.closes_at is not None):
        listing = replace(listing, closes_at=recorded.closes_at,
                          extensions=tuple(recorded.extensions))
    for act in recorded.acts:
        if act.kind == "listing_bid" and isinstance(listing, rules.LandListing):
            if act.bidder_id not in listing.qualified:
                listing = listing.qualify(act.bidder_id, act.at)
            listing = listing.bid(act.bidder_id, act.amount_fen, act.at)
        elif act.kind == "buyer_registered" and isinstance(listing, rules.PropertyListing):
            listing = listing.register_buyer(act.bidder_id, act.at)
        elif act.kind == "auction_interest" and isinstance(listing, rules.LandListing):
            listing = listing.declare_interest(act.bidder_id, act.at)
    if recorded.closed_at is not None and recorded.stage in (rules.ListingState.AUCTION,
                                                              rules.ListingState.AGREEMENT):
        at = recorded.closed_at
        if isinstance(listing, rules.LandListing):
            # An auction recorded before bidders declared their interest was among all.
            still = (listing.interested if len(listing.interested) >= 2
                     else listing.qualified)
            listing = listing.close(at, still_bidding=still)
        else:
            # No extension is asked for, so the calendar is not consulted.
            listing = listing.close(at, cast(WorkingCalendar, calendar),
                                    agreement_due=recorded.agreement_due)
        for act in recorded.acts:
            if act.kind == "auction_bid":
                listing = listing.auction_bid(act.bidder_id, act.amount_fen, act.at)
    return listing


def closes_at(listing: Listing) -> datetime:
    """The close as it stands."""
    if isinstance(listing, rules.LandListing):
        return listing.spec.closes_at
    return listing.closes_at


def listing_statement_body(*, kind: StatementKind, listing_no: str, system: str,
                           issued_at: datetime, request_id: str = "",
                           **extra: str | int | datetime | None) -> dict[str, Any]:
    """The body trading signs: the facts it checked, and nothing personal."""
    body: dict[str, Any] = {
        "kind": str(kind), "listing_no": listing_no, "system": system,
        "issued_at": iso_instant(issued_at), "request_id": request_id}
    for key, value in extra.items():
        if value in ("", 0, None):
            continue
        body[key] = iso_instant(value) if isinstance(value, datetime) else value
    return body


# ---- the workflow's input, updates and answers ----------------------------------------

@dataclass
class ListingInput:
    """Starts a listing: trading's signed notice or disclosure."""

    announcement: SignedStatement


@dataclass
class ListingAct:
    """A bid, a buyer's registration or the agreement, signed by trading."""

    statement: SignedStatement


@dataclass
class ListingReceipt:
    listing_no: str
    stage: str
    #: The feed entry that published the act (0 when it is not published).
    feed_sequence: int = 0


@dataclass
class ListingStatus:
    """What the `status` query answers."""

    listing_no: str
    category: str
    stage: str
    opened: bool
    closes_at: datetime
    waiting_for: str
    current_price_fen: int = 0
    leader: str = ""
    bids: int = 0
    buyers: int = 0
    extensions: int = 0
    auction_deadline: datetime | None = None
    buyer_id: str = ""
    deal_price_fen: int = 0
    failure: str = ""
    feed_sequences: list[int] = field(default_factory=list)


@dataclass
class ListingResult:
    listing_no: str
    #: "sold" or "failed".
    outcome: str
    finished_at: datetime
    buyer_id: str = ""
    price_fen: int = 0
    method: str = ""
    failure: str = ""


@dataclass
class ListingStep:
    """One transition, for trading to record: the statement that caused it (the
    announcement for a step the clock caused), its name and the instant on the listing's
    clock. Trading takes from it only what is signed, plus the instant."""

    listing_no: str
    statement: SignedStatement
    at: datetime
    step: str = ""


@dataclass
class StepReceipt:
    """What trading recorded: the stage it now stands at, and the feed entries."""

    listing_no: str
    stage: str
    feed_sequences: list[int] = field(default_factory=list)
    #: An extended disclosure: its new close.
    closes_at: datetime | None = None
    #: A deal: who, at what price, how.
    buyer_id: str = ""
    price_fen: int = 0
    method: str = ""
    failure: str = ""
    #: One buyer at the close: the agreement is recorded before this instant, or the
    #: listing fails (None: no deadline announced).
    agreement_due: datetime | None = None
