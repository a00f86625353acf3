"""Activities the trading service hosts on its own task queue (govhall-trading).

Workflows read the expert pool through these, so a workflow never touches a
database. Only expert ids leave the service this way: names stay inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import not_ahead_of_temporal, run_use_case
from kernel.calendar import WorkingCalendar
from kernel.holiday_schedules import HolidaySchedules
from kernel.settings import ServiceSettings
from kernel.signing import ServiceSigner, TrustedKeys, service_signer
from services.trading.app import handlers, listing_steps, tender_steps
from services.trading.db.repository import TradingUnitOfWork
from services.trading.settings import TradingSettings
from workflows.listing_contract import (
    CLOSE_LISTING,
    CONCLUDE_AUCTION,
    EXPIRE_AGREEMENT,
    OPEN_LISTING,
    READ_LISTING,
    RECORD_LISTING_STEP,
    ListingRecorded,
    ListingStep,
)
from workflows.listing_contract import StepReceipt as ListingReceipt
from workflows.tender_contract import (
    CLOSE_BIDDING,
    CLOSE_DECRYPTION,
    MARK_TENDER_LATE,
    OPEN_TENDER,
    RECORD_TENDER_STEP,
    BiddingClosed,
    StepReceipt,
    TenderStep,
)


@dataclass(frozen=True)
class EligibleExpertsQuery:
    """Which experts a committee may be drawn from."""

    specialty: str
    #: Employers of the parties to the trade, whose experts must stand aside (回避).
    excluded_employers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EligibleExperts:
    """The candidates of an expert draw, in the order a draw publishes them."""

    specialty: str
    #: Ids of the available experts of the specialty not from an excluded employer, sorted.
    expert_ids: list[str]


class TradingActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="trading.eligible_experts")
    async def eligible_experts(self, query: EligibleExpertsQuery) -> EligibleExperts:
        ids = await run_use_case(
            handlers.eligible_expert_ids, uow=TradingUnitOfWork(self._engine, write=False),
            specialty=query.specialty, excluded_employers=list(query.excluded_employers))
        return EligibleExperts(specialty=query.specialty, expert_ids=ids)


class TenderActivities:
    """The tender workflow's steps, one activity per transition (services/trading/app/
    tender_steps.py): each verifies the statement it is given with the trading service's
    published keys before it records anything."""

    def __init__(self, engine: Engine, keys: TrustedKeys, signer: ServiceSigner) -> None:
        self._engine = engine
        self._keys = keys
        self._signer = signer

    def _writing(self) -> TradingUnitOfWork:
        return TradingUnitOfWork(self._engine)

    @activity.defn(name=OPEN_TENDER)
    async def open_tender(self, step: TenderStep) -> StepReceipt:
        return await run_use_case(tender_steps.open_tender, uow=self._writing,
                                  keys=self._keys, signer=self._signer, step=step)

    @activity.defn(name=RECORD_TENDER_STEP)
    async def record_tender_step(self, step: TenderStep) -> StepReceipt:
        return await run_use_case(tender_steps.record_step, uow=self._writing,
                                  keys=self._keys, signer=self._signer, step=step)

    @activity.defn(name=CLOSE_BIDDING)
    async def close_bidding(self, step: TenderStep) -> BiddingClosed:
        not_ahead_of_temporal(step.at, step="close bidding")
        return await run_use_case(tender_steps.close_bidding, uow=self._writing,
                                  keys=self._keys, signer=self._signer, step=step)

    @activity.defn(name=CLOSE_DECRYPTION)
    async def close_decryption(self, step: TenderStep) -> StepReceipt:
        not_ahead_of_temporal(step.at, step="close decryption")
        return await run_use_case(tender_steps.close_decryption, uow=self._writing,
                                  keys=self._keys, signer=self._signer, step=step)

    @activity.defn(name=MARK_TENDER_LATE)
    async def mark_tender_late(self, step: TenderStep) -> StepReceipt:
        not_ahead_of_temporal(step.at, step="mark tender late")
        return await run_use_case(tender_steps.mark_late, uow=self._writing,
                                  keys=self._keys, step=step)


class ListingActivities:
    """The listing workflow's steps, one activity per transition (services/trading/app/
    listing_steps.py): each verifies the statement it is given with the trading service's
    published keys before it records anything."""

    def __init__(self, engine: Engine, keys: TrustedKeys, signer: ServiceSigner,
                 calendar: WorkingCalendar | None = None) -> None:
        self._engine = engine
        self._keys = keys
        self._signer = signer
        self._calendar = calendar or WorkingCalendar()

    def _writing(self) -> TradingUnitOfWork:
        return TradingUnitOfWork(self._engine)

    @activity.defn(name=OPEN_LISTING)
    async def open_listing(self, step: ListingStep) -> ListingReceipt:
        return await run_use_case(listing_steps.open_listing, uow=self._writing,
                                  keys=self._keys, signer=self._signer, step=step)

    @activity.defn(name=RECORD_LISTING_STEP)
    async def record_listing_step(self, step: ListingStep) -> ListingReceipt:
        return await run_use_case(listing_steps.record_step, uow=self._writing,
                                  keys=self._keys, signer=self._signer,
                                  calendar=self._calendar, step=step)

    @activity.defn(name=CLOSE_LISTING)
    async def close_listing(self, step: ListingStep) -> ListingReceipt:
        not_ahead_of_temporal(step.at, step="close listing")
        return await run_use_case(listing_steps.close_listing, uow=self._writing,
                                  keys=self._keys, signer=self._signer,
                                  calendar=self._calendar, step=step)

    @activity.defn(name=CONCLUDE_AUCTION)
    async def conclude_auction(self, step: ListingStep) -> ListingReceipt:
        not_ahead_of_temporal(step.at, step="conclude auction")
        return await run_use_case(listing_steps.conclude_auction, uow=self._writing,
                                  keys=self._keys, signer=self._signer,
                                  calendar=self._calendar, step=step)

    @activity.defn(name=READ_LISTING)
    async def read_listing(self, step: ListingStep) -> ListingRecorded:
        return await run_use_case(listing_steps.read_listing, uow=self._writing,
                                  keys=self._keys, calendar=self._calendar, step=step)

    @activity.defn(name=EXPIRE_AGREEMENT)
    async def expire_agreement(self, step: ListingStep) -> ListingReceipt:
        not_ahead_of_temporal(step.at, step="expire agreement")
        return await run_use_case(listing_steps.expire_agreement, uow=self._writing,
                                  keys=self._keys, signer=self._signer,
                                  calendar=self._calendar, step=step)


def activities(engine: Engine, settings: Any) -> Sequence[Callable[..., Any]]:
    assert isinstance(settings, ServiceSettings)
    # The signing key first: made and published on first use, so the keys loaded next
    # hold it.
    signer = service_signer(settings.pki_dir, settings.service)
    tenders = TenderActivities(engine, settings.trusted_keys(), signer)
    listings = ListingActivities(engine, settings.trusted_keys(), signer,
                                 calendar=holiday_calendar(settings))
    return [TradingActivities(engine).eligible_experts, tenders.open_tender,
            tenders.record_tender_step, tenders.close_bidding, tenders.close_decryption,
            tenders.mark_tender_late, listings.open_listing, listings.record_listing_step,
            listings.close_listing, listings.conclude_auction, listings.expire_agreement,
            listings.read_listing]


def holiday_calendar(settings: ServiceSettings) -> WorkingCalendar:
    """Working days by the built-in schedules and those operators loaded in review, read as
    this service's calling system (trading-service); the built-in ones only without review."""
    if not isinstance(settings, TradingSettings):
        return HolidaySchedules(None).working_calendar()
    return HolidaySchedules.from_review(
        settings.review_address, pki_dir=settings.pki_dir, system=settings.calling_system,
        refresh_seconds=settings.holiday_refresh_seconds,
        retry_spacing_seconds=settings.holiday_retry_spacing_seconds).working_calendar()
