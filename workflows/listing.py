"""ListingWorkflow: one land or property-rights listing, from its notice or disclosure to
its deal or failure (DESIGN.md §2, issue #9 item 6).

The trading service starts it (``listing/<listing no>``) with its signed
announcement, through the outbox (services/trading/app/tender_chain.py). The
rules are services/trading/domain/listings.py, a pure state machine the
workflow keeps a copy of to refuse a wrong act at once; the workflow holds the
clock:

- **land**: the notice is published; the listing opens on its date (published)
  and takes bids until its close; at the close trading decides from the bids
  it recorded: two or more bidders → an auction, one → the deal at the highest
  bid (if it reaches the reserve), none → failure;
- **property rights**: the disclosure is published and takes buyers until its
  close; no buyer → extended by trading (5 working days at least, as many times
  as announced) or failed; one buyer → the agreement the officer records; several
  → an auction from the reserve price;
- **auction**: ends when no higher bid comes within its interval; each bid
  re-arms the timer; trading then concludes it and signs the deal.

Every act (bid, buyer, auction bid, agreement) arrives as an update carrying a
statement the trading service signed; the validator checks the signature and
the rules at the listing's clock and refuses a wrong act before anything is
recorded; one trading activity per transition records it, verifying the
statement again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kernel.calendar import WorkingCalendar
    from kernel.errors import GovhallError
    from kernel.temporal import CASE_KIND, CASE_NUMBER, DEPARTMENT, DUE_TIME, SLA_STATE, STAGE
    from services.trading.domain import listings as rules
    from workflows.acts import (
        authored,
        refuse,
        refused_by_activity,
        stuck,
    )
    from workflows.approval_contract import activity_queue
    from workflows.listing_contract import (
        AGREE,
        AUCTION_BID,
        BID,
        CLOSE_LISTING,
        CONCLUDE_AUCTION,
        DECLARE_INTEREST,
        EXPIRE_AGREEMENT,
        LAND,
        OPEN_LISTING,
        READ_LISTING,
        RECORD_LISTING_STEP,
        REGISTER_BUYER,
        SIGNER,
        STATUS,
        TRADING,
        WORKFLOW_NAME,
        Listing,
        ListingAct,
        ListingFacts,
        ListingInput,
        ListingReceipt,
        ListingRecorded,
        ListingResult,
        ListingStatus,
        ListingStep,
        StatementKind,
        StepReceipt,
        closes_at,
        fresh_listing,
        replayed,
    )
    from workflows.listing_contract import CASE_KIND as KIND_LISTING
    from workflows.request_terms import request_key, taken_under

RECORDING = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        non_retryable_error_types=["NotFound", "InvalidArgument",
                                                   "PermissionDenied", "FailedPrecondition",
                                                   "AlreadyExists"])
ACTIVITY_TIMEOUT = timedelta(seconds=30)
FINISHED = (rules.ListingState.SOLD, rules.ListingState.FAILED)
#: A land listing's auction is among the bidders who asked to keep bidding, not all who bid.
AUCTION_AMONG_INTERESTED = "listing-auction-among-interested"
#: A run rebuilds its copy from what trading recorded (a run started again: M4).
REBUILT_FROM_RECORD = "listing-rebuilt-from-record"
#: One act per request: an act under a request id the run took an act under already (being
#: recorded, or recorded) is refused before the rules when it asks other terms
#: (ALREADY_EXISTS: two contents sent at once are two updates, the loser is told so),
#: answered with the first act's receipt when it asks the same (s17, LOW 5 and LOW 2).
ONE_ACT_PER_REQUEST = "listing-one-act-per-request"


@workflow.defn(name=WORKFLOW_NAME)
class ListingWorkflow:
    @workflow.init
    def __init__(self, listing: ListingInput) -> None:
        self.announcement = listing.announcement
        self.facts = ListingFacts.read(listing.announcement.body)
        self.listing: Listing = fresh_listing(self.facts)
        self.land = self.facts.category == LAND
        self.started = False
        self.opened = not self.land
        #: Bumped whenever the auction's deadline moves.
        self.version = 0
        self.feed_sequences: list[int] = []
        self.bids = 0
        self.stage = str(rules.ListingState.LISTING)
        self.deal: StepReceipt | None = None
        self.shown_stage = ""
        self.shown_sla = ""
        # One act recorded at a time, each checked against the state the last one left.
        self.recording = asyncio.Lock()
        #: The acts this run took, by request (``request_terms.request_key``): the signed
        #: body of each, and the answer it was given once recorded (None while it is being
        #: recorded: another content under the request is refused meanwhile too).
        self.requests: dict[str, tuple[dict[str, Any], ListingReceipt | None]] = {}

    # ---- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, listing: ListingInput) -> ListingResult:
        self._upsert_identity()
        announced = False
        if workflow.patched(REBUILT_FROM_RECORD):
            announced = await self._rebuild()
        if not announced:
            await self._step(OPEN_LISTING, "announced", "record and publish the announcement")
        self.started = True
        self._show()
        if self.land and not self.opened:
            await self._sleep_until(self.listing.spec.opens_at, "until the listing opens")
            await self._step(RECORD_LISTING_STEP, "opened", "publish the listing's opening")
            self.opened = True
            self._show()
        due: datetime | None = None
        if self.stage == rules.ListingState.LISTING:
            due = (await self._until_closed()).agreement_due
        elif isinstance(self.listing, rules.PropertyListing):
            due = self.listing.agreement_due
        if self.stage == rules.ListingState.AUCTION:
            await self._auction()
        elif self.stage == rules.ListingState.AGREEMENT:
            await self._agreement(due)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._show()
        deal = self.deal
        assert deal is not None
        return ListingResult(self.facts.listing_no, deal.stage, workflow.now(),
                             deal.buyer_id, deal.price_fen, deal.method, deal.failure)

    async def _rebuild(self) -> bool:
        """The copy rebuilt from what trading recorded (a run started again with its input,
        or reset, goes on from where the listing stands); whether it was announced."""
        try:
            recorded: ListingRecorded = await workflow.execute_activity(
                READ_LISTING, self._clock_step("read"), task_queue=self._queue(),
                result_type=ListingRecorded, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RECORDING, summary="what trading recorded of the listing")
        except ActivityError as error:
            raise stuck("listing", "could not read what trading recorded", error) from error
        if not recorded.announced:
            return False
        self.listing = replayed(self.facts, recorded)
        self.opened = self.opened or recorded.opened
        self.stage = recorded.stage
        self.bids = sum(1 for a in recorded.acts if a.kind in ("listing_bid", "auction_bid"))
        if recorded.stage in FINISHED:
            self.deal = StepReceipt(recorded.listing_no, recorded.stage,
                                    buyer_id=recorded.buyer_id, price_fen=recorded.price_fen,
                                    method=recorded.method, failure=recorded.failure)
        return True

    def _upsert_identity(self) -> None:
        wanted = [CASE_NUMBER.value_set(self.facts.listing_no),
                  DEPARTMENT.value_set(self.facts.owner_department
                                       or self.facts.department_code),
                  CASE_KIND.value_set(KIND_LISTING)]
        present = workflow.info().typed_search_attributes
        missing = [u for u in wanted if present.get(u.key) is None]
        if missing:
            workflow.upsert_search_attributes(missing)

    async def _sleep_until(self, moment: datetime, summary: str) -> None:
        now = workflow.now()
        if moment > now:
            await workflow.sleep(moment - now, summary=summary)

    async def _until_closed(self) -> StepReceipt:
        """The close (and each extension's close) until trading decides the listing's fate."""
        while True:
            await self._sleep_until(closes_at(self.listing),
                                    f"until the close {closes_at(self.listing).isoformat()}")
            async with self.recording:
                receipt = await self._activity(CLOSE_LISTING, "closed",
                                               "the close: auction, deal or failure")
                self._closed(receipt)
            self._show()
            if receipt.stage != rules.ListingState.LISTING:
                return receipt

    def _closed(self, receipt: StepReceipt) -> None:
        """The copy of the listing follows trading's decision at the close."""
        now = workflow.now()
        listing = self.listing
        if receipt.stage == rules.ListingState.LISTING:
            assert isinstance(listing, rules.PropertyListing) and receipt.closes_at is not None
            self.listing = replace(listing, closes_at=receipt.closes_at,
                                   extensions=(*listing.extensions, receipt.closes_at))
        elif receipt.stage in (rules.ListingState.AUCTION, rules.ListingState.AGREEMENT):
            if isinstance(listing, rules.LandListing):
                # Before the patch every bidder was taken as still bidding at the close.
                still_bidding = (listing.interested if workflow.patched(AUCTION_AMONG_INTERESTED)
                                 else listing.qualified)
                self.listing = listing.close(now, still_bidding=still_bidding)
            else:
                # No extension is asked for, so the calendar is not consulted.
                self.listing = listing.close(now, cast(WorkingCalendar, None),
                                             agreement_due=receipt.agreement_due)
        else:
            self.deal = receipt
        self.stage = receipt.stage

    async def _agreement(self, due: datetime | None) -> None:
        """The agreement with the one buyer, awaited until its deadline (if announced):
        then trading fails the listing, checking the deadline again."""
        if due is None:
            await workflow.wait_condition(lambda: self.stage != rules.ListingState.AGREEMENT)
            return
        while self.stage == rules.ListingState.AGREEMENT:
            now = workflow.now()
            if now < due:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self.stage != rules.ListingState.AGREEMENT,
                        timeout=due - now,
                        timeout_summary=f"the agreement is due before {due.isoformat()}")
                continue
            async with self.recording:
                if self.stage != rules.ListingState.AGREEMENT:
                    break
                receipt = await self._activity(EXPIRE_AGREEMENT, "agreement_expired",
                                               "no agreement by its deadline: the failure")
                self.deal = receipt
                self.stage = receipt.stage
            self._show()

    async def _auction(self) -> None:
        """Until no higher bid came within the interval; each bid moves the deadline."""
        while self.stage == rules.ListingState.AUCTION:
            auction = self.listing.auction
            assert auction is not None
            now = workflow.now()
            if now < auction.deadline:
                version = self.version
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        self._moved(version), timeout=auction.deadline - now,
                        timeout_summary=f"the auction ends {auction.deadline.isoformat()} "
                                        "unless a higher bid comes")
                continue
            async with self.recording:
                auction = self.listing.auction
                assert auction is not None
                if not auction.is_over(workflow.now()):
                    continue
                receipt = await self._activity(CONCLUDE_AUCTION, "concluded",
                                               "the auction ended: the deal or the failure")
                self.deal = receipt
                self.stage = receipt.stage
            self._show()

    def _moved(self, version: int) -> Callable[[], bool]:
        return lambda: self.version != version

    def _clock_step(self, step: str) -> ListingStep:
        return ListingStep(self.facts.listing_no, self.announcement, workflow.now(), step)

    async def _activity(self, activity: str, step: str, summary: str) -> StepReceipt:
        try:
            receipt: StepReceipt = await workflow.execute_activity(
                activity, self._clock_step(step), task_queue=self._queue(),
                result_type=StepReceipt, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RECORDING, summary=summary)
        except ActivityError as error:
            raise stuck("listing", f"could not record its step {step}", error) from error
        self.feed_sequences.extend(receipt.feed_sequences)
        return receipt

    async def _step(self, activity: str, step: str, summary: str) -> StepReceipt:
        async with self.recording:
            return await self._activity(activity, step, summary)

    def _queue(self) -> str:
        return activity_queue(workflow.info().task_queue, TRADING)

    # ---- acts ----------------------------------------------------------------------------------

    def _authored(self, update: str, act: ListingAct, kind: StatementKind) -> ListingFacts:
        """The statement's facts if trading signed it, for this listing; refused otherwise,
        and reported (nothing but a forger sends anything else)."""
        return authored(update, act, shape=ListingAct, kind=kind, read=ListingFacts.read,
                        malformed=ListingFacts.Malformed, signer=SIGNER, subject="listing",
                        own_number=self.facts.listing_no,
                        number_of=lambda facts: facts.listing_no)

    def _after(self, facts: ListingFacts) -> Listing:
        """The listing after the act at the listing's clock; refused when the rules say no."""
        now = workflow.now()
        listing = self.listing
        try:
            if facts.kind == StatementKind.BID:
                if not isinstance(listing, rules.LandListing):
                    raise refuse("FailedPrecondition", "a property-rights listing takes "
                                  "buyers, not listing bids")
                if facts.bidder_id not in listing.qualified:
                    listing = listing.qualify(facts.bidder_id, now)
                return listing.bid(facts.bidder_id, facts.amount_fen, now)
            if facts.kind == StatementKind.BUYER:
                if not isinstance(listing, rules.PropertyListing):
                    raise refuse("FailedPrecondition", "a land listing takes bids, not buyers")
                return listing.register_buyer(facts.bidder_id, now)
            if facts.kind == StatementKind.AUCTION_BID:
                return listing.auction_bid(facts.bidder_id, facts.amount_fen, now)
            if facts.kind == StatementKind.INTEREST:
                if not isinstance(listing, rules.LandListing):
                    raise refuse("FailedPrecondition", "only a land listing asks its bidders "
                                  "who keeps bidding at the close")
                return listing.declare_interest(facts.bidder_id, now)
            if facts.kind == StatementKind.AGREEMENT:
                if not isinstance(listing, rules.PropertyListing):
                    raise refuse("FailedPrecondition", "only a property-rights listing is "
                                  "transferred by agreement")
                return listing.agree(facts.bidder_id, facts.amount_fen, now)
        except GovhallError as refused:
            raise refuse(type(refused).__name__, refused.message) from refused
        raise refuse("InvalidArgument", f"{facts.kind} is not an act on a listing")

    async def _act(self, act: ListingAct, step: str, summary: str) -> ListingReceipt:
        facts = ListingFacts.read(act.statement.body)
        key = request_key(act.statement.body) if workflow.patched(ONE_ACT_PER_REQUEST) else ""
        if key:
            # The request is taken from here on, before the recording step (s17 attack
            # LOW 2): another content under it, sent meanwhile, is ALREADY_EXISTS at once
            # in the validator, not judged by the rules at the state before this act. The
            # same content taken already (sent again under another update id) waits for
            # that attempt's outcome: its answer, or the request free again.
            if self._in_flight(key):
                await workflow.wait_condition(lambda: not self._in_flight(key))
            before = self._request_taken(act)
            if before is not None:
                return before
            self.requests[key] = (act.statement.body, None)
        try:
            # The notice or disclosure is published before any act on it.
            await workflow.wait_condition(lambda: self.started)
            async with self.recording:
                after = self._after(facts)
                try:
                    receipt: StepReceipt = await workflow.execute_activity(
                        RECORD_LISTING_STEP,
                        ListingStep(self.facts.listing_no, act.statement, workflow.now(), step),
                        task_queue=self._queue(), result_type=StepReceipt,
                        start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RECORDING,
                        summary=summary)
                except ActivityError as error:
                    raise refused_by_activity(error, service="trading service") from error
                self.listing = after
                self.feed_sequences.extend(receipt.feed_sequences)
                if step in ("listing_bid", "auction_bid"):
                    self.bids += 1
                if receipt.stage in FINISHED:
                    self.deal = receipt
                self.stage = receipt.stage
                self.version += 1
                answer = ListingReceipt(
                    self.facts.listing_no, self.stage,
                    receipt.feed_sequences[0] if receipt.feed_sequences else 0)
        except BaseException:
            if key:
                del self.requests[key]  # refused, never recorded: the request is free again
            raise
        if key:
            self.requests[key] = (act.statement.body, answer)
        self._show()
        return answer

    def _in_flight(self, key: str) -> bool:
        """Whether the act taken under the request ``key`` is being recorded."""
        taken = self.requests.get(key)
        return taken is not None and taken[1] is None

    def _request_taken(self, act: ListingAct) -> ListingReceipt | None:
        """The answer given to the act this run recorded under ``act``'s request, when
        ``act`` asks the same terms (None while that act is being recorded, or when the run
        took none under it); refused (ALREADY_EXISTS, naming the terms that differ) when it
        asks others, recorded or being recorded."""
        refused, answer = taken_under(self.requests, act.statement.body)
        if refused:
            raise refuse("AlreadyExists", refused)
        return answer

    def _validate(self, update: str, act: ListingAct, kind: StatementKind) -> None:
        facts = self._authored(update, act, kind)
        self._request_taken(act)
        key = request_key(act.statement.body)
        if not key or key not in self.requests:
            # A new request: the rules at the listing as it stands. The same request taken
            # already is answered by its handler (that attempt's outcome).
            self._after(facts)

    @workflow.update(name=BID)
    async def bid(self, act: ListingAct) -> ListingReceipt:
        return await self._act(act, "listing_bid", "record and publish the listing bid")

    @bid.validator
    def _validate_bid(self, act: ListingAct) -> None:
        self._validate(BID, act, StatementKind.BID)

    @workflow.update(name=REGISTER_BUYER)
    async def register_buyer(self, act: ListingAct) -> ListingReceipt:
        return await self._act(act, "buyer_registered", "record the buyer")

    @register_buyer.validator
    def _validate_buyer(self, act: ListingAct) -> None:
        self._validate(REGISTER_BUYER, act, StatementKind.BUYER)

    @workflow.update(name=AUCTION_BID)
    async def auction_bid(self, act: ListingAct) -> ListingReceipt:
        return await self._act(act, "auction_bid", "record and publish the auction bid")

    @auction_bid.validator
    def _validate_auction_bid(self, act: ListingAct) -> None:
        self._validate(AUCTION_BID, act, StatementKind.AUCTION_BID)

    @workflow.update(name=DECLARE_INTEREST)
    async def declare_interest(self, act: ListingAct) -> ListingReceipt:
        return await self._act(act, "auction_interest",
                               "record and publish the request to keep bidding")

    @declare_interest.validator
    def _validate_declare_interest(self, act: ListingAct) -> None:
        self._validate(DECLARE_INTEREST, act, StatementKind.INTEREST)

    @workflow.update(name=AGREE)
    async def agree(self, act: ListingAct) -> ListingReceipt:
        return await self._act(act, "agreement", "record and publish the agreement and deal")

    @agree.validator
    def _validate_agree(self, act: ListingAct) -> None:
        self._validate(AGREE, act, StatementKind.AGREEMENT)

    # ---- what the Temporal UI shows -------------------------------------------------------

    @workflow.query(name=STATUS)
    def status(self) -> ListingStatus:
        listing = self.listing
        auction = listing.auction
        price, leader = self._price()
        deal = self.deal
        return ListingStatus(
            listing_no=self.facts.listing_no, category=self.facts.category, stage=self.stage,
            opened=self.opened, closes_at=closes_at(listing), waiting_for=self._waiting_for(),
            current_price_fen=price, leader=leader, bids=self.bids,
            buyers=len(listing.buyers) if isinstance(listing, rules.PropertyListing) else 0,
            extensions=(len(listing.extensions)
                        if isinstance(listing, rules.PropertyListing) else 0),
            auction_deadline=auction.deadline if auction is not None else None,
            buyer_id=deal.buyer_id if deal else "", deal_price_fen=deal.price_fen if deal else 0,
            failure=deal.failure if deal else "", feed_sequences=list(self.feed_sequences))

    def _price(self) -> tuple[int, str]:
        listing = self.listing
        if listing.auction is not None:
            return listing.auction.price, listing.auction.leader or ""
        if isinstance(listing, rules.LandListing):
            leader = listing.leader
            return listing.current_price, leader.bidder_id if leader else ""
        return listing.spec.reserve_price, ""

    def _due(self) -> datetime | None:
        if self.stage == rules.ListingState.AUCTION and self.listing.auction is not None:
            return self.listing.auction.deadline
        if self.stage == rules.ListingState.AGREEMENT and isinstance(
                self.listing, rules.PropertyListing):
            return self.listing.agreement_due
        if self.stage == rules.ListingState.LISTING:
            if self.land and not self.opened:
                return self.listing.spec.opens_at
            return closes_at(self.listing)
        return None

    def _waiting_for(self) -> str:
        if self.stage in FINISHED:
            return "nobody: the listing is finished"
        if self.stage == rules.ListingState.AUCTION:
            return "auction bids, until no higher bid comes within the interval"
        if self.stage == rules.ListingState.AGREEMENT:
            due = getattr(self.listing, "agreement_due", None)
            return "the agreement with the one buyer" + (
                f", before {due.isoformat()}" if due is not None else "")
        if self.land and not self.opened:
            return f"the listing to open {self.listing.spec.opens_at.isoformat()}"
        return (f"{'bids' if self.land else 'buyers'}, until the close "
                f"{closes_at(self.listing).isoformat()}")

    def _show(self) -> None:
        """Stage, whom the listing waits for and its dates, for the Temporal UI."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if self.shown_stage != self.stage:
            updates.append(STAGE.value_set(self.stage))
            self.shown_stage = self.stage
        if self.shown_sla != "on_time":
            updates.append(SLA_STATE.value_set("on_time"))
            self.shown_sla = "on_time"
        due = self._due()
        updates.append(DUE_TIME.value_set(due) if due is not None else DUE_TIME.value_unset())
        workflow.upsert_search_attributes(updates)
        price, leader = self._price()
        lines = [f"**Stage:** {self.stage}", f"**Waiting for:** {self._waiting_for()}",
                 f"**Category:** {self.facts.category}",
                 f"**Close:** {closes_at(self.listing).isoformat()}",
                 f"**Current price (fen):** {price}"]
        if leader:
            lines.append(f"**Leading bidder:** {leader}")
        if self.deal is not None:
            lines.append(f"**Result:** {self.deal.stage} {self.deal.buyer_id} "
                         f"{self.deal.price_fen or ''} {self.deal.failure}".rstrip())
        workflow.set_current_details("\n".join(lines))

