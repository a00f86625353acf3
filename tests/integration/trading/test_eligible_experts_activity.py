"""The trading.eligible_experts activity on the service's own database."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.trading.v1 import trading_pb2 as pb
from govhall.trading.v1 import trading_pb2_grpc
from kernel.directory import read_sample
from services.trading.activities import EligibleExperts, EligibleExpertsQuery, TradingActivities
from services.trading.main import DEFINITION
from tests.integration.trading.conftest import TRADING_OFFICER
from tests.support import ServiceUnderTest, as_official

MEDICAL = "医疗设备"
HOSPITAL = "沈阳康宁医院有限公司"


def _activities(trading: ServiceUnderTest) -> TradingActivities:
    return TradingActivities(trading.running.engine)


def _sample_experts(trading: ServiceUnderTest) -> list[dict[str, object]]:
    experts: list[dict[str, object]] = read_sample(
        trading.settings.sample_dir, "trading.json")["experts"]
    return experts


async def test_the_activity_is_hosted_under_its_published_name(
        trading: ServiceUnderTest) -> None:
    hosted = DEFINITION.activities(trading.running.engine, trading.settings)
    names = [getattr(a, "__temporal_activity_definition").name for a in hosted]
    assert names == ["trading.eligible_experts", "trading.open_tender",
                     "trading.record_tender_step", "trading.close_bidding",
                     "trading.close_decryption", "trading.mark_tender_late",
                     "trading.open_listing", "trading.record_listing_step",
                     "trading.close_listing", "trading.conclude_auction",
                     "trading.expire_agreement", "trading.read_listing"]
    assert trading.settings.task_queue == "govhall-trading"


async def test_eligible_experts_are_the_specialty_sorted(trading: ServiceUnderTest) -> None:
    result = await ActivityEnvironment().run(
        _activities(trading).eligible_experts, EligibleExpertsQuery(specialty=MEDICAL))
    expected = sorted(str(e["id"]) for e in _sample_experts(trading)
                      if MEDICAL in e["specialties"])  # type: ignore[operator]
    assert isinstance(result, EligibleExperts)
    assert result.specialty == MEDICAL
    assert result.expert_ids == expected
    assert len(expected) > 5


async def test_experts_of_excluded_employers_stand_aside(trading: ServiceUnderTest) -> None:
    result = await ActivityEnvironment().run(
        _activities(trading).eligible_experts,
        EligibleExpertsQuery(specialty=MEDICAL, excluded_employers=[HOSPITAL]))
    expected = sorted(str(e["id"]) for e in _sample_experts(trading)
                      if MEDICAL in e["specialties"]  # type: ignore[operator]
                      and e["employer"] != HOSPITAL)
    assert result.expert_ids == expected
    assert "EX-0006" not in result.expert_ids


async def test_an_expert_made_unavailable_is_left_out_until_put_back(
        trading: ServiceUnderTest) -> None:
    activities = _activities(trading)
    query = EligibleExpertsQuery(specialty=MEDICAL)
    async with trading.channel("trading-platform") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
            id="EX-0007", available=False, reason="病假"), metadata=as_official(TRADING_OFFICER))
        while_out = await ActivityEnvironment().run(activities.eligible_experts, query)
        await stub.SetExpertAvailability(pb.SetExpertAvailabilityRequest(
            id="EX-0007", available=True), metadata=as_official(TRADING_OFFICER))
        put_back = await ActivityEnvironment().run(activities.eligible_experts, query)
    assert "EX-0007" not in while_out.expert_ids
    assert "EX-0007" in put_back.expert_ids
    assert len(put_back.expert_ids) == len(while_out.expert_ids) + 1


async def test_an_unknown_specialty_fails_without_retry(trading: ServiceUnderTest) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            _activities(trading).eligible_experts, EligibleExpertsQuery(specialty="烹饪"))
    assert failed.value.non_retryable
    assert failed.value.type == "InvalidArgument"
