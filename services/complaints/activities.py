"""Activities the complaints service hosts on its own task queue (govhall-complaints).

Workflows route complaints through these, so a workflow never touches a
database. The complaint workflow opens a case, records each accepted act,
marks deadlines missed and closes lapsed cases through them: each is one use
case of services/complaints/app/recording.py in one transaction, verifies
the signed statement it acts on with the service's trusted keys, and may be
retried (a repeat records nothing new). A refusal, or input the database
cannot store, fails for good (kernel.activities.run_use_case).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case, translated_failures
from kernel.calendar import WorkingCalendar
from kernel.fieldcipher import FieldCipher, field_cipher
from kernel.holiday_schedules import HolidaySchedules
from kernel.linked_lookup import lookup_at
from kernel.settings import ServiceSettings
from kernel.signing import TrustedKeys
from services.complaints.app import deadlines, handlers, recording, webhooks
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.intake_links import IntakeLinks
from services.complaints.link_activity import LinkActivities
from services.complaints.settings import ComplaintsSettings, complainant_key_path
from services.complaints.trading_links import TradingLinks
from workflows.complaint_contract import (
    CLOSE_CASE,
    DELIVER_PLATFORM_EVENT,
    MARK_OVERDUE,
    OPEN_CASE,
    READ_DUES,
    RECORD_ACT,
    ActRecord,
    ActRecorded,
    CaseClock,
    Closing,
    DeliveryResult,
    DuesRequest,
    Escalated,
    OpenCase,
    Overdue,
    PlatformDelivery,
)


@dataclass(frozen=True)
class RouteComplaintInput:
    category_code: str


@dataclass(frozen=True)
class ResponsibleDepartment:
    """Who handles a complaint of the category, and under which rule.

    A case keeps ``rule_version`` so that it can show the rule it was routed
    under after the category is re-pointed.
    """

    category_code: str
    department_code: str
    department_name: str
    rule_version: int


class ComplaintsActivities:
    def __init__(self, engine: Engine, keys: TrustedKeys | None = None,
                 cipher: FieldCipher | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 calendar: WorkingCalendar | None = None) -> None:
        self._engine = engine
        self._keys = keys or TrustedKeys({})
        self._cipher = cipher
        self._clock = clock
        #: Deadlines count with it (None: the built-in schedules only).
        self._calendar = calendar

    def _counting(self) -> None:
        # This activity's task only; its use case's worker thread inherits it.
        if self._calendar is not None:
            recording.WORKING_CALENDAR.set(self._calendar)

    def _writing(self) -> ComplaintsUnitOfWork:
        return ComplaintsUnitOfWork(self._engine)

    @activity.defn(name="complaints.route_complaint")
    async def route_complaint(self, request: RouteComplaintInput) -> ResponsibleDepartment:
        # Unknown category or a department gone from the directory fails for good:
        # retrying cannot help, a dispatcher has to act.
        routing = await run_use_case(
            handlers.route_complaint, uow=ComplaintsUnitOfWork(self._engine, write=False),
            category_code=request.category_code)
        return ResponsibleDepartment(
            category_code=routing.category.code, department_code=routing.department.code,
            department_name=routing.department.name, rule_version=routing.category.rule_version)

    @activity.defn(name=OPEN_CASE)
    async def open_case(self, request: OpenCase) -> CaseClock:
        self._counting()
        return await run_use_case(recording.open_case, uow=self._writing, keys=self._keys,
                                  request=request, now=self._clock())

    @activity.defn(name=RECORD_ACT)
    async def record_act(self, act: ActRecord) -> ActRecorded:
        assert self._cipher is not None, "the complaints activities need the field cipher"
        self._counting()
        return await run_use_case(recording.record_act, uow=self._writing, keys=self._keys,
                                  cipher=self._cipher, act=act, now=self._clock())

    @activity.defn(name=MARK_OVERDUE)
    async def mark_overdue(self, request: Overdue) -> Escalated:
        return await run_use_case(recording.mark_overdue, uow=self._writing, request=request,
                                  now=self._clock())

    @activity.defn(name=READ_DUES)
    async def read_dues(self, request: DuesRequest) -> ActRecorded:
        # Read only: the workflow asks after the service told it the dues changed.
        return await run_use_case(deadlines.read_dues,
                                  uow=lambda: ComplaintsUnitOfWork(self._engine, write=False),
                                  request=request)

    @activity.defn(name=CLOSE_CASE)
    async def close_case(self, closing: Closing) -> ActRecorded:
        return await run_use_case(recording.close_case, uow=self._writing, closing=closing,
                                  now=self._clock())


class PlatformDeliveryActivities:
    """POSTs platform events to the platforms' webhooks (Standard Webhooks)."""

    def __init__(self, engine: Engine, cipher: FieldCipher, *,
                 timeout_seconds: float = 10.0, allow_loopback: bool = False,
                 resolve: webhooks.Resolve = webhooks.resolve_host) -> None:
        self._engine = engine
        self._cipher = cipher
        #: The service's webhook_allow_loopback now: each delivery checks its URL against it.
        self._allow_loopback = allow_loopback
        self._resolve = resolve
        self._timeout = httpx.Timeout(timeout_seconds)
        # One client for every delivery, made on first use in the worker's event loop: a
        # client per delivery built a TLS context each time, a tenth of the service's CPU
        # under a burst (py-spy, bench/complaints.py).
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False,
                # No HTTP(S)_PROXY, NO_PROXY or .netrc from the environment: the webhook URL
                # as checked is where the event goes.
                trust_env=False)
        return self._client

    @activity.defn(name=DELIVER_PLATFORM_EVENT)
    async def deliver_platform_event(self, delivery: PlatformDelivery) -> DeliveryResult:
        # A non-2xx answer or a network error raises, and Temporal retries (DELIVERY_RETRY)
        # under the same webhook-id; an unknown event, or a URL refused at delivery (checked
        # again against the setting in force and what its host resolves to), fails for good.
        # Redirects are not followed: the operator chose the URL, and a redirect could aim
        # the signed POST anywhere, inside the center's network included.
        with translated_failures():
            result = await webhooks.deliver(delivery.event_id, engine=self._engine,
                                            cipher=self._cipher, client=self._http(),
                                            allow_loopback=self._allow_loopback,
                                            resolve=self._resolve)
        return DeliveryResult(delivered=result.delivered, status_code=result.status_code)


def activities(engine: Engine, settings: ServiceSettings) -> Sequence[Callable[..., Any]]:
    cipher = field_cipher(complainant_key_path(settings.pki_dir))
    hosted = ComplaintsActivities(engine, settings.trusted_keys(), cipher,
                                  calendar=holiday_schedules(settings).working_calendar())
    timeout = settings.webhook_timeout_seconds if isinstance(settings, ComplaintsSettings) \
        else ComplaintsSettings.model_fields["webhook_timeout_seconds"].default
    loopback = isinstance(settings, ComplaintsSettings) and settings.webhook_allow_loopback
    delivery = PlatformDeliveryActivities(engine, cipher, timeout_seconds=timeout,
                                          allow_loopback=loopback)
    return [hosted.route_complaint, hosted.open_case, hosted.record_act, hosted.mark_overdue,
            hosted.close_case, hosted.read_dues,
            LinkActivities(engine, intake_lookup(settings),
                           tender_lookup=trading_lookup(settings)).check_link,
            delivery.deliver_platform_event]


def holiday_schedules(settings: ServiceSettings) -> HolidaySchedules:
    """The holiday schedules loaded in review, read as this service's calling system; the
    built-in ones only without review."""
    if not isinstance(settings, ComplaintsSettings):
        return HolidaySchedules(None)
    return HolidaySchedules.from_review(
        settings.review_address, pki_dir=settings.pki_dir, system=settings.calling_system,
        refresh_seconds=settings.holiday_refresh_seconds,
        retry_spacing_seconds=settings.holiday_retry_spacing_seconds)


def intake_lookup(settings: ServiceSettings) -> IntakeLinks | None:
    """Intake's CheckCaseLink as this service's calling system, or None without intake."""
    if not isinstance(settings, ComplaintsSettings):
        return None
    return lookup_at(settings.intake_address, lambda address: IntakeLinks(
        address, pki_dir=settings.pki_dir, system=settings.calling_system))


def trading_lookup(settings: ServiceSettings) -> TradingLinks | None:
    """Trading's CheckTenderLink as this service's calling system, or None without trading."""
    if not isinstance(settings, ComplaintsSettings):
        return None
    return lookup_at(settings.trading_address, lambda address: TradingLinks(
        address, pki_dir=settings.pki_dir, system=settings.calling_system))
