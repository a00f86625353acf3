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
        stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        await stub.SetRoutingRule(
            pb.SetRoutingRuleRequest(category_code="SC-01", department_code="WJW",
                                     basis="职能调整"), metadata=as_official("ZWFWZX-009"))
        names = {code: (await stub.GetDepartment(pb.GetDepartmentRequest(code=code))
                        ).department.name for code in ("SCJGJ", "WJW")}
    second = await environment.run(activities.route_complaint, RouteComplaintInput("SC-01"))
    # The names the directory gives each department, not just any two different names.
    assert names["SCJGJ"] and names["WJW"] and names["SCJGJ"] != names["WJW"]
    assert first == ResponsibleDepartment(
        category_code="SC-01", department_code="SCJGJ", department_name=names["SCJGJ"],
        rule_version=1)
    assert second == ResponsibleDepartment(
        category_code="SC-01", department_code="WJW", department_name=names["WJW"],
        rule_version=2)


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

