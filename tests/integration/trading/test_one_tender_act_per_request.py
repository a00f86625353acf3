"""One request id, one act, on a tender (attack s17 LOW 5): an official's act (here an
amendment) and an expert's score sheet are sent to the tender's workflow as Temporal
updates; the same request id with several contents sent at once records one and refuses the
others (ALREADY_EXISTS, never the recorded act's receipt); a later call under the id with
another content is refused, nothing changed; the same content again is answered with the
recorded act's receipt, at once or later. On the real TenderWorkflow (test_tender_chain).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.errors import AlreadyExists
from kernel.signing import TrustedKeys, public_keys_dir, service_signer
from services.trading.api.servicer import UPDATE_IDS
from services.trading.app import tender_steps
from services.trading.app.request_ids import terms_digest, terms_sha256
from services.trading.db import tables
from services.trading.db.repository import TradingUnitOfWork
from tests.integration.trading.cut_off import cut_off as cut_off_service
from tests.integration.trading.test_tender_chain import OFFICER, Venue, _until
from tests.integration.trading.test_tender_chain import venue as venue  # the fixture
from tests.integration.trading.test_tender_evaluation import (
    EXPERT_SYSTEMS,
    _sheet,
    _to_evaluation,
)
from tests.support import ServiceUnderTest
from workflows import tender_contract as tc
from workflows.approval_contract import as_statement, content_digest


def _steps(venue: Venue, tender_no: str, step: str) -> list[Any]:
    with venue.trading.running.engine.connect() as connection:
        return list(connection.execute(select(tables.tender_steps).where(
            (tables.tender_steps.c.tender_no == tender_no)
            & (tables.tender_steps.c.step == step))))


def _split(results: Sequence[object]) -> tuple[list[Any], list[grpc.aio.AioRpcError]]:
    unexpected = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, grpc.aio.AioRpcError)]
    assert not unexpected, unexpected
    return ([r for r in results if not isinstance(r, BaseException)],
            [r for r in results if isinstance(r, grpc.aio.AioRpcError)])


def _amend(request_id: str, tender_no: str, content: str) -> pb.AmendTenderRequest:
    return pb.AmendTenderRequest(request_id=request_id, tender_no=tender_no, content=content)


async def _announced(venue: Venue) -> str:
    tender = await venue.announce()
    number = str(tender.tender_no)
    await _until(lambda: venue.feed(number), lambda f: len(f) == 1, "announcement published")
    return number


async def test_one_request_id_with_eight_amendments_sent_at_once_records_one(
        venue: Venue) -> None:
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    results = await asyncio.gather(
        *(venue.via().AmendTender(_amend(shared, number, f"第{i}章技术参数更正"),
                                  metadata=OFFICER) for i in range(8)),
        return_exceptions=True)
    told_ok, refused = _split(results)

    assert len(told_ok) == 1
    assert [e.code() for e in refused] == [grpc.StatusCode.ALREADY_EXISTS] * 7, \
        [(e.code(), e.details()) for e in refused]
    assert all("content_sha256" in (e.details() or "") for e in refused)
    (step,) = _steps(venue, number, "amended")
    assert step.feed_sequence == told_ok[0].result.feed_sequence
    feed = await venue.feed(number)
    assert [body["content"] for kind, body in feed if kind == "tender.amended"] == \
        [step.content]

    # One after the other: another content is refused, the same one answered again.
    with pytest.raises(grpc.aio.AioRpcError) as later:
        await venue.via().AmendTender(_amend(shared, number, "另一个更正"), metadata=OFFICER)
    assert later.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "other terms (content_sha256)" in (later.value.details() or "")
    again = await venue.via().AmendTender(_amend(shared, number, step.content),
                                          metadata=OFFICER)
    assert again.result.feed_sequence == step.feed_sequence
    assert len(_steps(venue, number, "amended")) == 1


async def test_a_genuine_retry_of_an_amendment_at_once_is_one_amendment(
        venue: Venue) -> None:
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    results = await asyncio.gather(
        *(venue.via().AmendTender(_amend(shared, number, "第3章技术参数更正"),
                                  metadata=OFFICER) for _ in range(8)),
        return_exceptions=True)
    told_ok, refused = _split(results)

    assert refused == []
    assert len({r.result.feed_sequence for r in told_ok}) == 1
    assert len(_steps(venue, number, "amended")) == 1


async def test_one_request_id_with_eight_score_sheets_sent_at_once_records_one(
        venue: Venue) -> None:
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    member = members[0]
    shared = str(uuid.uuid4())

    def sheet(technical: int) -> pb.SubmitScoreSheetRequest:
        request = _sheet(number, member, "BD-0001", technical, 80)
        request.request_id = shared
        return request

    expert = venue.via(EXPERT_SYSTEMS[member])
    results = await asyncio.gather(*(expert.SubmitScoreSheet(sheet(60 + i)) for i in range(8)),
                                   return_exceptions=True)
    told_ok, refused = _split(results)

    assert len(told_ok) == 1
    assert [e.code() for e in refused] == [grpc.StatusCode.ALREADY_EXISTS] * 7, \
        [(e.code(), e.details()) for e in refused]
    # Refused as other terms under the request id, not by the older rule that a sheet is
    # not replaced (which would refuse them too, one act per request or not).
    assert all("other terms (" in (e.details() or "") for e in refused), \
        [e.details() for e in refused]
    (recorded,) = _steps(venue, number, "scored")
    with venue.trading.running.engine.connect() as connection:
        (kept,) = list(connection.execute(select(tables.tender_score_sheets).where(
            tables.tender_score_sheets.c.tender_no == number)))
    # The sheet recorded is one of those sent, and a retry of it answers its receipt.
    assert 60 <= kept.technical < 68
    again = await expert.SubmitScoreSheet(sheet(kept.technical))
    assert again.result.feed_sequence == recorded.feed_sequence
    with pytest.raises(grpc.aio.AioRpcError) as later:
        await expert.SubmitScoreSheet(sheet(kept.technical + 1 if kept.technical < 67 else 60))
    assert later.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "other terms (technical)" in (later.value.details() or "")
    assert len(_steps(venue, number, "scored")) == 1


async def test_the_recording_step_records_one_act_per_request(venue: Venue) -> None:
    """Trading's recording step (the activity) itself, as a run that does not know the
    first act would call it: another amendment under a recorded one's request id is
    ALREADY_EXISTS naming the content, never the recorded act's receipt; the same one
    signed again answers that receipt; one amendment stays recorded."""
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    first = await venue.via().AmendTender(_amend(shared, number, "第3章技术参数更正"),
                                          metadata=OFFICER)
    engine = venue.trading.running.engine
    keys = TrustedKeys.load(public_keys_dir(venue.trading.pki_dir))
    signer = service_signer(venue.trading.pki_dir, "trading")
    (recorded,) = _steps(venue, number, "amended")
    official = tc.TenderFacts.read(json.loads(recorded.statement)["body"])

    def record(text: str, at: datetime) -> tc.StepReceipt:
        body = tc.tender_statement_body(
            kind=tc.StatementKind.AMENDMENT, tender_no=number,
            official_id=official.official_id, department_code=official.department_code,
            roles=list(official.roles), system="trading-platform", issued_at=at,
            request_id=shared, content_sha256=content_digest(text=text))
        return tender_steps.record_step(
            uow=lambda: TradingUnitOfWork(engine, write=True), keys=keys, signer=signer,
            step=tc.TenderStep(number, as_statement(signer.sign(body)), at, "amended",
                               text=text))

    now = await venue.env.get_current_time()
    with pytest.raises(AlreadyExists) as refused:
        await asyncio.to_thread(record, "另一个更正", now)
    again = await asyncio.to_thread(record, "第3章技术参数更正", now)

    assert "other terms (content_sha256)" in refused.value.message
    assert again.feed_sequence == first.result.feed_sequence
    assert len(_steps(venue, number, "amended")) == 1


@pytest.fixture
async def cut_off(venue: Venue) -> AsyncIterator[ServiceUnderTest]:
    """The trading service again, on the venue's database, with Temporal out of reach."""
    async with cut_off_service(venue.trading) as service:
        yield service


async def test_a_recorded_act_is_answered_from_the_record_before_anything_is_sent(
        venue: Venue, cut_off: ServiceUnderTest) -> None:
    """The servicer looks the request up before sending: a service whose Temporal is out of
    reach answers the same amendment again from the record, and refuses another content
    under its request id (ALREADY_EXISTS naming it), where a send would be UNAVAILABLE."""
    number = await _announced(venue)
    shared = str(uuid.uuid4())
    first = await venue.via().AmendTender(_amend(shared, number, "第3章技术参数更正"),
                                          metadata=OFFICER)
    channel = cut_off.channel("trading-platform")
    try:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        again = await stub.AmendTender(_amend(shared, number, "第3章技术参数更正"),
                                       metadata=OFFICER)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.AmendTender(_amend(shared, number, "另一个更正"), metadata=OFFICER)
    finally:
        await channel.close(None)

    assert again.result.feed_sequence == first.result.feed_sequence
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
    assert "other terms (content_sha256)" in (refused.value.details() or "")
    assert len(_steps(venue, number, "amended")) == 1


async def test_an_answer_to_another_objection_under_a_used_request_id_is_refused(
        venue: Venue) -> None:
    """An answer names the objection it answers: the same request id answering another
    objection is another request (ALREADY_EXISTS naming objection_id), never told OK with the
    first answer's receipt while the second objection stays open (attack s17 LOW 3)."""
    number = await _announced(venue)

    async def objection(grounds: str) -> str:
        objected = await venue.via().ObjectToTender(pb.ObjectToTenderRequest(
            request_id=str(uuid.uuid4()), tender_no=number,
            target=pb.OBJECTION_TARGET_DOCUMENTS, grounds=grounds), metadata=OFFICER)
        return str(objected.objection_id)

    def answer(objection_id: str) -> pb.AnswerObjectionRequest:
        return pb.AnswerObjectionRequest(request_id=shared, tender_no=number,
                                         objection_id=objection_id, answer="已澄清")

    shared = str(uuid.uuid4())
    first = await objection("资格条件排斥潜在投标人")
    answered = await venue.via().AnswerObjection(answer(first), metadata=OFFICER)
    second = await objection("评分标准不合理")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await venue.via().AnswerObjection(answer(second), metadata=OFFICER)
    again = await venue.via().AnswerObjection(answer(first), metadata=OFFICER)

    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
    assert "other terms (objection_id)" in (refused.value.details() or "")
    assert (await venue.tender(number)).paused  # the second objection is still open
    assert len(_steps(venue, number, "objection_answered")) == 1
    # The first answer's own retry is still answered from its record.
    assert again.result.feed_sequence == answered.result.feed_sequence


async def test_a_score_sheets_update_id_gives_its_scores_away_to_no_one(venue: Venue) -> None:
    """The update id Temporal shows binds the sheet's terms by a digest keyed with trading's
    secret, not by their plain hash: an expert's few possible scores cannot be tried against
    it by whoever reads the tender's history (attack s17 MEDIUM 2)."""
    number = await _to_evaluation(venue)
    members, _ = await venue.draw_committee(number)
    await venue.via().SeatEvaluationCommittee(pb.SeatEvaluationCommitteeRequest(
        request_id=str(uuid.uuid4()), tender_no=number), metadata=OFFICER)
    request = _sheet(number, members[0], "BD-0001", 73, 41)
    await venue.via(EXPERT_SYSTEMS[members[0]]).SubmitScoreSheet(request)

    history = await venue.env.client.get_workflow_handle(tc.workflow_id(number)).fetch_history()
    (update_id,) = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta
        .update_id.startswith(f"{tc.SCORE}/")]
    (recorded,) = _steps(venue, number, "scored")
    body = json.loads(recorded.statement)["body"]
    signer = service_signer(venue.trading.pki_dir, "trading")
    digest = update_id.rsplit("/", 1)[1]

    assert update_id.startswith(f"{tc.SCORE}/{EXPERT_SYSTEMS[members[0]]}/{request.request_id}/")
    assert digest == terms_digest(body, key=signer.derived_key(UPDATE_IDS))[:32]
    assert digest != terms_sha256(body)[:32]
