"""The review gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine

from govhall.common.v1 import common_pb2
from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.calendar import BUILT_IN_YEARS
from kernel.commonpb import verification_to_proto
from kernel.directory import ROLES, Official
from kernel.errors import FieldViolation, InvalidArgument
from kernel.identity import current_caller
from services.review.app import handlers
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.model import Delegation, LoadedSchedule

_ROLES = {name: common_pb2.Role.Value(f"ROLE_{name.upper()}") for name in ROLES}
_ROLE_NAMES = {value: name for name, value in _ROLES.items()}
_STATES = {
    "scheduled": pb.DELEGATION_STATE_SCHEDULED,
    "in_force": pb.DELEGATION_STATE_IN_FORCE,
    "ended": pb.DELEGATION_STATE_ENDED,
    "revoked": pb.DELEGATION_STATE_REVOKED,
}


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _instant(stamp: Timestamp, field: str) -> datetime:
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidArgument(f"{field} is not a valid time",
                              violations=[FieldViolation(field, "not a valid time")]) from error


def _days(texts: Any, field: str) -> list[date]:
    days: list[date] = []
    for index, text in enumerate(texts):
        try:
            days.append(date.fromisoformat(text))
        except ValueError as error:
            raise InvalidArgument(
                f"{field}[{index}] {text!r} is not a date of the calendar",
                violations=[FieldViolation(f"{field}[{index}]", "not a date of the calendar")],
            ) from error
    return days


def official_to_proto(official: Official, department_name: str) -> pb.Official:
    return pb.Official(
        id=official.id, name=official.name, department_code=official.department_code,
        department_name=department_name,
        roles=sorted(_ROLES[role] for role in official.roles))


def delegation_to_proto(delegation: Delegation, now: datetime) -> pb.Delegation:
    message = pb.Delegation(
        id=delegation.id, leader_id=delegation.leader_id, deputy_id=delegation.deputy_id,
        department_code=delegation.department_code,
        valid_from=_timestamp(delegation.valid_from),
        valid_until=_timestamp(delegation.valid_until), reason=delegation.reason,
        granted_at=_timestamp(delegation.granted_at), revoked_by=delegation.revoked_by,
        revocation_reason=delegation.revocation_reason,
        state=_STATES[delegation.state_at(now)])
    if delegation.revoked_at is not None:
        message.revoked_at.CopyFrom(_timestamp(delegation.revoked_at))
    return message


def loaded_schedule_to_proto(loaded: LoadedSchedule) -> pb.HolidaySchedule:
    return pb.HolidaySchedule(
        year=loaded.schedule.year, source=pb.HOLIDAY_SCHEDULE_SOURCE_LOADED,
        holidays=sorted(d.isoformat() for d in loaded.schedule.holidays),
        makeup_workdays=sorted(d.isoformat() for d in loaded.schedule.makeup_workdays),
        loaded_at=_timestamp(loaded.loaded_at), loaded_by=loaded.loaded_by)


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _reading(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine, write=False)

    def _writing(self) -> ReviewUnitOfWork:
        return ReviewUnitOfWork(self._engine)

    async def ListOfficials(self, request: pb.ListOfficialsRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.ListOfficialsResponse:
        page = await asyncio.to_thread(
            handlers.list_officials, uow=self._reading(),
            department_code=request.department_code,
            role=_ROLE_NAMES.get(request.role, ""), requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListOfficialsResponse(
            officials=[official_to_proto(o, page.department_names[o.department_code])
                       for o in page.officials],
            next_page_token=page.next_page_token)

    async def GetOfficial(self, request: pb.GetOfficialRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.GetOfficialResponse:
        now = datetime.now(UTC)
        record = await asyncio.to_thread(
            handlers.get_official, uow=self._reading(), official_id=request.official_id,
            now=now)
        return pb.GetOfficialResponse(
            official=official_to_proto(record.official, record.department_name),
            delegations_in_force=[delegation_to_proto(d, now)
                                  for d in record.delegations_in_force])

    async def GrantDelegation(self, request: pb.GrantDelegationRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.GrantDelegationResponse:
        now = datetime.now(UTC)
        period = request.period
        valid_from = (_instant(period.valid_from, "period.valid_from")
                      if period.HasField("valid_from") else None)
        delegation = await asyncio.to_thread(
            handlers.grant_delegation, uow=self._writing(), caller=current_caller(),
            deputy_id=request.deputy_id, valid_from=valid_from,
            valid_until=_instant(period.valid_until, "period.valid_until"),
            reason=request.reason, now=now)
        return pb.GrantDelegationResponse(delegation=delegation_to_proto(delegation, now))

    async def RevokeDelegation(self, request: pb.RevokeDelegationRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.RevokeDelegationResponse:
        now = datetime.now(UTC)
        delegation = await asyncio.to_thread(
            handlers.revoke_delegation, uow=self._writing(), caller=current_caller(),
            delegation_id=request.delegation_id, reason=request.reason, now=now)
        return pb.RevokeDelegationResponse(delegation=delegation_to_proto(delegation, now))

    async def ListDelegations(self, request: pb.ListDelegationsRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ListDelegationsResponse:
        now = datetime.now(UTC)
        in_force_at = (_instant(request.in_force_at, "in_force_at")
                       if request.HasField("in_force_at") else None)
        page = await asyncio.to_thread(
            handlers.list_delegations, uow=self._reading(),
            department_code=request.department_code, in_force_at=in_force_at,
            requested_size=request.page_size, page_token=request.page_token)
        return pb.ListDelegationsResponse(
            delegations=[delegation_to_proto(d, now) for d in page.delegations],
            next_page_token=page.next_page_token)

    async def LoadHolidaySchedule(self, request: pb.LoadHolidayScheduleRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.LoadHolidayScheduleResponse:
        load = await asyncio.to_thread(
            handlers.load_holiday_schedule, uow=self._writing(), caller=current_caller(),
            year=request.year, holidays=_days(request.holidays, "holidays"),
            makeup_workdays=_days(request.makeup_workdays, "makeup_workdays"),
            now=datetime.now(UTC))
        return pb.LoadHolidayScheduleResponse(schedule=loaded_schedule_to_proto(load.loaded),
                                              replaced=load.replaced)

    async def ListHolidaySchedules(self, request: pb.ListHolidaySchedulesRequest,
                                   context: grpc.aio.ServicerContext[Any, Any],
                                   ) -> pb.ListHolidaySchedulesResponse:
        loaded = {s.schedule.year: s for s in await asyncio.to_thread(
            handlers.list_holiday_schedules, uow=self._reading())}
        schedules = [
            loaded_schedule_to_proto(loaded[year]) if year in loaded
            else pb.HolidaySchedule(year=year, source=pb.HOLIDAY_SCHEDULE_SOURCE_BUILT_IN)
            for year in sorted({*BUILT_IN_YEARS, *loaded})
        ]
        return pb.ListHolidaySchedulesResponse(schedules=schedules)

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(handlers.verify_audit_log, uow=self._reading())
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))
