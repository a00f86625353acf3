"""Leaders' delegations over real gRPC and mTLS, on a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import create_engine, text

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.chinatime import CHINA
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official, field_violations

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

LEADER = "SCJGJ-006"
DEPUTY = "SCJGJ-007"
REVIEWER = "SCJGJ-005"
CLERK = "SCJGJ-001"
OTHER_LEADER = "ZJJ-006"
OPERATOR = "ZWFWZX-004"
#: The department's own system, which speaks for its leaders; ZJJ's; the operators' console.
SCJGJ = "department-system-scjgj"
ZJJ = "department-system-zjj"
SAMPLE_DELEGATIONS = 4


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _grant(deputy_id: str = DEPUTY, *, starts_in: timedelta | None = None,
           lasts: timedelta = timedelta(days=5),
           reason: str = "赴北京参加业务培训") -> pb.GrantDelegationRequest:
    now = datetime.now(UTC)
    start = now + starts_in if starts_in is not None else now
    period = pb.DelegationPeriod(valid_until=_ts(start + lasts))
    if starts_in is not None:
        period.valid_from.CopyFrom(_ts(start))
    return pb.GrantDelegationRequest(deputy_id=deputy_id, period=period, reason=reason)


async def _all_delegations(stub: ReviewServiceAsyncStub,
                           **filters: object) -> list[pb.Delegation]:
    delegations: list[pb.Delegation] = []
    token = ""
    while True:
        page = await stub.ListDelegations(
            pb.ListDelegationsRequest(page_size=2, page_token=token, **filters))  # type: ignore[arg-type]
        delegations += page.delegations
        token = page.next_page_token
        if not token:
            return delegations


async def _audit_entries(review: ServiceUnderTest) -> int:
    async with review.channel("operator") as channel:
        verification = (await review_pb2_grpc.ReviewServiceStub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    assert verification.intact
    return verification.entries


async def test_a_leader_grants_a_delegation_to_a_deputy(review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(_grant(), metadata=as_official(LEADER))).delegation
        leader = await stub.GetOfficial(pb.GetOfficialRequest(official_id=LEADER))
        deputy = await stub.GetOfficial(pb.GetOfficialRequest(official_id=DEPUTY))
        bystander = await stub.GetOfficial(pb.GetOfficialRequest(official_id=CLERK))
        audit = await _audit_entries(review)
    assert granted.id > SAMPLE_DELEGATIONS
    assert (granted.leader_id, granted.deputy_id) == (LEADER, DEPUTY)
    assert granted.department_code == "SCJGJ"
    assert granted.state == pb.DELEGATION_STATE_IN_FORCE
    assert granted.valid_until.ToDatetime() - granted.valid_from.ToDatetime() <= timedelta(
        days=5)
    assert not granted.HasField("revoked_at")
    assert [d.id for d in leader.delegations_in_force] == [granted.id]
    assert [d.id for d in deputy.delegations_in_force] == [granted.id]
    assert not bystander.delegations_in_force
    assert audit == SAMPLE_AUDIT_ENTRIES + 1


async def test_the_audit_entry_holds_ids_and_no_names_or_reasons(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(
            _grant(reason="陪同家人就医"), metadata=as_official(LEADER))).delegation
        deputy = (await stub.GetOfficial(pb.GetOfficialRequest(official_id=DEPUTY))).official
    engine = create_engine(review.settings.resolved_database_url())
    with engine.connect() as connection:
        entry = connection.execute(text(
            "SELECT system, official_id, action, subject, details FROM audit_log "
            "ORDER BY sequence DESC LIMIT 1")).one()
    engine.dispose()
    assert entry.system == SCJGJ
    assert entry.official_id == LEADER
    assert entry.action == "delegation.granted"
    assert entry.subject == f"delegation/{granted.id}"
    assert json.loads(entry.details)["deputy"] == DEPUTY
    assert deputy.name not in entry.details
    assert "就医" not in entry.details


async def test_a_scheduled_delegation_is_not_in_force_yet(review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(
            _grant(starts_in=timedelta(days=3)), metadata=as_official(LEADER))).delegation
        deputy = await stub.GetOfficial(pb.GetOfficialRequest(official_id=DEPUTY))
        in_force_then = await _all_delegations(
            stub, department_code="SCJGJ",
            in_force_at=_ts(datetime.now(UTC) + timedelta(days=4)))
    assert granted.state == pb.DELEGATION_STATE_SCHEDULED
    assert not deputy.delegations_in_force
    assert [d.id for d in in_force_then] == [granted.id]


async def test_who_may_not_grant_is_refused_and_nothing_changes(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        before = await _audit_entries(review)
        outcomes = {}
        for label, metadata in (("nobody", ()), ("clerk", as_official(CLERK)),
                                ("operator", as_official(OPERATOR)),
                                ("stranger", as_official("ABC-999")),
                                ("malformed", (("x-govhall-official", "robert'); --"),))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GrantDelegation(_grant(), metadata=metadata)
            outcomes[label] = refused.value.code()
        delegations = await _all_delegations(stub)
        after = await _audit_entries(review)
    assert outcomes == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "clerk": grpc.StatusCode.PERMISSION_DENIED,
        "operator": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
        "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert len(delegations) == SAMPLE_DELEGATIONS
    assert after == before


async def test_a_grant_breaking_the_rules_is_refused_and_nothing_changes(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        before = await _audit_entries(review)
        cases = {
            "other department": _grant(OTHER_LEADER),
            "a reviewer": _grant(REVIEWER),
            "a clerk": _grant(CLERK),
            "self": _grant(LEADER),
            "unknown deputy": _grant("SCJGJ-999"),
            "too long": _grant(starts_in=timedelta(hours=1), lasts=timedelta(days=91)),
            "backwards": _grant(starts_in=timedelta(days=2), lasts=timedelta(days=-1)),
            "backdated": _grant(starts_in=timedelta(days=-1)),
            "no reason": _grant(reason=""),
            "long reason": _grant(reason="因" * 201),
            "no period": pb.GrantDelegationRequest(deputy_id=DEPUTY, reason="出差"),
            "year 2200": _grant(starts_in=timedelta(days=365 * 174)),
        }
        outcomes = {}
        errors = {}
        for label, request in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GrantDelegation(request, metadata=as_official(LEADER))
            outcomes[label] = refused.value.code()
            errors[label] = refused.value
        delegations = await _all_delegations(stub)
        after = await _audit_entries(review)
    assert outcomes == {
        "other department": grpc.StatusCode.FAILED_PRECONDITION,
        "a reviewer": grpc.StatusCode.FAILED_PRECONDITION,
        "a clerk": grpc.StatusCode.FAILED_PRECONDITION,
        "self": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown deputy": grpc.StatusCode.NOT_FOUND,
        "too long": grpc.StatusCode.INVALID_ARGUMENT,
        "backwards": grpc.StatusCode.INVALID_ARGUMENT,
        "backdated": grpc.StatusCode.INVALID_ARGUMENT,
        "no reason": grpc.StatusCode.INVALID_ARGUMENT,
        "long reason": grpc.StatusCode.INVALID_ARGUMENT,
        "no period": grpc.StatusCode.INVALID_ARGUMENT,
        "year 2200": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert "same department" in (errors["other department"].details() or "")
    # Signing passes only to another leader of the department, never to a reviewer.
    assert "holds no leader role" in (errors["a reviewer"].details() or "")
    assert field_violations(errors["too long"]) == ["period"]
    assert field_violations(errors["backdated"]) == ["period.valid_from"]
    assert field_violations(errors["no reason"]) == ["reason"]
    assert len(delegations) == SAMPLE_DELEGATIONS
    assert after == before


async def test_overlapping_delegations_of_one_leader_are_refused(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel, review.channel(ZJJ) as zjj_channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        first = (await stub.GrantDelegation(
            _grant(starts_in=timedelta(days=10)), metadata=as_official(LEADER))).delegation
        with pytest.raises(grpc.aio.AioRpcError) as overlapping:
            await stub.GrantDelegation(_grant(starts_in=timedelta(days=12)),
                                       metadata=as_official(LEADER))
        back_to_back = pb.GrantDelegationRequest(
            deputy_id=DEPUTY, reason="出差",
            period=pb.DelegationPeriod(
                valid_from=first.valid_until,
                valid_until=_ts(first.valid_until.ToDatetime(tzinfo=UTC) + timedelta(days=2))))
        second = (await stub.GrantDelegation(back_to_back,
                                             metadata=as_official(LEADER))).delegation
        other_leader = (await review_pb2_grpc.ReviewServiceStub(zjj_channel).GrantDelegation(
            _grant("ZJJ-007", starts_in=timedelta(days=12)),
            metadata=as_official(OTHER_LEADER))).delegation
    assert overlapping.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"delegation {first.id}" in (overlapping.value.details() or "")
    assert second.valid_from == first.valid_until
    assert other_leader.department_code == "ZJJ"


async def test_two_overlapping_grants_at_once_let_exactly_one_through(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        outcomes = await asyncio.gather(
            *(stub.GrantDelegation(_grant(starts_in=timedelta(days=20)),
                                   metadata=as_official(LEADER)) for _ in range(4)),
            return_exceptions=True)
        delegations = await _all_delegations(stub, department_code="SCJGJ")
    granted = [o for o in outcomes if isinstance(o, pb.GrantDelegationResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(granted) == 1
    assert [r.code() for r in refused] == [grpc.StatusCode.FAILED_PRECONDITION] * 3
    assert len([d for d in delegations if d.state == pb.DELEGATION_STATE_SCHEDULED]) == 1


async def test_the_leader_revokes_and_the_delegation_is_kept(review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(_grant(lasts=timedelta(days=30)),
                                              metadata=as_official(LEADER))).delegation
        revoked = (await stub.RevokeDelegation(
            pb.RevokeDelegationRequest(delegation_id=granted.id, reason="提前返岗"),
            metadata=as_official(LEADER))).delegation
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.RevokeDelegation(
                pb.RevokeDelegationRequest(delegation_id=granted.id, reason="提前返岗"),
                metadata=as_official(LEADER))
        listed = await _all_delegations(stub, department_code="SCJGJ")
        in_force = await _all_delegations(stub, department_code="SCJGJ",
                                          in_force_at=_ts(datetime.now(UTC)))
        deputy = await stub.GetOfficial(pb.GetOfficialRequest(official_id=DEPUTY))
        # The time the revoked delegation no longer covers is free again.
        again = (await stub.GrantDelegation(_grant(starts_in=timedelta(days=1)),
                                            metadata=as_official(LEADER))).delegation
        audit = await _audit_entries(review)
    assert revoked.state == pb.DELEGATION_STATE_REVOKED
    assert revoked.HasField("revoked_at")
    assert revoked.revoked_by == LEADER
    assert revoked.revocation_reason == "提前返岗"
    assert revoked.valid_until == granted.valid_until
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert next(d for d in listed if d.id == granted.id).state == pb.DELEGATION_STATE_REVOKED
    assert granted.id not in [d.id for d in in_force]
    assert not deputy.delegations_in_force
    assert again.id > granted.id
    assert audit == SAMPLE_AUDIT_ENTRIES + 3


async def test_an_operator_may_revoke_but_the_deputy_and_others_may_not(
        review: ServiceUnderTest) -> None:
    async with review.channel(SCJGJ) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        granted = (await stub.GrantDelegation(_grant(),
                                              metadata=as_official(LEADER))).delegation
        request = pb.RevokeDelegationRequest(delegation_id=granted.id, reason="领导返岗")
        outcomes = {}
        for label, system, metadata in (
                ("nobody", SCJGJ, ()), ("deputy", SCJGJ, as_official(DEPUTY)),
                ("other leader", ZJJ, as_official(OTHER_LEADER)),
                ("stranger", SCJGJ, as_official("ABC-999")),
                ("operator through a department's system", SCJGJ, as_official(OPERATOR))):
            async with review.channel(system) as other:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await review_pb2_grpc.ReviewServiceStub(other).RevokeDelegation(
                        request, metadata=metadata)
            outcomes[label] = refused.value.code()
        still = (await stub.GetOfficial(pb.GetOfficialRequest(official_id=DEPUTY)))
    async with review.channel("operator") as channel:
        revoked = (await review_pb2_grpc.ReviewServiceStub(channel).RevokeDelegation(
            request, metadata=as_official(OPERATOR))).delegation
    assert outcomes == {
        "nobody": grpc.StatusCode.UNAUTHENTICATED,
        "deputy": grpc.StatusCode.PERMISSION_DENIED,
        "other leader": grpc.StatusCode.PERMISSION_DENIED,
        "stranger": grpc.StatusCode.PERMISSION_DENIED,
        "operator through a department's system": grpc.StatusCode.PERMISSION_DENIED,
    }
    assert [d.id for d in still.delegations_in_force] == [granted.id]
    assert revoked.revoked_by == OPERATOR


async def test_revoking_what_does_not_exist_or_is_over(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.RevokeDelegation(
                pb.RevokeDelegationRequest(delegation_id=9999, reason="x"),
                metadata=as_official(OPERATOR))
        async with review.channel(SCJGJ) as department:
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                # The first sample delegation ended in January 2026.
                await review_pb2_grpc.ReviewServiceStub(department).RevokeDelegation(
                    pb.RevokeDelegationRequest(delegation_id=1, reason="x"),
                    metadata=as_official(LEADER))
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await stub.RevokeDelegation(pb.RevokeDelegationRequest(delegation_id=0, reason=""),
                                        metadata=as_official(OPERATOR))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field_violations(malformed.value)) == ["delegation_id", "reason"]


async def test_the_sample_delegations_by_department_and_time(review: ServiceUnderTest) -> None:
    async with review.channel() as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        everything = await _all_delegations(stub)
        zjj = await _all_delegations(stub, department_code="ZJJ")
        # 16 January 2026 is the last day of SCJGJ's sample delegation, in Shenyang's time.
        last_day = await _all_delegations(
            stub, in_force_at=_ts(datetime(2026, 1, 16, 23, 59, tzinfo=CHINA)))
        day_after = await _all_delegations(
            stub, in_force_at=_ts(datetime(2026, 1, 17, 0, 0, tzinfo=CHINA)))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.ListDelegations(pb.ListDelegationsRequest(department_code="NOPE"))
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.ListDelegations(pb.ListDelegationsRequest(
                page_token="eyJhZnRlciI6ICJ4In0="))  # a token for "x", not an id
    assert [d.id for d in everything] == [1, 2, 3, 4]
    assert [(d.leader_id, d.deputy_id) for d in zjj] == [("ZJJ-006", "ZJJ-007")]
    assert [d.leader_id for d in last_day] == ["SCJGJ-006"]
    assert day_after == []
    assert everything[0].reason
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
