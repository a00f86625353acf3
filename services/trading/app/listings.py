"""Land and property-rights listings: the use cases, one function each, on a unit of work.

Who may do what:

- publishing a land listing's notice, a property-rights disclosure and recording an
  agreement need a trading officer, spoken for by a system the registry lets speak
  for one; the project must be registered, of the land (or property-rights)
  category, and neither tendered, awarded directly nor listed already (a listing that
  failed does not count: the project may be listed again, under a new number);
- a listing bid, a buyer's registration and an auction bid are taken only from the
  calling system the bidders directory names for the bidder: a bidder's system
  cannot act for another bidder (PERMISSION_DENIED).

Acts are signed here (``listing_statement_body``) and sent to the listing's
workflow by the API layer; the workflow checks them against the rules at the
listing's clock and the trading activities (services/trading/app/listing_steps.py)
record them, so a refused act leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from kernel.audit import Actor
from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import china_date
from kernel.directory import require_official
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.identity import Caller
from kernel.numbering import day_number
from kernel.paging import after_text, page_size, rows_to_fetch, take_page
from kernel.signing import ServiceSigner
from services.trading.app.listing_steps import rebuild, recorded_from
from services.trading.app.request_ids import Asked, act_asked_again, answer_again
from services.trading.app.tenders import TRADING_OFFICER, TRADING_SYSTEM
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain import listings as rules
from services.trading.domain.listings import ListingRecord, ListingState
from services.trading.domain.model import act_key
from workflows.approval_contract import as_statement, iso_instant
from workflows.listing_contract import (
    LAND,
    PROPERTY_RIGHTS,
    Listing,
    ListingAct,
    ListingFacts,
    StatementKind,
    closes_at,
    listing_statement_body,
    replayed,
)

_WHAT = {LAND: "a land listing (挂牌出让)",
         PROPERTY_RIGHTS: "a property-rights transfer (产权转让)"}


def _publish(*, uow: TradingUnitOfWork, signer: ServiceSigner, calendar: WorkingCalendar,
             caller: Caller, request_id: str, project_no: str, category: str,
             spec: rules.LandListingSpec | rules.PropertyListingSpec,
             now: datetime) -> ListingRecord:
    try:
        with uow:
            official = require_official(uow.staff, caller, role=TRADING_OFFICER)
            existing = uow.listings.by_request(request_id)
            if existing is not None:
                return _the_same_request(uow, existing, caller=caller, request_id=request_id,
                                         project_no=project_no, spec=spec)
            project = uow.projects.get(project_no, lock=True)
            if project is None:
                raise NotFound(f"project {project_no} is not registered")
            if project.category != category:
                codes = ", ".join(e.code for e in uow.catalogue.list(category=category))
                raise FailedPrecondition(
                    f"project {project_no} is of the {project.category} category: "
                    f"{_WHAT[category]} takes projects of the {category} category only (the "
                    f"catalogue of what must enter the venue, entries {codes})")
            if uow.listings.of_project(project_no) is not None:
                # The same request may have listed it since it was looked for (PostgreSQL
                # reads each statement's committed rows): then that is the answer.
                raced = uow.listings.by_request(request_id)
                if raced is not None:
                    return _the_same_request(uow, raced, caller=caller, request_id=request_id,
                                             project_no=project_no, spec=spec)
                raise AlreadyExists(f"project {project_no} is listed already")
            if uow.tenders.of_project(project_no) is not None:
                raise FailedPrecondition(f"project {project_no} is tendered in the venue")
            if uow.projects.direct_award(project_no) is not None:
                raise FailedPrecondition(f"project {project_no} was awarded directly")
            day = china_date(now)  # numbered by the day in China, as cases are
            listing_no = day_number("LS", day, uow.sequences.next(f"LS-{day:%Y%m%d}"),
                                    what="listing")
            spec = _numbered(spec, listing_no)
            try:
                if isinstance(spec, rules.LandListingSpec):
                    rules.check_land_spec(spec, calendar)
                else:
                    rules.check_property_spec(spec, calendar)
            except UnknownYearError as error:
                raise FailedPrecondition(str(error)) from error
            announcement = signer.sign(listing_statement_body(
                kind=StatementKind.ANNOUNCEMENT, listing_no=listing_no, system=caller.system,
                issued_at=now, request_id=request_id, official_id=official.id,
                department_code=official.department_code, category=category,
                project_no=project_no, entry_code=project.entry.code if project.entry else "",
                owner_department=project.department_code, opens_at=spec.opens_at,
                **_terms(spec)))
            record = ListingRecord(listing_no, project_no, category, str(ListingState.LISTING),
                                   now, spec.opens_at, spec.closes_at, False,
                                   project.entry.code if project.entry else "")
            uow.listings.add(record, request_id=request_id, announcement=announcement.as_dict())
            uow.audit.append(actor=Actor(caller.system, official.id), action="listing.published",
                             subject=f"listing/{listing_no}", at=now,
                             details={"project_no": project_no, "category": category,
                                      "opens_at": spec.opens_at.isoformat(),
                                      "closes_at": spec.closes_at.isoformat()})
            uow.commit()
            return record
    except IntegrityError:
        # The same request or the same project raced (PostgreSQL lets both check before
        # either inserts): the first one's listing is the answer, or the project is taken.
        with uow:
            raced = uow.listings.by_request(request_id)
            listed = uow.listings.of_project(project_no)
            if raced is not None:
                return _the_same_request(uow, raced, caller=caller, request_id=request_id,
                                         project_no=project_no, spec=spec)
        if listed is not None:
            raise AlreadyExists(f"project {project_no} is listed already") from None
        raise


def _terms(spec: rules.LandListingSpec | rules.PropertyListingSpec
           ) -> dict[str, str | int | datetime]:
    """The terms a listing's announcement states besides when it opens (a disclosure opens
    when it is made, so a retry's opening differs): what a retry must ask again."""
    if isinstance(spec, rules.LandListingSpec):
        kind: dict[str, str | int | datetime] = {"start_price_fen": spec.start_price}
    else:
        kind = {"max_extensions": spec.max_extensions,
                "agreement_working_days": spec.agreement_working_days}
    return {"closes_at": spec.closes_at, "increment_fen": spec.increment,
            "reserve_price_fen": spec.reserve_price or 0,
            "auction_interval_seconds": int(spec.auction_interval.total_seconds()), **kind}


def _the_same_request(uow: TradingUnitOfWork, listing: ListingRecord, *, caller: Caller,
                      request_id: str, project_no: str,
                      spec: rules.LandListingSpec | rules.PropertyListingSpec) -> ListingRecord:
    """The listing published under ``request_id`` when this is that request again (the same
    system, the same project, the same terms: ``request_ids.answer_again``). The terms are
    compared as the signed announcement states them (a land listing's opening among them)."""
    body = uow.listings.announcement(listing.listing_no)["body"]
    published_by = ListingFacts.read(body)
    terms = _terms(spec)
    if isinstance(spec, rules.LandListingSpec):
        terms["opens_at"] = spec.opens_at
    # As the announcement's body carries them: instants in ISO form, zeros left out.
    asked = {name: iso_instant(value) if isinstance(value, datetime) else value or None
             for name, value in terms.items()}
    return answer_again(listing, request_id=request_id, what="listing",
                        first=Asked(published_by.system, listing.project_no,
                                    {name: body.get(name) for name in terms}),
                        now=Asked(caller.system, project_no, asked))


def _numbered(spec: rules.LandListingSpec | rules.PropertyListingSpec,
              listing_no: str) -> rules.LandListingSpec | rules.PropertyListingSpec:
    return replace(spec, listing_number=listing_no)


def _check_within_reach(now: datetime, **instants: datetime) -> None:
    """INVALID_ARGUMENT for an instant further than a listing's longest span from now (a
    typing mistake, and one whose date in China may not even exist)."""
    far = [name for name, value in instants.items()
           if not now - rules.MAX_LISTING_SPAN <= value <= now + rules.MAX_LISTING_SPAN]
    if far:
        raise InvalidArgument(
            f"{', '.join(far)} must be within {rules.MAX_LISTING_SPAN.days} days of now",
            violations=[FieldViolation(name, f"within {rules.MAX_LISTING_SPAN.days} days of "
                                       "now") for name in far])


def publish_land_listing(*, uow: TradingUnitOfWork, signer: ServiceSigner,
                         calendar: WorkingCalendar, caller: Caller, request_id: str,
                         project_no: str, opens_at: datetime, closes_at: datetime,
                         start_price_fen: int, increment_fen: int, reserve_price_fen: int,
                         auction_interval: timedelta, now: datetime) -> ListingRecord:
    """Publish a land listing's notice now: checked against the rules (notice 20 days at
    least before the opening, 10 working days of listing at least), the signed notice kept
    as the outbox entry of its workflow. The same ``request_id`` again returns it."""
    _check_within_reach(now, opens_at=opens_at, closes_at=closes_at)
    spec = rules.LandListingSpec("LS-00000000-000000", now, opens_at, closes_at,
                                 start_price_fen, increment_fen, auction_interval,
                                 reserve_price_fen or None)
    # The terms are checked in _publish, once the request id is known to be new: a
    # retry after a lost answer is answered however the clock has moved since.
    return _publish(uow=uow, signer=signer, calendar=calendar, caller=caller,
                    request_id=request_id, project_no=project_no, category=LAND, spec=spec,
                    now=now)


def disclose_property(*, uow: TradingUnitOfWork, signer: ServiceSigner,
                      calendar: WorkingCalendar, caller: Caller, request_id: str,
                      project_no: str, closes_at: datetime, reserve_price_fen: int,
                      increment_fen: int, auction_interval: timedelta, max_extensions: int,
                      now: datetime, agreement_working_days: int = 0) -> ListingRecord:
    """Disclose a property-rights transfer from now (20 working days at least); with one
    buyer at the close, the agreement is awaited ``agreement_working_days`` working days
    (0: the default, ``rules.AGREEMENT_WORKING_DAYS``)."""
    _check_within_reach(now, closes_at=closes_at)
    if not 0 <= agreement_working_days <= rules.MAX_AGREEMENT_WORKING_DAYS:
        allowed = (f"0 (the default, {rules.AGREEMENT_WORKING_DAYS} working days) "
                   f"or 1 to {rules.MAX_AGREEMENT_WORKING_DAYS}")
        raise InvalidArgument(
            f"agreement_working_days must be {allowed}",
            violations=[FieldViolation("agreement_working_days", f"must be {allowed}")])
    spec = rules.PropertyListingSpec("LS-00000000-000000", now, closes_at, reserve_price_fen,
                                     increment_fen, auction_interval, max_extensions,
                                     agreement_working_days or rules.AGREEMENT_WORKING_DAYS)
    return _publish(uow=uow, signer=signer, calendar=calendar, caller=caller,
                    request_id=request_id, project_no=project_no, category=PROPERTY_RIGHTS,
                    spec=spec, now=now)


@dataclass(frozen=True)
class PreparedListingAct:
    """An act, signed, ready for the listing's workflow."""

    act: ListingAct
    listing: ListingRecord


@dataclass(frozen=True)
class RecordedListingAct:
    """An act recorded already under the caller's request id, asking the same: the retry
    of a call whose answer was lost, answered from the record, not sent again."""

    listing_no: str
    #: The feed entry the act published (0 when none), as the first call answered.
    feed_sequence: int


#: The step each act is recorded as (services/trading/app/listing_steps.py).
ACT_STEPS = {StatementKind.BID: "listing_bid", StatementKind.BUYER: "buyer_registered",
             StatementKind.AUCTION_BID: "auction_bid",
             StatementKind.INTEREST: "auction_interest", StatementKind.AGREEMENT: "agreement"}


def _recorded(uow: TradingUnitOfWork, *, listing_no: str, kind: StatementKind, caller: Caller,
              request_id: str, body: dict[str, object]) -> RecordedListingAct | None:
    """The act the calling system recorded on the listing under ``request_id`` when
    ``body`` asks what it asked (``request_ids.act_asked_again``); ALREADY_EXISTS naming the
    terms that differ when it asked something else; None when it recorded none."""
    if not request_id:
        return None
    done = uow.listings.step(listing_no, act_key(ACT_STEPS[kind], caller.system, request_id))
    if done is None:
        return None
    return act_asked_again(RecordedListingAct(listing_no, int(done.feed_sequence)),
                           request_id=request_id,
                           first=json.loads(done.statement)["body"], now=body)


def prepare_bidder_act(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                       kind: StatementKind, listing_no: str, bidder_id: str, amount_fen: int,
                       request_id: str, now: datetime
                       ) -> PreparedListingAct | RecordedListingAct:
    """A bid, a buyer's registration, an auction bid or a request to keep bidding at the
    close, from the bidder's own system, signed; nothing is written.

    The same system's same request again, once its act is recorded, is answered from the
    record (``RecordedListingAct``), even after the listing is settled; the same request id
    asking other terms (another amount, another bidder) is ALREADY_EXISTS."""
    if kind not in (StatementKind.BUYER, StatementKind.INTEREST):
        rules.check_amount(amount_fen, "amount_fen")
    body = listing_statement_body(kind=kind, listing_no=listing_no, system=caller.system,
                                  issued_at=now, request_id=request_id, bidder_id=bidder_id,
                                  amount_fen=amount_fen)
    with uow:
        bidder = uow.bidders.get(bidder_id)
        if bidder is None:
            raise NotFound(f"bidder {bidder_id} is not in the bidders directory")
        if bidder.system != caller.system:
            raise PermissionDenied(f"system {caller.system} may not act for bidder "
                                   f"{bidder_id}: only the bidder's own system may")
        listing = uow.listings.get(listing_no)
        if listing is None:
            raise NotFound(f"listing {listing_no} is not known")
        again = _recorded(uow, listing_no=listing_no, kind=kind, caller=caller,
                          request_id=request_id, body=body)
        if again is not None:
            return again
    if listing.stage in (ListingState.SOLD, ListingState.FAILED):
        raise FailedPrecondition(f"listing {listing_no} is finished ({listing.stage})")
    return PreparedListingAct(ListingAct(as_statement(signer.sign(body))), listing)


def prepare_agreement(*, uow: TradingUnitOfWork, signer: ServiceSigner,
                      calendar: WorkingCalendar, caller: Caller, listing_no: str,
                      price_fen: int, request_id: str, now: datetime
                      ) -> PreparedListingAct | RecordedListingAct:
    """The officer's record of the transfer by agreement with the one buyer, signed; the
    same request again, once recorded, answered from the record (``RecordedListingAct``),
    the same request id asking another price ALREADY_EXISTS."""
    rules.check_amount(price_fen, "price_fen")
    with uow:
        official = require_official(uow.staff, caller, role=TRADING_OFFICER)
        record = uow.listings.get(listing_no)
        if record is None:
            raise NotFound(f"listing {listing_no} is not known")
        if request_id and (done := uow.listings.step(
                listing_no, act_key(ACT_STEPS[StatementKind.AGREEMENT], caller.system,
                                    request_id))) is not None:
            recorded_body = json.loads(done.statement)["body"]
            # The buyer is the one the record names; the rest the request asks again.
            asked = listing_statement_body(
                kind=StatementKind.AGREEMENT, listing_no=listing_no, system=caller.system,
                issued_at=now, request_id=request_id, official_id=official.id,
                department_code=official.department_code,
                bidder_id=str(recorded_body.get("bidder_id", "")), amount_fen=price_fen)
            return act_asked_again(RecordedListingAct(listing_no, int(done.feed_sequence)),
                                   request_id=request_id, first=recorded_body, now=asked)
        if record.stage != ListingState.AGREEMENT:
            raise FailedPrecondition(f"listing {listing_no} is {record.stage}: an agreement "
                                     "follows a disclosure that closed with one buyer")
        _, _, listing = rebuild(uow, listing_no, calendar, for_update=False)
    assert isinstance(listing, rules.PropertyListing)
    (buyer,) = listing.buyers
    body = listing_statement_body(
        kind=StatementKind.AGREEMENT, listing_no=listing_no, system=caller.system,
        issued_at=now, request_id=request_id, official_id=official.id,
        department_code=official.department_code, bidder_id=buyer, amount_fen=price_fen)
    return PreparedListingAct(ListingAct(as_statement(signer.sign(body))), record)


@dataclass(frozen=True)
class ListingView:
    """A listing as GetListing shows it."""

    record: ListingRecord
    start_price_fen: int
    increment_fen: int
    reserve_price_fen: int
    auction_interval_seconds: int
    current_price_fen: int
    leader: str
    bids: int
    buyers: int
    extensions: int
    closes_at: datetime
    agreement_due: datetime | None = None
    agreement_working_days: int = 0
    auction_interest: int = 0


@dataclass(frozen=True)
class ListingPage:
    listings: list[ListingView]
    next_page_token: str


def get_listing(*, uow: TradingUnitOfWork, calendar: WorkingCalendar,
                listing_no: str) -> ListingView:
    with uow:
        if uow.listings.get(listing_no) is None:
            raise NotFound(f"listing {listing_no} is not known")
        return _view(uow, calendar, listing_no)


def list_listings(*, uow: TradingUnitOfWork, calendar: WorkingCalendar, category: str,
                  stage: str, requested_size: int, page_token: str) -> ListingPage:
    """One page of the listings by number, of a category and a stage ('' for all), each as
    GetListing shows it."""
    size = page_size(requested_size)
    with uow:
        page = take_page(uow.listings.page(category=category, stage=stage,
                                           after=after_text(page_token),
                                           limit=rows_to_fetch(size)),
                         size, key=lambda r: (r.listing_no,))
        # The page's announcements, acts and steps in one query each, not per listing.
        read = uow.listings.page_of([r.listing_no for r in page.items])
        views = []
        for record in page.items:
            facts = ListingFacts.read(read.announcements[record.listing_no]["body"])
            acts = read.acts[record.listing_no]
            listing = replayed(facts, recorded_from(
                record, facts, calendar, steps=read.steps[record.listing_no], acts=acts),
                calendar)
            views.append(_shown(facts, record, listing, acts))
    return ListingPage(views, page.next_page_token)


def _view(uow: TradingUnitOfWork, calendar: WorkingCalendar, listing_no: str) -> ListingView:
    """The listing as GetListing shows it, inside an open unit of work."""
    facts, record, listing = rebuild(uow, listing_no, calendar, for_update=False)
    return _shown(facts, record, listing, uow.listings.acts(listing_no))


def _shown(facts: ListingFacts, record: ListingRecord, listing: Listing,
           acts: Sequence[rules.ListingAct]) -> ListingView:
    """The listing as GetListing shows it, from what was read of it."""
    bids = [a for a in acts if a.kind in ("listing_bid", "auction_bid")]
    price = bids[-1].amount_fen if bids else (facts.start_price_fen or facts.reserve_price_fen)
    leader = bids[-1].bidder_id if bids else ""
    land = facts.category == LAND
    return ListingView(
        record, facts.start_price_fen, facts.increment_fen,
        # A land listing's reserve price stays unshown until it concluded.
        facts.reserve_price_fen if not land or record.concluded_at else 0,
        facts.auction_interval_seconds, price, leader, len(bids),
        sum(1 for a in acts if a.kind == "buyer_registered"),
        len(listing.extensions) if isinstance(listing, rules.PropertyListing) else 0,
        closes_at(listing),
        listing.agreement_due if isinstance(listing, rules.PropertyListing) else None,
        facts.agreement_working_days,
        len(listing.interested) if isinstance(listing, rules.LandListing) else 0)


def unstarted_listings(*, uow: TradingUnitOfWork) -> list[str]:
    with uow:
        return uow.listings.unstarted()


def announcement_of(*, uow: TradingUnitOfWork, listing_no: str) -> dict[str, object]:
    with uow:
        return uow.listings.announcement(listing_no)


def mark_workflow_started(*, uow: TradingUnitOfWork, listing_no: str, at: datetime) -> None:
    with uow:
        if uow.listings.mark_started(listing_no):
            uow.audit.append(actor=Actor(TRADING_SYSTEM), action="listing.workflow_started",
                             subject=f"listing/{listing_no}", at=at, details={})
        uow.commit()
