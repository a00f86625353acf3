"""The intake service over real gRPC and mTLS, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import create_engine, text

from govhall.intake.v1 import intake_pb2 as pb
from govhall.intake.v1 import intake_pb2_grpc
from kernel.pki import ca_cert_path, client_pair
from services.intake.main import DEFINITION
from tests.support import (
    SAMPLE_AUDIT_ENTRIES,
    ServiceUnderTest,
    as_official,
    field_violations,
    fresh_database_url,
    service_under_test,
)

if TYPE_CHECKING:
    from govhall.intake.v1.intake_pb2_grpc import IntakeServiceAsyncStub

OPERATOR = "ZWFWZX-004"
WINDOW_CLERK = "FGW-001"


@pytest.fixture
async def intake(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir) as service:
        yield service


async def _all_items(stub: IntakeServiceAsyncStub, **filters: str) -> list[pb.ApprovalItem]:
    items: list[pb.ApprovalItem] = []
    token = ""
    while True:
        page = await stub.ListApprovalItems(
            pb.ListApprovalItemsRequest(page_size=40, page_token=token, **filters))
        items += page.items
        token = page.next_page_token
        if not token:
            return items


async def test_the_sample_catalogue_is_served_page_by_page(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        items = await _all_items(intake_pb2_grpc.IntakeServiceStub(channel))
    assert len(items) >= 110
    assert len({i.department_code for i in items}) >= 30
    assert [i.code for i in items] == sorted(i.code for i in items)
    assert len({i.code for i in items}) == len(items)
    for item in items:
        assert item.department_name
        assert 1 <= item.promised_limit_days <= item.legal_limit_days
        assert any(m.required for m in item.materials)
        assert item.version == 1


async def test_items_of_one_department(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        items = await _all_items(intake_pb2_grpc.IntakeServiceStub(channel),
                                 department_code="SCJGJ")
    assert items
    assert {i.department_code for i in items} == {"SCJGJ"}


async def test_unknown_things_are_not_found(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing_item:
            await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="019999999999999"))
        with pytest.raises(grpc.aio.AioRpcError) as missing_department:
            await stub.ListApprovalItems(pb.ListApprovalItemsRequest(department_code="NOPE"))
    assert missing_item.value.code() == grpc.StatusCode.NOT_FOUND
    assert "019999999999999" in (missing_item.value.details() or "")
    assert missing_department.value.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_requests_are_invalid_arguments(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as bad_code:
            await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="12;DROP TABLE"))
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.ListApprovalItems(pb.ListApprovalItemsRequest(page_token="not-a-token"))
        with pytest.raises(grpc.aio.AioRpcError) as huge_page:
            await stub.ListApprovalItems(pb.ListApprovalItemsRequest(page_size=100000))
        raw = channel.unary_unary("/govhall.intake.v1.IntakeService/GetApprovalItem",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await raw(b"\xff\xff\xff\xff")
    assert bad_code.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(bad_code.value) == ["code"]
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert huge_page.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(huge_page.value) == ["page_size"]
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_requests_are_refused_without_internal(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        current = (await stub.GetApprovalItem(
            pb.GetApprovalItemRequest(code="012101000001000"))).item
        current.basis = "法" * 10_000
        with pytest.raises(grpc.aio.AioRpcError) as long_field:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=current), metadata=as_official(OPERATOR))
        current.basis = "x" * (5 * 1024 * 1024)
        with pytest.raises(grpc.aio.AioRpcError) as huge_message:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=current), metadata=as_official(OPERATOR))
        after = (await stub.GetApprovalItem(
            pb.GetApprovalItemRequest(code="012101000001000"))).item
    assert long_field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "item.basis" in field_violations(long_field.value)
    assert huge_message.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert after.version == 1


async def test_publishing_needs_an_operator_and_changes_nothing_otherwise(
        intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="012101000001000"))).item
        original_days = item.promised_limit_days
        item.promised_limit_days = original_days + 1 if original_days > 1 else 2
        item.legal_limit_days = max(item.legal_limit_days, item.promised_limit_days)
        request = pb.PublishApprovalItemVersionRequest(item=item)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("clerk", as_official(WINDOW_CLERK)),
                                ("trading officer", as_official("ZWFWZX-007")),
                                ("stranger", as_official("ABC-999")),
                                ("malformed", (("x-govhall-official", "robert'); --"),))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PublishApprovalItemVersion(request, metadata=metadata)
            outcomes[label] = refused.value.code()
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
        unchanged = (await stub.GetApprovalItem(
            pb.GetApprovalItemRequest(code="012101000001000"))).item
    async with intake.channel("hall-window-system") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as window:
            await intake_pb2_grpc.IntakeServiceStub(channel).PublishApprovalItemVersion(
                request, metadata=as_official(OPERATOR))
    assert outcomes == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "clerk": grpc.StatusCode.PERMISSION_DENIED,
        "trading officer": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
        "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    }
    # The window system may not publish, whoever it names.
    assert window.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert window.value.details() == (
        "system hall-window-system may not call "
        "govhall.intake.v1.IntakeService/PublishApprovalItemVersion")
    assert unchanged.version == 1
    assert unchanged.promised_limit_days == original_days
    assert audit.entries == SAMPLE_AUDIT_ENTRIES  # only the sample load


async def test_a_published_version_keeps_the_old_one(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        old = (await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="012101000001000"))).item
        new = pb.ApprovalItem()
        new.CopyFrom(old)
        new.promised_limit_days = 1
        published = (await stub.PublishApprovalItemVersion(
            pb.PublishApprovalItemVersionRequest(item=new), metadata=as_official(OPERATOR))).item
        current = (await stub.GetApprovalItem(
            pb.GetApprovalItemRequest(code=old.code))).item
        first = (await stub.GetApprovalItem(
            pb.GetApprovalItemRequest(code=old.code, version=1))).item
        with pytest.raises(grpc.aio.AioRpcError) as no_such_version:
            await stub.GetApprovalItem(pb.GetApprovalItemRequest(code=old.code, version=9))
        audit = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert published.version == 2
    assert current.version == 2 and current.promised_limit_days == 1
    assert first == old
    assert no_such_version.value.code() == grpc.StatusCode.NOT_FOUND
    assert audit.intact and audit.entries == SAMPLE_AUDIT_ENTRIES + 1


async def test_an_item_breaking_its_rules_is_refused(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="012101000001000"))).item
        item.promised_limit_days = item.legal_limit_days + 1
        with pytest.raises(grpc.aio.AioRpcError) as beyond_legal:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=item), metadata=as_official(OPERATOR))
        item.promised_limit_days = 1
        item.department_code = "NOSUCHDEPT"
        with pytest.raises(grpc.aio.AioRpcError) as unknown_department:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=item), metadata=as_official(OPERATOR))
        item.department_code = "SCJGJ"
        with pytest.raises(grpc.aio.AioRpcError) as moved:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=item), metadata=as_official(OPERATOR))
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(), metadata=as_official(OPERATOR))
    assert beyond_legal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "promised_limit_days" in (beyond_legal.value.details() or "")
    assert unknown_department.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert moved.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_audit_verifier_names_the_first_edited_entry(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(pb.GetApprovalItemRequest(code="012101000001000"))).item
        for days in (1, 2, 3):
            item.promised_limit_days = days
            await stub.PublishApprovalItemVersion(
                pb.PublishApprovalItemVersionRequest(item=item), metadata=as_official(OPERATOR))
        before = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
        engine = create_engine(intake.settings.resolved_database_url())
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE audit_log SET official_id = 'ZWFWZX-005' WHERE sequence = :edited"),
                {"edited": SAMPLE_AUDIT_ENTRIES + 2})
        engine.dispose()
        after = (await stub.VerifyAuditLog(pb.VerifyAuditLogRequest())).verification
    assert before.intact and before.entries == SAMPLE_AUDIT_ENTRIES + 3
    assert not after.intact
    assert after.first_broken_sequence == SAMPLE_AUDIT_ENTRIES + 2
    assert after.entries == SAMPLE_AUDIT_ENTRIES + 1


async def test_health_and_reflection(intake: ServiceUnderTest) -> None:
    async with intake.channel() as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="govhall.intake.v1.IntakeService"))
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "govhall.intake.v1.IntakeService" in names


async def test_a_caller_without_a_client_certificate_cannot_connect(
        intake: ServiceUnderTest, pki_dir: Path) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_cert_path(pki_dir).read_bytes())
    async with grpc.aio.secure_channel(intake.address, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await intake_pb2_grpc.IntakeServiceStub(channel).GetApprovalItem(
                pb.GetApprovalItemRequest(code="012101000001000"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_cannot_connect(
        intake: ServiceUnderTest, pki_dir: Path, foreign_pki_dir: Path) -> None:
    key, cert = client_pair(foreign_pki_dir, "operator").read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_cert_path(pki_dir).read_bytes(), private_key=key,
        certificate_chain=cert)
    async with grpc.aio.secure_channel(intake.address, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await intake_pb2_grpc.IntakeServiceStub(channel).GetApprovalItem(
                pb.GetApprovalItemRequest(code="012101000001000"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
