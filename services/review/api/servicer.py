"""The review gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
Decisions and changes to a case's clock are signed by review and go to the
case's approval workflow as Temporal updates (services/review/app/decisions.py,
through kernel/workflow_gateway.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine

from govhall.common.v1 import common_pb2
from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.commonpb import checkpoint_from_proto, verification_to_proto
from kernel.directory import ROLES, Official
from kernel.errors import FieldViolation, InvalidArgument
from kernel.identity import current_caller
from services.review.app import decisions, handlers
from services.review.app.chain import record_refused_act
from services.review.db.repository import ReviewUnitOfWork
from services.review.domain.model import Delegation, LoadedSchedule
from services.review.domain.progress import CaseProgress, ChainEvent, waiting_for
from services.review.domain.tasks import Escalation, RecordedDecision, Task
from workflows.approval_contract import (
    END_SPECIAL_PROCEDURE,
    EXTEND_TIME_LIMIT,
    SPECIAL_PROCEDURES,
    START_SPECIAL_PROCEDURE,
    ChangeReceipt,
    Deadlines,
    DecisionReceipt,
)

T = TypeVar("T")

_ROLES = {name: common_pb2.Role.Value(f"ROLE_{name.upper()}") for name in ROLES}
_ROLE_NAMES = {value: name for name, value in _ROLES.items()}
_STATES = {
    "scheduled": pb.DELEGATION_STATE_SCHEDULED,
    "in_force": pb.DELEGATION_STATE_IN_FORCE,
    "ended": pb.DELEGATION_STATE_ENDED,
    "revoked": pb.DELEGATION_STATE_REVOKED,
}


_STAGES = {
    "review": pb.APPROVAL_STAGE_REVIEW,
    "sign": pb.APPROVAL_STAGE_SIGN,
    "seal": pb.APPROVAL_STAGE_SEAL,
    "completed": pb.APPROVAL_STAGE_COMPLETED,
    "withdrawn": pb.APPROVAL_STAGE_WITHDRAWN,
}
_STAGE_NAMES = {value: name for name, value in _STAGES.items()}
_OUTCOMES = {
    "approve": pb.DECISION_OUTCOME_APPROVE,
    "refuse": pb.DECISION_OUTCOME_REFUSE,
    "seal": pb.DECISION_OUTCOME_SEAL,
}
_OUTCOME_NAMES = {value: name for name, value in _OUTCOMES.items()}
_SLA_STATES = {
    "on_time": pb.SLA_STATE_ON_TIME,
    "warning": pb.SLA_STATE_WARNING,
    "breached": pb.SLA_STATE_BREACHED,
    "paused": pb.SLA_STATE_PAUSED,
}
_PROCEDURES = {name: pb.SpecialProcedure.Value(f"SPECIAL_PROCEDURE_{name.upper()}")
               for name in SPECIAL_PROCEDURES}
_PROCEDURE_NAMES = {value: name for name, value in _PROCEDURES.items()}
_CLAIM_FILTERS = {
    pb.CLAIM_FILTER_UNSPECIFIED: "all",
    pb.CLAIM_FILTER_ALL: "all",
    pb.CLAIM_FILTER_UNCLAIMED: "unclaimed",
    pb.CLAIM_FILTER_MINE: "mine",
}
_ESCALATION_KINDS = {
    "promised_breach": pb.ESCALATION_KIND_PROMISED_BREACH,
    "legal_breach": pb.ESCALATION_KIND_LEGAL_BREACH,
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


def task_to_proto(task: Task) -> pb.Task:
    message = pb.Task(
        case_number=task.case_number, stage=_STAGES[task.stage],
        department_code=task.department_code,
        role=_ROLES.get(task.role, common_pb2.ROLE_UNSPECIFIED),
        item_code=task.item_code, due_at=_timestamp(task.due_at),
        opened_at=_timestamp(task.opened_at), claimed_by=task.claimed_by)
    if task.claimed_at is not None:
        message.claimed_at.CopyFrom(_timestamp(task.claimed_at))
    if task.closed_at is not None:
        message.closed_at.CopyFrom(_timestamp(task.closed_at))
    return message


def escalation_to_proto(escalation: Escalation) -> pb.Escalation:
    message = pb.Escalation(
        id=escalation.id, case_number=escalation.case_number,
        department_code=escalation.department_code,
        stage=_STAGES.get(escalation.stage, pb.APPROVAL_STAGE_UNSPECIFIED),
        kind=_ESCALATION_KINDS[escalation.kind], due_at=_timestamp(escalation.due_at),
        opened_at=_timestamp(escalation.opened_at))
    if escalation.closed_at is not None:
        message.closed_at.CopyFrom(_timestamp(escalation.closed_at))
    return message


def deadlines_to_proto(deadlines: Deadlines) -> pb.CaseDeadlines:
    return pb.CaseDeadlines(
        warning_at=_timestamp(deadlines.warning_at),
        promised_due_at=_timestamp(deadlines.promised_due_at),
        legal_due_at=_timestamp(deadlines.legal_due_at), unknown_year=deadlines.unknown_year)


def receipt_to_proto(receipt: DecisionReceipt) -> pb.DecisionReceipt:
    return pb.DecisionReceipt(
        case_number=receipt.case_number, stage=_STAGES[receipt.stage],
        outcome=_OUTCOMES[receipt.outcome], decided_at=_timestamp(receipt.decided_at),
        next_stage=_STAGES[receipt.next_stage], certificate_number=receipt.certificate_number)


def change_to_proto(receipt: ChangeReceipt) -> pb.CaseChange:
    return pb.CaseChange(
        case_number=receipt.case_number, stage=_STAGES[receipt.stage],
        sla_state=_SLA_STATES[receipt.sla_state],
        deadlines=deadlines_to_proto(receipt.deadlines))


def progress_to_proto(progress: CaseProgress, recorded: list[RecordedDecision],
                      timeline: list[ChainEvent]) -> pb.GetCaseProgressResponse:
    deadlines = Deadlines(progress.warning_at, progress.promised_due_at, progress.legal_due_at,
                          progress.unknown_year)
    return pb.GetCaseProgressResponse(
        case_number=progress.case_number, item_code=progress.item_code,
        department_code=progress.department_code, stage=_STAGES[progress.stage],
        sla_state=_SLA_STATES[progress.sla_state], deadlines=deadlines_to_proto(deadlines),
        decisions=[pb.CaseDecision(
            step=d.stage, outcome=d.outcome, official_id=d.official_id, system=d.system,
            decided_at=_timestamp(d.decided_at), opinion=d.opinion,
            legal_basis=d.legal_basis, on_behalf_of=d.on_behalf_of,
            delegation_id=d.delegation_id) for d in recorded],
        waiting_for=waiting_for(progress),
        paused_for=_PROCEDURES.get(progress.paused_for, pb.SPECIAL_PROCEDURE_UNSPECIFIED),
        extension_days=progress.extension_days,
        certificate_number=progress.certificate_number, outcome=progress.outcome,
        calendar_gap_year=progress.unknown_year,
        timeline=[pb.ChainEvent(
            event_id=e.event_id, kind=e.kind, at=_timestamp(e.at),
            stage=_STAGES.get(e.stage, pb.APPROVAL_STAGE_UNSPECIFIED),
            official_id=e.official_id, details=e.details,
            sla_state=_SLA_STATES.get(e.sla_state, pb.SLA_STATE_UNSPECIFIED))
            for e in timeline])


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, engine: Engine, chain: decisions.Chain, *,
                 audit: AuditTrailService) -> None:
        self._engine = engine
        self._audit = audit
        self._chain = chain

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
        load, cases = await decisions.load_holiday_schedule(
            self._chain, caller=current_caller(), year=request.year,
            holidays=_days(request.holidays, "holidays"),
            makeup_workdays=_days(request.makeup_workdays, "makeup_workdays"),
            now=datetime.now(UTC))
        return pb.LoadHolidayScheduleResponse(schedule=loaded_schedule_to_proto(load.loaded),
                                              replaced=load.replaced, cases_recomputing=cases)

    async def ListHolidaySchedules(self, request: pb.ListHolidaySchedulesRequest,
                                   context: grpc.aio.ServicerContext[Any, Any],
                                   ) -> pb.ListHolidaySchedulesResponse:
        years = await asyncio.to_thread(handlers.holiday_schedule_years, uow=self._reading())
        schedules = [
            loaded_schedule_to_proto(loaded) if loaded is not None
            else pb.HolidaySchedule(year=year, source=pb.HOLIDAY_SCHEDULE_SOURCE_BUILT_IN)
            for year, loaded in years]
        return pb.ListHolidaySchedulesResponse(schedules=schedules)

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(
            self._audit.verify, kept=[checkpoint_from_proto(c) for c in request.checkpoints])
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))

    async def ListInbox(self, request: pb.ListInboxRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> pb.ListInboxResponse:
        page = await asyncio.to_thread(
            handlers.list_inbox, uow=self._reading(), caller=current_caller(),
            department_code=request.department_code,
            stage=_STAGE_NAMES.get(request.stage, ""),
            claimed=_CLAIM_FILTERS[request.claimed], requested_size=request.page_size,
            page_token=request.page_token, now=datetime.now(UTC))
        return pb.ListInboxResponse(tasks=[task_to_proto(t) for t in page.tasks],
                                    next_page_token=page.next_page_token)

    async def ClaimTask(self, request: pb.ClaimTaskRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> pb.ClaimTaskResponse:
        task = await asyncio.to_thread(
            handlers.claim_task, uow=self._writing(), caller=current_caller(),
            case_number=request.case_number, stage=_STAGE_NAMES[request.stage],
            now=datetime.now(UTC))
        return pb.ClaimTaskResponse(task=task_to_proto(task))

    async def DecideCase(self, request: pb.DecideCaseRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> pb.DecideCaseResponse:
        receipt = await decisions.decide_case(
            self._chain, caller=current_caller(), case_number=request.case_number,
            stage=_STAGE_NAMES[request.stage], outcome=_OUTCOME_NAMES[request.outcome],
            opinion=request.opinion, legal_basis=request.legal_basis,
            request_id=request.request_id, now=datetime.now(UTC))
        return pb.DecideCaseResponse(receipt=receipt_to_proto(receipt))

    async def StartSpecialProcedure(self, request: pb.StartSpecialProcedureRequest,
                                    context: grpc.aio.ServicerContext[Any, Any],
                                    ) -> pb.StartSpecialProcedureResponse:
        receipt = await decisions.change_clock(
            self._chain, caller=current_caller(), case_number=request.case_number,
            update=START_SPECIAL_PROCEDURE, request_id=request.request_id,
            now=datetime.now(UTC), procedure=_PROCEDURE_NAMES[request.procedure])
        return pb.StartSpecialProcedureResponse(change=change_to_proto(receipt))

    async def EndSpecialProcedure(self, request: pb.EndSpecialProcedureRequest,
                                  context: grpc.aio.ServicerContext[Any, Any],
                                  ) -> pb.EndSpecialProcedureResponse:
        receipt = await decisions.change_clock(
            self._chain, caller=current_caller(), case_number=request.case_number,
            update=END_SPECIAL_PROCEDURE, request_id=request.request_id,
            now=datetime.now(UTC), procedure=_PROCEDURE_NAMES[request.procedure])
        return pb.EndSpecialProcedureResponse(change=change_to_proto(receipt))

    async def ExtendTimeLimit(self, request: pb.ExtendTimeLimitRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ExtendTimeLimitResponse:
        receipt = await decisions.change_clock(
            self._chain, caller=current_caller(), case_number=request.case_number,
            update=EXTEND_TIME_LIMIT, request_id=request.request_id, now=datetime.now(UTC),
            days=request.days, reason=request.reason)
        return pb.ExtendTimeLimitResponse(change=change_to_proto(receipt))

    async def ListEscalations(self, request: pb.ListEscalationsRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ListEscalationsResponse:
        page = await asyncio.to_thread(
            handlers.list_escalations, uow=self._reading(), caller=current_caller(),
            department_code=request.department_code, open_only=request.open_only,
            requested_size=request.page_size, page_token=request.page_token)
        return pb.ListEscalationsResponse(
            escalations=[escalation_to_proto(e) for e in page.escalations],
            next_page_token=page.next_page_token)

    async def GetCaseProgress(self, request: pb.GetCaseProgressRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.GetCaseProgressResponse:
        progress, recorded, timeline = await asyncio.to_thread(
            handlers.case_progress, uow=self._reading(), caller=current_caller(),
            case_number=request.case_number)
        return progress_to_proto(progress, recorded, timeline)

    async def RecordRefusedAct(self, request: pb.RecordRefusedActRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.RecordRefusedActResponse:
        recorded = await asyncio.to_thread(
            record_refused_act, uow=self._writing(), system=current_caller().system,
            case_number=request.case_number, report_id=request.report_id,
            update_name=request.update_name, reason=request.reason,
            refused_at=_instant(request.refused_at, "refused_at"), now=datetime.now(UTC))
        return pb.RecordRefusedActResponse(recorded=recorded)
