"""Replies and status changes told to platforms: signed webhooks set by an operator,
delivered under Temporal's retries with one webhook-id, and pulled with a cursor."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.fieldcipher import field_cipher
from services.complaints.activities import PlatformDeliveryActivities, activities
from services.complaints.app.webhooks import WebhookNotDelivered, deliver, emit_platform_event
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.webhooks import EVENT_ID_SHAPE
from services.complaints.main import DEFINITION
from services.complaints.settings import complainant_key_path
from tests.integration.complaints.delivery_workflow import DeliverOneEvent
from tests.integration.complaints.webhook_receiver import (
    Receiver,
    name_certificate,
    webhook_receiver,
)
from tests.support import ServiceUnderTest, as_official, fresh_database_url, service_under_test
from workflows.complaint_contract import DeliveryResult, PlatformDelivery

HOTLINE, HOTLINE_ID = "hotline-12345", "12345"
PORTAL, PORTAL_ID = "provincial-complaint-portal", "LNZWFW"
OPERATOR = as_official("ZWFWZX-004")
#: A complaint dispatcher of the center: the operator console speaks for it, but it is
#: no operator.
DISPATCHER = as_official("ZWFWZX-009")
PHONE = "139-2468-1357"
NAME = "司马青岚"
Stub = complaints_pb2_grpc.ComplaintsServiceStub


def _push(external_id: str) -> pb.SubmitComplaintRequest:
    return pb.SubmitComplaintRequest(
        external_id=external_id, kind=pb.COMPLAINT_KIND_COMPLAINT, category_code="SC-01",
        content="小区门口的早餐店使用过期食材。", complainant_name=NAME,
        complainant_phone=PHONE)


async def _case(service: ServiceUnderTest, system: str, external_id: str) -> str:
    async with service.channel(system) as channel:
        return (await Stub(channel).SubmitComplaint(_push(external_id))).complaint.case_number


def _emit(service: ServiceUnderTest, platform_id: str, case_number: str, *,
          status: str = "handling", commit: bool = True) -> str:
    with ComplaintsUnitOfWork(service.running.engine) as uow:
        event_id = emit_platform_event(
            uow, platform_id=platform_id, case_number=case_number,
            event_type="complaint.status_changed",
            data={"status": status, "department_code": "SCJGJ"}, at=datetime.now(UTC))
        if commit:
            uow.commit()
    return event_id


def _emit_reply(service: ServiceUnderTest, platform_id: str, case_number: str) -> str:
    with ComplaintsUnitOfWork(service.running.engine) as uow:
        event_id = emit_platform_event(
            uow, platform_id=platform_id, case_number=case_number,
            event_type="complaint.replied",
            data={"reply": "经查，该店已停业整顿。", "replied_at": "2026-12-01T08:00:00Z",
                  "department_code": "SCJGJ"}, at=datetime.now(UTC))
        uow.commit()
    return event_id


async def _set_webhook(service: ServiceUnderTest, url: str, platform_id: str = HOTLINE_ID,
                       metadata: Any = OPERATOR) -> pb.SetPlatformWebhookResponse:
    async with service.channel("operator") as channel:
        response: pb.SetPlatformWebhookResponse = await Stub(channel).SetPlatformWebhook(
            pb.SetPlatformWebhookRequest(platform_id=platform_id, url=url), metadata=metadata)
        return response


def _table(service: ServiceUnderTest, table: sa.Table) -> list[Any]:
    with service.running.engine.connect() as connection:
        return list(connection.execute(sa.select(table)))


def _every_row(service: ServiceUnderTest) -> str:
    """Every value of every table of the complaints database, as one text."""
    metadata = sa.MetaData()
    metadata.reflect(service.running.engine)
    with service.running.engine.connect() as connection:
        return repr([tuple(r) for t in metadata.sorted_tables
                     for r in connection.execute(sa.select(t))])


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


def _activity(service: ServiceUnderTest) -> PlatformDeliveryActivities:
    """The delivery activity as the service's worker makes it (its settings)."""
    return PlatformDeliveryActivities(
        service.running.engine, field_cipher(complainant_key_path(service.pki_dir)),
        timeout_seconds=5, allow_loopback=service.settings.webhook_allow_loopback)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


# ---- setting a webhook -------------------------------------------------------------------

async def test_the_secret_is_shown_once_kept_sealed_and_replaced_on_rotation(
        complaints: ServiceUnderTest) -> None:
    first = await _set_webhook(complaints, "https://hooks.hotline.example/govhall")
    secret = first.signing_secret
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    assert first.webhook.platform_id == HOTLINE_ID
    assert first.webhook.url == "https://hooks.hotline.example/govhall"
    assert first.webhook.set_by_official_id == "ZWFWZX-004"
    [row] = _table(complaints, tables.platform_webhooks)
    # Not in the clear, nor its key material, anywhere in the database.
    stored = _every_row(complaints)
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    cipher = field_cipher(complainant_key_path(complaints.pki_dir))
    assert cipher.open(row.secret, context=HOTLINE_ID).decode() == secret

    second = await _set_webhook(complaints, "https://hooks.hotline.example/v2")
    assert second.signing_secret.startswith("whsec_")
    assert second.signing_secret != secret
    [row] = _table(complaints, tables.platform_webhooks)
    assert row.url == "https://hooks.hotline.example/v2"
    assert cipher.open(row.secret, context=HOTLINE_ID).decode() == second.signing_secret
    stored = _every_row(complaints)
    assert second.signing_secret not in stored and secret not in stored
    # The platform list carries no secret either.
    async with complaints.channel("operator") as channel:
        listed = await Stub(channel).ListPlatforms(pb.ListPlatformsRequest())
    assert "whsec_" not in str(listed)


@pytest.mark.parametrize("url", [
    "https://hooks.example.org/govhall?platform=12345",
    "http://127.0.0.1:8080/hook",
    "http://[::1]:8080/hook",
    "http://localhost/hook",
    "https://10.20.30.40/intranet/hook",
])
async def test_an_https_or_loopback_url_is_taken(complaints: ServiceUnderTest,
                                                 url: str) -> None:
    assert (await _set_webhook(complaints, url)).webhook.url == url


@pytest.fixture
async def production(backend: str, tmp_path: Path,
                     pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    """The complaints service as production runs it: the loopback setting at its default
    (no audit checkpoint on the timer, as in the ``complaints`` fixture: the tests compare
    every row before and after)."""
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  audit_checkpoint_every_entries=0,
                                  audit_checkpoint_interval_seconds=0) as service:
        assert service.settings.webhook_allow_loopback is False
        yield service


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://[::1]:8080/hook",
                                 "http://localhost/hook"])
async def test_in_production_plain_http_to_the_loopback_host_is_refused(
        production: ServiceUnderTest, url: str) -> None:
    await _set_webhook(production, "https://hooks.hotline.example/govhall")
    before = _every_row(production)
    error = await _refused(_set_webhook(production, url))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must use https" in (error.details() or "")
    assert _every_row(production) == before
    # Nor https to this host itself: a platform is reached from outside.
    itself = await _refused(_set_webhook(production, "https://127.0.0.1:8443/hook"))
    assert itself.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "may not point at" in (itself.details() or "")
    assert _every_row(production) == before


@pytest.mark.parametrize("url", [
    "http://hooks.example.org/govhall",
    "http://10.0.0.8/hook",
    "ftp://hooks.example.org/govhall",
    "file:///etc/passwd",
    "https://platform:s3cret@hooks.example.org/govhall",
    "https://token@hooks.example.org/govhall",
    "https://169.254.169.254/latest/meta-data",
    "https://[fe80::1]/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://hooks.example.org/govhall#part",
    "https://hooks.example.org:99999/govhall",
    "https://hooks example.org/govhall",
    "https:///govhall",
    "hooks.example.org/govhall",
    "https://hooks.example.org/" + "a" * 2030,
    "https://hooks.example.org/" + "a" * 2100,
])
async def test_a_bad_url_is_refused_and_changes_nothing(complaints: ServiceUnderTest,
                                                        url: str) -> None:
    await _set_webhook(complaints, "https://hooks.hotline.example/govhall")
    before = _every_row(complaints)
    error = await _refused(_set_webhook(complaints, url))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "url" in (error.details() or "")
    assert _every_row(complaints) == before


async def test_only_an_operator_of_the_center_sets_a_webhook(
        complaints: ServiceUnderTest) -> None:
    url = "https://hooks.hotline.example/govhall"
    dispatcher = await _refused(_set_webhook(complaints, url, metadata=DISPATCHER))
    nobody = await _refused(_set_webhook(complaints, url, metadata=()))
    async with complaints.channel(HOTLINE) as channel:
        platform = await _refused(Stub(channel).SetPlatformWebhook(
            pb.SetPlatformWebhookRequest(platform_id=HOTLINE_ID, url=url), metadata=OPERATOR))
    assert dispatcher.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "operator" in (dispatcher.details() or "")
    assert nobody.code() in (grpc.StatusCode.PERMISSION_DENIED,
                             grpc.StatusCode.UNAUTHENTICATED)
    assert platform.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _table(complaints, tables.platform_webhooks) == []
    unknown = await _refused(_set_webhook(complaints, url, platform_id="NOSUCH"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert _table(complaints, tables.platform_webhooks) == []


# ---- emitting and pulling events ----------------------------------------------------------

async def test_a_platform_pulls_its_own_events_and_never_another_platforms(
        complaints: ServiceUnderTest) -> None:
    hotline_case = await _case(complaints, HOTLINE, "HL-1")
    portal_case = await _case(complaints, PORTAL, "LN-1")
    mine = [_emit(complaints, HOTLINE_ID, hotline_case),
            _emit_reply(complaints, HOTLINE_ID, hotline_case)]
    theirs = [_emit(complaints, PORTAL_ID, portal_case)]
    assert all(EVENT_ID_SHAPE.fullmatch(e) for e in mine + theirs)
    async with complaints.channel(HOTLINE) as hotline, complaints.channel(PORTAL) as portal, \
            complaints.channel("operator") as operator:
        own = await Stub(hotline).ListPlatformEvents(pb.ListPlatformEventsRequest())
        other = await Stub(portal).ListPlatformEvents(pb.ListPlatformEventsRequest())
        prying = await _refused(Stub(hotline).ListPlatformEvents(
            pb.ListPlatformEventsRequest(platform_id=PORTAL_ID)))
        not_an_operator = await _refused(Stub(operator).ListPlatformEvents(
            pb.ListPlatformEventsRequest(platform_id=PORTAL_ID), metadata=DISPATCHER))
        named = await Stub(hotline).ListPlatformEvents(
            pb.ListPlatformEventsRequest(platform_id=HOTLINE_ID))
        console = await Stub(operator).ListPlatformEvents(
            pb.ListPlatformEventsRequest(platform_id=PORTAL_ID), metadata=OPERATOR)
        unnamed = await _refused(Stub(operator).ListPlatformEvents(
            pb.ListPlatformEventsRequest(), metadata=OPERATOR))
        # Another system, without an operator of the center: refused.
        anonymous = await _refused(Stub(operator).ListPlatformEvents(
            pb.ListPlatformEventsRequest(platform_id=PORTAL_ID)))
    assert [e.event_id for e in own.events] == mine
    assert [e.sequence for e in own.events] == [1, 2]
    assert [e.event_id for e in other.events] == theirs == [
        e.event_id for e in console.events]
    assert [e.sequence for e in other.events] == [1]
    assert named.events == own.events
    assert prying.code() == grpc.StatusCode.PERMISSION_DENIED
    assert unnamed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert anonymous.code() in (grpc.StatusCode.PERMISSION_DENIED,
                                grpc.StatusCode.UNAUTHENTICATED)
    assert not_an_operator.code() == grpc.StatusCode.PERMISSION_DENIED
    status, reply = own.events
    assert status.event_type == "complaint.status_changed"
    assert dict(status.data) == {"status": "handling", "department_code": "SCJGJ",
                                 "case_number": hotline_case, "external_id": "HL-1",
                                 "sequence": "1"}
    assert reply.event_type == "complaint.replied"
    assert reply.data["reply"] == "经查，该店已停业整顿。"
    assert [e.data["sequence"] for e in own.events] == ["1", "2"]
    assert not reply.HasField("delivered_at")
    # The complainant is in no event, pulled or stored.
    assert NAME not in str(own) and PHONE not in str(own)
    stored = repr(_table(complaints, tables.platform_events))
    assert NAME not in stored and PHONE not in stored


async def test_an_event_is_refused_for_another_platforms_case_or_with_unlisted_fields(
        complaints: ServiceUnderTest) -> None:
    portal_case = await _case(complaints, PORTAL, "LN-2")
    with pytest.raises(ValueError, match="not a case of platform"):
        _emit(complaints, HOTLINE_ID, portal_case)
    for event_type, data in [
            ("complaint.status_changed", {"status": "handling", "department_code": "SCJGJ",
                                          "complainant_phone": PHONE}),
            ("complaint.status_changed", {"status": "handling"}),
            ("complaint.rated", {"rating": "5"})]:
        with ComplaintsUnitOfWork(complaints.running.engine) as uow:
            with pytest.raises(ValueError, match=event_type):
                emit_platform_event(uow, platform_id=PORTAL_ID, case_number=portal_case,
                                    event_type=event_type, data=data, at=datetime.now(UTC))
    assert _table(complaints, tables.platform_events) == []


async def test_the_cursor_misses_nothing_and_repeats_nothing_under_concurrent_emitters(
        complaints: ServiceUnderTest) -> None:
    """Emitters in threads for two platforms, every third transaction rolled back, while the
    hotline follows its events two at a time with its cursor.

    On SQLite the writers are serialised by the database's write lock; on PostgreSQL
    by the platform's counter row, which an emitting transaction holds until it ends,
    so a later number is never visible before an earlier one.
    """
    cases = {HOTLINE_ID: await _case(complaints, HOTLINE, "HL-9"),
             PORTAL_ID: await _case(complaints, PORTAL, "LN-9")}
    writers, each = 4, 9
    committed: dict[str, list[str]] = {HOTLINE_ID: [], PORTAL_ID: []}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        platform_id = HOTLINE_ID if writer % 2 == 0 else PORTAL_ID
        try:
            for n in range(each):
                keep = n % 3 != 2
                event_id = _emit(complaints, platform_id, cases[platform_id],
                                 status=f"s{writer}-{n}", commit=keep)
                if keep:
                    with lock:
                        committed[platform_id].append(event_id)
        except BaseException as error:  # reported below
            errors.append(error)

    expected = (writers // 2) * sum(1 for n in range(each) if n % 3 != 2)
    seen: list[pb.PlatformEvent] = []
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        token = ""
        for thread in threads:
            thread.start()
        deadline = asyncio.get_running_loop().time() + 60
        while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
            page = await stub.ListPlatformEvents(pb.ListPlatformEventsRequest(
                page_token=token, page_size=2))
            seen += page.events
            token = page.next_page_token
            if not page.events:
                await asyncio.sleep(0.01)
        for thread in threads:
            await asyncio.to_thread(thread.join, 60)
        tail = await stub.ListPlatformEvents(pb.ListPlatformEventsRequest(page_token=token))
    assert not errors and not any(t.is_alive() for t in threads)
    assert list(tail.events) == [] and not tail.more
    assert [e.sequence for e in seen] == list(range(1, expected + 1))
    assert sorted(e.event_id for e in seen) == sorted(committed[HOTLINE_ID])
    assert len(committed[PORTAL_ID]) == expected
    assert not {e.event_id for e in seen} & set(committed[PORTAL_ID])
    assert {e.data["case_number"] for e in seen} == {cases[HOTLINE_ID]}


# ---- delivering ---------------------------------------------------------------------------

async def test_a_webhook_refused_three_times_delivers_one_event_under_one_id(
        complaints: ServiceUnderTest, time_skipping: WorkflowEnvironment) -> None:
    case = await _case(complaints, HOTLINE, "HL-3")
    with webhook_receiver(refuse_first=3) as receiver:
        receiver.secret = (await _set_webhook(complaints, receiver.url)).signing_secret
        event_id = _emit_reply(complaints, HOTLINE_ID, case)
        queue = f"t-{uuid.uuid4()}"
        # A delivery that never succeeds (a bad signature, an id changing per attempt)
        # retries for ever: the run's deadlines make that a failure, not a hang. Three
        # refusals take 1 + 2 + 4 s of workflow time; an hour is a dozen attempts.
        async with Worker(time_skipping.client, task_queue=queue, workflows=[DeliverOneEvent],
                          activities=[_activity(complaints).deliver_platform_event]), \
                asyncio.timeout(60):
            result = await time_skipping.client.execute_workflow(
                DeliverOneEvent.run, PlatformDelivery(event_id), id=f"deliver/{event_id}",
                task_queue=queue, execution_timeout=timedelta(hours=1))
    assert result == DeliveryResult(delivered=True, status_code=200)
    assert [r.answered for r in receiver.requests] == [500, 500, 500, 200]
    assert all(r.verified for r in receiver.requests)
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}
    assert list(receiver.accepted) == [event_id]
    body = receiver.accepted[event_id]
    assert body["type"] == "complaint.replied"
    assert body["data"]["case_number"] == case
    assert body["data"]["reply"] == "经查，该店已停业整顿。"
    assert body["data"]["sequence"] == "1"
    # Every attempt sent the same body; only its timestamp and signature are its own.
    assert len({r.body for r in receiver.requests}) == 1
    assert NAME not in receiver.requests[0].body.decode()
    assert PHONE not in receiver.requests[0].body.decode()
    # A secret other than the platform's does not verify what was sent.
    other = "whsec_" + base64.b64encode(b"\x07" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.last_status) == (4, 200)
    assert row.delivered_at is not None
    async with complaints.channel(HOTLINE) as channel:
        [pulled] = (await Stub(channel).ListPlatformEvents(
            pb.ListPlatformEventsRequest())).events
    assert pulled.event_id == event_id and pulled.HasField("delivered_at")


async def test_after_rotation_only_the_new_secret_verifies(
        complaints: ServiceUnderTest, receiver: Receiver) -> None:
    case = await _case(complaints, HOTLINE, "HL-4")
    old = (await _set_webhook(complaints, receiver.url)).signing_secret
    new = (await _set_webhook(complaints, receiver.url)).signing_secret
    receiver.secret = new
    event_id = _emit(complaints, HOTLINE_ID, case)
    result = await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                             PlatformDelivery(event_id))
    assert result == DeliveryResult(delivered=True, status_code=200)
    [sent] = receiver.requests
    assert sent.verified
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(sent.body, sent.headers)


async def test_a_wrong_secret_fails_verification_and_the_event_is_retried(
        complaints: ServiceUnderTest, receiver: Receiver) -> None:
    case = await _case(complaints, HOTLINE, "HL-5")
    await _set_webhook(complaints, receiver.url)
    receiver.secret = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
    event_id = _emit(complaints, HOTLINE_ID, case)
    with pytest.raises(Exception, match="401") as failed:
        await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                        PlatformDelivery(event_id))
    # Retryable: Temporal keeps trying until the platform takes it.
    assert not (isinstance(failed.value, ApplicationError) and failed.value.non_retryable)
    assert [r.verified for r in receiver.requests] == [False]
    assert receiver.accepted == {}
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.last_status, row.delivered_at) == (1, 401, None)


async def test_a_redirect_is_not_followed(complaints: ServiceUnderTest) -> None:
    case = await _case(complaints, HOTLINE, "HL-6")
    with webhook_receiver() as elsewhere, webhook_receiver(
            status=307, extra_headers={}) as receiver:
        receiver.extra_headers["location"] = elsewhere.url
        receiver.secret = (await _set_webhook(complaints, receiver.url)).signing_secret
        event_id = _emit(complaints, HOTLINE_ID, case)
        with pytest.raises(Exception, match="307"):
            await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                            PlatformDelivery(event_id))
    assert len(receiver.requests) == 1 and elsewhere.requests == []


async def test_an_unreachable_webhook_is_retried_and_counted(
        complaints: ServiceUnderTest) -> None:
    case = await _case(complaints, HOTLINE, "HL-7")
    with webhook_receiver() as gone:
        url = gone.url
    await _set_webhook(complaints, url)
    event_id = _emit(complaints, HOTLINE_ID, case)
    with pytest.raises(Exception, match="could not be reached") as failed:
        await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                        PlatformDelivery(event_id))
    assert not (isinstance(failed.value, ApplicationError) and failed.value.non_retryable)
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.last_status, row.delivered_at) == (1, 0, None)


async def test_without_a_webhook_an_event_stays_pullable_and_no_error(
        complaints: ServiceUnderTest) -> None:
    case = await _case(complaints, HOTLINE, "HL-8")
    event_id = _emit(complaints, HOTLINE_ID, case)
    result = await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                             PlatformDelivery(event_id))
    assert result == DeliveryResult(delivered=False, status_code=0)
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.delivered_at) == (0, None)


async def test_a_delivered_event_is_not_sent_again(complaints: ServiceUnderTest,
                                                   receiver: Receiver) -> None:
    case = await _case(complaints, HOTLINE, "HL-10")
    receiver.secret = (await _set_webhook(complaints, receiver.url)).signing_secret
    event_id = _emit(complaints, HOTLINE_ID, case)
    activity = _activity(complaints).deliver_platform_event
    first = await ActivityEnvironment().run(activity, PlatformDelivery(event_id))
    again = await ActivityEnvironment().run(activity, PlatformDelivery(event_id))
    assert first == again == DeliveryResult(delivered=True, status_code=200)
    assert len(receiver.requests) == 1


async def test_an_unknown_event_fails_for_good(complaints: ServiceUnderTest) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                        PlatformDelivery("msg_" + "a" * 26))
    assert failed.value.non_retryable and failed.value.type == "NotFound"


def test_the_worker_hosts_the_delivery_activity(complaints: ServiceUnderTest) -> None:
    names = {getattr(a, "__temporal_activity_definition").name
             for a in activities(complaints.running.engine, complaints.settings)}
    assert "complaints.deliver_platform_event" in names



# ---- the URL checked again at delivery ---------------------------------------------------

def _refusals(service: ServiceUnderTest) -> list[Any]:
    return [row for row in _table(service, tables.audit_log)
            if row.action == "platform_event.delivery_refused"]


async def test_a_loopback_url_set_while_allowed_is_refused_once_the_setting_is_off(
        complaints: ServiceUnderTest, receiver: Receiver) -> None:
    """Set while GOVHALL_COMPLAINTS_WEBHOOK_ALLOW_LOOPBACK was on; delivered by a worker
    with it off (production's default): not sent, refused for good, audited, pullable."""
    case = await _case(complaints, HOTLINE, "HL-11")
    receiver.secret = (await _set_webhook(complaints, receiver.url)).signing_secret
    event_id = _emit(complaints, HOTLINE_ID, case)
    now_off = PlatformDeliveryActivities(
        complaints.running.engine, field_cipher(complainant_key_path(complaints.pki_dir)),
        timeout_seconds=5, allow_loopback=False)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(now_off.deliver_platform_event,
                                        PlatformDelivery(event_id))
    assert failed.value.non_retryable and failed.value.type == "FailedPrecondition"
    assert "refused at delivery" in str(failed.value) and "https" in str(failed.value)
    assert receiver.requests == []
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.delivered_at) == (0, None)
    [refusal] = _refusals(complaints)
    assert refusal.subject == f"platform/{HOTLINE_ID}"
    assert event_id in refusal.details and case in refusal.details
    assert "must use https" in refusal.details
    assert receiver.secret not in refusal.details and PHONE not in refusal.details
    # Still pullable.
    async with complaints.channel(HOTLINE) as channel:
        [pulled] = (await Stub(channel).ListPlatformEvents(
            pb.ListPlatformEventsRequest())).events
    assert pulled.event_id == event_id and not pulled.HasField("delivered_at")
    # With the setting on (the service that set it), the same event is delivered.
    delivered = await ActivityEnvironment().run(_activity(complaints).deliver_platform_event,
                                                PlatformDelivery(event_id))
    assert delivered == DeliveryResult(delivered=True, status_code=200)


async def test_a_name_that_resolves_to_this_host_is_refused_at_delivery(
        production: ServiceUnderTest) -> None:
    """A host name taken when set (it is no loopback name) that resolves to the loopback
    network when delivering: this machine's own name, as /etc/hosts usually maps it."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    if not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        pytest.skip(f"this machine's name {name} does not resolve to the loopback network")
    case = await _case(production, HOTLINE, "HL-12")
    await _set_webhook(production, f"https://{name}:8443/hook")
    event_id = _emit(production, HOTLINE_ID, case)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(_activity(production).deliver_platform_event,
                                        PlatformDelivery(event_id))
    assert failed.value.non_retryable and failed.value.type == "FailedPrecondition"
    [refusal] = _refusals(production)
    assert f"{name} resolves to" in refusal.details and "loopback" in refusal.details
    [row] = _table(production, tables.platform_events)
    assert (row.attempts, row.delivered_at) == (0, None)


# ---- the connection goes to the address checked -------------------------------------------

#: A name no real resolver answers (RFC 6761's .test): only the delivery's resolver does.
PLATFORM_HOST = "hooks.hotline.test"


class _CountingResolver:
    """Answers every name with ``addresses``, counting the lookups."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return self.addresses


async def _deliver_over_tls(service: ServiceUnderTest, event_id: str, trust: Any,
                            resolve: _CountingResolver) -> Any:
    async with httpx.AsyncClient(verify=trust, trust_env=False, follow_redirects=False,
                                 timeout=5) as client:
        return await deliver(event_id, engine=service.running.engine,
                             cipher=field_cipher(complainant_key_path(service.pki_dir)),
                             client=client, allow_loopback=True, resolve=resolve)


async def test_the_post_goes_to_the_checked_address_and_tls_verifies_the_name(
        complaints: ServiceUnderTest, tmp_path: Path) -> None:
    """The delivery's resolver alone says where the name is (the system's resolver knows
    nothing of it): one lookup, the checked addresses tried in its order (127.0.0.2 has no
    listener, 127.0.0.1 the platform's), the name as Host and TLS server name, the
    certificate verified against the name and the signed POST verified by the platform."""
    case = await _case(complaints, HOTLINE, "HL-13")
    certificate = name_certificate(tmp_path, PLATFORM_HOST)
    with webhook_receiver(tls=certificate.server, name=PLATFORM_HOST) as receiver:
        receiver.secret = (await _set_webhook(complaints, receiver.url)).signing_secret
        event_id = _emit(complaints, HOTLINE_ID, case)
        port = int(receiver.url.split(":")[2].split("/")[0])
        resolve = _CountingResolver("127.0.0.2", "127.0.0.1")
        result = await _deliver_over_tls(complaints, event_id, certificate.client, resolve)
    assert (result.delivered, result.status_code) == (True, 200)
    assert resolve.lookups == [(PLATFORM_HOST, port)]
    [sent] = receiver.requests
    assert sent.verified and list(receiver.accepted) == [event_id]
    assert sent.headers["host"] == f"{PLATFORM_HOST}:{port}"
    assert receiver.server_names == [PLATFORM_HOST]
    Webhook(receiver.secret).verify(sent.body, sent.headers)
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.last_status) == (1, 200) and row.delivered_at is not None


async def test_a_certificate_not_for_the_name_is_not_sent_to(
        complaints: ServiceUnderTest, tmp_path: Path) -> None:
    """Pinned to the address, TLS still checks the name: a server at the checked address
    whose certificate is for another name gets nothing, and the delivery is retried."""
    case = await _case(complaints, HOTLINE, "HL-14")
    certificate = name_certificate(tmp_path, "someone-else.test")
    with webhook_receiver(tls=certificate.server, name=PLATFORM_HOST) as receiver:
        await _set_webhook(complaints, receiver.url)
        event_id = _emit(complaints, HOTLINE_ID, case)
        with pytest.raises(WebhookNotDelivered, match="could not be reached"):
            await _deliver_over_tls(complaints, event_id, certificate.client,
                                    _CountingResolver("127.0.0.1"))
    assert receiver.requests == []
    assert receiver.server_names == [PLATFORM_HOST]
    [row] = _table(complaints, tables.platform_events)
    assert (row.attempts, row.delivered_at) == (1, None)
