"""Platforms push cases in over gRPC: routed, numbered, idempotent, private to their platform."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.chinatime import china_date
from kernel.fieldcipher import field_cipher
from services.complaints.db import tables
from services.complaints.main import complainant_key_path
from tests.support import ServiceUnderTest, field_violations

HOTLINE = "hotline-12345"
PORTAL = "provincial-complaint-portal"
#: A phone number and a name no sample file, fixture or code holds.
PHONE = "139-7531-8642"
NAME = "欧阳晓筠"

Stub = complaints_pb2_grpc.ComplaintsServiceStub


def _push(external_id: str = "HL-2026-000001", **changes: Any) -> pb.SubmitComplaintRequest:
    fields: dict[str, Any] = {
        "external_id": external_id, "kind": pb.COMPLAINT_KIND_COMPLAINT, "urgent": False,
        "category_code": "SC-01", "content": "小区门口的早餐店使用过期食材，多次反映无果。",
        "location": pb.Location(latitude=41.8057, longitude=123.4315,
                                address="沈阳市和平区南京北街1号"),
        "complainant_name": NAME, "complainant_phone": PHONE,
        "linked_case_number": "AP-20260105-000001"}
    return pb.SubmitComplaintRequest(**(fields | changes))


def _engine(service: ServiceUnderTest) -> sa.Engine:
    return sa.create_engine(service.settings.resolved_database_url())


def _rows(service: ServiceUnderTest) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the complaints database, by table."""
    engine = _engine(service)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    try:
        with engine.connect() as connection:
            return {t.name: [tuple(r) for r in connection.execute(sa.select(t))]
                    for t in metadata.sorted_tables}
    finally:
        engine.dispose()


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_a_pushed_case_is_numbered_routed_and_read_back_by_its_platform(
        complaints: ServiceUnderTest) -> None:
    before = datetime.now(UTC)
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        pushed = await stub.SubmitComplaint(_push())
        urgent = await stub.SubmitComplaint(_push(
            "HL-2026-000002", kind=pb.COMPLAINT_KIND_CONSULTATION, urgent=True,
            category_code="JT-02", location=pb.Location(address="地铁一号线青年大街站"),
            linked_case_number=""))
        read = await stub.GetComplaint(pb.GetComplaintRequest(
            case_number=pushed.complaint.case_number))
    case = pushed.complaint
    assert not pushed.replayed
    # Numbered by the day in China it was received: the day at ``before`` or, should China's
    # midnight fall while the test runs, the day after.
    days = {china_date(before), china_date(datetime.now(UTC))}
    assert any(re.fullmatch(rf"CP-{day:%Y%m%d}-\d{{6}}", case.case_number) for day in days)
    assert urgent.complaint.case_number > case.case_number
    assert case.platform_id == "12345" and case.external_id == "HL-2026-000001"
    # Routed by the rule in force: SC-01 goes to the market regulator, JT-02 to the metro.
    assert (case.department_code, case.rule_version) == ("SCJGJ", 1)
    assert case.department_name
    assert urgent.complaint.department_code == "DTJT"
    assert case.deadline_class == pb.DEADLINE_CLASS_COMPLAINT
    assert urgent.complaint.deadline_class == pb.DEADLINE_CLASS_URGENT
    assert case.status == pb.COMPLAINT_STATUS_ROUTED
    assert before - timedelta(seconds=1) <= case.received_at.ToDatetime(UTC) <= datetime.now(UTC)
    # The platform that pushed it sees it whole, the complainant included.
    assert read.complaint == case
    assert (read.complaint.complainant_name, read.complaint.complainant_phone) == (NAME, PHONE)
    assert read.complaint.location.latitude == pytest.approx(41.8057)
    assert read.complaint.linked_case_number == "AP-20260105-000001"
    assert not urgent.complaint.location.HasField("latitude")
    assert urgent.complaint.location.address == "地铁一号线青年大街站"


async def test_a_case_lists_its_events_page_by_page_with_codes_only(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        case = (await stub.SubmitComplaint(_push())).complaint
        events: list[pb.ComplaintEvent] = []
        token = ""
        pages = 0
        while True:
            page = await stub.ListComplaintEvents(pb.ListComplaintEventsRequest(
                case_number=case.case_number, page_size=1, page_token=token))
            events += page.events
            pages += 1
            token = page.next_page_token
            if not token:
                break
    assert pages == 2
    assert [(e.sequence, e.code) for e in events] == [(1, "complaint.received"),
                                                     (2, "complaint.routed")]
    assert dict(events[0].details) == {"platform": "12345", "kind": "complaint",
                                       "urgent": "false", "linked_case": "AP-20260105-000001"}
    assert dict(events[1].details) == {"category": "SC-01", "department": "SCJGJ",
                                       "rule_version": "1", "deadline_class": "complaint"}
    assert all(e.at == case.received_at for e in events)


async def test_a_re_push_returns_the_same_case_and_changes_nothing(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        first = await stub.SubmitComplaint(_push())
        rows = _rows(complaints)
        again = await stub.SubmitComplaint(_push())
    assert again.replayed and not first.replayed
    assert again.complaint == first.complaint
    assert _rows(complaints) == rows


async def test_the_same_external_id_with_other_content_is_already_exists_and_overwrites_nothing(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        first = await stub.SubmitComplaint(_push())
        rows = _rows(complaints)
        changed = await _refused(stub.SubmitComplaint(_push(content="内容被改写了")))
        other_phone = await _refused(stub.SubmitComplaint(_push(complainant_phone="13000000000")))
        read = await stub.GetComplaint(pb.GetComplaintRequest(
            case_number=first.complaint.case_number))
    for refusal in (changed, other_phone):
        assert refusal.code() == grpc.StatusCode.ALREADY_EXISTS
        assert first.complaint.case_number in (refusal.details() or "")
    assert PHONE not in (other_phone.details() or "")
    assert _rows(complaints) == rows
    assert read.complaint == first.complaint


async def test_concurrent_re_pushes_make_one_case(complaints: ServiceUnderTest) -> None:
    """Twelve pushes of one external id at once make one case.

    On SQLite the database's single writer already serialises the pushes, so
    only the PostgreSQL lane shows that the unique constraint settles the race
    (it fails there without it); the next test shows the constraint itself on
    both lanes.
    """
    async with complaints.channel(HOTLINE) as channel, complaints.channel(HOTLINE) as second:
        stubs = [Stub(channel), Stub(second)]
        answers = await asyncio.gather(*(stubs[i % 2].SubmitComplaint(_push("HL-RACE-1"))
                                         for i in range(12)))
    assert len({a.complaint.case_number for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False] + [True] * 11
    rows = _rows(complaints)
    assert len(rows["complaint_cases"]) == 1
    assert len(rows["complaint_events"]) == 2
    submitted = [r for r in rows["audit_log"] if "complaint.submitted" in r]
    assert len(submitted) == 1


async def test_the_database_itself_refuses_a_second_case_for_one_external_id(
        complaints: ServiceUnderTest) -> None:
    """The unique constraint idempotency rests on, in the migrated schema of either lane:
    a second row for the same (platform, external id) is refused whatever wrote it."""
    async with complaints.channel(HOTLINE) as channel:
        first = (await Stub(channel).SubmitComplaint(_push("HL-UNIQUE-1"))).complaint
    cases = tables.complaint_cases
    with complaints.running.engine.connect() as connection:
        row = dict(connection.execute(sa.select(cases).where(
            cases.c.case_number == first.case_number)).one()._mapping)
    with pytest.raises(sa.exc.IntegrityError), complaints.running.engine.begin() as connection:
        connection.execute(sa.insert(cases).values(
            {**row, "case_number": "CP-20000101-000001", "fingerprint": "0" * 64}))
    assert len(_rows(complaints)["complaint_cases"]) == 1


async def test_an_external_id_is_the_platforms_own(complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as hotline, complaints.channel(PORTAL) as portal:
        ours = await Stub(hotline).SubmitComplaint(_push("SHARED-1"))
        theirs = await Stub(portal).SubmitComplaint(_push("SHARED-1"))
    assert not theirs.replayed
    assert theirs.complaint.case_number != ours.complaint.case_number
    assert (ours.complaint.platform_id, theirs.complaint.platform_id) == ("12345", "LNZWFW")


async def test_a_platform_cannot_see_another_platforms_case(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as hotline, complaints.channel(PORTAL) as portal:
        case = (await Stub(hotline).SubmitComplaint(_push())).complaint.case_number
        number = int(case[-6:])
        missing = f"{case[:-6]}{number + 100:06d}"
        stub = Stub(portal)
        refusals = {
            "get": await _refused(stub.GetComplaint(pb.GetComplaintRequest(case_number=case))),
            "events": await _refused(stub.ListComplaintEvents(
                pb.ListComplaintEventsRequest(case_number=case))),
            "get missing": await _refused(stub.GetComplaint(
                pb.GetComplaintRequest(case_number=missing))),
            "events missing": await _refused(stub.ListComplaintEvents(
                pb.ListComplaintEventsRequest(case_number=missing))),
        }
    assert {k: r.code() for k, r in refusals.items()} == dict.fromkeys(
        refusals, grpc.StatusCode.NOT_FOUND)
    # Another platform's case and a case that does not exist get the same answer.
    assert (refusals["get"].details() or "").replace(case, "N") == (
        refusals["get missing"].details() or "").replace(missing, "N")
    assert "12345" not in (refusals["get"].details() or "")


async def test_a_system_that_is_no_platform_is_refused_and_nothing_is_written(
        complaints: ServiceUnderTest) -> None:
    async with complaints.channel(HOTLINE) as hotline:
        case = (await Stub(hotline).SubmitComplaint(_push())).complaint.case_number
    rows = _rows(complaints)
    # The operator may call every ComplaintsService RPC, but is no platform.
    async with complaints.channel("operator") as channel:
        stub = Stub(channel)
        refusals = [
            await _refused(stub.SubmitComplaint(_push("OP-1"))),
            await _refused(stub.GetComplaint(pb.GetComplaintRequest(case_number=case))),
            await _refused(stub.ListComplaintEvents(
                pb.ListComplaintEventsRequest(case_number=case))),
        ]
    assert [r.code() for r in refusals] == [grpc.StatusCode.PERMISSION_DENIED] * 3
    assert all("not a complaint platform" in (r.details() or "") for r in refusals)
    assert _rows(complaints) == rows


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"category_code": "ZZ-99"}, "category_code", grpc.StatusCode.INVALID_ARGUMENT),
    ({"content": "长" * 2001}, "content", grpc.StatusCode.INVALID_ARGUMENT),
    ({"content": "过期\x00食材"}, "content", grpc.StatusCode.INVALID_ARGUMENT),
    ({"complainant_name": "欧阳\u200b晓筠"}, "complainant_name",
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"complainant_phone": "call me"}, "complainant_phone", grpc.StatusCode.INVALID_ARGUMENT),
    ({"location": pb.Location(latitude=41.8)}, "location.longitude",
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"location": pb.Location(latitude=91, longitude=123)}, "location.latitude",
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"location": pb.Location(latitude=math.nan, longitude=123)}, "location.latitude",
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"location": pb.Location()}, "location", grpc.StatusCode.INVALID_ARGUMENT),
    ({"kind": pb.COMPLAINT_KIND_UNSPECIFIED}, "kind", grpc.StatusCode.INVALID_ARGUMENT),
    ({"linked_case_number": "AP-2026-1"}, "linked_case_number",
     grpc.StatusCode.INVALID_ARGUMENT),
], ids=lambda value: str(value)[:40])
async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
        complaints: ServiceUnderTest, change: dict[str, Any], field: str,
        code: grpc.StatusCode) -> None:
    rows = _rows(complaints)
    async with complaints.channel(HOTLINE) as channel:
        refusal = await _refused(Stub(channel).SubmitComplaint(_push(**change)))
    assert refusal.code() == code
    assert field in field_violations(refusal)
    assert _rows(complaints) == rows


async def test_a_category_routed_to_a_department_gone_from_the_directory_is_failed_precondition(
        complaints: ServiceUnderTest) -> None:
    engine = _engine(complaints)
    with engine.begin() as connection:
        connection.execute(sa.delete(tables.departments).where(
            tables.departments.c.code == "DTJT"))
    engine.dispose()
    rows = _rows(complaints)
    async with complaints.channel(HOTLINE) as channel:
        refusal = await _refused(Stub(channel).SubmitComplaint(_push(category_code="JT-02")))
    assert refusal.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "DTJT" in (refusal.details() or "")
    assert _rows(complaints) == rows


async def test_the_complainant_is_in_no_column_log_or_audit_entry_but_the_sealed_one(
        complaints: ServiceUnderTest, capfd: pytest.CaptureFixture[str]) -> None:
    async with complaints.channel(HOTLINE) as channel:
        stub = Stub(channel)
        case = (await stub.SubmitComplaint(_push())).complaint.case_number
        await stub.SubmitComplaint(_push())
        await _refused(stub.SubmitComplaint(_push(content="改写")))
        await stub.GetComplaint(pb.GetComplaintRequest(case_number=case))
        await stub.ListComplaintEvents(pb.ListComplaintEventsRequest(case_number=case))
    async with complaints.channel("operator") as channel:
        verification = (await Stub(channel).VerifyAuditLog(
            pb.VerifyAuditLogRequest())).verification
    logged = "".join(capfd.readouterr())
    assert case in logged  # the submission was logged, by case number
    digits = PHONE.replace("-", "")
    for personal in (PHONE, digits, NAME):
        assert personal not in logged
    rows = _rows(complaints)
    sealed_column = list(tables.complaint_cases.c.keys()).index("complainant")
    searched = 0
    for table, table_rows in rows.items():
        for row in table_rows:
            for index, value in enumerate(row):
                if table == "complaint_cases" and index == sealed_column:
                    continue
                text = str(value)
                searched += 1
                for personal in (PHONE, digits, NAME):
                    assert personal not in text, (table, index)
    assert searched > 100
    # The sealed column holds the complainant, readable only with the service's key and
    # only as this case's.
    (sealed,) = [r[sealed_column] for r in rows["complaint_cases"]]
    assert PHONE not in sealed and NAME not in sealed
    cipher = field_cipher(complainant_key_path(complaints.pki_dir))
    opened = json.loads(cipher.open(sealed, context=case))
    assert opened == {"name": NAME, "phone": PHONE}
    audit = tables.audit_log.c
    (details,) = [json.loads(r[list(audit.keys()).index("details")])
                  for r in rows["audit_log"] if "complaint.submitted" in r]
    assert details == {"platform": "12345", "external_id": "HL-2026-000001",
                       "kind": "complaint", "urgent": False, "category": "SC-01",
                       "department": "SCJGJ", "rule_version": 1,
                       "deadline_class": "complaint", "linked_case": "AP-20260105-000001"}
    assert verification.intact
