"""GetComplaintMetrics over real gRPC, on rows written through the repositories.

The known data set of the unit tests (tests/unit/complaints/test_metrics.py,
every figure computed by hand there) is stored as cases, moved in time so
that the instant the service takes its figures at stands where the unit
tests' AS_OF does: every due instant falls on the same side of it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.cases import (
    Complaint,
    ComplaintKind,
    ComplaintStatus,
    DeadlineClass,
)
from services.complaints.domain.metrics import CaseRecord
from tests.support import ServiceUnderTest
from tests.unit.complaints.test_metrics import AS_OF, DATA, END, START

SUPERVISION = "supervision-system"
Stub = complaints_pb2_grpc.ComplaintsServiceStub
_INSTANTS = ("received_at", "sign_for_due", "signed_for_at", "reply_due", "first_replied_at",
             "replied_at", "closed_at")


def _store(service: ServiceUnderTest, records: list[CaseRecord], shift: timedelta) -> None:
    """Each record as a case: taken in, then its handling and link columns set."""
    numbers = {r.case_number: f"CP-20260301-{i:06d}" for i, r in enumerate(records, 1)}
    with ComplaintsUnitOfWork(service.running.engine) as uow:
        for record in records:
            moved: dict[str, Any] = {name: getattr(record, name) + shift
                                     for name in _INSTANTS if getattr(record, name)}
            number = numbers[record.case_number]
            uow.cases.add(Complaint(
                number=number, platform_id="12345", external_id=f"M-{number}",
                kind=ComplaintKind.COMPLAINT, urgent=False, category_code="SC-01",
                department_code=record.department_code, rule_version=1,
                deadline_class=DeadlineClass.COMPLAINT, content="计量用", location=None,
                linked_case_number=record.linked_case_number,
                linked_tender_number=record.linked_tender_number,
                status=ComplaintStatus.ROUTED, received_at=moved.pop("received_at")),
                sealed_complainant="-", fingerprint=number)
            handling = uow.handling.get(number)
            assert handling is not None
            uow.handling.save(replace(
                handling, status=ComplaintStatus(record.status), rating=record.rating,
                reopened=record.reopened,
                merged_into=numbers.get(record.merged_into, record.merged_into), **moved))
            if (record.link_status, record.tender_link_status) != ("unchecked", "unchecked"):
                uow.links.record(number, status=record.link_status,
                                 item_code=record.link_item_code,
                                 department_code=record.link_department_code,
                                 at=record.received_at + shift,
                                 tender_status=record.tender_link_status,
                                 tender_category=record.tender_link_category,
                                 tender_department_code=record.tender_link_department_code)
        uow.commit()


def _at(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def _rates(figures: pb.DepartmentComplaintMetrics) -> dict[str, tuple[int, int]]:
    return {name: (getattr(figures, name).numerator, getattr(figures, name).denominator)
            for name in ("completion", "sign_for_on_time", "reply_on_time", "satisfaction",
                         "excellent")}


@pytest.fixture
def shift() -> timedelta:
    """How far the data set moves so that now stands where AS_OF stood."""
    return datetime.now(UTC) - AS_OF


async def test_the_figures_are_the_hand_computed_ones(complaints: ServiceUnderTest,
                                                      shift: timedelta) -> None:
    _store(complaints, DATA, shift)
    async with complaints.channel(SUPERVISION) as channel:
        answer = await Stub(channel).GetComplaintMetrics(pb.GetComplaintMetricsRequest(
            period_start=_at(START + shift), period_end=_at(END + shift)))
        one = await Stub(channel).GetComplaintMetrics(pb.GetComplaintMetricsRequest(
            period_start=_at(START + shift), period_end=_at(END + shift),
            department_code="ZJJ"))
        none = await Stub(channel).GetComplaintMetrics(pb.GetComplaintMetricsRequest(
            period_start=_at(START + shift), period_end=_at(END + shift),
            department_code="FGW"))
    assert (answer.overall.cases, answer.overall.merged_duplicates) == (10, 2)
    assert _rates(answer.overall) == {"completion": (6, 10), "sign_for_on_time": (4, 7),
                                      "reply_on_time": (5, 7), "satisfaction": (3, 5),
                                      "excellent": (2, 5)}
    departments = {d.department_code: d for d in answer.departments}
    assert list(departments) == ["SCJGJ", "WJW", "ZJJ"]
    assert departments["SCJGJ"].department_name  # named from the directory
    assert _rates(departments["SCJGJ"]) == {
        "completion": (4, 8), "sign_for_on_time": (3, 5), "reply_on_time": (3, 5),
        "satisfaction": (3, 4), "excellent": (2, 4)}
    assert _rates(departments["ZJJ"]) == {
        "completion": (2, 2), "sign_for_on_time": (1, 2), "reply_on_time": (2, 2),
        "satisfaction": (0, 1), "excellent": (0, 1)}
    assert (departments["WJW"].cases, departments["WJW"].merged_duplicates) == (0, 1)
    assert departments["WJW"].completion.no_cases
    assert not departments["ZJJ"].completion.no_cases
    assert [(c.kind, c.status, c.item_code, c.category, c.department_code, c.cases)
            for c in answer.linked] == [
        (pb.COMPLAINT_LINK_KIND_APPROVAL, pb.COMPLAINT_LINK_STATUS_FOUND, "I-1", "", "SCJGJ",
         2),
        (pb.COMPLAINT_LINK_KIND_APPROVAL, pb.COMPLAINT_LINK_STATUS_FOUND, "I-2", "", "ZJJ", 1),
        (pb.COMPLAINT_LINK_KIND_APPROVAL, pb.COMPLAINT_LINK_STATUS_NOT_FOUND, "", "", "", 1),
        (pb.COMPLAINT_LINK_KIND_APPROVAL, pb.COMPLAINT_LINK_STATUS_UNCHECKED, "", "", "", 1),
        (pb.COMPLAINT_LINK_KIND_TENDER, pb.COMPLAINT_LINK_STATUS_FOUND, "", "construction",
         "JYJ", 1),
        (pb.COMPLAINT_LINK_KIND_TENDER, pb.COMPLAINT_LINK_STATUS_NOT_FOUND, "", "", "", 1),
        (pb.COMPLAINT_LINK_KIND_TENDER, pb.COMPLAINT_LINK_STATUS_UNCHECKED, "", "", "", 1)]
    assert answer.period_start.ToDatetime(UTC) == START + shift
    assert answer.as_of.ToDatetime(UTC) >= AS_OF + shift
    assert [d.department_code for d in one.departments] == ["ZJJ"]
    assert _rates(one.overall) == _rates(departments["ZJJ"])
    assert [d.department_code for d in none.departments] == ["FGW"]
    assert none.overall.cases == 0 and none.overall.satisfaction.no_cases


async def test_operators_read_the_figures_and_platforms_may_not(
        complaints: ServiceUnderTest, shift: timedelta) -> None:
    request = pb.GetComplaintMetricsRequest(period_start=_at(START + shift),
                                            period_end=_at(END + shift))
    async with complaints.channel("operator") as channel:
        answer = await Stub(channel).GetComplaintMetrics(request)
    assert answer.overall.cases == 0 and answer.overall.completion.no_cases
    async with complaints.channel("hotline-12345") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await Stub(channel).GetComplaintMetrics(request)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("start", "end", "department", "code"), [
    (END, START, "", grpc.StatusCode.INVALID_ARGUMENT),                    # ends before
    (START, START, "", grpc.StatusCode.INVALID_ARGUMENT),                  # empty
    (START, START + timedelta(days=366, seconds=1), "", grpc.StatusCode.INVALID_ARGUMENT),
    (None, END, "", grpc.StatusCode.INVALID_ARGUMENT),                     # no start
    (START, END, "not a code", grpc.StatusCode.INVALID_ARGUMENT),
    (START, END, "FGJ", grpc.StatusCode.NOT_FOUND),                        # not in directory
])
async def test_bad_periods_and_unknown_departments_are_refused(
        complaints: ServiceUnderTest, start: datetime | None, end: datetime, department: str,
        code: grpc.StatusCode) -> None:
    request = pb.GetComplaintMetricsRequest(period_end=_at(end), department_code=department)
    if start is not None:
        request.period_start.CopyFrom(_at(start))
    async with complaints.channel(SUPERVISION) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await Stub(channel).GetComplaintMetrics(request)
    assert refused.value.code() == code
    if code == grpc.StatusCode.NOT_FOUND:
        assert "FGJ" in (refused.value.details() or "")


async def test_a_leap_year_is_answered(complaints: ServiceUnderTest) -> None:
    async with complaints.channel(SUPERVISION) as channel:
        answer = await Stub(channel).GetComplaintMetrics(pb.GetComplaintMetricsRequest(
            period_start=_at(START), period_end=_at(START + timedelta(days=366))))
    assert answer.overall.cases == 0
