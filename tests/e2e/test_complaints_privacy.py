"""A reply quoting the complainant leaves the complaints service masked, everywhere.

An official may write the complainant's name and phone into a reply (or a
co-handler's contribution); the desk masks them, and any phone or ID card
shaped number, before the text is signed and sent to the workflow. So the
workflow's history (decoded through the codec), ``complaint_replies``, the
platform events of every origin of a merged case and what the platforms pull
over gRPC only ever hold the masked text. The chain runs as in
tests/e2e/test_complaints_chain.py (the same fixtures).
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from govhall.complaints.v1 import complaints_pb2 as pb
from tests.e2e import test_complaints_chain as chain_tests
from tests.e2e.suite import within
from tests.e2e.test_complaints_chain import HOTLINE, NAME, PHONE, PORTAL, Desk, _rid
from tests.history_text import decoded_history_text
from workflows.complaint_contract import workflow_id

pytestmark = pytest.mark.e2e
#: The chain's fixtures (its processes, module-wide; the desk, per test).
chain = chain_tests.chain
desk = chain_tests.desk

#: Another number shaped like a mobile phone, which is not the complainant's.
OTHER_PHONE = "13812345678"
#: The merged duplicate's complainant (another platform's).
DUPLICATE_NAME, DUPLICATE_PHONE = "司马云舒", "13700001111"
REPLY = f"已回电{NAME}（电话{PHONE}）及{DUPLICATE_NAME}，并联系商户负责人{OTHER_PHONE}，" \
        "已责令下架过期食品"
MASKED = f"已回电{'*' * len(NAME)}（电话{'*' * len(PHONE)}）及{'*' * len(DUPLICATE_NAME)}，" \
         f"并联系商户负责人{'*' * len(OTHER_PHONE)}，已责令下架过期食品"
CONTRIBUTION = f"已核查{NAME}反映的情况，电话{PHONE}"


def _secrets_in(text: str) -> list[str]:
    return [s for s in (NAME, PHONE, OTHER_PHONE, DUPLICATE_NAME, DUPLICATE_PHONE)
            if s in text]


async def test_a_reply_quoting_the_complainant_is_masked_everywhere(desk: Desk) -> None:
    primary = await desk.submit("SCJGJ", f"E2E-{uuid.uuid4().hex[:8]}")
    duplicate = (await desk.call(PORTAL, "SubmitComplaint", pb.SubmitComplaintRequest(
        external_id=f"E2E-{uuid.uuid4().hex[:8]}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code="SC-01", content="超市出售过期食品（重复）",
        complainant_name=DUPLICATE_NAME, complainant_phone=DUPLICATE_PHONE))
                 ).complaint.case_number
    await desk.started(primary)
    await desk.started(duplicate)
    await desk.dispatcher("MergeComplaint", pb.MergeComplaintRequest(
        request_id=_rid(), case_number=duplicate, primary_case_number=primary))

    async def merged() -> bool:
        return duplicate in (await desk.status(primary)).merged_cases
    await within(desk.deadline, "the primary shows its merged duplicate", merged)
    await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=primary))
    await desk.dispatcher("SetCoHandlers", pb.SetCoHandlersRequest(
        request_id=_rid(), case_number=primary, department_codes=["ZJJ"]))
    await desk.handler("ZJJ", "ContributeToComplaint", pb.ContributeToComplaintRequest(
        request_id=_rid(), case_number=primary, text=CONTRIBUTION))
    await desk.handler("SCJGJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=primary, text=REPLY))

    # The stored replies, both cases: the masked text, as written and as published.
    replies = desk.rows("SELECT case_number, text, published_text FROM complaint_replies "
                        "WHERE case_number IN (:p, :d)", p=primary, d=duplicate)
    assert sorted(r[0] for r in replies) == sorted([primary, duplicate])
    for _, text, published in replies:
        assert text.startswith(MASKED), text
        assert not _secrets_in(text) and not _secrets_in(published)
    contributions = desk.rows("SELECT contribution FROM complaint_co_handlers "
                              "WHERE case_number = :p", p=primary)
    assert contributions and not _secrets_in(str(contributions))
    # The platform events of both origins, decoded (the payload is JSON).
    events = desk.rows("SELECT platform_id, case_number, event_type, payload "
                       "FROM platform_events WHERE case_number IN (:p, :d)",
                       p=primary, d=duplicate)
    replied = {e[1]: json.loads(e[3])["data"] for e in events if e[2] == "complaint.replied"}
    assert set(replied) == {primary, duplicate}
    assert all(r["reply"].startswith(MASKED) for r in replied.values())
    for event in events:
        assert not _secrets_in(json.dumps(json.loads(event[3]), ensure_ascii=False)), event
    # What each platform pulls over gRPC.
    for platform, number in ((HOTLINE, primary), (PORTAL, duplicate)):
        pulled = (await desk.call(platform, "ListPlatformEvents",
                                  pb.ListPlatformEventsRequest(page_size=500))).events
        mine = [e for e in pulled if e.case_number == number]
        assert [e.data["reply"] for e in mine if e.event_type == "complaint.replied"] \
            == [replied[number]["reply"]]
        assert not _secrets_in(str(mine))
        shown = await desk.get(number, platform=platform)
        assert [r.text for r in shown.handling.replies] == [replied[number]["reply"]]
    # The workflow's history, every payload (the update's arguments too) decoded.
    client = await desk.processes.client()
    history = await client.get_workflow_handle(workflow_id(primary)).fetch_history()
    text = await decoded_history_text(client, history.events)
    assert MASKED in text  # the update's decoded argument: what was sent
    assert not _secrets_in(text)


def _forms(text: str) -> list[bytes]:
    """``text`` as any store or format could hold it: UTF-8, and JSON-escaped."""
    return [text.encode(), json.dumps(text).strip('"').encode()]


async def test_after_the_chain_the_complainants_are_in_no_file_the_processes_wrote(
        desk: Desk) -> None:
    """The sweep the issue asks for, over everything this module's run left on disk: every
    log and every database file with its journal (so every column outside the sealed
    complainant), searched for the complainants' names and phones as bytes. A case of its
    own first runs the whole way (pushed, signed for, replied quoting its complainant,
    rated, closed), so there is something to find if anything leaks."""
    name, phone = "欧阳隐私", "13907654321"
    number = (await desk.call(HOTLINE, "SubmitComplaint", pb.SubmitComplaintRequest(
        external_id=f"sweep-{uuid.uuid4().hex[:8]}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code=chain_tests.CATEGORY["SCJGJ"], content="楼下餐馆油烟扰民",
        complainant_name=name, complainant_phone=phone))).complaint.case_number
    # The platform that pushed the case reads its complainant back: the data is there.
    assert (await desk.get(number)).complaint.complainant_phone == phone
    await desk.started(number)
    await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    await desk.handler("SCJGJ", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number,
        text=f"{name}您好，已致电{phone}，餐馆已安装油烟净化设备。"))
    await desk.rate(number, 5)
    await desk.ended(number)
    client = await desk.processes.client()
    history = await client.get_workflow_handle(workflow_id(number)).fetch_history()
    decoded = await decoded_history_text(client, history.events)
    assert "油烟净化设备" in decoded  # the masked reply travelled, and was decoded
    for secret in (name, phone):
        assert secret not in decoded
        assert not any(form in history.to_json().encode() for form in _forms(secret))

    files = [path for path in desk.processes.var_dir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".log" and path.stat().st_size for path in files)
    assert any(path.name == "complaints.sqlite3" for path in files)
    secrets = (name, phone, NAME, PHONE, DUPLICATE_NAME, DUPLICATE_PHONE, OTHER_PHONE)
    found = {f"{path.relative_to(desk.processes.var_dir)}: {secret}"
             for path in files for secret in secrets
             if any(form in path.read_bytes() for form in _forms(secret))}
    assert found == set()


def _every_stored_row(desk: Desk) -> str:
    """Every row of every table of the complaints database, as text (the sealed complainant
    column is ciphertext)."""
    engine = desk.processes.read_only("complaints")
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(repr(tuple(row)) for table in metadata.sorted_tables
                             for row in connection.execute(sa.select(table)))
    finally:
        engine.dispose()


async def test_bases_and_a_rating_comment_quoting_the_complainant_are_masked_everywhere(
        desk: Desk) -> None:
    """A return basis, a reassignment basis, an extension basis and a platform's rating
    comment are free text that may quote the complainant: masked at the desk before they
    are signed, like a reply."""
    name, phone = "慕容秋水", "13611112222"
    number = (await desk.call(HOTLINE, "SubmitComplaint", pb.SubmitComplaintRequest(
        external_id=f"bases-{uuid.uuid4().hex[:8]}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code=chain_tests.CATEGORY["SCJGJ"], content="农贸市场出售病死禽肉",
        complainant_name=name, complainant_phone=phone))).complaint.case_number
    await desk.started(number)
    await desk.handler("SCJGJ", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    await desk.handler("SCJGJ", "RequestComplaintExtension", pb.RequestComplaintExtensionRequest(
        request_id=_rid(), case_number=number, days=3,
        basis=f"需与{name}（{phone}）约定现场核查时间"))
    await desk.handler("SCJGJ", "ReturnComplaint", pb.ReturnComplaintRequest(
        request_id=_rid(), case_number=number, basis=f"经电话{phone}与{name}核实，属卫健委职责"))
    await desk.dispatcher("DispatchComplaint", pb.DispatchComplaintRequest(
        request_id=_rid(), case_number=number, outcome=pb.DISPATCH_OUTCOME_REASSIGN,
        department_code="WJW", basis=f"{name}反映的病死禽问题改派卫健委，回访电话{phone}"))
    await desk.handler("WJW", "SignForComplaint", pb.SignForComplaintRequest(
        request_id=_rid(), case_number=number))
    await desk.handler("WJW", "ReplyToComplaint", pb.ReplyToComplaintRequest(
        request_id=_rid(), case_number=number, text="已查封涉事摊位"))
    await desk.call(HOTLINE, "RateComplaint", pb.RateComplaintRequest(
        request_id=_rid(), case_number=number, level=5,
        comment=f"我是{name}，电话{phone}，处理及时"))
    await desk.ended(number)

    stored = _every_stored_row(desk)
    assert "约定现场核查时间" in stored and "属卫健委职责" in stored  # the bases are there
    assert "*" * len(name) in stored
    assert name not in stored and phone not in stored
    events = desk.rows("SELECT details FROM complaint_events WHERE case_number = :n", n=number)
    assert not any(name in str(e) or phone in str(e) for e in events)
    client = await desk.processes.client()
    history = await client.get_workflow_handle(workflow_id(number)).fetch_history()
    decoded = await decoded_history_text(client, history.events)
    # The updates' decoded arguments: every basis and the comment, masked.
    for kept in ("约定现场核查时间", "属卫健委职责", "改派卫健委", "处理及时"):
        assert kept in decoded
    assert name not in decoded and phone not in decoded
