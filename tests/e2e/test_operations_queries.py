"""What docs/operations.md tells operators, done with the real `temporal` CLI on real cases.

The intake and review services and the workflows worker run as the runner
runs them, in a Temporal namespace of their own on the session's dev
server. Three cases are put into the states the doc's queries look for:

- one reviewed, so it waits for the leader's signature;
- one paused for a special procedure (inspection/testing, which its item
  allows);
- one accepted 60 days ago: the intake service accepts it today, then its
  workflow is started again by the Temporal client with the acceptance
  date moved 60 days back, so its deadlines have passed and the watcher
  marks it breached at once. (The case must exist in the intake database:
  the workflow's timeline activities refuse an unknown case.)

Each visibility query of the doc must then list exactly its cases, and
nothing Temporal holds about a case may carry the applicant's personal data.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from temporalio.testing import WorkflowEnvironment

from govhall.intake.v1 import intake_pb2
from govhall.review.v1 import review_pb2, review_pb2_grpc
from kernel.chinatime import china_date
from kernel.signing import service_signer
from kernel.temporal import WORKFLOW_TASK_QUEUE
from services.intake.app.chain import search_attributes, summary
from tests.e2e.suite import (
    REVIEW,
    ChainProcesses,
    decide_until_done,
    review_channel,
    start_chain,
    submit,
    until_quiet,
    within,
)
from tests.support import as_official
from workflows.approval_contract import (
    WORKFLOW_NAME,
    ApprovalInput,
    StatementFacts,
    as_statement,
    iso_instant,
    workflow_id,
)

if TYPE_CHECKING:
    from govhall.review.v1.review_pb2_grpc import ReviewServiceAsyncStub

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SETUP_SECONDS = 60
VISIBILITY_SECONDS = 30
#: 食品生产许可 (SCJGJ): its item allows inspection/testing, which stops the clock.
ITEM_WITH_SPECIAL_PROCEDURE = "012101000008000"
CLERK = "SCJGJ-001"
REVIEWER = "SCJGJ-003"
OPERATOR = "ZWFWZX-004"
SUPERVISOR = "JJZ-001"
DEPARTMENT = "SCJGJ"
APPLICANT = intake_pb2.Applicant(
    kind=intake_pb2.APPLICANT_KIND_PERSON, name="李秀英", id_number="210102198805061234",
    phone="13904001234")
PERSONAL_DATA = (APPLICANT.name, APPLICANT.id_number, APPLICANT.phone)

#: The doc's visibility queries, with the values the doc shows them with.
QUERIES = {
    "overdue": "CaseKind = 'approval' AND Department = '{department}' AND SlaState = 'breached'"
               " AND ExecutionStatus = 'Running'",
    "awaiting signature": "CaseKind = 'approval' AND Stage = 'sign'"
                          " AND ExecutionStatus = 'Running'",
    "paused": "CaseKind = 'approval' AND SlaState = 'paused' AND ExecutionStatus = 'Running'",
    "due before": "CaseKind = 'approval' AND DueTime < '{due_before}'"
                  " AND ExecutionStatus = 'Running'",
    "one case": "CaseNumber = '{case_number}'",
}
DOC_VALUES = {"department": "SCJGJ", "due_before": "2026-12-01T00:00:00Z",
              "case_number": "AP-20261126-000042"}


@dataclass
class Cases:
    processes: ChainProcesses
    awaiting_signature: str
    paused: str
    breached: str
    #: Before the breached case's deadlines, after every other case's.
    due_before: str

    @property
    def numbers(self) -> set[str]:
        return {self.awaiting_signature, self.paused, self.breached}


async def _accepted_days_ago(processes: ChainProcesses, case_number: str, days: int) -> None:
    """Start the case's workflow again as if the case had been accepted ``days`` ago.

    The acceptance is a statement intake signs: the test signs the backdated one
    with intake's key, as only intake could.
    """
    client = await processes.client()
    handle = client.get_workflow_handle(workflow_id(case_number))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (case,) = await client.data_converter.decode(started.input.payloads, [ApprovalInput])
    assert isinstance(case, ApprovalInput)
    await handle.terminate("e2e: started again with an acceptance date in the past")
    facts = StatementFacts.read(case.acceptance.body)
    accepted_at = datetime.fromisoformat(facts.issued_at.replace("Z", "+00:00")) - timedelta(
        days=days)
    body = {**case.acceptance.body, "issued_at": iso_instant(accepted_at),
            "accepted_on": china_date(accepted_at).isoformat()}
    intake = service_signer(processes.pki_dir, "intake")
    earlier = ApprovalInput(as_statement(intake.sign(body)))
    # As the intake service starts it: the same id, search attributes and summary.
    await client.start_workflow(
        WORKFLOW_NAME, earlier, id=workflow_id(case_number), task_queue=WORKFLOW_TASK_QUEUE,
        search_attributes=search_attributes(facts), static_summary=summary(facts))


@pytest.fixture(scope="module")
async def cases(tmp_path_factory: pytest.TempPathFactory,
                temporal_dev_server: WorkflowEnvironment) -> AsyncIterator[Cases]:
    processes = await start_chain(tmp_path_factory.mktemp("operations"),
                                  temporal=temporal_dev_server.client)
    try:
        # Payloads are encrypted: the CLI reads them through the codec server, as operators do.
        await processes.start_codec_server()
        deadline = time.monotonic() + SETUP_SECONDS
        awaiting_signature = await submit(processes, applicant=APPLICANT)
        await decide_until_done(processes, awaiting_signature, REVIEW, str(uuid.uuid4()),
                                deadline)

        paused = await submit(processes, item_code=ITEM_WITH_SPECIAL_PROCEDURE,
                              applicant=APPLICANT)
        await until_quiet(processes, paused, deadline)
        async with review_channel(processes) as channel:
            review: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
            await review.StartSpecialProcedure(review_pb2.StartSpecialProcedureRequest(
                case_number=paused, procedure=review_pb2.SPECIAL_PROCEDURE_INSPECTION_TESTING,
                note="送检", request_id=str(uuid.uuid4())), metadata=as_official(REVIEWER))

        breached = await submit(processes, applicant=APPLICANT)
        await _accepted_days_ago(processes, breached, 60)
        for case_number in (awaiting_signature, paused, breached):
            await until_quiet(processes, case_number, deadline)
        yield Cases(processes, awaiting_signature, paused, breached,
                    datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    finally:
        await processes.close()


def _plain(value: Any) -> Any:
    """The CLI's JSON with every payload ({metadata, data} in base64) decoded to its value."""
    if isinstance(value, dict):
        if set(value) <= {"metadata", "data"} and "data" in value:
            data = base64.b64decode(value["data"]).decode("utf-8")
            try:
                return json.loads(data)
            except json.JSONDecodeError:
                return data
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _listed(processes: ChainProcesses, query: str, ours: set[str]) -> list[str]:
    """The case numbers of our cases that ``temporal workflow list --query`` lists."""
    listing = processes.temporal_cli("workflow", "list", "--query", query)
    numbers = [_plain(execution)["searchAttributes"]["indexedFields"].get("CaseNumber", "")
               for execution in listing]
    return sorted(n for n in numbers if n in ours)


def test_the_doc_shows_every_query_tested_here_and_no_other() -> None:
    doc = DOC.read_text(encoding="utf-8")
    shown = set(re.findall(r'--query "([^"]+)"', doc))
    expected = {query.format(**DOC_VALUES) for query in QUERIES.values()}
    assert shown == expected


@pytest.mark.parametrize("name", list(QUERIES))
async def test_the_query_lists_exactly_its_cases(cases: Cases, name: str) -> None:
    query = QUERIES[name].format(department=DEPARTMENT, due_before=cases.due_before,
                                 case_number=cases.awaiting_signature)
    expected = {
        "overdue": [cases.breached],
        "awaiting signature": [cases.awaiting_signature],
        "paused": [cases.paused],
        "due before": [cases.breached],
        "one case": [cases.awaiting_signature],
    }[name]
    found: list[str] = []

    async def listed() -> bool:
        found[:] = _listed(cases.processes, query, cases.numbers)
        return found == expected

    try:
        await within(time.monotonic() + VISIBILITY_SECONDS, f"{query} lists {expected}",
                     listed)
    finally:
        assert found == expected, (query, {"awaiting signature": cases.awaiting_signature,
                                           "paused": cases.paused, "breached": cases.breached})


async def test_the_status_query_explains_a_paused_case(cases: Cases) -> None:
    answer = cases.processes.temporal_cli(
        "workflow", "query", "--workflow-id", workflow_id(cases.paused), "--name", "status")
    (status,) = answer["queryResult"]
    assert status["case_number"] == cases.paused
    assert (status["stage"], status["sla_state"], status["paused_for"]) == (
        "review", "paused", "inspection_testing")
    assert "inspection_testing" in status["waiting_for"]
    assert status["deadlines"]["promised_due_at"]


async def test_nothing_temporal_holds_carries_personal_data(cases: Cases) -> None:
    processes = cases.processes
    for case_number in sorted(cases.numbers):
        wid = workflow_id(case_number)
        described = _plain(processes.temporal_cli("workflow", "describe", "--workflow-id", wid))
        history = _plain(processes.temporal_cli("workflow", "show", "--workflow-id", wid))
        metadata = _plain(processes.temporal_cli("workflow", "metadata", "--workflow-id", wid))
        listed = _plain(processes.temporal_cli(
            "workflow", "list", "--query", f"CaseNumber = '{case_number}'"))
        seen = json.dumps([described, history, metadata, listed], ensure_ascii=False)
        # What the operator sees is there, decoded: the check below reads real text.
        assert case_number in json.dumps(history["events"][0], ensure_ascii=False)
        assert described["executionConfig"]["userMetadata"]["summary"].startswith("Approval ")
        assert "**Stage:**" in json.dumps(metadata, ensure_ascii=False)
        assert "许可" in seen  # the item's name: text in Chinese is read decoded, too
        for personal in PERSONAL_DATA:
            assert personal not in seen, (case_number, personal)


async def test_the_breach_is_escalated_to_the_supervision_desk(cases: Cases) -> None:
    async with review_channel(cases.processes, "supervision-system") as channel:
        review: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
        kinds: set[int] = set()

        async def escalated() -> bool:
            page = await review.ListEscalations(review_pb2.ListEscalationsRequest(
                department_code=DEPARTMENT, open_only=True, page_size=500),
                metadata=as_official(SUPERVISOR))
            kinds.clear()
            kinds.update(e.kind for e in page.escalations if e.case_number == cases.breached)
            return bool(kinds) and all(e.case_number == cases.breached
                                       for e in page.escalations)

        await within(time.monotonic() + VISIBILITY_SECONDS, "the breach is escalated",
                     escalated)
        audit = (await review.VerifyAuditLog(review_pb2.VerifyAuditLogRequest())).verification
    assert kinds == {review_pb2.ESCALATION_KIND_PROMISED_BREACH,
                     review_pb2.ESCALATION_KIND_LEGAL_BREACH}
    assert audit.intact, audit.reason


async def test_next_years_schedule_is_loaded_and_running_cases_recompute(cases: Cases) -> None:
    async with review_channel(cases.processes, "operator") as channel:
        review: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
        loaded = await review.LoadHolidaySchedule(review_pb2.LoadHolidayScheduleRequest(
            year=2027, holidays=["2027-01-01", "2027-02-08", "2027-02-09", "2027-02-10"],
            makeup_workdays=["2027-02-20"]), metadata=as_official(OPERATOR))
    assert loaded.cases_recomputing == len(cases.numbers)

    async def recomputed(case_number: str, reason: str) -> bool:
        async with review_channel(cases.processes, "operator") as channel:
            review: ReviewServiceAsyncStub = review_pb2_grpc.ReviewServiceStub(channel)
            progress = await review.GetCaseProgress(
                review_pb2.GetCaseProgressRequest(case_number=case_number),
                metadata=as_official(OPERATOR))
        return any(event.kind == "deadlines.computed"
                   and event.details.get("reason") == reason
                   for event in progress.timeline)

    deadline = time.monotonic() + VISIBILITY_SECONDS
    for case_number in sorted(cases.numbers):
        await within(deadline, f"{case_number} recomputes its deadlines",
                     functools.partial(recomputed, case_number, "holiday schedule 2027 loaded"))

    # One case told by hand, as the doc shows.
    cases.processes.temporal_cli(
        "workflow", "signal", "--workflow-id", workflow_id(cases.paused),
        "--name", "recompute_deadlines", "--input", '{"reason": "schedule corrected"}')
    await within(deadline, "the case recomputes when told by hand",
                 functools.partial(recomputed, cases.paused, "schedule corrected"))
