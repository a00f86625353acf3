"""Trading's side of the listing workflow: each transition recorded by one activity.

Every function here is the body of one trading activity
(services/trading/activities.py). Each verifies the signed statement it is
given with the trading service's published keys (an act nobody signed, or one
for another listing, is refused: PERMISSION_DENIED), rebuilds the listing from
what it recorded (services/trading/domain/listings.py decides, at the instant
the workflow gives), records the step once (a retried activity finds its step
and answers as the first time), writes the audit log, the monitoring step and
the public feed: notice or disclosure, opening, each listing bid (amount,
bidder code), extension, auction start, each auction bid, agreement, result.
The deal is signed by trading as it is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from kernel.audit import Actor
from kernel.calendar import UnknownYearError, WorkingCalendar
from kernel.chinatime import china_date
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kernel.signing import BadSignature, ServiceSigner, TrustedKeys
from services.trading.app.request_ids import act_asked_again, terms_sha256
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain import listings as rules
from services.trading.domain.draws import utc_text
from services.trading.domain.feed import FeedLink, NewFeedEntry
from services.trading.domain.listings import ListingAct, ListingRecord, ListingState
from services.trading.domain.model import act_key
from workflows.approval_contract import SignedStatement, statement_json
from workflows.listing_contract import (
    LAND,
    Listing,
    ListingFacts,
    ListingRecorded,
    ListingStep,
    RecordedAct,
    StatementKind,
    StepReceipt,
    replayed,
    verified_facts,
)
from workflows.tender_rules import end_of_china_day

UnitOfWorkFactory = Callable[[], TradingUnitOfWork]
TRADING_SYSTEM = "govhall-trading"
FINISHED = (ListingState.SOLD, ListingState.FAILED)


def _verified(keys: TrustedKeys, statement: SignedStatement, kind: StatementKind,
              listing_no: str) -> ListingFacts:
    try:
        facts = verified_facts(keys, statement, kind)
    except BadSignature as error:
        raise PermissionDenied(f"the {kind} is not one the trading service signed: {error}") \
            from error
    except ListingFacts.Malformed as error:
        raise InvalidArgument(str(error)) from error
    if facts.listing_no != listing_no:
        raise PermissionDenied(f"the statement is about listing {facts.listing_no}, "
                               f"not {listing_no}")
    return facts


def _record(unit: TradingUnitOfWork, listing_no: str) -> ListingRecord:
    record = unit.listings.get(listing_no, for_update=True)
    if record is None:
        raise NotFound(f"listing {listing_no} is not known")
    return record


def agreement_due(calendar: WorkingCalendar, facts: ListingFacts,
                  closed_at: datetime) -> datetime | None:
    """The end of the announced working days after the close for the agreement with the
    one buyer (None when the disclosure announced none)."""
    if not facts.agreement_working_days:
        return None
    try:
        return end_of_china_day(calendar.add_working_days(
            china_date(closed_at), facts.agreement_working_days))
    except UnknownYearError as error:
        raise FailedPrecondition(str(error)) from error


def recorded(unit: TradingUnitOfWork, record: ListingRecord, facts: ListingFacts,
             calendar: WorkingCalendar) -> ListingRecorded:
    """What trading recorded of the listing, as a run started again reads it."""
    return recorded_from(record, facts, calendar, steps=unit.listings.steps(record.listing_no),
                         acts=unit.listings.acts(record.listing_no))


def recorded_from(record: ListingRecord, facts: ListingFacts, calendar: WorkingCalendar, *,
                  steps: Sequence[Row[Any]], acts: Sequence[ListingAct]) -> ListingRecorded:
    """``recorded`` on the listing's steps (in order) and acts (in order), read already."""
    names = {s.step for s in steps}
    closed = [s.at for s in steps if s.step == "closed"]
    closed_at = closed[-1] if closed else None
    due = (agreement_due(calendar, facts, closed_at)
           if closed_at is not None and record.stage == ListingState.AGREEMENT else None)
    return ListingRecorded(
        record.listing_no, record.stage, announced="announced" in names,
        opened="opened" in names, closes_at=record.closes_at,
        extensions=[s.at for s in steps if s.step == "extended"], closed_at=closed_at,
        agreement_due=due,
        acts=[RecordedAct(a.kind, a.bidder_id, a.amount_fen, a.at) for a in acts],
        buyer_id=record.buyer_id, price_fen=record.deal_price_fen, method=record.deal_method,
        failure=record.failure)


def rebuild(unit: TradingUnitOfWork, listing_no: str, calendar: WorkingCalendar, *,
            for_update: bool = True) -> tuple[ListingFacts, ListingRecord, Listing]:
    """The listing as its announcement and what was recorded since make it."""
    record = unit.listings.get(listing_no, for_update=for_update)
    if record is None:
        raise NotFound(f"listing {listing_no} is not known")
    facts = ListingFacts.read(unit.listings.announcement(listing_no)["body"])
    return facts, record, replayed(facts, recorded(unit, record, facts, calendar), calendar)


def read_listing(*, uow: UnitOfWorkFactory, keys: TrustedKeys, calendar: WorkingCalendar,
                 step: ListingStep) -> ListingRecorded:
    """What trading recorded of the listing, for its workflow's run that starts again (the
    announcement it was started with checked against the one recorded)."""
    facts = _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        record = unit.listings.get(step.listing_no)
        if record is None:
            raise NotFound(f"listing {step.listing_no} is not known")
        if unit.listings.announcement(step.listing_no)["signature"] != \
                step.statement.signature:
            raise PermissionDenied(f"the announcement is not the one listing "
                                   f"{step.listing_no} was published with")
        return recorded(unit, record, facts, calendar)


def _publish(unit: TradingUnitOfWork, signer: ServiceSigner, kind: str, listing_no: str,
             body: dict[str, Any], *, at: datetime) -> int:
    """Append ``body`` to the feed, chained and signed with trading's key; its sequence."""
    def make(link: FeedLink) -> NewFeedEntry:
        chained = body | {"feed": link.as_dict(utc_text(link.published_at))}
        return NewFeedEntry.of(kind, f"listing/{listing_no}", signer.sign(chained).as_dict())

    return unit.feed.append(make, at=at)


def _receipt(record: ListingRecord, sequences: list[int], *,
             listing: Listing | None = None) -> StepReceipt:
    due = listing.agreement_due if isinstance(listing, rules.PropertyListing) else None
    return StepReceipt(record.listing_no, record.stage, sequences, record.closes_at,
                       record.buyer_id, record.deal_price_fen, record.deal_method,
                       record.failure, due)


def _done(unit: TradingUnitOfWork, listing_no: str, key: str) -> StepReceipt | None:
    """The receipt of a step recorded already (a retried activity)."""
    done = unit.listings.step(listing_no, key)
    if done is None:
        return None
    record = _record(unit, listing_no)
    return _receipt(record, [done.feed_sequence] if done.feed_sequence else [])


def _recorded_again(unit: TradingUnitOfWork, step: ListingStep,
                    key: str) -> StepReceipt | None:
    """The receipt of the act recorded under ``key`` already, when ``step``'s act asks the
    same (a retried activity, or the same request signed again); None when none is.

    One act per key: an act under the same request id asking other terms (two contents
    sent at once, each its own update) is ALREADY_EXISTS naming the terms that differ,
    never answered with the recorded act's receipt, and nothing is recorded."""
    done = unit.listings.step(step.listing_no, key)
    if done is None:
        return None
    act_asked_again(None, request_id=str(step.statement.body.get("request_id", "")),
                    first=json.loads(done.statement)["body"], now=step.statement.body)
    return _receipt(_record(unit, step.listing_no),
                    [done.feed_sequence] if done.feed_sequence else [])


def open_listing(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                 step: ListingStep) -> StepReceipt:
    """The notice (land) or disclosure (property rights) recorded and published, once."""
    facts = _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        record = _record(unit, step.listing_no)
        if unit.listings.announcement(step.listing_no)["signature"] != \
                step.statement.signature:
            raise PermissionDenied(f"the announcement is not the one listing "
                                   f"{step.listing_no} was published with")
        done = _done(unit, step.listing_no, "announced")
        if done is not None:
            return done
        # The reserve price (底价) of a land listing stays unpublished until the result.
        public = {"listing_no": step.listing_no, "project_no": facts.project_no,
                  "category": facts.category, "entry_code": facts.entry_code,
                  "owner_department": facts.owner_department,
                  "published_at": facts.issued_at, "opens_at": facts.opens_at,
                  "closes_at": facts.closes_at, "increment_fen": facts.increment_fen,
                  "auction_interval_seconds": facts.auction_interval_seconds}
        if facts.category == LAND:
            public["start_price_fen"] = facts.start_price_fen
        else:
            public["reserve_price_fen"] = facts.reserve_price_fen
            public["max_extensions"] = facts.max_extensions
        kind = "listing.notice" if facts.category == LAND else "listing.disclosure"
        sequence = _publish(unit, signer, kind, step.listing_no, public, at=step.at)
        unit.listings.add_step(step.listing_no, "announced", step="announced", at=step.at,
                               feed_sequence=sequence,
                               statement=statement_json(step.statement),
                               details={"category": facts.category})
        unit.audit.append(actor=Actor(TRADING_SYSTEM), action="listing.opened",
                          subject=f"listing/{step.listing_no}", at=step.at,
                          details={"feed_sequence": sequence})
        unit.commit()
        return _receipt(record, [sequence])


_KINDS = {"listing_bid": StatementKind.BID, "buyer_registered": StatementKind.BUYER,
          "auction_bid": StatementKind.AUCTION_BID, "agreement": StatementKind.AGREEMENT,
          "auction_interest": StatementKind.INTEREST}


def record_step(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                calendar: WorkingCalendar, step: ListingStep) -> StepReceipt:
    """The listing's opening (the clock's), or one act recorded and published."""
    if step.step == "opened":
        return _opened(uow=uow, keys=keys, signer=signer, step=step)
    kind = _KINDS.get(step.step)
    if kind is None:
        raise InvalidArgument(f"{step.step!r} is not a step of a listing")
    facts = _verified(keys, step.statement, kind, step.listing_no)
    key = act_key(step.step, facts.system, facts.request_id or facts.issued_at)
    with uow() as unit:
        done = _recorded_again(unit, step, key)
        if done is not None:
            return done
        _, record, listing = rebuild(unit, step.listing_no, calendar)
        if record.stage in FINISHED:
            raise FailedPrecondition(f"listing {step.listing_no} is finished ({record.stage})")
        bidder = unit.bidders.get(facts.bidder_id)
        # A bidder's act came from its own system; the agreement from a trading officer's.
        if bidder is None or (kind != StatementKind.AGREEMENT
                              and bidder.system != facts.system):
            raise PermissionDenied(f"system {facts.system} may not act for bidder "
                                   f"{facts.bidder_id}")
        # The rules decide again, on what trading recorded, at the listing's clock.
        if kind == StatementKind.BID and isinstance(listing, rules.LandListing):
            if facts.bidder_id not in listing.qualified:
                listing = listing.qualify(facts.bidder_id, step.at)
            listing = listing.bid(facts.bidder_id, facts.amount_fen, step.at)
        elif kind == StatementKind.BUYER and isinstance(listing, rules.PropertyListing):
            listing = listing.register_buyer(facts.bidder_id, step.at)
        elif kind == StatementKind.AUCTION_BID:
            listing = listing.auction_bid(facts.bidder_id, facts.amount_fen, step.at)
        elif kind == StatementKind.INTEREST and isinstance(listing, rules.LandListing):
            listing = listing.declare_interest(facts.bidder_id, step.at)
        elif kind == StatementKind.AGREEMENT and isinstance(listing, rules.PropertyListing):
            listing = listing.agree(facts.bidder_id, facts.amount_fen, step.at)
        else:
            raise FailedPrecondition(f"a {kind} is not taken by a {record.category} listing")
        statement = statement_json(step.statement)
        sequences: list[int] = []
        if kind != StatementKind.AGREEMENT:
            unit.listings.add_act(step.listing_no, key, ListingAct(
                step.step, facts.bidder_id, facts.amount_fen, step.at), statement=statement,
                terms_sha256=terms_sha256(step.statement.body))
        public = {"listing_no": step.listing_no, "bidder_id": facts.bidder_id,
                  "amount_fen": facts.amount_fen, "at": utc_text(step.at)}
        if kind == StatementKind.BID:
            sequences.append(_publish(unit, signer, "listing.bid", step.listing_no, public,
                                      at=step.at))
        elif kind == StatementKind.AUCTION_BID:
            assert listing.auction is not None
            public["auction_ends_at"] = utc_text(listing.auction.deadline)
            sequences.append(_publish(unit, signer, "listing.auction_bid", step.listing_no,
                                      public, at=step.at))
        elif kind == StatementKind.INTEREST:
            del public["amount_fen"]
            sequences.append(_publish(unit, signer, "listing.auction_interest",
                                      step.listing_no, public, at=step.at))
        elif kind == StatementKind.AGREEMENT:
            sequences.append(_publish(unit, signer, "listing.agreement", step.listing_no,
                                      public | {"agreement": statement}, at=step.at))
        details = {"bidder_id": facts.bidder_id, "amount_fen": facts.amount_fen}
        if kind == StatementKind.AGREEMENT:
            unit.listings.add_step(step.listing_no, key, step=step.step, at=step.at,
                                   feed_sequence=sequences[0], statement=statement,
                                   details=details)
            sequences.append(_settle(unit, signer, facts, listing, step.at))
        else:
            unit.listings.add_step(step.listing_no, key, step=step.step, at=step.at,
                                   feed_sequence=sequences[0] if sequences else 0,
                                   statement=statement, details=details)
        unit.audit.append(actor=Actor(facts.system, facts.official_id),
                          action=f"listing.{step.step}", subject=f"listing/{step.listing_no}",
                          at=step.at, details=details)
        unit.commit()
        return _receipt(_record(unit, step.listing_no), sequences)


def _opened(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
            step: ListingStep) -> StepReceipt:
    facts = _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        done = _done(unit, step.listing_no, "opened")
        if done is not None:
            return done
        record = _record(unit, step.listing_no)
        if step.at < facts.instant("opens_at"):
            raise FailedPrecondition(f"listing {step.listing_no} opens at {facts.opens_at}")
        sequence = _publish(unit, signer, "listing.opened", step.listing_no, {
            "listing_no": step.listing_no, "opened_at": utc_text(step.at),
            "closes_at": facts.closes_at, "start_price_fen": facts.start_price_fen,
            "increment_fen": facts.increment_fen}, at=step.at)
        unit.listings.add_step(step.listing_no, "opened", step="opened", at=step.at,
                               feed_sequence=sequence,
                               statement=statement_json(step.statement))
        unit.commit()
        return _receipt(record, [sequence])


def _settle(unit: TradingUnitOfWork, signer: ServiceSigner, facts: ListingFacts,
            listing: Listing, at: datetime) -> int:
    """The listing's result recorded (state saved first) and published: the deal, signed by
    trading, or the failure; its feed entry."""
    listing_no = listing.spec.listing_number
    deal, failure = listing.deal, listing.failure
    if deal is not None:
        unit.listings.save_state(listing_no, stage=str(ListingState.SOLD),
                                 buyer_id=deal.buyer_id, deal_price_fen=deal.price,
                                 deal_method=str(deal.method), concluded_at=at)
        statement = signer.sign({
            "kind": "listing_deal", "listing_no": listing_no, "category": facts.category,
            "project_no": facts.project_no, "buyer_id": deal.buyer_id,
            "price_fen": deal.price, "method": str(deal.method),
            "concluded_at": utc_text(at)}).as_dict()
        sequence = _publish(unit, signer, "listing.deal", listing_no, {
            "listing_no": listing_no, "deal": statement}, at=at)
        step, details = "sold", {"buyer_id": deal.buyer_id, "price_fen": deal.price,
                                 "method": str(deal.method)}
    else:
        assert failure is not None
        unit.listings.save_state(listing_no, stage=str(ListingState.FAILED),
                                 failure=str(failure), concluded_at=at)
        sequence = _publish(unit, signer, "listing.failed", listing_no, {
            "listing_no": listing_no, "failure": str(failure), "at": utc_text(at)}, at=at)
        step, details = "failed", {"failure": str(failure)}
    unit.listings.add_step(listing_no, step, step=step, at=at, feed_sequence=sequence,
                           statement={}, details=details)
    unit.listings.forget_unrecorded_origins(listing_no)
    unit.audit.append(actor=Actor(TRADING_SYSTEM), action=f"listing.{step}",
                      subject=f"listing/{listing_no}", at=at, details=details)
    return sequence


def close_listing(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                  calendar: WorkingCalendar, step: ListingStep) -> StepReceipt:
    """The close: an auction, the agreement awaited, an extension, the deal or the failure,
    decided on what trading recorded."""
    _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        facts, record, listing = rebuild(unit, step.listing_no, calendar)
        key = f"closed/{utc_text(record.closes_at)}"
        done = _done(unit, step.listing_no, key)
        if done is not None:
            return replace(done, agreement_due=(listing.agreement_due if isinstance(
                listing, rules.PropertyListing) else None))
        if record.stage != ListingState.LISTING:
            raise FailedPrecondition(f"listing {step.listing_no} is {record.stage}: "
                                     "closed already")
        if isinstance(listing, rules.LandListing):
            # 招拍挂规定 art. 19: an auction when two or more bidders asked to keep bidding.
            after: Listing = listing.close(step.at, still_bidding=listing.interested)
        elif not listing.buyers and len(listing.extensions) < listing.spec.max_extensions:
            try:
                extend_to = end_of_china_day(calendar.add_working_days(
                    china_date(listing.closes_at), rules.EXTENSION_WORKING_DAYS))
            except UnknownYearError as error:
                raise FailedPrecondition(str(error)) from error
            listing.close(step.at, calendar, extend_to=extend_to)  # the rules' checks
            unit.listings.save_state(step.listing_no, closes_at=extend_to)
            sequence = _publish(unit, signer, "listing.extended", step.listing_no, {
                "listing_no": step.listing_no, "closes_at": utc_text(extend_to),
                "extension": len(listing.extensions) + 1}, at=step.at)
            unit.listings.add_step(step.listing_no, key, step="closed", at=step.at,
                                   feed_sequence=0, statement={})
            unit.listings.add_step(step.listing_no, f"extended/{utc_text(extend_to)}",
                                   step="extended", at=extend_to, feed_sequence=sequence,
                                   statement={}, details={"closes_at": utc_text(extend_to)})
            unit.commit()
            return _receipt(_record(unit, step.listing_no), [sequence])
        else:
            after = listing.close(step.at, calendar,
                                  agreement_due=agreement_due(calendar, facts, step.at))
        sequences: list[int] = []
        if after.state in (ListingState.AUCTION, ListingState.AGREEMENT):
            unit.listings.save_state(step.listing_no, stage=str(after.state))
        participants = (sorted(after.auction.participants) if after.auction else [])
        unit.listings.add_step(step.listing_no, key, step="closed", at=step.at,
                               feed_sequence=0, statement={},
                               details={"outcome": str(after.state)})
        if after.auction is not None:
            sequences.append(_publish(unit, signer, "listing.auction_started",
                                      step.listing_no, {
                                          "listing_no": step.listing_no,
                                          "participants": participants,
                                          "price_fen": after.auction.price,
                                          "increment_fen": after.auction.increment,
                                          "interval_seconds": int(
                                              after.auction.interval.total_seconds()),
                                          "started_at": utc_text(step.at)}, at=step.at))
        elif after.state == ListingState.AGREEMENT:
            closed: dict[str, Any] = {"listing_no": step.listing_no, "outcome": "agreement",
                                      "at": utc_text(step.at)}
            if isinstance(after, rules.PropertyListing) and after.agreement_due is not None:
                closed["agreement_due"] = utc_text(after.agreement_due)
            sequences.append(_publish(unit, signer, "listing.closed", step.listing_no, closed,
                                      at=step.at))
        else:
            sequences.append(_settle(unit, signer, facts, after, step.at))
        unit.commit()
        return _receipt(_record(unit, step.listing_no), sequences, listing=after)


def conclude_auction(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                     calendar: WorkingCalendar, step: ListingStep) -> StepReceipt:
    """The auction's quiet interval passed: the deal or the failure, once."""
    _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        done = _done(unit, step.listing_no, "sold") or _done(unit, step.listing_no, "failed")
        if done is not None:
            return done
        facts, record, listing = rebuild(unit, step.listing_no, calendar)
        if record.stage != ListingState.AUCTION:
            raise FailedPrecondition(f"listing {step.listing_no} is {record.stage}, "
                                     "not at auction")
        after = listing.conclude(step.at)
        sequence = _settle(unit, signer, facts, after, step.at)
        unit.commit()
        return _receipt(_record(unit, step.listing_no), [sequence])


def expire_agreement(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                     calendar: WorkingCalendar, step: ListingStep) -> StepReceipt:
    """The agreement's deadline passed without it: the listing fails publicly, once (the
    deadline checked again on what trading recorded)."""
    _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.listing_no)
    with uow() as unit:
        done = _done(unit, step.listing_no, "failed") or _done(unit, step.listing_no, "sold")
        if done is not None:
            return done
        facts, record, listing = rebuild(unit, step.listing_no, calendar)
        if record.stage != ListingState.AGREEMENT or not isinstance(
                listing, rules.PropertyListing):
            raise FailedPrecondition(f"listing {step.listing_no} is {record.stage}, "
                                     "not awaiting an agreement")
        after = listing.expire_agreement(step.at)
        sequence = _settle(unit, signer, facts, after, step.at)
        unit.commit()
        return _receipt(_record(unit, step.listing_no), [sequence])
