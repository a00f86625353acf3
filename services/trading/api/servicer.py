"""The trading gRPC API: protobuf in and out, the use cases in between.

Database work runs in a thread so the event loop keeps serving other calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.audittrail import AuditTrailService
from kernel.calendar import WorkingCalendar
from kernel.commonpb import checkpoint_from_proto, verification_to_proto
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    GovhallError,
    InvalidArgument,
    Unavailable,
)
from kernel.identity import current_caller
from kernel.signing import ServiceSigner
from services.trading.app import draws, handlers, listing_watch, listings, monitoring, tenders
from services.trading.app import evaluation as evaluations
from services.trading.app.listing_chain import ListingStarter
from services.trading.app.request_ids import terms_digest
from services.trading.app.tender_chain import TenderStarter
from services.trading.db.repository import StoredDraw, TradingUnitOfWork
from services.trading.domain.draws import (
    DrawPurpose,
    DrawSpec,
    DrawState,
    Exclusion,
    Witness,
)
from services.trading.domain.evaluation import Method, Weights
from services.trading.domain.feed import FeedEntry
from services.trading.domain.listings import ListingRecord
from services.trading.domain.model import Agency, CatalogueEntry, Expert
from services.trading.domain.monitoring import (
    AlertRule,
    StoredAlert,
    TradeStep,
    details_text,
    network_origin,
)
from services.trading.domain.statistics import DealSource, Statistics
from services.trading.domain.tenders import Project, Tender
from workflows import listing_contract as lc
from workflows.approval_contract import SignedStatement
from workflows.tender_contract import (
    AMEND,
    ANSWER_OBJECTION,
    AWARD,
    OBJECT,
    RECORD_CONTRACT,
    SCORE,
    SEAT_COMMITTEE,
    ActReceipt,
    StatementKind,
    workflow_id,
)

_CATEGORIES: dict[str, pb.TradingCategory.ValueType] = {
    "government_procurement": pb.TRADING_CATEGORY_GOVERNMENT_PROCUREMENT,
    "construction": pb.TRADING_CATEGORY_CONSTRUCTION,
    "land": pb.TRADING_CATEGORY_LAND,
    "property_rights": pb.TRADING_CATEGORY_PROPERTY_RIGHTS,
}
_CATEGORY_NAMES = {v: k for k, v in _CATEGORIES.items()}

#: Listing acts still settling after their callers hung up (held here so that they run on).
_SETTLING: set[asyncio.Future[Any]] = set()


def _settled(settling: asyncio.Future[Any]) -> None:
    """Forget a settled act; its outcome was the caller's, who may have hung up."""
    _SETTLING.discard(settling)
    if not settling.cancelled():
        settling.exception()  # taken: asyncio would report a refusal nobody awaited


def category_name(category: pb.TradingCategory.ValueType) -> str:
    """The domain's name of a category; '' for TRADING_CATEGORY_UNSPECIFIED."""
    return _CATEGORY_NAMES.get(category, "")


def entry_to_proto(entry: CatalogueEntry) -> pb.CatalogueEntry:
    return pb.CatalogueEntry(code=entry.code, category=_CATEGORIES[entry.category],
                             name=entry.name, threshold_fen=entry.threshold_fen,
                             basis=entry.basis)


def agency_to_proto(agency: Agency) -> pb.Agency:
    return pb.Agency(code=agency.code, name=agency.name, qualification=agency.qualification)


def expert_to_proto(expert: Expert) -> pb.Expert:
    return pb.Expert(id=expert.id, name=expert.name, specialties=list(expert.specialties),
                     employer=expert.employer, available=expert.available,
                     unavailable_reason=expert.unavailable_reason)


_PURPOSES: dict[DrawPurpose, pb.DrawPurpose.ValueType] = {
    DrawPurpose.AGENCY_LOTTERY: pb.DRAW_PURPOSE_AGENCY_LOTTERY,
    DrawPurpose.EXPERT_DRAW: pb.DRAW_PURPOSE_EXPERT_DRAW,
}
_PURPOSE_NAMES = {v: k for k, v in _PURPOSES.items()}
_STATES: dict[DrawState, pb.DrawState.ValueType] = {
    DrawState.OPEN: pb.DRAW_STATE_OPEN,
    DrawState.DRAWN: pb.DRAW_STATE_DRAWN,
    DrawState.FAILED: pb.DRAW_STATE_FAILED,
    DrawState.COMMITTING: pb.DRAW_STATE_COMMITTING,
}


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def feed_entry_to_proto(entry: FeedEntry) -> pb.FeedEntry:
    return pb.FeedEntry(sequence=entry.sequence, kind=entry.kind, subject=entry.subject,
                        published_at=_timestamp(entry.published_at), body=entry.body,
                        body_sha256=entry.body_sha256)


def draw_to_proto(draw: StoredDraw) -> pb.Draw:
    """The draw as any registered system may see it.

    The commitments are shown only once ``draw.opened`` is published (the
    draw has an opening entry): before, and for a draw that failed at the
    commit stage, only whether each witness committed, so that no witness
    learns another's commitment before giving its own.
    """
    spec, outcome = draw.spec, draw.outcome or {}
    published = draw.opened_sequence > 0
    made = pb.Draw(
        draw_id=spec.draw_id, purpose=_PURPOSES[spec.purpose], title=spec.title,
        candidates=list(spec.candidates),
        witnesses=[pb.DrawWitness(official_id=w.official_id,
                                  commitment=w.commitment if published else "",
                                  revealed=w.official_id in draw.revealed,
                                  committed=bool(w.commitment), independent=w.independent)
                   for w in spec.witnesses],
        count=spec.count, reveal_deadline=_timestamp(spec.reveal_deadline),
        state=_STATES[draw.state], opened_sequence=draw.opened_sequence,
        result_sequence=draw.result_sequence or 0, order=outcome.get("order", []),
        drawn=outcome.get("drawn", []), randomness=outcome.get("randomness", ""),
        missing_witnesses=outcome.get("missing", []), subject=spec.subject,
        replaces_draw_id=spec.replaces_draw_id, specialties=list(spec.specialties),
        conflicted_employers=list(spec.conflicted_employers),
        exclusions=[pb.DrawExclusion(expert_id=e.expert_id, basis=e.basis)
                    for e in spec.exclusions])
    if spec.commit_deadline is not None:
        made.commit_deadline.CopyFrom(_timestamp(spec.commit_deadline))
    return made


def draw_spec_from_proto(request: pb.OpenDrawRequest) -> DrawSpec:
    purpose = _PURPOSE_NAMES.get(request.purpose)
    if purpose is None:
        raise InvalidArgument("purpose must be set", violations=[
            FieldViolation("purpose", "must be a draw purpose")])
    return DrawSpec(
        draw_id=request.draw_id, purpose=purpose, title=request.title,
        candidates=tuple(request.candidates),
        witnesses=tuple(Witness(w.official_id, w.commitment) for w in request.witnesses)
        + tuple(Witness(official_id, "") for official_id in request.witness_ids),
        count=request.count,
        reveal_deadline=request.reveal_deadline.ToDatetime(tzinfo=UTC),
        commit_deadline=request.commit_deadline.ToDatetime(tzinfo=UTC),
        subject=request.subject, replaces_draw_id=request.replaces_draw_id,
        specialties=tuple(request.specialties),
        conflicted_employers=tuple(request.conflicted_employers),
        exclusions=tuple(Exclusion(e.expert_id, e.basis) for e in request.exclusions))


_FUNDING: dict[str, pb.FundingSource.ValueType] = {
    "public": pb.FUNDING_SOURCE_PUBLIC, "state_owned": pb.FUNDING_SOURCE_STATE_OWNED,
    "mixed": pb.FUNDING_SOURCE_MIXED, "private": pb.FUNDING_SOURCE_PRIVATE,
}
_FUNDING_NAMES = {v: k for k, v in _FUNDING.items()}
_TENDER_STAGES: dict[str, pb.TenderStage.ValueType] = {
    "bidding": pb.TENDER_STAGE_BIDDING, "decryption": pb.TENDER_STAGE_DECRYPTION,
    "evaluation": pb.TENDER_STAGE_EVALUATION, "candidates": pb.TENDER_STAGE_CANDIDATES,
    "awarded": pb.TENDER_STAGE_AWARDED, "contracted": pb.TENDER_STAGE_CONTRACTED,
    "failed": pb.TENDER_STAGE_FAILED,
}
_TARGETS: dict[pb.ObjectionTarget.ValueType, str] = {
    pb.OBJECTION_TARGET_DOCUMENTS: "documents", pb.OBJECTION_TARGET_CANDIDATES: "candidates"}
_METHODS: dict[pb.EvaluationMethod.ValueType, Method] = {
    pb.EVALUATION_METHOD_LOWEST_PRICE: Method.LOWEST_PRICE,
    pb.EVALUATION_METHOD_COMPREHENSIVE: Method.COMPREHENSIVE}


def project_to_proto(project: Project) -> pb.Project:
    made = pb.Project(project_no=project.project_no, category=_CATEGORIES[project.category],
                      title=project.title, estimated_value_fen=project.estimated_value_fen,
                      funding_source=_FUNDING[project.funding_source],
                      department_code=project.department_code, must_enter=project.must_enter,
                      registered_at=_timestamp(project.registered_at))
    if project.entry is not None:
        made.entry.CopyFrom(entry_to_proto(project.entry))
    return made


_LISTING_STAGES: dict[str, pb.ListingStage.ValueType] = {
    "listing": pb.LISTING_STAGE_LISTING,
    "agreement": pb.LISTING_STAGE_AGREEMENT,
    "auction": pb.LISTING_STAGE_AUCTION,
    "sold": pb.LISTING_STAGE_SOLD,
    "failed": pb.LISTING_STAGE_FAILED,
}
_LISTING_STAGE_NAMES = {v: k for k, v in _LISTING_STAGES.items()}


def listing_to_proto(view: listings.ListingView) -> pb.Listing:
    record = view.record
    return pb.Listing(
        listing_no=record.listing_no, project_no=record.project_no,
        category=_CATEGORIES[record.category], stage=_LISTING_STAGES[record.stage],
        published_at=_timestamp(record.published_at), opens_at=_timestamp(record.opens_at),
        closes_at=_timestamp(view.closes_at),
        start_price_fen=view.start_price_fen or view.reserve_price_fen,
        increment_fen=view.increment_fen, reserve_price_fen=view.reserve_price_fen,
        auction_interval_seconds=view.auction_interval_seconds,
        current_price_fen=view.current_price_fen, leader_bidder_id=view.leader,
        bids=view.bids, buyers=view.buyers, extensions=view.extensions,
        workflow_started=record.workflow_started, buyer_id=record.buyer_id,
        deal_price_fen=record.deal_price_fen, deal_method=record.deal_method,
        failure_reason=record.failure, entry_code=record.entry_code,
        agreement_due=(_timestamp(view.agreement_due) if view.agreement_due is not None
                       else None),
        agreement_working_days=view.agreement_working_days,
        auction_interest=view.auction_interest)


def tender_to_proto(tender: Tender) -> pb.Tender:
    made = pb.Tender(tender_no=tender.tender_no, project_no=tender.project_no,
                     category=_CATEGORIES[tender.category],
                     stage=_TENDER_STAGES[tender.stage],
                     announced_at=_timestamp(tender.announced_at),
                     bid_deadline=_timestamp(tender.bid_deadline),
                     decryption_window_minutes=tender.decryption_window_seconds // 60,
                     workflow_started=tender.workflow_started, bids=tender.bids,
                     paused=tender.paused, entry_code=tender.entry_code, winner=tender.winner)
    if tender.documents_until is not None:
        made.documents_until.CopyFrom(_timestamp(tender.documents_until))
    if tender.objections_until is not None:
        made.objections_until.CopyFrom(_timestamp(tender.objections_until))
    return made


_ALERT_RULES: dict[AlertRule, pb.TradeAlertRule.ValueType] = {
    AlertRule.SAME_ORIGIN: pb.TRADE_ALERT_RULE_SAME_ORIGIN,
    AlertRule.IDENTICAL_DOCUMENTS: pb.TRADE_ALERT_RULE_IDENTICAL_DOCUMENTS,
    AlertRule.LOW_PRICE: pb.TRADE_ALERT_RULE_LOW_PRICE,
    AlertRule.OUT_OF_ORDER: pb.TRADE_ALERT_RULE_OUT_OF_ORDER,
}
_ALERT_RULE_NAMES = {v: k for k, v in _ALERT_RULES.items()}
_DEAL_SOURCES: dict[DealSource, pb.DealSource.ValueType] = {
    DealSource.TENDER: pb.DEAL_SOURCE_TENDER,
    DealSource.DIRECT_AWARD: pb.DEAL_SOURCE_DIRECT_AWARD,
    DealSource.LISTING: pb.DEAL_SOURCE_LISTING,
}


def alert_to_proto(alert: StoredAlert) -> pb.TradeAlert:
    return pb.TradeAlert(alert_no=alert.alert_no, step_sequence=alert.step_sequence,
                         trade=alert.trade, rule=_ALERT_RULES[alert.rule],
                         message=alert.message, details_json=details_text(alert.details),
                         raised_at=_timestamp(alert.raised_at))


def trade_step_to_proto(step: TradeStep) -> pb.TradeStep:
    return pb.TradeStep(sequence=step.sequence, trade=step.trade, kind=step.kind,
                        step=step.step, stage=step.stage, at=_timestamp(step.at),
                        feed_sequence=step.feed_sequence,
                        details_json=details_text(step.details),
                        alerts=[alert_to_proto(a) for a in step.alerts])


def statistics_to_proto(statistics: Statistics) -> pb.GetTradeStatisticsResponse:
    return pb.GetTradeStatisticsResponse(
        rows=[pb.TradeStatisticsRow(category=_CATEGORIES[r.category],
                                    source=_DEAL_SOURCES[r.source], deals=r.deals,
                                    total_value_fen=r.total_value_fen)
              for r in statistics.rows],
        deals=statistics.deals, total_value_fen=statistics.total_value_fen)


def _canonical(request_id: str) -> str:
    """A request id (a UUID, by its proto's rule) in its one canonical form: a UUID is the
    same in either case (RFC 9562 §4), so one request is not taken twice for its case."""
    return request_id.lower()


#: What trading's update-id key is derived for (``ServiceSigner.derived_key``).
UPDATE_IDS = "update ids"


def _update_id(update: str, request_id: str, statement: SignedStatement, *,
               key: bytes) -> str:
    """A workflow update's id: a request id is the calling system's own, so another
    system's same id is another update (never answered with the first one's receipt); and
    it binds what the request asks (the keyed digest of the signed act's terms, its instant
    and request id aside: ``terms_digest``), so another content under the same id is
    another update too: Temporal answers an update id again from its first outcome,
    whatever the second one carries. Keyed, so nobody reading Temporal learns the terms."""
    digest = terms_digest(statement.body, key=key)[:32]
    return f"{update}/{current_caller().system}/{request_id}/{digest}"


class TradingServicer(trading_pb2_grpc.TradingServiceServicer):
    def __init__(self, engine: Engine, *, audit: AuditTrailService,
                 signer: ServiceSigner, starter: TenderStarter | None = None,
                 calendar: WorkingCalendar | None = None,
                 listing_starter: ListingStarter | None = None,
                 watch_poll_seconds: float = 0.25) -> None:
        self._engine = engine
        self._audit = audit
        self._signer = signer
        self._update_ids = signer.derived_key(UPDATE_IDS)
        self._starter = starter
        self._listing_starter = listing_starter
        self._calendar = calendar or WorkingCalendar()
        self._watch_poll_seconds = watch_poll_seconds
        #: Set when the service stops: every open watch ends at once.
        self._closing = asyncio.Event()

    def close_streams(self) -> None:
        """End every open WatchTrades stream (the service is stopping)."""
        self._closing.set()

    async def streams_open(self) -> None:
        """Run beside the servicer until the service stops, then end the open streams
        (kernel.service stops the work beside the servicers before the server)."""
        try:
            await asyncio.Event().wait()
        finally:
            self.close_streams()

    def _reading(self) -> TradingUnitOfWork:
        return TradingUnitOfWork(self._engine, write=False)

    def _writing(self) -> TradingUnitOfWork:
        return TradingUnitOfWork(self._engine)

    async def ListCatalogueEntries(self, request: pb.ListCatalogueEntriesRequest,
                                   context: grpc.aio.ServicerContext[Any, Any],
                                   ) -> pb.ListCatalogueEntriesResponse:
        entries = await asyncio.to_thread(
            handlers.list_catalogue_entries, uow=self._reading(),
            category=category_name(request.category))
        return pb.ListCatalogueEntriesResponse(entries=[entry_to_proto(e) for e in entries])

    async def CheckMustEnter(self, request: pb.CheckMustEnterRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.CheckMustEnterResponse:
        entry = await asyncio.to_thread(
            handlers.check_must_enter, uow=self._reading(),
            category=category_name(request.category),
            estimated_value_fen=request.estimated_value_fen)
        if entry is None:
            return pb.CheckMustEnterResponse(must_enter=False)
        return pb.CheckMustEnterResponse(must_enter=True, entry=entry_to_proto(entry))

    async def ListAgencies(self, request: pb.ListAgenciesRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.ListAgenciesResponse:
        page = await asyncio.to_thread(
            handlers.list_agencies, uow=self._reading(), requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListAgenciesResponse(agencies=[agency_to_proto(a) for a in page.agencies],
                                       next_page_token=page.next_page_token)

    async def GetAgency(self, request: pb.GetAgencyRequest,
                        context: grpc.aio.ServicerContext[Any, Any],
                        ) -> pb.GetAgencyResponse:
        agency = await asyncio.to_thread(handlers.get_agency, uow=self._reading(),
                                         code=request.code)
        return pb.GetAgencyResponse(agency=agency_to_proto(agency))

    async def ListExperts(self, request: pb.ListExpertsRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.ListExpertsResponse:
        page = await asyncio.to_thread(
            handlers.list_experts, uow=self._reading(), caller=current_caller(),
            specialty=request.specialty, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListExpertsResponse(experts=[expert_to_proto(e) for e in page.experts],
                                      next_page_token=page.next_page_token)

    async def GetExpert(self, request: pb.GetExpertRequest,
                        context: grpc.aio.ServicerContext[Any, Any],
                        ) -> pb.GetExpertResponse:
        expert = await asyncio.to_thread(handlers.get_expert, uow=self._reading(),
                                         caller=current_caller(), expert_id=request.id)
        return pb.GetExpertResponse(expert=expert_to_proto(expert))

    async def RegisterExpert(self, request: pb.RegisterExpertRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RegisterExpertResponse:
        expert = await asyncio.to_thread(
            handlers.register_expert, uow=self._writing(), caller=current_caller(),
            expert_id=request.id, name=request.name, specialties=list(request.specialties),
            employer=request.employer)
        return pb.RegisterExpertResponse(expert=expert_to_proto(expert))

    async def SetExpertAvailability(self, request: pb.SetExpertAvailabilityRequest,
                                    context: grpc.aio.ServicerContext[Any, Any],
                                    ) -> pb.SetExpertAvailabilityResponse:
        expert = await asyncio.to_thread(
            handlers.set_expert_availability, uow=self._writing(), caller=current_caller(),
            expert_id=request.id, available=request.available, reason=request.reason)
        return pb.SetExpertAvailabilityResponse(expert=expert_to_proto(expert))

    async def VerifyAuditLog(self, request: pb.VerifyAuditLogRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.VerifyAuditLogResponse:
        result = await asyncio.to_thread(
            self._audit.verify, kept=[checkpoint_from_proto(c) for c in request.checkpoints])
        return pb.VerifyAuditLogResponse(verification=verification_to_proto(result))

    async def ListFeed(self, request: pb.ListFeedRequest,
                       context: grpc.aio.ServicerContext[Any, Any],
                       ) -> pb.ListFeedResponse:
        page = await asyncio.to_thread(draws.list_feed, uow=self._reading(),
                                       cursor=request.cursor, requested_size=request.page_size)
        return pb.ListFeedResponse(entries=[feed_entry_to_proto(e) for e in page.entries],
                                   next_cursor=page.next_cursor)

    async def ReadFeed(self, request: pb.ReadFeedRequest,
                       context: grpc.aio.ServicerContext[Any, Any],
                       ) -> pb.ReadFeedResponse:
        entry = await asyncio.to_thread(draws.read_feed, uow=self._reading(),
                                        sequence=request.sequence)
        return pb.ReadFeedResponse(entry=feed_entry_to_proto(entry))

    async def OpenDraw(self, request: pb.OpenDrawRequest,
                       context: grpc.aio.ServicerContext[Any, Any],
                       ) -> pb.OpenDrawResponse:
        draw = await asyncio.to_thread(
            draws.open_draw, uow=self._writing(), signer=self._signer, caller=current_caller(),
            spec=draw_spec_from_proto(request), now=datetime.now(UTC))
        return pb.OpenDrawResponse(draw=draw_to_proto(draw))

    async def CommitSeed(self, request: pb.CommitSeedRequest,
                         context: grpc.aio.ServicerContext[Any, Any],
                         ) -> pb.CommitSeedResponse:
        draw = await asyncio.to_thread(
            draws.commit_seed, uow=self._writing(), signer=self._signer,
            caller=current_caller(), draw_id=request.draw_id, commitment=request.commitment,
            now=datetime.now(UTC))
        return pb.CommitSeedResponse(draw=draw_to_proto(draw))

    async def RevealSeed(self, request: pb.RevealSeedRequest,
                         context: grpc.aio.ServicerContext[Any, Any],
                         ) -> pb.RevealSeedResponse:
        draw = await asyncio.to_thread(
            draws.reveal_seed, uow=self._writing(), signer=self._signer,
            caller=current_caller(), draw_id=request.draw_id,
            seed=bytes.fromhex(request.seed), now=datetime.now(UTC))
        return pb.RevealSeedResponse(draw=draw_to_proto(draw))

    async def GetDraw(self, request: pb.GetDrawRequest,
                      context: grpc.aio.ServicerContext[Any, Any],
                      ) -> pb.GetDrawResponse:
        draw = await asyncio.to_thread(draws.get_draw, uow=self._reading(),
                                       draw_id=request.draw_id)
        return pb.GetDrawResponse(draw=draw_to_proto(draw))

    # ---- projects and tenders ---------------------------------------------------------------

    def _tender_starter(self) -> TenderStarter:
        if self._starter is None:
            raise RuntimeError("the trading servicer was made without its tender starter")
        return self._starter

    async def RegisterProject(self, request: pb.RegisterProjectRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.RegisterProjectResponse:
        project = await asyncio.to_thread(
            tenders.register_project, uow=self._writing(), caller=current_caller(),
            request_id=_canonical(request.request_id), category=category_name(request.category),
            title=request.title, estimated_value_fen=request.estimated_value_fen,
            funding_source=_FUNDING_NAMES.get(request.funding_source, ""),
            department_code=request.department_code, now=datetime.now(UTC))
        return pb.RegisterProjectResponse(project=project_to_proto(project))

    async def RecordDirectAward(self, request: pb.RecordDirectAwardRequest,
                                context: grpc.aio.ServicerContext[Any, Any],
                                ) -> pb.RecordDirectAwardResponse:
        award = await asyncio.to_thread(
            tenders.record_direct_award, uow=self._writing(), caller=current_caller(),
            request_id=_canonical(request.request_id), project_no=request.project_no,
            supplier_code=request.supplier_code, amount_fen=request.amount_fen,
            now=datetime.now(UTC))
        return pb.RecordDirectAwardResponse(project_no=award.project_no,
                                            amount_fen=award.amount_fen,
                                            recorded_at=_timestamp(award.recorded_at))

    async def AnnounceTender(self, request: pb.AnnounceTenderRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.AnnounceTenderResponse:
        starter = self._tender_starter()
        window = (timedelta(minutes=request.decryption_window_minutes)
                  if request.decryption_window_minutes else None)
        tender = await asyncio.to_thread(
            tenders.announce_tender, uow=self._writing(), signer=self._signer,
            calendar=self._calendar, caller=current_caller(),
            request_id=_canonical(request.request_id),
            project_no=request.project_no,
            bid_deadline=request.bid_deadline.ToDatetime(tzinfo=UTC),
            documents_until=(request.documents_until.ToDatetime(tzinfo=UTC)
                             if request.HasField("documents_until") else None),
            decryption_window=window, now=datetime.now(UTC),
            evaluation_method=_METHODS.get(request.evaluation_method),
            weights=(Weights(request.weights.price, request.weights.technical,
                             request.weights.business)
                     if request.HasField("weights") else None))
        if not tender.workflow_started:
            # Committed first; started now if Temporal answers, else by the outbox.
            await starter.start(tender.tender_no, waiting=True)
        tender = await asyncio.to_thread(tenders.get_tender, uow=self._reading(),
                                         tender_no=tender.tender_no)
        return pb.AnnounceTenderResponse(tender=tender_to_proto(tender))

    async def GetTender(self, request: pb.GetTenderRequest,
                        context: grpc.aio.ServicerContext[Any, Any],
                        ) -> pb.GetTenderResponse:
        tender = await asyncio.to_thread(tenders.get_tender, uow=self._reading(),
                                         tender_no=request.tender_no)
        return pb.GetTenderResponse(tender=tender_to_proto(tender))

    async def CheckTenderLink(self, request: pb.CheckTenderLinkRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.CheckTenderLinkResponse:
        link = await asyncio.to_thread(tenders.check_tender_link, uow=self._reading(),
                                       tender_no=request.tender_no)
        if link is None:
            return pb.CheckTenderLinkResponse(found=False)
        return pb.CheckTenderLinkResponse(found=True, category=_CATEGORIES[link.category],
                                          department_code=link.department_code,
                                          stage=_TENDER_STAGES[link.stage])

    async def _act(self, update: str, kind: StatementKind, *, tender_no: str,
                   request_id: str, **facts: Any) -> tuple[pb.TenderActResponse,
                                                           tenders.PreparedAct]:
        """Sign the official's act and send it to the tender's workflow, which checks it
        and has trading record it; the tender as it then stands. The same request again,
        once recorded, is answered from the record (another content under its request id
        is ALREADY_EXISTS), looked up before the tender's state is checked, so even once the
        tender moved on or finished (``tenders.prepare_act``)."""
        prepared = await asyncio.to_thread(
            tenders.prepare_act, uow=self._reading(), signer=self._signer,
            calendar=self._calendar, caller=current_caller(), kind=kind, tender_no=tender_no,
            request_id=request_id, now=datetime.now(UTC), **facts)
        if isinstance(prepared, tenders.RecordedAct):
            tender = await asyncio.to_thread(tenders.get_tender, uow=self._reading(),
                                             tender_no=tender_no)
            return (pb.TenderActResponse(tender=tender_to_proto(tender),
                                         feed_sequence=prepared.feed_sequence),
                    prepared.prepared)
        result, _ = await self._send(update, prepared, tender_no=tender_no,
                                     request_id=request_id)
        return result, prepared

    async def _send(self, update: str, prepared: tenders.PreparedAct, *, tender_no: str,
                    request_id: str) -> tuple[pb.TenderActResponse, pb.Tender]:
        """Send an act signed elsewhere to the tender's workflow; the tender after it."""
        starter = self._tender_starter()
        if not prepared.tender.workflow_started and not await starter.start(tender_no,
                                                                            waiting=True):
            raise Unavailable(f"the workflow of tender {tender_no} cannot be reached now: "
                              "try again later")
        receipt = await starter.gateway.update(
            workflow_id(tender_no), update, prepared.act,
            update_id=_update_id(update, request_id, prepared.act.statement,
                                 key=self._update_ids),
            result_type=ActReceipt)
        tender = tender_to_proto(await asyncio.to_thread(
            tenders.get_tender, uow=self._reading(), tender_no=tender_no))
        return (pb.TenderActResponse(tender=tender, feed_sequence=receipt.feed_sequence),
                tender)

    async def AmendTender(self, request: pb.AmendTenderRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.AmendTenderResponse:
        result, _ = await self._act(AMEND, StatementKind.AMENDMENT,
                                    tender_no=request.tender_no,
                                    request_id=_canonical(request.request_id),
                                    text=request.content)
        return pb.AmendTenderResponse(result=result)

    async def ObjectToTender(self, request: pb.ObjectToTenderRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.ObjectToTenderResponse:
        target = _TARGETS.get(request.target)
        if target is None:
            raise InvalidArgument("target must be the documents or the candidates",
                                  violations=[FieldViolation("target", "must be set")])
        result, prepared = await self._act(
            OBJECT, StatementKind.OBJECTION, tender_no=request.tender_no,
            request_id=_canonical(request.request_id), text=request.grounds, target=target,
            bidder_id=request.bidder_id)
        response = pb.ObjectToTenderResponse(result=result,
                                             objection_id=prepared.objection_id)
        if prepared.answer_due is not None:
            response.answer_due.CopyFrom(_timestamp(prepared.answer_due))
        return response

    async def AnswerObjection(self, request: pb.AnswerObjectionRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.AnswerObjectionResponse:
        result, _ = await self._act(
            ANSWER_OBJECTION, StatementKind.OBJECTION_ANSWER, tender_no=request.tender_no,
            request_id=_canonical(request.request_id), text=request.answer,
            objection_id=request.objection_id)
        return pb.AnswerObjectionResponse(result=result)

    async def SubmitEvaluation(self, request: pb.SubmitEvaluationRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.SubmitEvaluationResponse:
        # The stub the electronic evaluation replaced: candidates are computed from the
        # committee's score sheets (SubmitScoreSheet), never named by an officer.
        raise FailedPrecondition(
            f"tender {request.tender_no}: the candidates are computed from the evaluation "
            "committee's score sheets (DrawEvaluationCommittee, SeatEvaluationCommittee, "
            "SubmitScoreSheet); an officer cannot name them")

    async def AwardTender(self, request: pb.AwardTenderRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> pb.AwardTenderResponse:
        result, _ = await self._act(
            AWARD, StatementKind.AWARD, tender_no=request.tender_no,
            request_id=_canonical(request.request_id), winner=request.winner_bidder_id,
            amount_fen=request.amount_fen)
        return pb.AwardTenderResponse(result=result)

    async def RecordContract(self, request: pb.RecordContractRequest,
                             context: grpc.aio.ServicerContext[Any, Any],
                             ) -> pb.RecordContractResponse:
        tender = await asyncio.to_thread(tenders.get_tender, uow=self._reading(),
                                         tender_no=request.tender_no)
        result, _ = await self._act(
            RECORD_CONTRACT, StatementKind.CONTRACT, tender_no=request.tender_no,
            request_id=_canonical(request.request_id), winner=tender.winner,
            amount_fen=request.amount_fen, contract_no=request.contract_no)
        return pb.RecordContractResponse(result=result)

    async def SubmitSealedBid(self, request: pb.SubmitSealedBidRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.SubmitSealedBidResponse:
        bid = await asyncio.to_thread(
            tenders.submit_sealed_bid, uow=self._writing(), caller=current_caller(),
            tender_no=request.tender_no, bidder_id=request.bidder_id,
            ciphertext=request.ciphertext, ciphertext_sha256=request.ciphertext_sha256,
            key_commitment=request.key_commitment, now=datetime.now(UTC),
            origin=network_origin(context.peer() or ""))
        return pb.SubmitSealedBidResponse(tender_no=bid.tender_no, bidder_id=bid.bidder_id,
                                          ciphertext_sha256=bid.ciphertext_sha256,
                                          submitted_at=_timestamp(bid.submitted_at))

    async def RevealBidKey(self, request: pb.RevealBidKeyRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.RevealBidKeyResponse:
        bid = await asyncio.to_thread(
            tenders.reveal_bid_key, uow=self._writing(), caller=current_caller(),
            tender_no=request.tender_no, bidder_id=request.bidder_id,
            key=bytes.fromhex(request.key), now=datetime.now(UTC))
        response = pb.RevealBidKeyResponse(tender_no=bid.tender_no, bidder_id=bid.bidder_id)
        if bid.revealed_at is not None:
            response.revealed_at.CopyFrom(_timestamp(bid.revealed_at))
        return response

    # ---- monitoring ---------------------------------------------------------------------------

    async def WatchTrades(self, request: pb.WatchTradesRequest,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> AsyncIterator[pb.WatchTradesResponse]:
        """Every step after the cursor, in order; with ``follow``, new ones as they commit
        (read every ``watch_poll_seconds``), until the client cancels or the service stops.

        The steps are numbered under a lock held to the commit, so reading after the last
        number sent never misses a step nor sends one twice (services/trading/db)."""
        cursor = request.after_step
        await asyncio.to_thread(monitoring.check_step_cursor, uow=self._reading(),
                                after_step=cursor)
        while not self._closing.is_set():
            batch = await asyncio.to_thread(monitoring.steps_after, uow=self._reading(),
                                            after_step=cursor)
            for step in batch:
                yield pb.WatchTradesResponse(step=trade_step_to_proto(step))
                cursor = step.sequence
            if len(batch) == monitoring.WATCH_BATCH:
                continue
            if not request.follow:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._watch_poll_seconds)

    async def ListTradeAlerts(self, request: pb.ListTradeAlertsRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.ListTradeAlertsResponse:
        page = await asyncio.to_thread(
            monitoring.list_alerts, uow=self._reading(), cursor=request.cursor,
            requested_size=request.page_size, trade=request.trade,
            rule=_ALERT_RULE_NAMES.get(request.rule))
        return pb.ListTradeAlertsResponse(alerts=[alert_to_proto(a) for a in page.alerts],
                                          next_cursor=page.next_cursor)

    async def GetTradeStatistics(self, request: pb.GetTradeStatisticsRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.GetTradeStatisticsResponse:
        statistics = await asyncio.to_thread(
            monitoring.trade_statistics, uow=self._reading(),
            start=request.period_start.ToDatetime(tzinfo=UTC),
            end=request.period_end.ToDatetime(tzinfo=UTC),
            category=category_name(request.category))
        return statistics_to_proto(statistics)

    # ---- evaluation ----

    async def DrawEvaluationCommittee(self, request: pb.DrawEvaluationCommitteeRequest,
                                      context: grpc.aio.ServicerContext[Any, Any],
                                      ) -> pb.DrawEvaluationCommitteeResponse:
        drawn = await asyncio.to_thread(
            evaluations.draw_committee, uow=self._writing(), signer=self._signer,
            caller=current_caller(), tender_no=request.tender_no, draw_id=request.draw_id,
            specialties=list(request.specialties), committee_size=request.committee_size,
            representative_ids=list(request.representative_ids),
            witness_ids=list(request.witness_ids),
            commit_deadline=request.commit_deadline.ToDatetime(tzinfo=UTC),
            reveal_deadline=request.reveal_deadline.ToDatetime(tzinfo=UTC),
            now=datetime.now(UTC))
        return pb.DrawEvaluationCommitteeResponse(
            draw=draw_to_proto(drawn.draw), conflicted_employers=drawn.conflicted_employers,
            experts=drawn.committee.experts)

    async def SeatEvaluationCommittee(self, request: pb.SeatEvaluationCommitteeRequest,
                                      context: grpc.aio.ServicerContext[Any, Any],
                                      ) -> pb.SeatEvaluationCommitteeResponse:
        prepared = await asyncio.to_thread(
            evaluations.prepare_committee, uow=self._reading(), signer=self._signer,
            caller=current_caller(), tender_no=request.tender_no,
            request_id=_canonical(request.request_id), now=datetime.now(UTC))
        if isinstance(prepared, evaluations.RecordedAct):
            # Seated by this very request already (its answer was lost): answered again.
            return pb.SeatEvaluationCommitteeResponse(
                result=pb.TenderActResponse(tender=tender_to_proto(prepared.tender),
                                            feed_sequence=prepared.feed_sequence),
                member_ids=list(prepared.facts.members))
        result, _ = await self._send(SEAT_COMMITTEE, prepared, tender_no=request.tender_no,
                                     request_id=_canonical(request.request_id))
        return pb.SeatEvaluationCommitteeResponse(
            result=result, member_ids=list(prepared.act.statement.body["members"]))

    async def SubmitScoreSheet(self, request: pb.SubmitScoreSheetRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.SubmitScoreSheetResponse:
        prepared = await asyncio.to_thread(
            evaluations.prepare_score_sheet, uow=self._reading(), signer=self._signer,
            caller=current_caller(), tender_no=request.tender_no,
            request_id=_canonical(request.request_id), member_id=request.member_id,
            bidder_id=request.bidder_id, compliant=request.compliant,
            technical=request.technical_score, business=request.business_score,
            now=datetime.now(UTC))
        if isinstance(prepared, evaluations.RecordedAct):
            # Recorded by this very request already (its answer was lost): answered again,
            # with the candidates when it was the sheet that completed the evaluation.
            tender = tender_to_proto(prepared.tender)
            result = pb.TenderActResponse(tender=tender, feed_sequence=prepared.feed_sequence)
            completed = prepared.feed_sequence != 0
        else:
            result, tender = await self._send(SCORE, prepared, tender_no=request.tender_no,
                                              request_id=_canonical(request.request_id))
            completed = tender.stage == pb.TENDER_STAGE_CANDIDATES
        response = pb.SubmitScoreSheetResponse(result=result)
        if completed:
            candidates = await asyncio.to_thread(
                evaluations.published_candidates, uow=self._reading(),
                tender_no=request.tender_no)
            response.candidate_bidder_ids.extend(candidates)
        return response

    # ---- land and property-rights listings ----------------------------------------------------

    def _listings_starter(self) -> ListingStarter:
        if self._listing_starter is None:
            raise RuntimeError("the trading servicer was made without its listing starter")
        return self._listing_starter

    async def _listing(self, listing_no: str) -> pb.Listing:
        view = await asyncio.to_thread(listings.get_listing, uow=self._reading(),
                                       calendar=self._calendar, listing_no=listing_no)
        return listing_to_proto(view)

    async def _published(self, record: ListingRecord) -> pb.Listing:
        if not record.workflow_started:
            # Committed first; started now if Temporal answers, else by the outbox.
            await self._listings_starter().start(record.listing_no, waiting=True)
        return await self._listing(record.listing_no)

    async def PublishLandListing(self, request: pb.PublishLandListingRequest,
                                 context: grpc.aio.ServicerContext[Any, Any],
                                 ) -> pb.PublishLandListingResponse:
        record = await asyncio.to_thread(
            listings.publish_land_listing, uow=self._writing(), signer=self._signer,
            calendar=self._calendar, caller=current_caller(),
            request_id=_canonical(request.request_id),
            project_no=request.project_no, opens_at=request.opens_at.ToDatetime(tzinfo=UTC),
            closes_at=request.closes_at.ToDatetime(tzinfo=UTC),
            start_price_fen=request.start_price_fen, increment_fen=request.increment_fen,
            reserve_price_fen=request.reserve_price_fen,
            auction_interval=timedelta(seconds=request.auction_interval_seconds),
            now=datetime.now(UTC))
        return pb.PublishLandListingResponse(listing=await self._published(record))

    async def DiscloseProperty(self, request: pb.DisclosePropertyRequest,
                               context: grpc.aio.ServicerContext[Any, Any],
                               ) -> pb.DisclosePropertyResponse:
        record = await asyncio.to_thread(
            listings.disclose_property, uow=self._writing(), signer=self._signer,
            calendar=self._calendar, caller=current_caller(),
            request_id=_canonical(request.request_id),
            project_no=request.project_no,
            closes_at=request.closes_at.ToDatetime(tzinfo=UTC),
            reserve_price_fen=request.reserve_price_fen, increment_fen=request.increment_fen,
            auction_interval=timedelta(seconds=request.auction_interval_seconds),
            max_extensions=request.max_extensions, now=datetime.now(UTC),
            agreement_working_days=request.agreement_working_days)
        return pb.DisclosePropertyResponse(listing=await self._published(record))

    async def _send_listing_act(self, update: str, prepared: listings.PreparedListingAct,
                                *, request_id: str) -> tuple[pb.Listing, int]:
        """Send a signed act to the listing's workflow, which checks it at the listing's
        clock and has trading record it; the listing after it and its feed entry."""
        starter = self._listings_starter()
        listing_no = prepared.listing.listing_no
        if not prepared.listing.workflow_started and not await starter.start(listing_no,
                                                                             waiting=True):
            # Told apart from an update that cannot be sent (the gateway's own message).
            raise Unavailable(f"the workflow of listing {listing_no} is not started yet and "
                              "cannot be started now: try again later")
        receipt = await starter.gateway.update(
            lc.workflow_id(listing_no), update, prepared.act,
            update_id=_update_id(update, request_id, prepared.act.statement,
                                 key=self._update_ids),
            result_type=lc.ListingReceipt)
        return await self._listing(listing_no), receipt.feed_sequence

    async def _bidder_act(self, update: str, kind: lc.StatementKind, *, listing_no: str,
                          bidder_id: str, amount_fen: int, request_id: str,
                          context: grpc.aio.ServicerContext[Any, Any],
                          ) -> tuple[pb.Listing, int]:
        prepared = await asyncio.to_thread(
            listings.prepare_bidder_act, uow=self._reading(), signer=self._signer,
            caller=current_caller(), kind=kind, listing_no=listing_no, bidder_id=bidder_id,
            amount_fen=amount_fen, request_id=request_id, now=datetime.now(UTC))
        if isinstance(prepared, listings.RecordedListingAct):
            # Recorded by this very request already (its answer was lost): answered again.
            return await self._listing(listing_no), prepared.feed_sequence
        origin = network_origin(context.peer() or "")

        async def settle() -> tuple[pb.Listing, int]:
            # Monitoring: where the act came from, for the same_origin rule (not in Temporal).
            await asyncio.to_thread(
                listing_watch.note_act_origin, uow=self._writing(), kind=kind,
                listing_no=listing_no, statement=prepared.act.statement, origin=origin,
                now=datetime.now(UTC))
            try:
                return await self._send_listing_act(update, prepared, request_id=request_id)
            except Unavailable:
                raise  # the act may still be recorded (the same request again): note stays
            except GovhallError:
                # Refused by the workflow (its validator or the recording step): never
                # recorded, so its note goes, and refused acts cannot fill the notes.
                await asyncio.to_thread(
                    listing_watch.forget_act_origin, uow=self._writing(), kind=kind,
                    listing_no=listing_no, statement=prepared.act.statement)
                raise

        # Noted and settled even if the caller hangs up meanwhile: a call cancelled after
        # the note would otherwise keep the note of an act the workflow then refuses.
        settling = asyncio.ensure_future(settle())
        _SETTLING.add(settling)
        settling.add_done_callback(_settled)
        return await asyncio.shield(settling)

    async def PlaceListingBid(self, request: pb.PlaceListingBidRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.PlaceListingBidResponse:
        listing, sequence = await self._bidder_act(
            lc.BID, lc.StatementKind.BID, listing_no=request.listing_no,
            bidder_id=request.bidder_id, amount_fen=request.amount_fen,
            request_id=_canonical(request.request_id), context=context)
        return pb.PlaceListingBidResponse(listing=listing, feed_sequence=sequence)

    async def RegisterBuyer(self, request: pb.RegisterBuyerRequest,
                            context: grpc.aio.ServicerContext[Any, Any],
                            ) -> pb.RegisterBuyerResponse:
        listing, _ = await self._bidder_act(
            lc.REGISTER_BUYER, lc.StatementKind.BUYER, listing_no=request.listing_no,
            bidder_id=request.buyer_id, amount_fen=0, request_id=_canonical(request.request_id),
            context=context)
        return pb.RegisterBuyerResponse(listing=listing)

    async def PlaceAuctionBid(self, request: pb.PlaceAuctionBidRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.PlaceAuctionBidResponse:
        listing, sequence = await self._bidder_act(
            lc.AUCTION_BID, lc.StatementKind.AUCTION_BID, listing_no=request.listing_no,
            bidder_id=request.bidder_id, amount_fen=request.amount_fen,
            request_id=_canonical(request.request_id), context=context)
        return pb.PlaceAuctionBidResponse(listing=listing, feed_sequence=sequence)

    async def RecordAgreement(self, request: pb.RecordAgreementRequest,
                              context: grpc.aio.ServicerContext[Any, Any],
                              ) -> pb.RecordAgreementResponse:
        prepared = await asyncio.to_thread(
            listings.prepare_agreement, uow=self._reading(), signer=self._signer,
            calendar=self._calendar, caller=current_caller(), listing_no=request.listing_no,
            price_fen=request.price_fen, request_id=_canonical(request.request_id),
            now=datetime.now(UTC))
        if isinstance(prepared, listings.RecordedListingAct):
            # Recorded by this very request already (its answer was lost): answered again.
            return pb.RecordAgreementResponse(
                listing=await self._listing(request.listing_no),
                feed_sequence=prepared.feed_sequence)
        listing, sequence = await self._send_listing_act(lc.AGREE, prepared,
                                                         request_id=_canonical(request.request_id))
        return pb.RecordAgreementResponse(listing=listing, feed_sequence=sequence)

    async def GetListing(self, request: pb.GetListingRequest,
                         context: grpc.aio.ServicerContext[Any, Any],
                         ) -> pb.GetListingResponse:
        return pb.GetListingResponse(listing=await self._listing(request.listing_no))

    async def DeclareAuctionInterest(self, request: pb.DeclareAuctionInterestRequest,
                                     context: grpc.aio.ServicerContext[Any, Any],
                                     ) -> pb.DeclareAuctionInterestResponse:
        listing, sequence = await self._bidder_act(
            lc.DECLARE_INTEREST, lc.StatementKind.INTEREST, listing_no=request.listing_no,
            bidder_id=request.bidder_id, amount_fen=0, request_id=_canonical(request.request_id),
            context=context)
        return pb.DeclareAuctionInterestResponse(listing=listing, feed_sequence=sequence)

    async def ListListings(self, request: pb.ListListingsRequest,
                           context: grpc.aio.ServicerContext[Any, Any],
                           ) -> pb.ListListingsResponse:
        category = ""
        if request.category != pb.TRADING_CATEGORY_UNSPECIFIED:
            category = _CATEGORY_NAMES.get(request.category, "")
            if category not in (lc.LAND, lc.PROPERTY_RIGHTS):
                raise InvalidArgument(
                    "category: listings are of the land or property-rights category",
                    violations=[FieldViolation("category", "land or property rights")])
        stage = ""
        if request.stage != pb.LISTING_STAGE_UNSPECIFIED:
            stage = _LISTING_STAGE_NAMES.get(request.stage, "")
            if not stage:
                raise InvalidArgument("stage: not a stage of a listing",
                                      violations=[FieldViolation("stage", "a listing stage")])
        page = await asyncio.to_thread(
            listings.list_listings, uow=self._reading(), calendar=self._calendar,
            category=category, stage=stage, requested_size=request.page_size,
            page_token=request.page_token)
        return pb.ListListingsResponse(listings=[listing_to_proto(v) for v in page.listings],
                                       next_page_token=page.next_page_token)
