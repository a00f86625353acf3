"""The complaints activities, run the way a worker runs them, on a real database."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from services.complaints.activities import (
    ComplaintsActivities,
    ResponsibleDepartment,
    RouteComplaintInput,
)
from tests.support import ServiceUnderTest, as_official


async def test_route_complaint_names_the_department_and_rule_version(
        complaints: ServiceUnderTest) -> None:
    activities = ComplaintsActivities(complaints.running.engine)
    environment = ActivityEnvironment()
    first = await environment.run(activities.route_complaint, RouteComplaintInput("SC-01"))
    async with complaints.channel() as channel:
        await complaints_pb2_grpc.ComplaintsServiceStub(channel).SetRoutingRule(
            pb.SetRoutingRuleRequest(category_code="SC-01", department_code="WJW",
                                     basis="职能调整"), metadata=as_official("ZWFWZX-009"))
    second = await environment.run(activities.route_complaint, RouteComplaintInput("SC-01"))
    assert first.department_code == "SCJGJ"
    assert first.department_name
    assert first.rule_version == 1
    assert second == ResponsibleDepartment(
        category_code="SC-01", department_code="WJW", department_name=second.department_name,
        rule_version=2)
    assert second.department_name
    assert second.department_name != first.department_name


@pytest.mark.parametrize("category_code", ["ZZ-99", "not a code"])
async def test_an_unknown_category_fails_without_retry(complaints: ServiceUnderTest,
                                                       category_code: str) -> None:
    activities = ComplaintsActivities(complaints.running.engine)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.route_complaint,
                                        RouteComplaintInput(category_code))
    assert failed.value.non_retryable
    assert failed.value.type == "NotFound"
    assert category_code in failed.value.message

